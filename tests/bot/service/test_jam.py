"""The jam service with a real store and real audio I/O around a fake engine (timing control)."""

from __future__ import annotations

import asyncio

import pytest

from bot.engine.types import EngineError, Mode, SamplingParams
from bot.service import JamRequest, JobState, Phase, QueueFullError
from bot.store import QuotaExceededError, TooManyPendingError
from tests.bot.store.conftest import raw
from tests.harness import FakeEngine, RecordingDeliverer, build_harness, final_jobs

GUILD = 77
CHANNEL = 88


def request(user: int, prompt: str = "lofi piano", **fields) -> JamRequest:
    return JamRequest(user_id=user, guild_id=GUILD, channel_id=CHANNEL, mode=Mode.TEXT, prompt=prompt, **fields)


async def used_today(h, user: int) -> float:
    return (await h.store.quota_status(user, GUILD, default_budget=10_000)).used


async def test_fairness_three_newcomers_start_within_two_batches(tmp_path):
    h = await build_harness(tmp_path, engine=FakeEngine(hold=True))
    await h.service.start()
    try:
        heavy = [await h.service.submit(request(1, f"heavy {i}")) for i in range(10)]
        await asyncio.wait_for(h.engine.started.wait(), 5)
        light = [
            await h.service.submit(request(user, "newcomer", sampling=SamplingParams(temperature=0.7)))
            for user in (2, 3, 4)
        ]
        h.engine.hold = False
        h.engine.release.set()
        await h.wait_settled(13)
        batches = [{r.request_id.split(":")[0] for r in call} for call in h.engine.calls]
        for receipt in light:
            first_batch = next(i for i, ids in enumerate(batches) if receipt.job_id in ids)
            assert first_batch <= 1, batches
        assert sorted(h.deliverer.delivered_ids()) == sorted(r.job_id for r in heavy + light)
    finally:
        await h.service.close()
        await h.store.close()


async def test_compatible_jobs_share_a_call_others_do_not_and_seeded_jobs_run_alone(tmp_path):
    h = await build_harness(tmp_path, engine=FakeEngine(hold=True))
    await h.service.start()
    try:
        blocker = await h.service.submit(request(9, "blocker", duration=2))
        await asyncio.wait_for(h.engine.started.wait(), 5)
        same = [await h.service.submit(request(user, f"same {user}")) for user in (1, 2, 3)]
        other = await h.service.submit(request(4, "hotter", sampling=SamplingParams(temperature=1.5)))
        seeded = await h.service.submit(request(5, "seeded", seed=42, takes=2))
        h.engine.hold = False
        h.engine.release.set()
        await h.wait_settled(6)
        calls = [sorted(r.request_id for r in call) for call in h.engine.calls]
        assert [f"{blocker.job_id}:0"] in calls
        assert sorted(f"{r.job_id}:0" for r in same) in calls
        assert [f"{other.job_id}:0"] in calls
        # A seeded job's takes run alone, one call each, with seeds seed and seed + 1.
        seeded_calls = [call for call in h.engine.calls if call[0].request_id.startswith(seeded.job_id)]
        assert [[r.seed for r in call] for call in seeded_calls] == [[42], [43]]
        assert len(h.engine.calls) == 5
    finally:
        await h.service.close()
        await h.store.close()
    # Each engine call is one measurement for the ETA, however many jobs shared it.
    samples = raw(tmp_path / "jamgen.db", "SELECT batch_size, samples FROM eta_stats WHERE model = 'debug'")
    assert sorted(samples) == [(1, 4), (3, 1)]


async def test_cancel_queued_job_refunds_and_delivers_nothing(tmp_path):
    h = await build_harness(tmp_path, engine=FakeEngine(hold=True))
    await h.service.start()
    try:
        await h.service.submit(request(1, "blocker"))
        await asyncio.wait_for(h.engine.started.wait(), 5)
        before = await used_today(h, 2)
        queued = await h.service.submit(request(2, "to cancel", duration=3, takes=2))
        assert await used_today(h, 2) == before + 6
        updates = []
        h.service.subscribe(queued.job_id, updates.append)
        job = await h.service.cancel(queued.job_id, user_id=2)
        assert job.state == JobState.CANCELLED
        assert await used_today(h, 2) == before
        h.engine.release.set()
        await h.wait_settled(2)
        assert queued.job_id not in h.deliverer.delivered_ids()
        assert updates[-1].phase == Phase.CANCELLED
    finally:
        await h.service.close()
        await h.store.close()


