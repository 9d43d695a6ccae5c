"""How much the jam service itself costs: scheduling latency and event-loop lag.

Prints ``name=value`` lines, the headline last:

* ``submit_to_start_p50_ms`` / ``submit_to_start_p99_ms``: with 200 jobs queued in the store
  behind them, the time from calling ``JamService.submit`` to the engine receiving the job, when
  the engine is free (fake engine: this is pure service overhead: validation, the SQLite
  transaction, queueing, wake-up, ``mark_running``). Goal < 50 ms.
* ``loop_lag_p99_ms``: how late a 5 ms timer fires on the bot's event loop while the real engine
  (debug model, in its worker process) generates and the service renders MP3s. Goal < 20 ms.

Usage: ``python bench/overhead.py [--quick]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.engine.client import EngineClient
from bot.engine.config import EngineConfig
from bot.engine.types import Mode
from bot.service import JamRequest, JamService, ServiceConfig
from bot.store import JobStore
from tests.harness import FakeEngine, RecordingDeliverer


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


class StampingEngine(FakeEngine):
    """A fake engine that notes when each call started and ended."""

    def __init__(self) -> None:
        super().__init__(steps=1)
        self.spans: list[tuple[float, float, list[str]]] = []

    async def generate(self, batch, on_progress=None):  # type: ignore[override]
        began = time.perf_counter()
        out = await super().generate(batch, on_progress)
        self.spans.append((began, time.perf_counter(), [r.request_id.split(":")[0] for r in batch]))
        return out


def config(data_dir: Path, **overrides: object) -> ServiceConfig:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "default_model": "debug",
        "debug_models": True,
        "default_duration": 1,
        "max_pending_per_user": 10_000,
        "max_pending_per_guild": 10_000,
        "max_queue": 10_000,
        "daily_budget_seconds": 10_000_000,
        "progress_interval": 5.0,
    }
    values.update(overrides)
    return ServiceConfig(**values)  # type: ignore[arg-type]


def request(user: int, prompt: str, **fields: object) -> JamRequest:
    return JamRequest(user_id=user, guild_id=1, channel_id=2, mode=Mode.TEXT, prompt=prompt, **fields)  # type: ignore[arg-type]


async def submit_to_start(folder: Path, jobs: int) -> list[float]:
    """Per job: how long after it could have started (submitted, and the engine free) it reached the engine.

    200 jobs are submitted back to back while the fake engine works through them in batches, so
    the store and the queue hold up to 200 queued jobs; what is measured is the service's own
    overhead between the engine becoming free (or the job arriving) and the job reaching it.
    """
    store = await JobStore.open(folder / "bench.db")
    engine = StampingEngine()
    deliverer = RecordingDeliverer()
    service = JamService(config(folder / "data"), store, engine, deliverer)
    await service.start()
    submitted: dict[str, float] = {}
    try:
        for i in range(jobs):
            began = time.perf_counter()
            receipt = await service.submit(request(1 + i % 20, f"job {i}"))
            submitted[receipt.job_id] = began
        while len(deliverer.delivered) < jobs:
            await asyncio.sleep(0.01)
    finally:
        await service.close()
        await store.close()
    latencies = []
    previous_end = 0.0
    for began, ended, job_ids in sorted(engine.spans):
        for job_id in job_ids:
            latencies.append((began - max(submitted[job_id], previous_end)) * 1000)
        previous_end = ended
    return latencies


async def loop_lag(folder: Path, jobs: int) -> list[float]:
    """Timer lateness while the real engine (debug model) generates and the service renders."""
    store = await JobStore.open(folder / "lag.db")
    engine = EngineClient(EngineConfig(device="cpu", warmup_model="debug", allow_debug_models=True))
    await engine.start()
    deliverer = RecordingDeliverer()
    service = JamService(config(folder / "lag-data"), store, engine, deliverer)
    await service.start()
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(max(0.0, (time.perf_counter() - before - 0.005) * 1000))

    tick = asyncio.create_task(ticker())
    try:
        for i in range(jobs):
            await service.submit(request(i, f"lag {i}", duration=2))
        while len(deliverer.delivered) < jobs:
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await tick
        await service.close()
        await engine.close()
        await store.close()
    return lags


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer samples (under a minute)")
    args = parser.parse_args()
    samples = 50 if args.quick else 200
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        latencies = await submit_to_start(folder, jobs=samples)
        lags = await loop_lag(folder, jobs=4 if args.quick else 12)
    print(f"submit_to_start_samples={len(latencies)}")
    print(f"submit_to_start_p50_ms={statistics.median(latencies):.2f}")
    print(f"loop_lag_samples={len(lags)}")
    print(f"loop_lag_p50_ms={statistics.median(lags):.2f}")
    print(f"loop_lag_p99_ms={percentile(lags, 99):.2f}")
    print(f"submit_to_start_p99_ms={percentile(latencies, 99):.2f}")


if __name__ == "__main__":
    asyncio.run(main())
