from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.service import Delivery, JamService, ServiceConfig
from bot.store import JobState, JobStore
from tests.bot.service.fakes import FakeEngine


@dataclass
class RecordingDeliverer:
    """Records what would be posted; can fail a number of times or hold deliveries."""

    fail_times: int = 0
    hold: bool = False
    delivered: list[Delivery] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    attempts: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def deliver(self, delivery: Delivery) -> list[int]:
        self.attempts += 1
        if self.hold:
            await self.release.wait()
        if self.fail_times > 0:
            self.fail_times -= 1
            raise ConnectionError("discord is down")
        self.delivered.append(delivery)
        return [1000 + len(self.delivered)]

    async def notify_failure(self, job, message: str) -> None:
        self.failures.append((job.id, message))

    def delivered_ids(self) -> list[str]:
        return [d.job.id for d in self.delivered]


def make_config(data_dir: Path, **overrides) -> ServiceConfig:
    values = {
        "data_dir": data_dir,
        "max_batch": 4,
        "progress_interval": 0.0,
        "default_model": "debug",
        "debug_models": True,
        "default_duration": 1,
        "max_pending_per_user": 20,
        "max_pending_per_guild": 500,
        "daily_budget_seconds": 10_000,
        "shutdown_grace": 2.0,
        "delivery_retry_s": 5.0,
        "delivery_backoff_s": 0.01,
    }
    values.update(overrides)
    return ServiceConfig(**values)


async def final_jobs(store: JobStore) -> list:
    """Jobs that are delivered, failed or cancelled."""
    jobs = []
    for state in (JobState.DELIVERED, JobState.FAILED, JobState.CANCELLED):
        jobs += await store.jobs_in_state(state)
    return jobs


@dataclass
class Harness:
    """A real store and service around a fake engine and a recording deliverer."""

    tmp_path: Path
    store: JobStore
    engine: FakeEngine
    deliverer: RecordingDeliverer
    service: JamService

    async def wait_settled(self, count: int, timeout: float = 15.0) -> None:
        """Wait until ``count`` jobs are delivered, failed or cancelled."""

        async def settled() -> None:
            while True:
                if len(await final_jobs(self.store)) >= count:
                    return
                await asyncio.sleep(0.02)

        await asyncio.wait_for(settled(), timeout)


async def build_harness(tmp_path: Path, engine: FakeEngine | None = None, deliverer=None, **config) -> Harness:
    store = await JobStore.open(tmp_path / "jamgen.db")
    engine = engine or FakeEngine()
    deliverer = deliverer or RecordingDeliverer()
    service = JamService(make_config(tmp_path / "data", **config), store, engine, deliverer)
    return Harness(tmp_path, store, engine, deliverer, service)


@pytest.fixture
async def harness(tmp_path):
    h = await build_harness(tmp_path)
    await h.service.start()
    yield h
    h.engine.release.set()
    await h.service.close()
    await h.store.close()