async def test_cancel_running_job_charges_nothing_and_delivers_nothing(tmp_path):
    h = await build_harness(tmp_path, engine=FakeEngine(hold=True))
    await h.service.start()
    try:
        running = await h.service.submit(request(1, "running", duration=2))
        await asyncio.wait_for(h.engine.started.wait(), 5)
        assert await used_today(h, 1) == 2
        await h.service.cancel(running.job_id, user_id=1)
        h.engine.release.set()
        await h.wait_settled(1)
        job = await h.store.get_job(running.job_id)
        assert job.state == JobState.CANCELLED
        assert await used_today(h, 1) == 0
        assert h.deliverer.delivered == []
    finally:
        await h.service.close()
        await h.store.close()


async def test_members_cannot_cancel_other_members_jobs(harness):
    receipt = await harness.service.submit(request(1))
    with pytest.raises(Exception, match="your own jobs"):
        await harness.service.cancel(receipt.job_id, user_id=2)


async def test_retriable_engine_error_requeues_then_fails_with_refund(tmp_path):
    engine = FakeEngine()
    engine.fail_next = [EngineError("worker crashed", retriable=True), EngineError("worker crashed", retriable=True)]
    h = await build_harness(tmp_path, engine=engine, max_attempts=2)
    await h.service.start()
    try:
        receipt = await h.service.submit(request(1, duration=2))
        await h.wait_settled(1)
        job = await h.store.get_job(receipt.job_id)
        assert job.state == JobState.FAILED
        assert job.attempts == 2
        assert len(engine.calls) == 2
        assert await used_today(h, 1) == 0
    finally:
        await h.service.close()
        await h.store.close()


async def test_delivery_is_retried_then_given_up_loudly_with_refund(tmp_path):
    flaky = RecordingDeliverer(fail_times=2)
    h = await build_harness(tmp_path, deliverer=flaky)
    await h.service.start()
    try:
        ok = await h.service.submit(request(1))
        await h.wait_settled(1)
        assert flaky.delivered_ids() == [ok.job_id]
        assert flaky.attempts == 3
        assert (await h.store.get_job(ok.job_id)).state == JobState.DELIVERED
    finally:
        await h.service.close()
        await h.store.close()

    broken = RecordingDeliverer(fail_times=10**6)
    h = await build_harness(tmp_path / "second", deliverer=broken, delivery_retry_s=0.2)
    await h.service.start()
    try:
        lost = await h.service.submit(request(1, duration=2))
        await h.wait_settled(1)
        job = await h.store.get_job(lost.job_id)
        assert job.state == JobState.FAILED
        assert await used_today(h, 1) == 0
        assert broken.failures
        assert broken.failures[0][0] == lost.job_id
    finally:
        await h.service.close()
        await h.store.close()


async def test_restart_with_jobs_in_every_state_delivers_each_exactly_once(tmp_path):
    # First life: one job delivered, one stuck at delivery (rendered), one running, two queued.
    engine = FakeEngine()
    deliverer = RecordingDeliverer()
    h = await build_harness(tmp_path, engine=engine, deliverer=deliverer, shutdown_grace=0.2)
    await h.service.start()
    done = await h.service.submit(request(1, "done"))
    await h.wait_settled(1)
    deliverer.hold = True
    rendered = await h.service.submit(request(2, "rendered"))
    for _ in range(200):
        if (await h.store.get_job(rendered.job_id)).state == JobState.RENDERED:
            break
        await asyncio.sleep(0.02)
    engine.hold = True
    running = await h.service.submit(request(3, "running", duration=2))
    await asyncio.wait_for(engine.started.wait(), 5)
    queued = [await h.service.submit(request(4, f"queued {i}", duration=3)) for i in range(2)]
    await h.service.close()
    await h.store.close()
    states = {}

    # Second life on the same database.
    deliverer2 = RecordingDeliverer()
    h2 = await build_harness(tmp_path, deliverer=deliverer2)
    for job_id in (done.job_id, rendered.job_id, running.job_id, *(q.job_id for q in queued)):
        states[job_id] = (await h2.store.get_job(job_id)).state
    assert states[done.job_id] == JobState.DELIVERED
    assert states[rendered.job_id] == JobState.RENDERED
    assert states[running.job_id] in (JobState.RUNNING, JobState.QUEUED)
    await h2.service.start()
    try:
        await h2.wait_settled(5)
        assert sorted(deliverer2.delivered_ids()) == sorted(
            [rendered.job_id, running.job_id, *(q.job_id for q in queued)]
        )
        assert done.job_id not in deliverer2.delivered_ids()
        assert all(j.state == JobState.DELIVERED for j in await final_jobs(h2.store))
    finally:
        await h2.service.close()
        await h2.store.close()


