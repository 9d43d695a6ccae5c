"""The CPU's matrix products of one decoding step, by kernel: what limits a step, and a batch.

Times every product of a decoding step of a released LM shape (default musicgen-small: per layer
the self-attention's packed input and its output, the cross-attention's query and output, the two
feed-forward products; 24 layers, 1.41 GB of float32 weights, too big for any cache) at 2 rows
(one take with CFG) and 8 rows (a batch of 4), with each kernel:

* ``mkl``: ``F.linear``, MKL's products, what audiocraft runs;
* ``onednn``: oneDNN's matmul on the same weights (``torch.ops.mkldnn._linear_pointwise``), what
  the engine runs on the CPU by default (``JAMGEN_CPU_MATMUL``);
* ``onednn_packed``: oneDNN on weights reordered for it (a second copy of each weight);
* ``mkl_packed``: MKL's packed products (``torch.ops.mkl._mkl_linear``; a second copy).

The kernels alternate, best of ``--repeats`` passes each. Prints ``name=value`` lines (milliseconds
per step, and the largest difference from ``mkl``'s output), the headline
``onednn_vs_mkl_rows8`` (how much faster the engine's products are for a batch of 4) last.

    python bench/cpu_matmul.py
    python bench/cpu_matmul.py --quick    # the tiny shape, seconds
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from torch.nn import functional as F  # noqa: N812 (the usual name)

from bot.engine.worker.sizes import MODEL_SHAPES

Product = Callable[[torch.Tensor], torch.Tensor]


def step_weights(dim: int, layers: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(weight, bias) of every product in a step of a transformer of this width and depth."""
    shapes = [(3 * dim, dim), (dim, dim), (dim, dim), (dim, dim), (4 * dim, dim), (dim, 4 * dim)]
    return [(torch.randn(out, inp) * 0.02, torch.randn(out) * 0.02) for _ in range(layers) for out, inp in shapes]


def products(kind: str, weights: list[tuple[torch.Tensor, torch.Tensor]], rows: int) -> list[Product]:
    """One function per weight that multiplies an input of ``rows`` rows by it with kernel ``kind``."""
    made: list[Product] = []
    for weight, bias in weights:
        if kind == "mkl":
            made.append(lambda x, w=weight, b=bias: F.linear(x, w, b))
        elif kind == "onednn":
            made.append(lambda x, w=weight, b=bias: torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], ""))
        elif kind == "onednn_packed":
            packed = torch.ops.mkldnn._reorder_linear_weight(weight, rows)
            made.append(lambda x, p=packed, b=bias: torch.ops.mkldnn._linear_pointwise(x, p, b, "none", [], ""))
        else:
            packed = torch.ops.mkl._mkl_reorder_linear_weight(weight, rows)
            made.append(lambda x, p=packed, w=weight, b=bias: torch.ops.mkl._mkl_linear(x, p, w, b, rows))
    return made


KINDS = ("mkl", "onednn", "onednn_packed", "mkl_packed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-size", choices=sorted(MODEL_SHAPES), default="small")
    parser.add_argument("--repeats", type=int, default=5, help="passes per kernel; the best counts (default 5)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default 0: all cores)")
    parser.add_argument("--quick", action="store_true", help="the tiny shape, one pass")
    args = parser.parse_args(argv)
    if args.quick:
        args.model_size, args.repeats = "tiny", 1
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    shape = MODEL_SHAPES[args.model_size]
    torch.manual_seed(0)
    weights = step_weights(shape.dim, shape.num_layers)
    print(f"# {shape}; torch {torch.__version__}; {torch.get_num_threads()} thread(s)")
    print(f"weight_bytes_per_step={sum(w.numel() + b.numel() for w, b in weights) * 4}")
    best: dict[tuple[str, int], float] = {}
    with torch.no_grad():
        for rows in (2, 8):
            inputs = {d: torch.randn(rows, d) for d in (shape.dim, 4 * shape.dim)}
            by_kind = {kind: products(kind, weights, rows) for kind in KINDS}
            reference = [f(inputs[w.shape[1]]) for f, (w, _) in zip(by_kind["mkl"], weights, strict=True)]
            for repeat in range(args.repeats + 1):  # the first pass warms up
                for kind in KINDS[repeat % len(KINDS) :] + KINDS[: repeat % len(KINDS)]:
                    started = time.perf_counter()
                    for f, (w, _) in zip(by_kind[kind], weights, strict=True):
                        f(inputs[w.shape[1]])
                    if repeat:
                        ms = (time.perf_counter() - started) * 1000
                        best[kind, rows] = min(best.get((kind, rows), ms), ms)
            for kind in KINDS:
                outputs = [f(inputs[w.shape[1]]) for f, (w, _) in zip(by_kind[kind], weights, strict=True)]
                error = max(float((o - r).abs().max()) for o, r in zip(outputs, reference, strict=True))
                print(f"rows{rows}_{kind}_ms={best[kind, rows]:.1f}")
                print(f"rows{rows}_{kind}_max_difference={error:.2g}")
    for kind in KINDS:
        print(f"{kind}_rows8_vs_rows2={best[kind, 8] / best[kind, 2]:.2f}")
    print(f"onednn_vs_mkl_rows2={best['mkl', 2] / best['onednn', 2]:.2f}")
    print(f"onednn_vs_mkl_rows8={best['mkl', 8] / best['onednn', 8]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
