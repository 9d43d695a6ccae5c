"""What batching buys: B takes in one generate call against the same B takes one call at a time.

Builds a MusicGen of a released size with random weights (``bot/engine/worker/sizes.py``; the
default is musicgen-small's shape, 0.41 B parameters, with the real codec shape) and runs the
engine's generate call, ``bot.engine.worker.generate.run_call``, in this process, with the LM's
weights on huge pages on the CPU as the engine holds them (``--no-huge-pages``: as built):

* sequential: B calls of one take each (distinct prompts);
* batched: one call with the same B takes.

Both sample (top-k 250, cfg 3), as the bot does. Prints ``name=value`` lines; the last is the
headline ``batch<B>_vs_sequential``: aggregate throughput of the batched call over the sequential
calls (sequential seconds ÷ batched seconds).

    python bench/batching.py --quick                                   # tiny model, seconds
    python bench/batching.py --model-size small --duration 2 --batch 4  # about 6 minutes on 2 CPU cores

Sequential and batched alternate for ``--repeats`` rounds (default 3) and the fastest of each side
counts: on a shared machine single rounds vary by a third.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from bot.engine.types import GenerationRequest, Mode, SamplingParams
from bot.engine.worker.generate import CallOutput, count_decode_steps, run_call
from bot.engine.worker.models import place_on_huge_pages
from bot.engine.worker.sizes import MODEL_SHAPES, build_sized_model

PROMPTS = ("lofi hip hop with warm piano", "fast drum and bass", "ambient pads", "funky slap bass", "epic strings")


def rows(count: int, duration: float, first: int = 0) -> list[GenerationRequest]:
    sampling = SamplingParams()  # the bot's defaults: sampling, top-k 250, cfg 3
    return [
        GenerationRequest(f"take-{i}", "bench", Mode.TEXT, f"{PROMPTS[i % len(PROMPTS)]} {i}", duration, sampling)
        for i in range(first, first + count)
    ]


def call(model, requests: list[GenerationRequest], device: torch.device) -> tuple[float, CallOutput]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    output = run_call(model, requests, seed=1234, on_step=lambda done, total: None)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started, output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-size", choices=sorted(MODEL_SHAPES), default="small")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds of audio per take (default 2)")
    parser.add_argument("--batch", type=int, default=4, help="takes per batched call (default 4)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default 0: all cores)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="alternating rounds, the best of each side counts (default 3)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny model, 1 s (seconds)")
    parser.add_argument(
        "--no-huge-pages", action="store_true", help="CPU: leave the weights on normal pages (the engine moves them)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.model_size, args.duration, args.repeats = "tiny", 1.0, 1
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA GPU")
    device = torch.device(args.device)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()

    model = build_sized_model(args.model_size, device)
    # As the engine's model cache does on the CPU (JAMGEN_HUGE_PAGES).
    huge_page_bytes = 0 if args.no_huge_pages else place_on_huge_pages(model.lm)
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine()
    print(f"# {hardware}; torch {torch.__version__}; random {args.model_size}; engine path (run_call)")
    print(f"device={device.type}")
    print(f"threads={threads if device.type == 'cpu' else 0}")
    print(f"model_size={args.model_size}")
    print(f"huge_page_bytes={huge_page_bytes}")
    print(f"duration_s={args.duration:g}")
    print(f"decode_steps={count_decode_steps(model, args.duration)}")
    call(model, rows(1, min(args.duration, 0.2), first=99), device)  # warm-up

    # Alternating rounds, best of each side: a shared machine's slow moments hit both alike.
    sequential_s = batched_s = float("inf")
    for _ in range(args.repeats):
        sequential_s = min(
            sequential_s, sum(call(model, rows(1, args.duration, first=i), device)[0] for i in range(args.batch))
        )
        seconds, output = call(model, rows(args.batch, args.duration), device)
        assert len(output.audio) == args.batch
        batched_s = min(batched_s, seconds)
    audio_s = args.batch * args.duration
    print(f"sequential_s={sequential_s:.2f}")
    print(f"batched_s={batched_s:.2f}")
    print(f"sequential_x_realtime={audio_s / sequential_s:.3f}")
    print(f"batched_x_realtime={audio_s / batched_s:.3f}")
    print(f"batch{args.batch}_vs_sequential={sequential_s / batched_s:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