async def test_200_concurrent_submits_from_20_users_caps_hold_and_all_accepted_are_delivered(tmp_path):
    h = await build_harness(tmp_path, engine=FakeEngine(hold=True), max_pending_per_user=3, max_batch=8)
    await h.service.start()
    try:
        results = await asyncio.gather(
            *(h.service.submit(request(user, f"u{user} #{i}")) for user in range(20) for i in range(10)),
            return_exceptions=True,
        )
        accepted = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, BaseException)]
        assert len(accepted) + len(refused) == 200
        assert all(isinstance(r, TooManyPendingError) for r in refused), {type(r) for r in refused}
        assert len(accepted) == 60
        for user in range(20):
            assert await h.store.count_pending(user_id=user) == 3
        h.engine.hold = False
        h.engine.release.set()
        await h.wait_settled(60, timeout=60)
        assert sorted(h.deliverer.delivered_ids()) == sorted(r.job_id for r in accepted)
    finally:
        await h.service.close()
        await h.store.close()


async def test_quota_refusal_and_queue_full(tmp_path):
    h = await build_harness(tmp_path, engine=FakeEngine(hold=True), daily_budget_seconds=5, max_queue=3)
    await h.service.start()
    try:
        await h.service.submit(request(1, duration=4))
        with pytest.raises(QuotaExceededError):
            await h.service.submit(request(1, duration=2))
        await h.service.submit(request(2, duration=1))
        await h.service.submit(request(3, duration=1))
        with pytest.raises(QueueFullError):
            await h.service.submit(request(4, duration=1))
    finally:
        await h.service.close()
        await h.store.close()


async def test_progress_reports_position_percent_and_done_and_eta_is_learned(tmp_path):
    h = await build_harness(tmp_path, engine=FakeEngine(hold=True, steps=5))
    await h.service.start()
    try:
        first = await h.service.submit(request(1))
        await asyncio.wait_for(h.engine.started.wait(), 5)
        second = await h.service.submit(request(2, sampling=SamplingParams(top_k=10)))
        assert second.position == 1
        assert second.eta_s is None  # nothing measured yet
        updates = []
        h.service.subscribe(second.job_id, updates.append)
        h.engine.release.set()
        h.engine.hold = False
        await h.wait_settled(2)
        phases = [u.phase for u in updates]
        assert Phase.RUNNING in phases
        assert phases[-1] == Phase.DONE
        running = [u for u in updates if u.phase == Phase.RUNNING]
        assert running[-1].fraction == pytest.approx(1.0)
        third = await h.service.submit(request(3))
        assert third.eta_s is not None  # learned at once
        assert first.job_id != second.job_id
    finally:
        await h.service.close()
    assert await h.store.step_time("debug", 1) is not None  # saved by the time the service stopped
    await h.store.close()


async def test_the_engine_starts_a_batch_without_waiting_for_the_disk(tmp_path):
    h = await build_harness(tmp_path, engine=FakeEngine(hold=True))
    await h.service.start()
    try:
        first = await h.service.submit(request(1))
        await asyncio.wait_for(h.engine.started.wait(), 5)
        second = await h.service.submit(request(2, sampling=SamplingParams(top_k=10)))
        async with h.store._lock.held():  # a slow disk: nothing commits until this block ends
            h.engine.release.set()  # the first call ends; the engine is free for the second job
            h.engine.release = asyncio.Event()
            for _ in range(200):
                if len(h.engine.calls) == 2:
                    break
                await asyncio.sleep(0.01)
            assert [r.job_id for r in h.engine.calls[1]] == [second.job_id]  # it runs before its start commits
            assert (
                await asyncio.to_thread(
                    raw, tmp_path / "jamgen.db", "SELECT state, attempts FROM jobs WHERE id = ?", (second.job_id,)
                )
            ) == [("queued", 0)]
        h.engine.hold = False
        h.engine.release.set()
        await h.wait_settled(2)
        assert sorted(h.deliverer.delivered_ids()) == sorted([first.job_id, second.job_id])
        assert (await h.store.get_job(second.job_id)).attempts == 1  # the start was written, its attempt counted
    finally:
        await h.service.close()
        await h.store.close()
