"""The heartbeat file: written atomically by the bot, judged by `jamgen doctor --quick`."""

import asyncio
import json
import os

import pytest

from bot.engine.types import EngineHealth
from bot.heartbeat import (
    Heartbeat,
    HeartbeatUnreadableError,
    beat_once,
    heartbeat_path,
    heartbeat_problems,
    read_heartbeat,
    remove_heartbeat,
    run_heartbeat,
    write_heartbeat,
)

GPU = EngineHealth(alive=True, device="cuda:0 (NVIDIA H100, 79 GB)", loaded_models=("small",), restarts=1, pid=42)


async def test_a_beat_round_trips_through_the_file(tmp_path):
    path = heartbeat_path(tmp_path / "data")

    async def probe():
        return GPU

    beat = await beat_once(probe, interval_s=30, clock=lambda: 1000.0)
    await write_heartbeat(path, beat)
    assert path == tmp_path / "data" / "heartbeat.json"
    assert read_heartbeat(path) == beat
    assert beat.pid == os.getpid()
    assert beat.loaded_models == ("small",)
    assert heartbeat_problems(beat, now=1000.0 + 99) == []
    assert list(path.parent.iterdir()) == [path]  # no partial file left behind


async def test_run_heartbeat_keeps_beating_until_cancelled(tmp_path):
    path = tmp_path / "heartbeat.json"
    calls = 0

    async def probe():
        nonlocal calls
        calls += 1
        return EngineHealth(alive=calls < 3, device="cpu", loaded_models=(), restarts=0, pid=None)

    task = asyncio.create_task(run_heartbeat(path, probe, interval=0.01))
    while calls < 4:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    beat = read_heartbeat(path)
    assert beat is not None
    assert not beat.engine_alive
    assert "does not answer" in beat.detail


async def test_a_failing_or_hanging_probe_gives_an_engine_down_beat():
    async def broken():
        raise RuntimeError("pipe closed")

    async def hanging():
        await asyncio.sleep(60)

    broken_beat = await beat_once(broken, interval_s=1)
    assert not broken_beat.engine_alive
    assert broken_beat.detail == "RuntimeError: pipe closed"
    hanging_beat = await beat_once(hanging, interval_s=0.05)
    assert not hanging_beat.engine_alive
    assert hanging_beat.detail == "the health probe timed out"


async def test_a_beat_that_cannot_be_written_does_not_stop_the_loop(tmp_path, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    written = asyncio.Event()

    async def probe():
        written.set()
        return GPU

    task = asyncio.create_task(run_heartbeat(blocker / "heartbeat.json", probe, interval=0.01))
    await asyncio.wait_for(written.wait(), 5)
    await asyncio.sleep(0.05)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "could not write the heartbeat" in caplog.text


def test_stale_missing_and_engine_down_beats_are_problems():
    beat = Heartbeat(pid=7, written_at=1000.0, interval_s=30, engine_alive=True, device="cpu")
    assert beat.max_age_s() == 100
    assert heartbeat_problems(beat, now=1100.0) == []
    (stale,) = heartbeat_problems(beat, now=1101.0)
    assert "101 s old" in stale
    assert "pid 7" in stale
    (missing,) = heartbeat_problems(None, now=0)
    assert "no heartbeat" in missing
    down = Heartbeat(pid=7, written_at=1000.0, interval_s=30, engine_alive=False, device="cpu", detail="it crashed")
    assert heartbeat_problems(down, now=1000.0) == ["the engine worker is not alive: it crashed"]


def test_unreadable_and_missing_files(tmp_path):
    path = tmp_path / "heartbeat.json"
    assert read_heartbeat(path) is None
    path.write_text("{half")
    with pytest.raises(HeartbeatUnreadableError, match="not a jamgen heartbeat"):
        read_heartbeat(path)
    path.write_text(json.dumps({"pid": 1}))
    with pytest.raises(HeartbeatUnreadableError, match="KeyError"):
        read_heartbeat(path)
    remove_heartbeat(path)
    remove_heartbeat(path)
    assert not path.exists()


async def test_a_shutdown_that_meets_a_finishing_probe_still_stops_the_loop(tmp_path):
    # The cancel lands just as the probe returns: it must stop the loop, not be swallowed.
    cancelling = True
    task: asyncio.Task[None] | None = None

    async def probe():
        if cancelling:
            asyncio.get_running_loop().call_soon(task.cancel)
        return GPU

    task = asyncio.create_task(run_heartbeat(tmp_path / "heartbeat.json", probe, interval=0.01))
    done, _ = await asyncio.wait({task}, timeout=2)
    cancelling = False
    if not done:  # leave nothing running for the next test
        task.cancel()
        await asyncio.wait({task}, timeout=2)
    assert task in done, "the heartbeat loop ignored its cancellation"
    assert task.cancelled()
