"""Rules of the service that members only notice when something goes wrong: how a failed batch is retried, what
a retried job shares, how several takes share the upload limit, and how a delivery retry is told apart."""

from __future__ import annotations

import asyncio

from bot.audio.encode import predicted_mp3_bytes
from bot.engine.types import EngineError, Mode
from bot.service import JamRequest, JobState
from tests.harness import FakeEngine, RecordingDeliverer, build_harness, wait_state

GUILD = 77
CHANNEL = 88


def request(user: int, prompt: str = "lofi piano", **fields) -> JamRequest:
    return JamRequest(user_id=user, guild_id=GUILD, channel_id=CHANNEL, mode=Mode.TEXT, prompt=prompt, **fields)


def jobs_of(call) -> set[str]:
    return {r.request_id.split(":")[0] for r in call}


def release_one_call(engine: FakeEngine) -> None:
    """Let the held call go; the next call is held again."""
    engine.release.set()
    engine.release.clear()


async def test_a_failed_shared_call_retries_each_of_its_jobs_alone(tmp_path):
    engine = FakeEngine(hold=True)
    h = await build_harness(tmp_path, engine=engine, max_attempts=2)
    await h.service.start()
    try:
        blocker = await h.service.submit(request(9, "blocker"))
        await asyncio.wait_for(engine.started.wait(), 5)
        shared = [await h.service.submit(request(user, f"shared {user}")) for user in (1, 2, 3)]
        # The blocker's call goes well; the call the three share fails, with an error that says nothing
        # about whose request broke it (not retriable on its own, not the member's mistake).
        engine.fail_next = [None, EngineError("The model failed on this batch.")]
        engine.hold = False
        engine.release.set()
        await h.wait_settled(4)
        ids = {r.job_id for r in shared}
        assert [jobs_of(call) for call in engine.calls[:2]] == [{blocker.job_id}, ids]
        retries = [jobs_of(call) for call in engine.calls[2:]]
        assert sorted(retries, key=min) == sorted(({i} for i in ids), key=min), "one call per job, each alone"
        for job_id in ids:
            job = await h.store.get_job(job_id)
            assert job.state == JobState.DELIVERED
            assert job.attempts == 2
        assert sorted(h.deliverer.delivered_ids()) == sorted([blocker.job_id, *ids])
    finally:
        await h.close()


async def test_a_lone_job_whose_call_fails_the_same_way_is_not_retried(tmp_path):
    engine = FakeEngine(fail_next=[EngineError("The model failed on this batch.")])
    h = await build_harness(tmp_path, engine=engine, max_attempts=2)
    await h.service.start()
    try:
        alone = await h.service.submit(request(1))
        await h.wait_settled(1)
        job = await h.store.get_job(alone.job_id)
        assert job.state == JobState.FAILED
        assert job.attempts == 1
        assert len(engine.calls) == 1
    finally:
        await h.close()


async def test_a_retried_job_runs_alone_though_compatible_jobs_wait_beside_it(tmp_path):
    engine = FakeEngine(hold=True)
    h = await build_harness(tmp_path, engine=engine, max_attempts=2)
    await h.service.start()
    try:
        retried = await h.service.submit(request(1, "crashes once"))
        await asyncio.wait_for(engine.started.wait(), 5)
        first_wave = [await h.service.submit(request(user, f"first {user}")) for user in (2, 3)]
        # The worker crashes under the first job: it is queued again while the next batch is held.
        engine.fail_next = [EngineError("The engine worker crashed.", retriable=True)]
        release_one_call(engine)
        await wait_state(h.store, retried.job_id, "queued", timeout=5)
        await asyncio.wait_for(engine.started.wait(), 5)
        # Jobs made exactly like it now wait beside it in the queue.
        second_wave = [await h.service.submit(request(user, f"second {user}")) for user in (4, 5)]
        engine.hold = False
        engine.release.set()
        await h.wait_settled(5)
        with_retried = [jobs_of(call) for call in engine.calls if retried.job_id in jobs_of(call)]
        assert with_retried == [{retried.job_id}, {retried.job_id}], engine.calls
        # The others were free to share a call: only the retried job was kept apart.
        calls = [jobs_of(call) for call in engine.calls]
        assert {r.job_id for r in first_wave} in calls
        assert {r.job_id for r in second_wave} in calls
        job = await h.store.get_job(retried.job_id)
        assert (job.state, job.attempts) == (JobState.DELIVERED, 2)
    finally:
        await h.close()


async def test_each_of_three_takes_is_encoded_within_a_third_of_the_upload_limit(tmp_path):
    # 62 kB a take fits 4 s at 96 kbps but not at 128; the whole limit would fit 192 kbps.
    limit = 3 * 62_000
    assert predicted_mp3_bytes(4.0, 192, 2_000) < limit
    h = await build_harness(tmp_path)
    await h.service.start()
    try:
        receipt = await h.service.submit(request(1, duration=4, takes=3, upload_limit_bytes=limit))
        await h.wait_settled(1)
        (delivery,) = h.deliverer.delivered
        assert delivery.job.id == receipt.job_id
        assert len(delivery.takes) == 3
        sizes = [take.path.stat().st_size for take in delivery.takes]
        assert all(size <= limit // 3 for size in sizes), sizes
        assert sum(sizes) <= limit
        assert all(take.bitrate_kbps is not None and take.bitrate_kbps <= 96 for take in delivery.takes)
    finally:
        await h.close()


async def test_a_delivery_retry_is_marked_as_one(tmp_path):
    flaky = RecordingDeliverer(fail_times=1)
    h = await build_harness(tmp_path, deliverer=flaky)
    await h.service.start()
    try:
        receipt = await h.service.submit(request(1))
        await h.wait_settled(1)
        assert [(d.job.id, d.retry) for d in flaky.tries] == [(receipt.job_id, False), (receipt.job_id, True)]
        assert (await h.store.get_job(receipt.job_id)).state == JobState.DELIVERED
    finally:
        await h.close()


async def test_a_redelivery_after_a_restart_is_marked_as_a_retry(tmp_path):
    held = RecordingDeliverer(hold=True)
    h = await build_harness(tmp_path, deliverer=held, shutdown_grace=0.2)
    await h.service.start()
    receipt = await h.service.submit(request(1))
    await wait_state(h.store, receipt.job_id, "rendered", timeout=10)
    await asyncio.wait_for(_until(lambda: held.tries), 5)
    assert held.tries[0].retry is False
    await h.close()  # the first try never finishes: the job stays rendered, maybe posted

    again = RecordingDeliverer()
    h = await build_harness(tmp_path, deliverer=again)
    await h.service.start()
    try:
        await h.wait_settled(1)
        assert [(d.job.id, d.retry) for d in again.tries] == [(receipt.job_id, True)]
    finally:
        await h.close()


async def _until(condition) -> None:
    while not condition():
        await asyncio.sleep(0.01)
