"""Every engine of a pool shows in the service's status, the heartbeat and `jamgen doctor --quick`."""

from __future__ import annotations

import time

import pytest

from bot.cli.doctor import quick_heartbeat
from bot.engine.pool import EnginePool
from bot.heartbeat import beat_once, heartbeat_path, write_heartbeat
from tests.harness import FakeEngine, build_harness


def two_engines() -> EnginePool:
    return EnginePool([(FakeEngine(steps=1), "local child 1 (GPU 0)"), (FakeEngine(steps=1), "local child 2 (GPU 1)")])


async def test_status_lists_every_engine_of_a_pool(tmp_path):
    h = await build_harness(tmp_path, engine=two_engines())
    await h.service.start()
    try:
        status = await h.service.status()
        assert [e.where for e in status.engines] == ["local child 1 (GPU 0)", "local child 2 (GPU 1)"]
        assert [e.busy for e in status.engines] == [False, False]
        assert status.engine.alive
    finally:
        await h.service.close()
        await h.store.close()


async def test_a_single_engine_shows_as_one_engine(tmp_path):
    h = await build_harness(tmp_path)
    await h.service.start()
    try:
        status = await h.service.status()
        assert len(status.engines) == 1
        assert status.engines[0].health == status.engine
    finally:
        await h.service.close()
        await h.store.close()


async def test_heartbeat_and_doctor_show_one_line_per_engine(tmp_path):
    pool = two_engines()
    beat = await beat_once(pool.health, interval_s=30, engines=pool.describe)
    assert len(beat.engines) == 2
    assert beat.engines[1].startswith("engine 2: local child 2 (GPU 1) · ")
    await write_heartbeat(heartbeat_path(tmp_path), beat)
    findings = quick_heartbeat(tmp_path, now=time.time())
    assert [f.area for f in findings] == ["bot", "engine", "engine"]
    assert "2 of 2 engines up" in findings[0].message
    assert "local child 1 (GPU 0)" in findings[1].message


async def test_doctor_names_the_engine_setup_and_the_running_engines(tmp_path):
    from bot.cli.doctor import check_engines
    from bot.config import Settings

    settings = Settings.from_env({"JAMGEN_ENGINES": "3", "JAMGEN_DATA_DIR": str(tmp_path)})
    assert [f.message for f in check_engines(settings)] == ["3 local engines; child i owns GPU i"]
    pool = two_engines()
    await write_heartbeat(heartbeat_path(tmp_path), await beat_once(pool.health, interval_s=30, engines=pool.describe))
    lines = [f.message for f in check_engines(settings)]
    assert len(lines) == 3
    assert lines[2].startswith("running: engine 2: local child 2 (GPU 1)")
    ray = Settings.from_env({"JAMGEN_ENGINE_BACKEND": "ray", "JAMGEN_RAY_ADDRESS": "head:6379", "JAMGEN_ENGINES": "0"})
    assert check_engines(ray)[0].message == "Ray actors on head:6379 (one per cluster GPU)"


async def test_the_eta_counts_the_batches_ahead_shared_over_the_pools_engines(tmp_path):
    etas = {}
    for engines in (1, 2):
        pool = EnginePool([(FakeEngine(steps=1), f"local child {i}") for i in range(engines)])
        h = await build_harness(tmp_path / str(engines), engine=pool, max_batch=4)
        await h.service.start()
        try:
            await h.store.record_step_time("debug", 4, 0.5)
            # Position 5 with batches of 4: its batch is the second; two engines run both at once.
            etas[engines] = await h.service.eta_for_position(5, "debug", 2)
        finally:
            await h.service.close()
            await h.store.close()
    assert etas[1] is not None
    assert etas[2] is not None
    assert etas[2] == pytest.approx(etas[1] / 2)
