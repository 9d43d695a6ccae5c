"""Stems under faults: the worker killed mid-separation (the real worker, debug-stems: htdemucs' real shape).

A stems job is a job like a take: the crash sends it back to the queue with the attempt counted, a fresh
worker splits it, and its stems are posted once and charged once.
"""

from __future__ import annotations

import pytest

from tests.harness import receipt_job_id, submit, track_posts, wait_state

pytestmark = pytest.mark.slow


@pytest.fixture
def world_overrides() -> dict[str, str]:
    return {"JAMGEN_STEMS_MODEL": "debug-stems"}


async def test_a_worker_killed_mid_separation_restarts_and_the_stems_are_posted_once_charged_once(world):
    _, take_id = await submit(world, "rhythm section")
    await wait_state(world.store, take_id, "delivered", timeout=60)
    (take,) = track_posts(world.fake, take_id)
    restarts = (await world.engine.health()).restarts
    world.engine.stems_fault = "[crash-once]"
    click = await world.fake.click(take, f"jamgen:stems:{take_id}")
    await click.wait_until(receipt_job_id, timeout=15)
    stems_id = receipt_job_id(click)
    job = await wait_state(world.store, stems_id, "delivered", "failed", timeout=180)
    assert job.state.value == "delivered", job.error
    assert world.engine.faulted["crash"] == 1
    assert world.engine.attempts[stems_id] == 2
    assert (await world.engine.health()).restarts >= restarts + 1
    (posted,) = track_posts(world.fake, stems_id)
    assert sorted(a.filename for a in posted.attachments if a.filename.endswith(".mp3")) == sorted(
        f"{stems_id}-{name}.mp3" for name in ("drums", "bass", "other", "vocals")
    )
    assert [e.kind for e in await world.store.job_ledger(stems_id)] == ["debit"]
