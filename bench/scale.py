"""Scaling out: real throughput of 1 and 2 local engines, and one scheduler feeding 64 simulated GPUs.

Part 1 (real): two local engine workers (``EngineClient``, debug model, CPU, one torch thread
each) start once; then, in alternating rounds, the same takes run through a pool of one engine
and through a pool of both (``bot/engine/pool.py``, the pool the service uses). The aggregate
takes per minute of each side and their ratio (``engines2_vs_1``, the headline, printed last).
On a machine with fewer free cores than engines the ratio says so.

Part 2 (simulated GPUs, real scheduler and store): a backlog of ``--jobs`` jobs from ``--members``
members over several models and lengths is written to a fresh SQLite store (the real ``JobStore``,
charged as the service charges them); the real ``JamService`` recovers them into its fair queue and
dispatches batches to a pool of ``--engines`` simulated engines. An engine sleeps ``steps × step
time`` of its model (the estimates below, spread 2 % from batch to batch), compressed
``--time-scale`` times (10: the scheduler and the store do ten times the work per second that 64
real GPUs would ask of them). Once every backlog member has had a first job start, ``--newcomers``
members (10 % of the members, part of the job count) arrive one by one through ``JamService.submit``
while the backlog is worked off. Rendering is skipped (it runs beside the engines, not in the
dispatch path). Reported:

* ``sim_utilisation``: the engines' busy share while jobs wait (goal >= 0.95);
* ``sim_dispatch_ms_p50/p99``: an engine's idle gap between two of its batches while jobs wait, real
  milliseconds: the scheduler's whole cost of handing out a batch (choosing it, the store's write,
  building the requests) (goal p99 < 5 ms);
* ``sim_newcomer_first_wait_max_batches``: the longest wait of a newcomer's first job, in mean batch
  durations (goal <= 1: the fairness one engine gives).

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
from collections.abc import Callable, Sequence
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
from bot.service.requests import JamRequest
from bot.store import Job, JobStore, NewJob

# Seconds per decoding step at batch 1 (estimates; see the module docstring).
STEP_S = {"small": 0.006, "medium": 0.0055 + 0.004, "large": 0.0033 * 3.3 + 0.004, "stereo-medium": 0.010}
MODEL_SHARE = {"small": 0.55, "medium": 0.25, "large": 0.1, "stereo-medium": 0.1}
DURATIONS = (5, 10, 15, 30)
BATCH_STEP_FACTOR = 1.1
BATCH_TIME_SPREAD = 0.02  # a batch's time varies by about 2 % (log-normal)
NEWCOMER_IDS = 10**9  # user ids of members who arrive during the run


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
class SimRecord:
    """What the simulated engines ran, shared by all of them (so waiting on it costs no polling)."""

    first_round: set[str]  # the first job of every backlog member, until it starts
    runs: list[tuple[int, float, float, list[str]]] = field(default_factory=list)  # engine, start, end, jobs
    started: dict[str, float] = field(default_factory=dict)
    finished_takes: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def started_at_least(self, count: float) -> Callable[[], bool]:
        return lambda: len(self.started) >= count

    async def until(self, ready: Callable[[], bool]) -> None:
        while not ready():
            self.changed.clear()
            await self.changed.wait()


@dataclass
class SimEngine:
    """Sleeps as long as a GPU would take (compressed); records when it ran what."""

    number: int
    time_scale: float
    record: SimRecord

    def __post_init__(self) -> None:
        self.rng = random.Random(self.number)

    async def generate(
        self, batch: Sequence[GenerationRequest], on_progress: ProgressCallback | None = None
    ) -> list[GenerationResult | EngineError]:
        start = time.perf_counter()
        for request in batch:
            self.record.started.setdefault(request.job_id, start)
            self.record.first_round.discard(request.job_id)
        self.record.changed.set()
        spec = get_model_spec(batch[0].model)
        steps = int(batch[0].duration * spec.frame_rate) + 3
        step = STEP_S[batch[0].model] * (BATCH_STEP_FACTOR if len(batch) > 1 else 1.0)
        # Real batches of one shape do not all take the same time to the microsecond (clocks,
        # transfers, the codec): without this, batches started together would finish together forever.
        await asyncio.sleep(steps * step * self.rng.lognormvariate(0.0, BATCH_TIME_SPREAD) / self.time_scale)
        elapsed = time.perf_counter() - start
        self.record.runs.append((self.number, start, time.perf_counter(), [r.job_id for r in batch]))
        self.record.finished_takes += len(batch)
        self.record.changed.set()
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


def random_recipe(rng: random.Random) -> tuple[str, int]:
    models = list(MODEL_SHARE)
    return rng.choices(models, weights=[MODEL_SHARE[m] for m in models])[0], rng.choice(DURATIONS)


async def newcomers_arrive(
    service: JamService, record: SimRecord, count: int, backlog: int, rng: random.Random
) -> dict[str, float]:
    """Members new to the queue, each with a first job, arriving while the backlog is worked off.

    They come after the first round (every backlog member has had a job start): members who have
    had nothing yet are equals, and a newcomer rightly queues behind those who came before. Then the
    i-th arrives once i/(count+1) of the rest of the backlog (to 90 %) has started, plus a random
    fraction of a batch, through the service's own ``submit``. Returns job id → when it was submitted.
    """
    await record.until(lambda: not record.first_round)
    after_first_round = len(record.started)
    submitted: dict[str, float] = {}
    for index in range(1, count + 1):
        need = after_first_round + (backlog * 0.9 - after_first_round) * index / (count + 1)
        await record.until(record.started_at_least(need))
        await asyncio.sleep(rng.random() * 0.01)
        model, duration = random_recipe(rng)
        request = JamRequest(
            user_id=NEWCOMER_IDS + index,
            guild_id=1,
            channel_id=1,
            mode=Mode.TEXT,
            prompt="x",
            model=model,
            duration=duration,
        )
        asked = time.perf_counter()  # the job may start before submit returns
        receipt = await service.submit(request)
        submitted[receipt.job_id] = asked
    return submitted


async def simulate(
    jobs: int, members: int, newcomers: int, engines: int, time_scale: float
) -> tuple[dict[str, float], SimRecord]:
    """The simulation's figures, and what the engines ran (for the tests)."""
    rng = random.Random(21)
    backlog = jobs - newcomers
    with tempfile.TemporaryDirectory() as folder:
        store = await JobStore.open(Path(folder) / "jamgen.db", default_budget=1e9)
        first_jobs: set[str] = set()
        for index in range(backlog):
            model, duration = random_recipe(rng)
            params = {"duration": duration, "top_k": 250, "top_p": 0.0, "temperature": 1.0}
            params |= {"cfg_coef": 3.0, "use_sampling": True}
            # Every backlog member has a job; the rest are spread over them at random.
            user = rng.randrange(members - newcomers) if index >= members - newcomers else index
            new = NewJob(user_id=user, guild_id=1, channel_id=1, mode="text", model=model, prompt="x", params=params)
            job = await store.submit_job(new, cost=duration, default_budget=1e9)
            if index < members - newcomers:
                first_jobs.add(job.id)
        record = SimRecord(first_jobs)
        sims = [SimEngine(number, time_scale, record) for number in range(engines)]
        pool = EnginePool([(e, f"sim {e.number}") for e in sims])
        config = ServiceConfig(
            data_dir=Path(folder) / "data",
            max_batch=8,
            progress_interval=60.0,
            max_queue=jobs,
            max_duration=max(DURATIONS),
            daily_budget_seconds=10**9,
            max_pending_per_guild=jobs,
            enabled_models=tuple(MODEL_SHARE),
        )
        service = JamService(config, store, pool)
        skip = NoDelivery()
        service.deliveries.render_and_deliver = skip.render_and_deliver  # type: ignore[method-assign]
        await service.start(skip)
        submitted = await newcomers_arrive(service, record, newcomers, backlog, rng)
        await record.until(lambda: record.finished_takes >= jobs)
        await service.close()
        await store.close()
    runs = sorted(record.runs, key=lambda run: run[1])
    first, last_start = runs[0][1], runs[-1][1]
    # While jobs wait (up to the last start): how busy the engines were, and each engine's idle
    # gap between two of its batches, which is the scheduler's whole cost of handing out a batch.
    busy = sum(min(end, last_start) - start for _, start, end, _ in runs)
    gaps = []
    for number in range(engines):
        mine = [run for run in runs if run[0] == number]
        gaps += [b[1] - a[2] for a, b in itertools.pairwise(mine) if b[1] <= last_start]
    mean_batch_s = statistics.mean(end - start for _, start, end, _ in runs)
    waits = [record.started[job_id] - at for job_id, at in submitted.items()]
    figures = {
        "sim_jobs": jobs,
        "sim_members": members,
        "sim_newcomers": newcomers,
        "sim_engines": engines,
        "sim_time_scale": time_scale,
        "sim_batches": len(runs),
        "sim_takes_per_batch": jobs / len(runs),
        "sim_mean_batch_s_at_gpu_speed": mean_batch_s * time_scale,
        "sim_dispatch_ms_p50": statistics.median(gaps) * 1000,
        "sim_dispatch_ms_p99": float(np.percentile(gaps, 99)) * 1000,
        "sim_newcomer_first_wait_p50_batches": statistics.median(waits) / mean_batch_s,
        "sim_newcomer_first_wait_max_batches": max(waits) / mean_batch_s,
        "sim_utilisation": busy / (engines * (last_start - first)),
    }
    return figures, record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: under a minute")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--members", type=int, default=None)
    parser.add_argument("--newcomers", type=int, default=None, help="members who arrive during the run (10 %%)")
    parser.add_argument("--engines", type=int, default=64)
    parser.add_argument("--time-scale", type=float, default=10.0, help="simulated seconds per real second")
    args = parser.parse_args()
    jobs = args.jobs or (1500 if args.quick else 10_000)
    members = args.members or (300 if args.quick else 2000)
    newcomers = args.newcomers if args.newcomers is not None else members // 10
    logging.getLogger("jamgen").setLevel(logging.WARNING)  # a line per job state would be thousands
    began = time.perf_counter()
    real = asyncio.run(real_engines(duration=4.0, takes=6 if args.quick else 16, rounds=2 if args.quick else 3))
    sim, _ = asyncio.run(simulate(jobs, members, newcomers, args.engines, args.time_scale))
    for name, value in sim.items():
        print(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}")
    print(f"bench_seconds={time.perf_counter() - began:.0f}")
    for name, value in real.items():
        print(f"{name}={value:.3g}")


if __name__ == "__main__":
    main()
