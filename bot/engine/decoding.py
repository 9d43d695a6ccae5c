"""How the engine decodes tokens: options of jamgen's decode loop (plain data, no torch).

The loop itself is ``bot/engine/worker/decode.py``; docs/PERFORMANCE.md says what each option buys.
"""

from __future__ import annotations

from dataclasses import dataclass

AUTOCAST_CHOICES = ("auto", "float16", "bfloat16", "float32")
CPU_MATMUL_CHOICES = ("onednn", "mkl")


@dataclass(frozen=True)
class DecodeOptions:
    """Switches of the decode loop; the defaults are what the engine uses.

    Args:
        fast: decode with jamgen's loop (preallocated KV cache, cross-attention keys and values
            computed once per window). ``False`` runs audiocraft's own ``LMModel.generate``.
            Models the loop does not know fall back to audiocraft's loop either way.
        cuda_graphs: on CUDA, capture the one-token decoding step as CUDA graphs and replay them.
            Ignored on the CPU, where there are no graphs.
        graph_bucket: cache positions per captured graph: a graph has fixed shapes, so it attends
            over a fixed length of the KV cache (positions not written yet are masked); a window
            of 1500 steps is captured as 6 graphs of 256, 512, … positions.
        autocast: mixed precision on CUDA: ``auto`` keeps audiocraft's choice (float16, the dtype
            the checkpoints are loaded in), ``bfloat16`` and ``float32`` override it (both change
            the tokens compared with audiocraft); ``float16`` asks for audiocraft's choice explicitly.
        cpu_matmul: the kernels of the step's matrix products on the CPU (in float32): ``onednn``
            (oneDNN's matmul, several times faster than MKL's for the rows of a batch on the AMD
            CPUs measured; it rounds differently in the last bits, so tokens are audiocraft's only
            to within rounding) or ``mkl`` (``F.linear``, the kernels audiocraft runs: bit-identical
            tokens, what the token tests compare). Ignored on CUDA.
    """

    fast: bool = True
    cuda_graphs: bool = True
    graph_bucket: int = 256
    autocast: str = "auto"
    cpu_matmul: str = "onednn"

    def __post_init__(self) -> None:
        if self.graph_bucket < 1:
            raise ValueError("graph_bucket must be at least 1.")
        if self.autocast not in AUTOCAST_CHOICES:
            raise ValueError(f"autocast must be one of {', '.join(AUTOCAST_CHOICES)}, not {self.autocast!r}.")
        if self.cpu_matmul not in CPU_MATMUL_CHOICES:
            raise ValueError(f"cpu_matmul must be one of {', '.join(CPU_MATMUL_CHOICES)}, not {self.cpu_matmul!r}.")


__all__ = ["AUTOCAST_CHOICES", "CPU_MATMUL_CHOICES", "DecodeOptions"]
