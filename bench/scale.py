"""Scaling out: real throughput of 1 and 2 local engines, and one scheduler feeding 64 simulated GPUs.

Part 1 (real): two local engine workers (``EngineClient``, debug model, CPU, one torch thread
each) start once; then, in alternating rounds, the same takes run through a pool of one engine
and through a pool of both (``bot/engine/pool.py``, the pool the service uses). The aggregate
takes per minute of each side and their ratio (``engines2_vs_1``, the headline, printed last).
On a machine with fewer free cores than engines the ratio says so.

Part 2 (simulated GPUs, real scheduler and store): ``--jobs`` jobs from ``--members`` members over
several models and lengths are written to a fresh SQLite store (the real ``JobStore``, charged as
the service charges them); the real ``JamService`` recovers them into its fair queue and dispatches
batches to a pool of ``--engines`` simulated engines. An engine sleeps ``steps × step time`` of its
model (the estimates below), compressed ``--time-scale`` times. Rendering is skipped (it runs
beside the engines, not in the dispatch path). Reported: engine utilisation, dispatch time (an
engine's idle gap between two batches while jobs wait, real milliseconds: the scheduler's own
cost per batch: store writes and request building), the longest wait of any member for their
first job (in batches started before it, and as a share of the run), and the batches per second
the scheduler handed out against what 64 real GPUs would ask of it (``gpus64_predicted_utilisation``;
meaningful when the compressed run is scheduler-bound, i.e. ``sim_utilisation`` is below 1).

    python bench/scale.py --quick    # under a minute: 1,500 jobs, 300 members, 64 engines
    python bench/scale.py            # 10,000 jobs from 2,000 members

Step times: docs/PERFORMANCE.md has no measured GPU numbers yet (no GPU was lent); these are
memory-bound estimates (float16 weights read once per step at ~2 TB/s plus ~4 ms of per-step
overhead) for an H100-class GPU, batch 1; batches of up to 8 are taken as costing 10 % more per step.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bot.engine.client import EngineClient
from bot.engine.config import EngineConfig
from bot.engine.pool import EnginePool
from bot.engine.registry import get_model_spec
from bot.engine.types import (
    EngineError,
    EngineHealth,
    GenerationRequest,
    GenerationResult,
    Mode,
    ProgressCallback,
)
from bot.service.jam import JamService, ServiceConfig
from bot.store import Job, JobStore, NewJob

# Seconds per decoding step at batch 1 (estimates; see the module docstring).
STEP_S = {"small": 0.006, "medium": 0.0055 + 0.004, "large": 0.0033 * 3.3 + 0.004, "stereo-medium": 0.010}
MODEL_SHARE = {"small": 0.55, "medium": 0.25, "large": 0.1, "stereo-medium": 0.1}
DURATIONS = (5, 10, 15, 30)
BATCH_STEP_FACTOR = 1.1


# ---------------------------------------------------------------- part 1: real engines


async def real_engines(duration: float, takes: int, rounds: int) -> dict[str, float]:
    config = EngineConfig(device="cpu", cpu_threads=1, huge_pages=False, log_level="WARNING", max_batch=1)
    clients = [EngineClient(config) for _ in range(2)]
    await asyncio.gather(*(c.start() for c in clients))
    try:

        def batch(tag: str) -> list[GenerationRequest]:
            return [GenerationRequest(tag, i, "debug", Mode.TEXT, "bench", duration) for i in range(1)]

        # Warm both (model load) before timing.
        await asyncio.gather(*(c.generate(batch(f"warm{i}")) for i, c in enumerate(clients)))
        best = {1: float("inf"), 2: float("inf")}
        for round_index in range(rounds):
            for count in (1, 2) if round_index % 2 == 0 else (2, 1):
                pool = EnginePool([(c, f"local {i}") for i, c in enumerate(clients[:count])])
                start = time.perf_counter()
                await asyncio.gather(*(pool.generate(batch(f"r{round_index}e{count}t{t}")) for t in range(takes)))
                best[count] = min(best[count], time.perf_counter() - start)
    finally:
        await asyncio.gather(*(c.close() for c in clients))
    return {
        "engines1_takes_per_min": takes / best[1] * 60,
        "engines2_takes_per_min": takes / best[2] * 60,
        "engines2_vs_1": best[1] / best[2],
    }


# ---------------------------------------------------------------- part 2: simulated GPUs


@dataclass
class SimEngine:
    """Sleeps as long as a GPU would take (compressed); records when it ran what."""

    time_scale: float
    runs: list[tuple[float, float, list[str]]] = field(default_factory=list)

    async def generate(
        self, batch: Sequence[GenerationRequest], on_progress: ProgressCallback | None = None
    ) -> list[GenerationResult | EngineError]:
        start = time.perf_counter()
        spec = get_model_spec(batch[0].model)
        steps = int(batch[0].duration * spec.frame_rate) + 3
        step = STEP_S[batch[0].model] * (BATCH_STEP_FACTOR if len(batch) > 1 else 1.0)
        await asyncio.sleep(steps * step / self.time_scale)
        elapsed = time.perf_counter() - start
        self.runs.append((start, time.perf_counter(), [r.request_id for r in batch]))
        audio = np.zeros((1, 1), dtype=np.float32)
        return [GenerationResult(r.request_id, audio, spec.sample_rate, 1, elapsed, steps, len(batch)) for r in batch]

    async def cancel(self, request_id: str) -> None:
        return None

    async def health(self) -> EngineHealth:
        return EngineHealth(True, "simulated", (), 0, None)

    async def close(self) -> None:
        return None


class NoDelivery:
    """Rendering and delivery are not on the dispatch path being measured: finished batches stop here."""

    async def render_and_deliver(self, job: Job, results: list[GenerationResult]) -> None:
        return None

    async def deliver(self, delivery: object) -> list[int]:
        return []

    async def notify_failure(self, job: Job, message: str) -> None:
        return None


async def simulate(jobs: int, members: int, engines: int, time_scale: float) -> dict[str, float]:
    logging.getLogger("jamgen").setLevel(logging.WARNING)
    rng = random.Random(21)
    with tempfile.TemporaryDirectory() as folder:
        store = await JobStore.open(Path(folder) / "jamgen.db", default_budget=1e9)
        owner: dict[str, int] = {}
        models = list(MODEL_SHARE)
        for index in range(jobs):
            model = rng.choices(models, weights=[MODEL_SHARE[m] for m in models])[0]
            duration = rng.choice(DURATIONS)
            params = {"duration": duration, "top_k": 250, "top_p": 0.0, "temperature": 1.0}
            params |= {"cfg_coef": 3.0, "use_sampling": True}
            user = rng.randrange(members) if index >= members else index  # every member has a job
            new = NewJob(user_id=user, guild_id=1, channel_id=1, mode="text", model=model, prompt="x", params=params)
            job = await store.submit_job(new, cost=duration, default_budget=1e9)
            owner[job.id] = user
        sims = [SimEngine(time_scale) for _ in range(engines)]
        pool = EnginePool([(e, f"sim {i}") for i, e in enumerate(sims)])
        config = ServiceConfig(data_dir=Path(folder) / "data", max_batch=8, progress_interval=60.0, max_queue=jobs)
        service = JamService(config, store, pool)
        skip = NoDelivery()
        service.deliveries.render_and_deliver = skip.render_and_deliver  # type: ignore[method-assign]
        await service.start(skip)
        while sum(len(ids) for e in sims for _, _, ids in e.runs) < jobs:
            await asyncio.sleep(0.05)
        finished = time.perf_counter()
        await service.close()
        await store.close()
    runs = sorted((start, end, ids) for e in sims for start, end, ids in e.runs)
    last_start = runs[-1][0]
    gaps = []
    for engine in sims:
        mine = sorted(engine.runs)
        gaps += [b[0] - a[1] for a, b in itertools.pairwise(mine) if b[0] <= last_start]
    busy = sum(end - start for start, end, _ in runs)
    first_batch: dict[int, int] = {}
    for number, (_, _, ids) in enumerate(runs):
        for request_id in ids:
            first_batch.setdefault(owner[request_id.split(":")[0]], number)
    first_wait = max(runs[n][0] for n in first_batch.values()) - runs[0][0]
    makespan = finished - runs[0][0]
    mean_batch_gpu_s = statistics.mean(end - start for start, end, _ in runs) * time_scale
    dispatched = len(runs) / makespan
    needed = engines / mean_batch_gpu_s
    return {
        "sim_jobs": jobs,
        "sim_members": members,
        "sim_engines": engines,
        "sim_time_scale": time_scale,
        "sim_batches": len(runs),
        "sim_takes_per_batch": jobs / len(runs),
        "sim_utilisation": busy / (engines * makespan),
        "sim_dispatch_ms_p50": statistics.median(gaps) * 1000,
        "sim_dispatch_ms_p99": float(np.percentile(gaps, 99)) * 1000,
        "sim_longest_first_job_wait_batches": max(first_batch.values()),
        "sim_longest_first_job_wait_share": first_wait / makespan,
        "sim_mean_batch_s_at_gpu_speed": mean_batch_gpu_s,
        "scheduler_batches_per_s": dispatched,
        "gpus64_need_batches_per_s": needed,
        "gpus64_predicted_utilisation": min(1.0, dispatched / needed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: under a minute")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--members", type=int, default=None)
    parser.add_argument("--engines", type=int, default=64)
    parser.add_argument("--time-scale", type=float, default=None, help="simulated seconds per real second")
    args = parser.parse_args()
    jobs = args.jobs or (1500 if args.quick else 10_000)
    members = args.members or (300 if args.quick else 2000)
    scale = args.time_scale or (400.0 if args.quick else 100.0)
    began = time.perf_counter()
    real = asyncio.run(real_engines(duration=4.0, takes=6 if args.quick else 16, rounds=2 if args.quick else 3))
    sim = asyncio.run(simulate(jobs, members, args.engines, scale))
    for name, value in sim.items():
        print(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}")
    print(f"bench_seconds={time.perf_counter() - began:.0f}")
    for name, value in real.items():
        print(f"{name}={value:.3g}")


if __name__ == "__main__":
    main()
