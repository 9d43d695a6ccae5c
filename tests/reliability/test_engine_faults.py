"""Item 2: engine faults. Out of memory, an exception mid-batch, the worker killed mid-batch, a hung worker.

Each scenario puts a faulty job in one batch with healthy jobs of other members (a first job
holds the engine's gate while they queue, so they are batched together). In every case the queue
keeps moving, a job is tried at most ``JAMGEN_MAX_ATTEMPTS`` (2) times, a failed job's quota is
refunded exactly (one debit, one refund) and its member is told, and healthy batch-mates are
delivered, charged once.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.harness import refunded, submit, told, track_posts, wait_state

pytestmark = pytest.mark.slow


@pytest.fixture
def world_overrides() -> dict[str, str]:
    return {"JAMGEN_MAX_BATCH": "4", "JAMGEN_MAX_ATTEMPTS": "2"}


async def batch_behind_a_blocker(world, prompts: dict[str, str]) -> dict[str, tuple[object, str]]:
    """A first job holds the engine's gate while ``prompts`` (member name -> prompt) queue up behind it."""
    fake = world.fake
    world.engine.open.clear()
    blocker = await submit(world, "warm-up", user=fake.add_member("erin"))
    await asyncio.wait_for(_until(lambda: len(world.engine.calls) == 1), 10)
    users = {"bob": fake.member} | {n: fake.add_member(n) for n in prompts if n != "bob"}
    jobs = {"blocker": blocker}
    for name, prompt in prompts.items():
        jobs[name] = await submit(world, prompt, user=users[name])
    world.engine.open.set()
    return jobs


async def _until(check) -> None:
    while not check():
        await asyncio.sleep(0.02)


def calls_with(world, job_id: str) -> int:
    return sum(any(r.startswith(job_id + ":") for r in call) for call in world.engine.calls)


async def delivered_once(world, job_id: str) -> None:
    job = await wait_state(world.store, job_id, "delivered", "failed", timeout=60)
    assert job.state.value == "delivered", job.error
    assert len(track_posts(world.fake, job_id)) == 1
    assert [e.kind for e in await world.store.job_ledger(job_id)] == ["debit"]


async def failed_refunded_and_told(world, interaction, job_id: str) -> None:
    job = await wait_state(world.store, job_id, "delivered", "failed", timeout=60)
    assert job.state.value == "failed"
    assert job.attempts == 2
    assert calls_with(world, job_id) == 2  # retried once, then given up: no retry loop
    assert await refunded(world.store, job_id)
    assert track_posts(world.fake, job_id) == []
    await interaction.wait_until(lambda i: told(i, job_id, "failed", "refunded"), timeout=10)


async def test_out_of_memory_mid_batch_is_split_and_everyone_is_served(world):
    health = await world.engine.health()
    jobs = await batch_behind_a_blocker(world, {"bob": "[oom] huge", "carol": "calm", "dave": "quiet"})
    for _, job_id in jobs.values():
        await delivered_once(world, job_id)
    assert world.engine.faulted["oom"] >= 1
    # The three shared one call, which ran out of memory; nothing crashed.
    assert any(len(call) == 3 for call in world.engine.calls)
    assert (await world.engine.health()).restarts == health.restarts


async def test_an_exception_mid_batch_fails_only_the_poisoned_job(world):
    jobs = await batch_behind_a_blocker(world, {"bob": "[error] cursed", "carol": "innocent"})
    bad_interaction, bad = jobs["bob"]
    await failed_refunded_and_told(world, bad_interaction, bad)
    # The batch-mate was retried alone and made it, charged once.
    await delivered_once(world, jobs["carol"][1])
    assert calls_with(world, jobs["carol"][1]) == 2
    status = await world.service.quota(world.fake.member.id, world.fake.guild.id)
    assert status.used == 0


async def test_worker_killed_mid_batch_restarts_and_the_queue_moves_on(world):
    before = (await world.engine.health()).restarts
    jobs = await batch_behind_a_blocker(world, {"bob": "[crash] poison", "carol": "bystander"})
    crash_interaction, crash = jobs["bob"]
    await failed_refunded_and_told(world, crash_interaction, crash)
    await delivered_once(world, jobs["carol"][1])
    await delivered_once(world, jobs["blocker"][1])
    # One kill per attempt of the poisoned job, and a fresh worker each time.
    assert world.engine.faulted["crash"] == 2
    assert (await world.engine.health()).restarts >= before + 2
    # And the engine still serves after that.
    _, after = await submit(world, "after the storm", user=world.fake.add_member("frank"))
    await delivered_once(world, after)


async def test_hung_worker_is_killed_by_the_watchdog_and_the_job_retried(world):
    jobs = await batch_behind_a_blocker(world, {"bob": "[hang-once] stuck", "carol": "patient"})
    hung_interaction, hung = jobs["bob"]
    # Killed by the watchdog, retried alone; the second try does not hang.
    await delivered_once(world, hung)
    await delivered_once(world, jobs["carol"][1])
    assert world.engine.faulted["hang"] == 1
    job = await world.store.get_job(hung)
    assert job.attempts == 2
    # The member saw it go back to the queue rather than fail.
    assert told(hung_interaction, hung, "Queued")
    assert not told(hung_interaction, "failed")
