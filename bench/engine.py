"""Decoding speed: stock audiocraft against jamgen's engine path, side by side in one process.

Builds a MusicGen of a released size with random weights (``bot/engine/worker/sizes.py``:
audiocraft's own configuration and builders, the real codec shape, no download) and times,
rotating who goes first:

* ``stock``: audiocraft's ``MusicGen.generate`` (its ``LMModel.generate`` loop) on the weights as
  built, where torch's allocator put them, as audiocraft's loaders leave them;
* ``jamgen``: the engine's generate call, ``bot.engine.worker.generate.run_call`` (jamgen's decode
  loop), on a copy of the same weights held as the engine holds them: on the CPU the LM's weights
  are on huge pages (``place_on_huge_pages``, what the engine's model cache does at load) and the
  step's products run on oneDNN (``--cpu-matmul``, the engine's default);
* on the CPU, two more that take the engine apart: ``jamgen_mkl``, the engine path with
  audiocraft's kernels (MKL), and ``jamgen_loop``, jamgen's loop alone (audiocraft's kernels, on
  stock's weights). ``--no-huge-pages`` keeps one copy of the model and times only the first two.

All decode greedily (use_sampling=False) with classifier-free guidance (cfg 3), one distinct
prompt per row. The paths on audiocraft's kernels must give stock's audio exactly
(``b<B>_identical_tokens``); oneDNN rounds differently in the last bits (the token tests bound
its logits). Prints ``name=value`` lines:
per batch size B, seconds per call (best of ``--repeats``), decoding steps per second (the call
minus the codec), × realtime (B × duration ÷ seconds), the fraction of the memory-bandwidth floor
(LM weight bytes per step ÷ measured copy bandwidth, against the measured time per step), the
speed-ups, and for B > 1 the aggregate throughput against stock one take at a time. The headline
``jamgen_vs_stock_b<first batch>`` comes last.

``--durations 10,30,60,120`` measures how the cost grows with length instead: one take (batch 1)
per length, stock and jamgen's engine path (the others are left out), seconds of compute per
second of audio (``d<length>_<path>_s_per_audio_s``), the
growth from the shortest length to the longest (``<path>_cost_growth_d<last>_vs_d<first>``) and the
headline ``jamgen_vs_stock_d<longest>`` last. Takes longer than the 30 s window are made in
windows advancing by the extend stride (18 s), as the product makes them. ``--quick`` shrinks the
window to 1 s and every length by the same factor (each keeps its number of windows).

    python bench/engine.py --quick
    python bench/engine.py --model-size small --duration 2 --batch 1 --device cpu
    python bench/engine.py --model-size medium --duration 10 --batch 1,4,8,16 --device cuda
    python bench/engine.py --model-size small --durations 10,30,60,120 --device cpu
    python bench/engine.py --quick --durations 10,30,60,120
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from bot.engine.decoding import CPU_MATMUL_CHOICES, DecodeOptions
from bot.engine.types import GenerationRequest, Mode, SamplingParams
from bot.engine.worker import decode
from bot.engine.worker.generate import count_decode_steps, extend_stride, run_call
from bot.engine.worker.models import place_on_huge_pages, seed_everything
from bot.engine.worker.sizes import (
    MODEL_SHAPES,
    build_sized_model,
    lm_parameter_bytes,
    memory_bandwidth_gbs,
)

SEED = 1234
CFG = 3.0
# --quick --durations: the tiny model's window, so that long form runs in seconds.
QUICK_WINDOW_S = 1.0
PROMPTS = ("lofi hip hop with warm piano", "fast drum and bass", "ambient pads", "funky slap bass", "epic strings")


@dataclass
class Timing:
    """Best wall time of one path at one batch size, and the codec's share of it."""

    total_s: float = float("inf")
    codec_s: float = 0.0

    def add(self, total_s: float, codec_s: float) -> None:
        if total_s < self.total_s:
            self.total_s, self.codec_s = total_s, codec_s


