"""What batching buys: B takes in one generate call against the same B takes one at a time.

Builds a MusicGen of a released size with random weights (``bot/engine/worker/sizes.py``; the
default is musicgen-small's shape, 0.41 B parameters, with the real codec shape) and times, in
alternating rounds of one process:

* stock sequential: B takes of stock audiocraft (``MusicGen.generate``, one prompt each), one
  after the other, on the weights as audiocraft's loaders leave them: what a bot without
  batching does;
* sequential: B calls of the engine's generate call (``bot.engine.worker.generate.run_call``),
  one take each, on the weights as the engine holds them (on the CPU the LM's weights on huge
  pages, ``place_on_huge_pages``; ``--no-huge-pages``: one copy of the model, as built) and with
  its kernels (on the CPU oneDNN's products; ``--cpu-matmul mkl``: audiocraft's);
* batched: one engine call with the same B takes.

All sample (top-k 250, cfg 3), as the bot does. Prints ``name=value`` lines; above the headline,
``batch<B>_vs_sequential`` (jamgen batched against jamgen one take at a time: what batching alone
buys), and last the headline ``batch<B>_vs_stock_sequential`` (jamgen batched against stock
audiocraft one take at a time: what a user would compare), each aggregate throughput (sequential
seconds ÷ batched seconds).

    python bench/batching.py --quick                                   # tiny model, seconds
    python bench/batching.py --model-size small --duration 2 --batch 4  # about 10 minutes on 2 CPU cores

The three sides alternate (rotating who goes first) for ``--repeats`` rounds (default 3) and the
fastest of each side counts: on a shared machine single rounds vary by a third.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from bot.engine.decoding import CPU_MATMUL_CHOICES, DecodeOptions
from bot.engine.types import GenerationRequest, Mode, SamplingParams
from bot.engine.worker.generate import CallOutput, count_decode_steps, extend_stride, run_call
from bot.engine.worker.models import place_on_huge_pages, seed_everything
from bot.engine.worker.sizes import MODEL_SHAPES, build_sized_model

PROMPTS = ("lofi hip hop with warm piano", "fast drum and bass", "ambient pads", "funky slap bass", "epic strings")


def rows(count: int, duration: float, first: int = 0) -> list[GenerationRequest]:
    sampling = SamplingParams()  # the bot's defaults: sampling, top-k 250, cfg 3
    return [
        GenerationRequest("take", i, "bench", Mode.TEXT, f"{PROMPTS[i % len(PROMPTS)]} {i}", duration, sampling)
        for i in range(first, first + count)
    ]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def stock_takes(model, requests: list[GenerationRequest], device: torch.device) -> float:
    """The takes with stock audiocraft, one ``MusicGen.generate`` each, as its README uses it; seconds in all."""
    sampling = requests[0].sampling
    sync(device)
    started = time.perf_counter()
    for request in requests:
        seed_everything(1234)
        model.set_generation_params(
            use_sampling=sampling.use_sampling,
            top_k=sampling.top_k,
            top_p=sampling.top_p,
            temperature=sampling.temperature,
            cfg_coef=sampling.cfg_coef,
            duration=request.duration,
            extend_stride=extend_stride(model),
        )
        with torch.no_grad():
            audio = model.generate([request.prompt])
        assert audio.shape[0] == 1
    sync(device)
    return time.perf_counter() - started


def call(
    model, requests: list[GenerationRequest], device: torch.device, options: DecodeOptions | None = None
) -> tuple[float, CallOutput]:
    sync(device)
    started = time.perf_counter()
    output = run_call(model, requests, seed=1234, on_step=lambda done, total: None, options=options)
    sync(device)
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
        "--no-huge-pages",
        action="store_true",
        help="CPU: jamgen on stock's weights, on normal pages (the engine uses huge pages)",
    )
    parser.add_argument(
        "--cpu-matmul",
        choices=CPU_MATMUL_CHOICES,
        default=DecodeOptions().cpu_matmul,
        help="CPU: the kernels of jamgen's step (default: the engine's, onednn; mkl: audiocraft's)",
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
    # Stock runs on the weights as built (where audiocraft's loaders leave them); jamgen on a copy held as the
    # engine's model cache holds it: on the CPU, the LM's weights on huge pages (JAMGEN_HUGE_PAGES).
    engine_model, huge_page_bytes = model, 0
    if device.type == "cpu" and not args.no_huge_pages:
        engine_model = build_sized_model(args.model_size, device)
        engine_model.lm.load_state_dict(model.lm.state_dict())
        engine_model.compression_model.load_state_dict(model.compression_model.state_dict())
        huge_page_bytes = place_on_huge_pages(engine_model.lm)
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine()
    print(f"# {hardware}; torch {torch.__version__}; random {args.model_size}; stock generate, engine path (run_call)")
    print(f"device={device.type}")
    print(f"threads={threads if device.type == 'cpu' else 0}")
    print(f"model_size={args.model_size}")
    print(f"huge_page_bytes={huge_page_bytes}")
    print(f"cpu_matmul={args.cpu_matmul if device.type == 'cpu' else 'none'}")
    print(f"duration_s={args.duration:g}")
    print(f"decode_steps={count_decode_steps(model, args.duration)}")
    options = DecodeOptions(cpu_matmul=args.cpu_matmul)
    # Warm-up: first-call costs (kernels, allocator) are not what is measured.
    call(engine_model, rows(1, min(args.duration, 0.2), first=99), device, options)
    stock_takes(model, rows(1, min(args.duration, 0.2), first=99), device)

    def stock_sequential() -> float:
        return stock_takes(model, rows(args.batch, args.duration), device)

    def sequential() -> float:
        return sum(call(engine_model, rows(1, args.duration, first=i), device, options)[0] for i in range(args.batch))

    def batched() -> float:
        seconds, output = call(engine_model, rows(args.batch, args.duration), device, options)
        assert len(output.audio) == args.batch
        return seconds

    sides = [("stock_sequential", stock_sequential), ("sequential", sequential), ("batched", batched)]
    best = dict.fromkeys((name for name, _ in sides), float("inf"))
    # Alternating rounds, rotating who goes first, best of each side: a shared machine's slow moments hit all alike.
    for repeat in range(args.repeats):
        shift = repeat % len(sides)
        for name, side in sides[shift:] + sides[:shift]:
            best[name] = min(best[name], side())
    audio_s = args.batch * args.duration
    for name, seconds in best.items():
        print(f"{name}_s={seconds:.2f}")
    for name, seconds in best.items():
        print(f"{name}_x_realtime={audio_s / seconds:.3f}")
    print(f"sequential_vs_stock_sequential={best['stock_sequential'] / best['sequential']:.2f}")
    print(f"batch{args.batch}_vs_sequential={best['sequential'] / best['batched']:.2f}")
    print(f"batch{args.batch}_vs_stock_sequential={best['stock_sequential'] / best['batched']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
