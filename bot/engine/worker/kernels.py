"""Which kernels a decoding step computes with: its precision (autocast) and, on the CPU, whose matrix products.

Both are choices of the engine (``DecodeOptions.autocast``, ``DecodeOptions.cpu_matmul``), not of
the loop's arithmetic: the loop (:mod:`bot.engine.worker.decode`) does audiocraft's operations
either way; these decide how the hardware rounds them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from audiocraft.models.lm import LMModel
from audiocraft.utils.autocast import TorchAutocast
from torch.nn import functional as F  # noqa: N812 (the usual name)


def select_autocast_dtype(device_type: str, requested: str, bf16_supported: bool) -> torch.dtype | None:
    """The autocast dtype of a generate call, or None for full precision.

    Args:
        device_type: ``cuda`` or ``cpu``.
        requested: ``auto`` (audiocraft's choice: float16 on CUDA, none on the CPU), ``float16``,
            ``bfloat16`` or ``float32``.
        bf16_supported: whether the GPU computes in bfloat16 (``torch.cuda.is_bf16_supported()``).

    Raises:
        ValueError: unknown choice, float16 on the CPU, or bfloat16 on a GPU without it.
    """
    if requested == "auto":
        return torch.float16 if device_type == "cuda" else None
    if requested == "float32":
        return None
    if requested == "float16":
        if device_type != "cuda":
            raise ValueError("float16 autocast is for GPUs; use auto or bfloat16 on the CPU.")
        return torch.float16
    if requested == "bfloat16":
        if device_type == "cuda" and not bf16_supported:
            raise ValueError("This GPU does not compute in bfloat16; use auto (float16).")
        return torch.bfloat16
    raise ValueError(f"Unknown autocast choice {requested!r}.")


def autocast_for(device: torch.device, requested: str) -> TorchAutocast:
    """audiocraft's autocast wrapper for a device and an autocast choice (see :func:`select_autocast_dtype`).

    Args:
        device: the model's device.
        requested: the choice.
    """
    bf16 = device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    dtype = select_autocast_dtype(device.type, requested, bf16)
    if dtype is None:
        return TorchAutocast(enabled=False)
    return TorchAutocast(enabled=True, device_type=device.type, dtype=dtype)


Linear = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


def _onednn_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear`` through oneDNN's matmul, on the weight as it is (no copy, huge pages kept)."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


def step_linear(lm: LMModel, cpu_matmul: str) -> Linear:
    """The matrix product of the one-token step: oneDNN's when asked for on the CPU in float32, else ``F.linear``.

    oneDNN's op ignores autocast, so it is used only when autocast is off and the weights are float32;
    on CUDA ``F.linear`` (cuBLAS) is what graphs capture.

    Args:
        lm: the language model (its device and weight dtype).
        cpu_matmul: ``onednn`` or ``mkl`` (see :class:`DecodeOptions`).
    """
    weight = next(iter(lm.parameters()))
    if (
        cpu_matmul == "onednn"
        and weight.device.type == "cpu"
        and weight.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
        and torch.backends.mkldnn.is_available()
    ):
        return _onednn_linear
    return F.linear


__all__ = ["Linear", "autocast_for", "select_autocast_dtype", "step_linear"]