class CodecClock:
    """Times ``model.generate_audio`` (the codec) inside both paths."""

    def __init__(self, model: object) -> None:
        self.seconds = 0.0
        original = model.generate_audio  # type: ignore[attr-defined]

        def timed(tokens: torch.Tensor) -> torch.Tensor:
            started = time.perf_counter()
            out = original(tokens)
            sync(out.device)
            self.seconds += time.perf_counter() - started
            return out

        model.generate_audio = timed  # type: ignore[attr-defined]


@contextlib.contextmanager
def _swapped(owner: object, name: str, value: object):
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def prompts(batch: int) -> list[str]:
    return [f"{PROMPTS[i % len(PROMPTS)]} {i}" for i in range(batch)]


def stock_call(model, batch: int, duration: float) -> np.ndarray:
    """audiocraft as its README uses it: set_generation_params, then MusicGen.generate."""
    seed_everything(SEED)
    model.set_generation_params(use_sampling=False, duration=duration, cfg_coef=CFG, extend_stride=extend_stride(model))
    with torch.no_grad():
        out = model.generate(prompts(batch))
    return out.float().cpu().numpy()


def jamgen_call(model, batch: int, duration: float, options: DecodeOptions | None = None) -> np.ndarray:
    """The engine's generate call with the same settings (``options``: the engine's defaults)."""
    sampling = SamplingParams(use_sampling=False, cfg_coef=CFG)
    texts = prompts(batch)
    rows = [GenerationRequest("bench", i, "bench", Mode.TEXT, t, duration, sampling) for i, t in enumerate(texts)]
    output = run_call(model, rows, SEED, lambda done, total: None, options)
    return np.stack(output.audio)


class _CrossEachStep(decode._StepModel):
    """Ablation: the cross-attention keys and values recomputed at every step, as audiocraft does."""

    def __init__(self, lm, prefill_state, capacity, cross_source, static, *, linear) -> None:
        super().__init__(lm, prefill_state, capacity, cross_source, static, linear=linear)
        self.cross_source = cross_source

    def _cross_attention(self, state, query):
        state.prepare_cross(self.cross_source)
        return super()._cross_attention(state, query)


class _GrowingCache(decode._StepModel):
    """Ablation: keys and values concatenated onto the past at every step (new tensors), as audiocraft does."""

    def _self_attention(self, state, x, mask):
        attn = state.self_attn
        time_dim = attn.time_dim
        projected = self.linear(x, attn.in_weight, attn.in_bias)
        b, t, _ = projected.shape
        packed = projected.view(b, t, 3, attn.heads, -1)
        if time_dim == 2:
            packed = packed.permute(0, 3, 2, 1, 4)
        q, k, v = packed.unbind(dim=2)
        if not hasattr(state, "past_keys"):
            state.past_keys = state.keys.narrow(time_dim, 0, self.length).clone()
            state.past_values = state.values.narrow(time_dim, 0, self.length).clone()
        state.past_keys = torch.cat([state.past_keys, k], dim=time_dim)
        state.past_values = torch.cat([state.past_values, v], dim=time_dim)
        return self._attend(attn, q, state.past_keys, state.past_values, mask, x.dtype)


ABLATIONS = {"cross_kv_every_step": _CrossEachStep, "growing_kv_cache": _GrowingCache}


def timed(call: Callable[[], np.ndarray], clock: CodecClock, device: torch.device) -> tuple[float, float, np.ndarray]:
    sync(device)
    clock.seconds = 0.0
    started = time.perf_counter()
    audio = call()
    sync(device)
    return time.perf_counter() - started, clock.seconds, audio


