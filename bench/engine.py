"""Decoding speed: stock audiocraft against jamgen's engine path, side by side in one process.

Builds a MusicGen of a released size with random weights (``bot/engine/worker/sizes.py``:
audiocraft's own configuration and builders, the real codec shape, no download) and times, on the
same model object, alternating:

* ``stock``: audiocraft's ``MusicGen.generate`` (its ``LMModel.generate`` loop);
* ``jamgen``: the engine's generate call, ``bot.engine.worker.generate.run_call`` (jamgen's decode loop).

Both decode greedily (use_sampling=False) with classifier-free guidance (cfg 3), one distinct
prompt per row, and must give identical audio (identical tokens). Prints ``name=value`` lines:
per batch size B, seconds per call (best of ``--repeats``), decoding steps per second (the call
minus the codec), × realtime (B × duration ÷ seconds), the fraction of the memory-bandwidth floor
(LM weight bytes per step ÷ measured copy bandwidth, against the measured time per step), the
speed-up, and for B > 1 the aggregate throughput against stock one take at a time. The headline
``jamgen_vs_stock_b<first batch>`` comes last.

    python bench/engine.py --quick
    python bench/engine.py --model-size small --duration 2 --batch 1 --device cpu
    python bench/engine.py --model-size medium --duration 10 --batch 1,4,8,16 --device cuda
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

from bot.engine.types import GenerationRequest, Mode, SamplingParams
from bot.engine.worker import decode
from bot.engine.worker.generate import count_decode_steps, extend_stride, run_call
from bot.engine.worker.models import seed_everything
from bot.engine.worker.sizes import (
    MODEL_SHAPES,
    build_sized_model,
    lm_parameter_bytes,
    memory_bandwidth_gbs,
)

SEED = 1234
CFG = 3.0
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


def jamgen_call(model, batch: int, duration: float) -> np.ndarray:
    """The engine's generate call with the same settings."""
    sampling = SamplingParams(use_sampling=False, cfg_coef=CFG)
    texts = prompts(batch)
    rows = [GenerationRequest(f"bench-{i}", "bench", Mode.TEXT, t, duration, sampling) for i, t in enumerate(texts)]
    output = run_call(model, rows, SEED, lambda done, total: None)
    return np.stack(output.audio)


class _CrossEachStep(decode._StepModel):
    """Ablation: the cross-attention keys and values recomputed at every step, as audiocraft does."""

    def __init__(self, lm, prefill_state, capacity, cross_source, static) -> None:
        super().__init__(lm, prefill_state, capacity, cross_source, static)
        self.cross_source = cross_source

    def _cross_attention(self, state, query):
        self._prepare_cross(state, state.layer.cross_attention, self.cross_source)
        return super()._cross_attention(state, query)


class _GrowingCache(decode._StepModel):
    """Ablation: keys and values concatenated onto the past at every step (new tensors), as audiocraft does."""

    def _self_attention(self, state, x, mask):
        attn = state.layer.self_attn
        time_dim = decode._time_dim(attn)
        projected = torch.nn.functional.linear(x, attn.in_proj_weight, attn.in_proj_bias)
        b, t, _ = projected.shape
        packed = projected.view(b, t, 3, attn.num_heads, -1)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-size", choices=sorted(MODEL_SHAPES), default="small")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds of audio per take (default 2)")
    parser.add_argument("--batch", default=None, help="batch sizes, comma-separated (default 1,4,8; 1,4,8,16 on CUDA)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default 0: all cores)")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per path and batch; the best counts")
    parser.add_argument("--quick", action="store_true", help="tiny model, 1 s, batches 1 and 4 (seconds)")
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="also time jamgen's path with each improvement undone (at the first batch size)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.model_size, args.duration, args.batch = "tiny", 1.0, args.batch or "1,4"
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
    clock = CodecClock(model)
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
    print(f"duration_s={args.duration:g}")
    print(f"decode_steps={steps}")
    print(f"weight_bytes_per_step={weight_bytes}")
    print(f"bandwidth_gbs={bandwidth:.1f}")
    print(f"floor_step_ms={floor_step_s * 1000:.3f}")

    # Warm-up: first-call costs (kernels, allocator) are not what is measured.
    for call in (stock_call, jamgen_call):
        call(model, 1, min(args.duration, 0.2))

    stock_b1: float | None = None
    headline: tuple[str, float] | None = None
    for batch in batches:
        stock, jamgen = Timing(), Timing()
        identical = True
        for repeat in range(args.repeats):
            # Alternate who goes first, so that neither always runs on a warmer (or busier) machine.
            order = [("stock", stock_call), ("jamgen", jamgen_call)]
            outputs: dict[str, np.ndarray] = {}
            for name, call in order if repeat % 2 == 0 else order[::-1]:
                total, codec, audio = timed(functools.partial(call, model, batch, args.duration), clock, device)
                (stock if name == "stock" else jamgen).add(total, codec)
                outputs[name] = audio
            identical = identical and np.array_equal(outputs["stock"], outputs["jamgen"])
        prefix = f"b{batch}"
        for name, timing in (("stock", stock), ("jamgen", jamgen)):
            decode_s = timing.total_s - timing.codec_s
            print(f"{prefix}_{name}_s={timing.total_s:.3f}")
            print(f"{prefix}_{name}_codec_s={timing.codec_s:.3f}")
            print(f"{prefix}_{name}_steps_per_s={steps / decode_s:.2f}")
            print(f"{prefix}_{name}_x_realtime={batch * args.duration / timing.total_s:.3f}")
            print(f"{prefix}_{name}_floor_fraction={floor_step_s / (decode_s / steps):.3f}")
        print(f"{prefix}_identical_tokens={int(identical)}")
        if batch == 1:
            stock_b1 = stock.total_s
        elif stock_b1 is not None:
            print(f"{prefix}_aggregate_vs_stock_sequential={batch * stock_b1 / jamgen.total_s:.2f}")
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
                            functools.partial(jamgen_call, model, batch, args.duration), clock, device
                        )
                    undone.add(total, codec)
                    identical = identical and np.array_equal(audio, outputs["stock"])
                print(f"{prefix}_ablation_{variant}_s={undone.total_s:.3f}")
                print(f"{prefix}_ablation_{variant}_slowdown={undone.total_s / jamgen.total_s:.3f}")
            print(f"{prefix}_ablation_identical_tokens={int(identical)}")
        headline = headline or (f"jamgen_vs_stock_b{batch}", ratio)
    assert headline is not None
    print(f"{headline[0]}={headline[1]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
