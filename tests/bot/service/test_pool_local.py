"""Two real local engines (worker processes, debug models, CPU) behind the real scheduler and store.

``JAMGEN_ENGINES=2`` builds the pool these tests use. Every decoding step sleeps a little (the
test-only ``slow`` fault with an empty prefix matches every request), so batches last long enough
to overlap, to be watched, and to be killed in the middle.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
import pytest_asyncio

from bot.config import Settings
from bot.engine.backends import engine_from_settings
from bot.engine.client import EngineClient
from bot.engine.pool import EnginePool
from bot.engine.protocol import EngineFaults
from bot.engine.types import Engine, EngineHealth, GenerationRequest, Mode, Progress, ProgressCallback
from bot.service import JamRequest, JobState
from tests.harness import build_harness

pytestmark = pytest.mark.asyncio(loop_scope="module")

SLOW = EngineFaults(slow_prefix="", slow_step_s=0.02)
ENV = {
    "JAMGEN_ENGINES": "2",
    "JAMGEN_DEVICE": "cpu",
    "JAMGEN_DEBUG_MODELS": "true",
    "JAMGEN_WARMUP": "false",
    "JAMGEN_CPU_THREADS": "1",
    "JAMGEN_MAX_BATCH": "4",
    "JAMGEN_LOG_LEVEL": "WARNING",
}


@dataclass
class Watched:
    """An engine that writes what it does into a shared, ordered event list."""

    name: str
    inner: Engine
    events: list[tuple[str, str, str]] = field(default_factory=list)

    async def generate(self, batch: Sequence[GenerationRequest], on_progress: ProgressCallback | None = None) -> list:
        first = True

        def watch(p: Progress) -> None:
            nonlocal first
            if first:
                first = False
                self.events.append(("step", self.name, batch[0].model))
            if on_progress is not None:
                on_progress(p)  # the service's callback is synchronous

        results = await self.inner.generate(batch, watch)
        self.events.append(("done", self.name, batch[0].model))
        return results

    async def cancel(self, request_id: str) -> None:
        await self.inner.cancel(request_id)

    async def health(self) -> EngineHealth:
        return await self.inner.health()

    async def close(self) -> None:
        await self.inner.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def clients():
    pool = engine_from_settings(Settings.from_env(ENV), faults=SLOW)
    assert isinstance(pool, EnginePool)
    assert pool.capacity == 2
    engines = [member.engine for member in pool.members]
    await pool.start()
    yield engines
    await pool.close()


def watched_pool(clients: list[EngineClient]) -> tuple[EnginePool, list[tuple[str, str, str]]]:
    events: list[tuple[str, str, str]] = []
    members = [(Watched(f"engine{i + 1}", client, events), f"local child {i + 1}") for i, client in enumerate(clients)]
    return EnginePool(members), events


def request(user: int, model: str, prompt: str = "lofi", duration: int = 1) -> JamRequest:
    return JamRequest(
        user_id=user, guild_id=7, channel_id=8, mode=Mode.TEXT, prompt=prompt, model=model, duration=duration
    )


async def test_two_batches_of_different_models_run_at_once(tmp_path, clients):
    pool, events = watched_pool(clients)
    h = await build_harness(tmp_path, engine=pool, max_batch=4)
    await h.service.start()
    try:
        # 2 s of audio: 100 steps of at least 0.02 s each, far longer than loading a debug model.
        a = await h.service.submit(request(1, "debug", duration=2))
        b = await h.service.submit(request(2, "debug-stereo", duration=2))
        await h.wait_settled(2, timeout=120)
        assert sorted(h.deliverer.delivered_ids()) == sorted([a.job_id, b.job_id])
        # Both batches took a decoding step before either finished: they ran at the same time.
        assert [kind for kind, _, _ in events] == ["step", "step", "done", "done"], events
        assert {(name, model) for kind, name, model in events if kind == "step"} == {
            ("engine1", "debug"),
            ("engine2", "debug-stereo"),
        }
    finally:
        await h.service.close()
        await h.store.close()


async def test_batches_return_to_the_engine_that_holds_their_model(tmp_path, clients):
    pool, events = watched_pool(clients)
    h = await build_harness(tmp_path, engine=pool)
    await h.service.start()
    try:
        # Round-robin would put the second stereo batch on the other engine; always-the-first-free would
        # put every batch on one engine: only model affinity passes.
        for number, model in enumerate(["debug-stereo", "debug-stereo", "debug", "debug-stereo", "debug"]):
            await h.service.submit(request(number, model, prompt=f"take {number}"))
            await h.wait_settled(number + 1, timeout=120)  # one at a time: every engine is free each time
        placed = [(name, model) for kind, name, model in events if kind == "done"]
        plain = {name for name, model in placed if model == "debug"}
        stereo = {name for name, model in placed if model == "debug-stereo"}
        assert len(plain) == 1, placed
        assert len(stereo) == 1, placed
        assert plain != stereo, placed
        assert all(m.health.alive for m in await pool.members_health())
    finally:
        await h.service.close()
        await h.store.close()


async def test_an_engine_killed_mid_batch_requeues_its_jobs_delivered_once(tmp_path, clients):
    pool, events = watched_pool(clients)
    h = await build_harness(tmp_path, engine=pool, max_attempts=2)
    await h.service.start()
    try:
        victim = await h.service.submit(request(1, "debug", prompt="to be killed"))
        other = await h.service.submit(request(2, "debug-stereo", prompt="keeps going"))
        for _ in range(2000):
            if any(kind == "step" and model == "debug" for kind, _, model in events):
                break
            await asyncio.sleep(0.01)
        name = next(name for kind, name, model in events if kind == "step" and model == "debug")
        client = clients[int(name.removeprefix("engine")) - 1]
        restarts = client.restarts
        os.kill(client.worker_pid, signal.SIGKILL)  # type: ignore[arg-type]
        await h.wait_settled(2, timeout=180)
        job = await h.store.get_job(victim.job_id)
        assert job.state == JobState.DELIVERED
        assert job.attempts == 2
        assert (await h.store.get_job(other.job_id)).state == JobState.DELIVERED
        assert sorted(h.deliverer.delivered_ids()) == sorted([victim.job_id, other.job_id])  # each once
        ledger = await h.store.job_ledger(victim.job_id)
        assert [entry.kind for entry in ledger] == ["debit"]  # charged once, never refunded or charged again
        assert client.restarts == restarts + 1
    finally:
        await h.service.close()
        await h.store.close()