def measure(
    paths: list[tuple[str, Callable[..., np.ndarray], object]],
    clocks: dict[int, CodecClock],
    batch: int,
    duration: float,
    repeats: int,
    device: torch.device,
    exact: set[str],
) -> tuple[dict[str, Timing], bool, dict[str, np.ndarray]]:
    """Best of ``repeats`` calls per path, rotating who goes first; whether the ``exact`` paths made stock's audio."""
    timings = {name: Timing() for name, _, _ in paths}
    identical = True
    outputs: dict[str, np.ndarray] = {}
    for repeat in range(repeats):
        # Rotate who goes first, so that no path always runs on a warmer (or busier) machine.
        shift = repeat % len(paths)
        outputs = {}
        for name, call, on in paths[shift:] + paths[:shift]:
            total, codec, audio = timed(functools.partial(call, on, batch, duration), clocks[id(on)], device)
            timings[name].add(total, codec)
            outputs[name] = audio
        identical = identical and all(np.array_equal(outputs["stock"], outputs[name]) for name in exact)
    return timings, identical, outputs


def lengths(args: argparse.Namespace, model, paths, clocks, device: torch.device, exact: set[str]) -> str:
    """``--durations``: seconds of compute per second of audio at each length, one take (batch 1).

    Takes longer than the model's window are made as the product makes them: audiocraft's long
    form, windows advancing by the extend stride (18 s of a 30 s window), each primed with the
    last 12 s of the one before; jamgen's path runs the same windows with its own loop.

    Returns:
        The headline's line.
    """
    durations = [float(d) * args.duration_scale for d in args.durations.split(",")]
    labels = [f"d{float(d):g}" for d in args.durations.split(",")]
    print(f"window_s={model.max_duration:g}")
    print(f"extend_stride_s={extend_stride(model):g}")
    cost: dict[str, list[float]] = {name: [] for name, _, _ in paths}
    ratio = 0.0
    for label, duration in zip(labels, durations, strict=True):
        timings, identical, _ = measure(paths, clocks, 1, duration, args.repeats, device, exact)
        steps = count_decode_steps(model, duration)
        print(f"{label}_audio_s={duration:g}")
        print(f"{label}_decode_steps={steps}")
        for name, timing in timings.items():
            per_audio_s = timing.total_s / duration
            cost[name].append(per_audio_s)
            print(f"{label}_{name}_s={timing.total_s:.3f}")
            print(f"{label}_{name}_steps_per_s={steps / (timing.total_s - timing.codec_s):.2f}")
            print(f"{label}_{name}_s_per_audio_s={per_audio_s:.3f}")
        if exact:
            print(f"{label}_identical_tokens={int(identical)}")
        ratio = timings["stock"].total_s / timings["jamgen"].total_s
        print(f"{label}_jamgen_vs_stock={ratio:.3f}")
    # How the cost of a second of audio grows from the shortest length to the longest.
    for name, values in cost.items():
        print(f"{name}_cost_growth_{labels[-1]}_vs_{labels[0]}={values[-1] / values[0]:.3f}")
    return f"jamgen_vs_stock_{labels[-1]}={ratio:.3f}"


