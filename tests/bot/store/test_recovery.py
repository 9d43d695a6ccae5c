from bot.store import JobState, JobStore

from .conftest import new_job


async def test_recovery_after_a_crash(db_path, clock):
    async with JobStore.open(db_path, clock=clock) as store:
        waiting = await store.submit_job(new_job(), cost=1)
        first_try = await store.submit_job(new_job(), cost=2)
        second_try = await store.submit_job(new_job(), cost=4)
        rendered = await store.submit_job(new_job(), cost=8)
        delivered = await store.submit_job(new_job(), cost=16)
        later = await store.submit_job(new_job(), cost=32)
        await store.mark_running(first_try.id)
        await store.mark_running(second_try.id)
        await store.requeue(second_try.id)
        await store.mark_running(second_try.id)  # its second attempt
        for job in (rendered, delivered):
            await store.mark_running(job.id)
            await store.mark_rendered(job.id, [f"{job.id}.mp3"])
        await store.mark_delivered(delivered.id, [1])
        # the process dies here: nothing else is written
    async with JobStore.open(db_path, clock=clock) as store:
        recovery = await store.recover(max_attempts=2)
        assert [j.id for j in recovery.requeued] == [waiting.id, first_try.id, later.id]
        assert recovery.interrupted_ids == [first_try.id]
        assert all(j.state is JobState.QUEUED for j in recovery.requeued)
        assert [j.id for j in recovery.redeliver] == [rendered.id]
        assert [j.id for j in recovery.failed] == [second_try.id]
        gave_up = recovery.failed[0]
        assert gave_up.state is JobState.FAILED
        assert "interrupted 2 times" in gave_up.error
        assert gave_up.finished_at
        assert (await store.get_job(first_try.id)).attempts == 1
        assert (await store.get_job(delivered.id)).state is JobState.DELIVERED
        assert (await store.quota_status(1, 10)).used == 63 - 4  # only the given-up job is refunded
        # a second recovery finds nothing more to fix and refunds nothing twice
        again = await store.recover(max_attempts=2)
        assert again.failed == []
        assert again.interrupted_ids == []
        assert [j.id for j in again.requeued] == [waiting.id, first_try.id, later.id]
        assert (await store.quota_status(1, 10)).used == 59


async def test_the_attempt_limit_is_a_parameter(store):
    job = await store.mark_running((await store.submit_job(new_job(), cost=3)).id)
    recovery = await store.recover(max_attempts=1)
    assert [j.id for j in recovery.failed] == [job.id]
    assert recovery.requeued == []
    assert (await store.quota_status(1, 10)).used == 0