def engine_copy(model, args: argparse.Namespace, device: torch.device):
    """The model as jamgen's engine holds it: the same weights, the LM's on huge pages on the CPU.

    audiocraft's loaders leave the weights where torch's allocator put them (4 KiB pages), and so
    does ``build_sized_model``: ``model`` is what stock audiocraft runs on. On a GPU the engine
    keeps weights as they are, so the engine runs on ``model`` itself.
    """
    if device.type != "cpu" or args.no_huge_pages:
        return model, 0
    copy = build_sized_model(args.model_size, device)
    copy.lm.load_state_dict(model.lm.state_dict())
    copy.compression_model.load_state_dict(model.compression_model.state_dict())
    return copy, place_on_huge_pages(copy.lm)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-size", choices=sorted(MODEL_SHAPES), default="small")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds of audio per take (default 2)")
    parser.add_argument("--batch", default=None, help="batch sizes, comma-separated (default 1,4,8; 1,4,8,16 on CUDA)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default 0: all cores)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed calls per path and size; the best counts (3; 1 with --durations)",
    )
    parser.add_argument(
        "--durations",
        help="lengths in seconds, comma-separated (e.g. 10,30,60,120): cost per second of audio at each, batch 1",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny model, 1 s, batches 1 and 4 (seconds); with --durations: a 1 s window, lengths scaled to match",
    )
    parser.add_argument(
        "--no-huge-pages",
        action="store_true",
        help="CPU: run jamgen's path on stock's weights too (one copy of the model; the loop alone)",
    )
    parser.add_argument(
        "--cpu-matmul",
        choices=CPU_MATMUL_CHOICES,
        default=DecodeOptions().cpu_matmul,
        help="CPU: the kernels of jamgen's step (default: the engine's, onednn; mkl: audiocraft's, bit-identical)",
    )
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="also time jamgen's path with each improvement undone (at the first batch size)",
    )
    args = parser.parse_args(argv)
    args.duration_scale = 1.0
    if args.quick:
        args.model_size, args.duration, args.batch = "tiny", 1.0, args.batch or "1,4"
    if args.repeats is None:
        # A two-minute take on a CPU costs many minutes per path: one call each.
        args.repeats = 1 if args.durations else 3
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA GPU")
    device = torch.device(args.device)
    batches = [int(b) for b in (args.batch or ("1,4,8,16" if device.type == "cuda" else "1,4,8")).split(",")]
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()

    started = time.perf_counter()
    model = build_sized_model(args.model_size, device)
    build_s = time.perf_counter() - started
    engine_model, huge_page_bytes = engine_copy(model, args, device)
    if args.quick and args.durations:
        # Each length keeps its number of windows: a 1 s window stands for the 30 s one, lengths scale with it.
        args.duration_scale = QUICK_WINDOW_S / model.max_duration
        model.max_duration = engine_model.max_duration = QUICK_WINDOW_S
    clocks = {id(model): CodecClock(model)}
    if engine_model is not model:
        clocks[id(engine_model)] = CodecClock(engine_model)
    steps = count_decode_steps(model, args.duration)
    weight_bytes = lm_parameter_bytes(model.lm)
    bandwidth = memory_bandwidth_gbs(device)
    floor_step_s = weight_bytes / (bandwidth * 1e9)
    if device.type == "cuda":
        hardware = torch.cuda.get_device_name(device)
    else:
        hardware = f"{platform.processor() or platform.machine()}, {threads} torch thread(s)"
    print(f"# {hardware}; torch {torch.__version__}; random {args.model_size} ({MODEL_SHAPES[args.model_size]})")
    print(f"device={device.type}")
    print(f"threads={threads if device.type == 'cpu' else 0}")
    print(f"model_size={args.model_size}")
    print(f"build_s={build_s:.1f}")
    if not args.durations:
        print(f"duration_s={args.duration:g}")
        print(f"decode_steps={steps}")
    print(f"weight_bytes_per_step={weight_bytes}")
    print(f"huge_page_bytes={huge_page_bytes}")
    print(f"bandwidth_gbs={bandwidth:.1f}")
    print(f"floor_step_ms={floor_step_s * 1000:.3f}")

    # (name, call, model): stock audiocraft on its weights, jamgen's engine path on the engine's, and on the
    # CPU the engine taken apart: its path on audiocraft's kernels, and its loop alone (those kernels, stock's weights).
    engine_options = DecodeOptions(cpu_matmul=args.cpu_matmul)
    on_mkl = functools.partial(jamgen_call, options=DecodeOptions(cpu_matmul="mkl"))
    on_engine = functools.partial(jamgen_call, options=engine_options)
    paths = [("stock", stock_call, model), ("jamgen", on_engine, engine_model)]
    onednn = device.type == "cpu" and args.cpu_matmul == "onednn"
    # With --durations the others are left out (an hour more on a CPU).
    if not args.durations:
        if onednn and engine_model is not model:
            paths.append(("jamgen_mkl", on_mkl, engine_model))
        if onednn or engine_model is not model:
            paths.append(("jamgen_loop", on_mkl, model))
    # The paths on audiocraft's kernels (all of them on CUDA, where oneDNN is not used) make stock's audio exactly.
    exact = {name for name, _, _ in paths if name != "stock" and (name != "jamgen" or not onednn)}
    # Warm-up: first-call costs (kernels, allocator) are not what is measured.
    for _, call, on in paths:
        call(on, 1, min(args.duration, 0.2))
    if args.durations:
        print(lengths(args, model, paths, clocks, device, exact))
        return 0
    stock_b1: float | None = None
    headline: tuple[str, float] | None = None
    for batch in batches:
        timings, identical, outputs = measure(paths, clocks, batch, args.duration, args.repeats, device, exact)
        prefix = f"b{batch}"
        for name, timing in timings.items():
            decode_s = timing.total_s - timing.codec_s
            print(f"{prefix}_{name}_s={timing.total_s:.3f}")
            print(f"{prefix}_{name}_codec_s={timing.codec_s:.3f}")
            print(f"{prefix}_{name}_steps_per_s={steps / decode_s:.2f}")
            print(f"{prefix}_{name}_x_realtime={batch * args.duration / timing.total_s:.3f}")
            print(f"{prefix}_{name}_floor_fraction={floor_step_s / (decode_s / steps):.3f}")
        print(f"{prefix}_identical_tokens={int(identical)}")
        stock, jamgen = timings["stock"], timings["jamgen"]
        if batch == 1:
            stock_b1 = stock.total_s
        elif stock_b1 is not None:
            print(f"{prefix}_aggregate_vs_stock_sequential={batch * stock_b1 / jamgen.total_s:.2f}")
        if "jamgen_loop" in timings:
            print(f"{prefix}_jamgen_loop_vs_stock={stock.total_s / timings['jamgen_loop'].total_s:.3f}")
        # The engine's own kernels against audiocraft's on the same weights, then huge pages on the same kernels.
        same_weights = timings.get("jamgen_mkl") or (timings.get("jamgen_loop") if engine_model is model else None)
        if onednn and same_weights is not None:
            print(f"{prefix}_onednn_speedup={same_weights.total_s / jamgen.total_s:.3f}")
        if engine_model is not model and "jamgen_loop" in timings:
            on_huge_pages = timings.get("jamgen_mkl", jamgen)
            print(f"{prefix}_huge_pages_speedup={timings['jamgen_loop'].total_s / on_huge_pages.total_s:.3f}")
        decode_ratio = (stock.total_s - stock.codec_s) / (jamgen.total_s - jamgen.codec_s)
        print(f"{prefix}_jamgen_vs_stock_decode={decode_ratio:.3f}")
        ratio = stock.total_s / jamgen.total_s
        print(f"{prefix}_jamgen_vs_stock={ratio:.3f}")
        if args.ablation and headline is None:
            for variant, step_class in ABLATIONS.items():
                undone = Timing()
                for _ in range(args.repeats):
                    with _swapped(decode, "_StepModel", step_class):
                        total, codec, audio = timed(
                            functools.partial(jamgen_call, engine_model, batch, args.duration, engine_options),
                            clocks[id(engine_model)],
                            device,
                        )
                    undone.add(total, codec)
                    # The same arithmetic as the engine path, done another way: its audio exactly.
                    identical = identical and np.array_equal(audio, outputs["jamgen"])
                print(f"{prefix}_ablation_{variant}_s={undone.total_s:.3f}")
                print(f"{prefix}_ablation_{variant}_slowdown={undone.total_s / jamgen.total_s:.3f}")
            print(f"{prefix}_ablation_identical_tokens={int(identical)}")
        headline = headline or (f"jamgen_vs_stock_b{batch}", ratio)
    assert headline is not None
    print(f"{headline[0]}={headline[1]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
