import asyncio

import pytest

from bot.store import IllegalTransitionError, JobState, JobStore, QuotaExceededError
from bot.store.base import _FastLaneLock

from .conftest import new_job, raw


@pytest.mark.slow  # 50 threads queueing for one write lock: a few seconds on 2 cores
async def test_fifty_racing_reservations_against_a_budget_of_nine(db_path, clock):
    async with JobStore.open(db_path, clock=clock):
        pass  # the file exists and is migrated before the race
    stores = await asyncio.gather(*(JobStore.open(db_path, clock=clock, default_budget=9) for _ in range(50)))
    try:
        results = await asyncio.gather(
            *(s.submit_job(new_job(user_id=1), cost=1, max_pending_user=100) for s in stores), return_exceptions=True
        )
    finally:
        for s in stores:
            await s.close()
    accepted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, QuotaExceededError)]
    assert len(accepted) == 9
    assert len(refused) == 41  # nothing else went wrong (no busy errors, no overdraft)
    assert len({job.id for job in accepted}) == 9
    async with JobStore.open(db_path, clock=clock, default_budget=9) as store:
        status = await store.quota_status(1, 10)
        assert (status.used, status.remaining) == (9, 0)
    assert raw(db_path, "SELECT count(*), sum(amount_ms) FROM quota_ledger") == [(9, -9000)]
    assert raw(db_path, "SELECT count(*) FROM jobs") == [(9,)]


async def test_a_cancelled_call_never_leaves_a_transaction_open(db_path, clock):
    async with (
        JobStore.open(db_path, clock=clock) as store,
        JobStore.open(db_path, clock=clock, busy_timeout=0.5) as other,
    ):
        for step in range(40):  # cancel at many points of a submission, from before BEGIN to after COMMIT
            task = asyncio.create_task(store.submit_job(new_job(), cost=1))
            await asyncio.sleep(step * 0.0002)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await other.submit_job(new_job(user_id=2), cost=1)  # the write lock is free again
            await store.submit_job(new_job(user_id=3), cost=0)  # and the connection is usable
        jobs = {row[0] for row in raw(db_path, "SELECT id FROM jobs WHERE user_id = 1")}
        debits = {row[0] for row in raw(db_path, "SELECT job_id FROM quota_ledger WHERE user_id = 1")}
        assert jobs == debits  # each cancelled submission is all or nothing
        assert (await store.quota_status(1, 10)).used == len(jobs)


async def test_starting_a_batch_goes_before_queued_bookkeeping_writes(store):
    # The engine sits idle until its batch is marked running: that write must not wait its turn.
    jobs = [await store.submit_job(new_job(user_id=u), cost=1) for u in (1, 2)]
    finished: list[str] = []

    def note(name: str):
        return lambda _task: finished.append(name)

    bookkeeping = []
    for i in range(20):
        task = asyncio.create_task(store.record_step_time("debug", 1 + i, 0.01))
        task.add_done_callback(note(f"bookkeeping {i}"))
        bookkeeping.append(task)
    await asyncio.sleep(0)  # all twenty are now waiting for the store, one of them inside it
    start = asyncio.create_task(store.mark_batch_running([job.id for job in jobs]))
    start.add_done_callback(note("start"))
    started = await start
    await asyncio.gather(*bookkeeping)
    assert [job.state for job in started] == [JobState.RUNNING, JobState.RUNNING]
    assert finished.index("start") <= 1, finished  # at most the write already in progress went first


async def test_a_batch_starts_whole_or_not_at_all(store):
    ready = await store.submit_job(new_job(user_id=1), cost=1)
    gone = await store.submit_job(new_job(user_id=2), cost=1)
    await store.mark_cancelled(gone.id)
    with pytest.raises(IllegalTransitionError):
        await store.mark_batch_running([ready.id, gone.id])
    assert (await store.get_job(ready.id)).state is JobState.QUEUED
    assert (await store.get_job(ready.id)).attempts == 0


async def test_a_waiter_cancelled_as_it_is_handed_the_lock_passes_it_on():
    lock = _FastLaneLock()  # what every store transaction queues on

    async def use() -> str:
        async with lock.held():
            return "used"

    async with lock.held():
        handed = asyncio.create_task(use())
        behind = asyncio.create_task(use())
        await asyncio.sleep(0)  # both are waiting
    handed.cancel()  # the lock was just passed to it, before it could run
    with pytest.raises(asyncio.CancelledError):
        await handed
    assert await asyncio.wait_for(behind, 5) == "used"  # not stuck behind a lost hand-off


async def _commits_while(store, action):
    """Run ``action`` and count the COMMITs the store's connection sent meanwhile."""
    statements: list[str] = []
    await store._db.set_trace_callback(statements.append)
    try:
        result = await action()
    finally:
        await store._db.set_trace_callback(None)
    return result, sum(1 for s in statements if s.strip().upper() == "COMMIT")


async def test_batches_that_start_together_share_one_commit(store):
    jobs = [await store.submit_job(new_job(user_id=u), cost=1) for u in range(1, 7)]
    batches = [[jobs[0].id, jobs[1].id], [jobs[2].id], [jobs[3].id, jobs[4].id, jobs[5].id]]

    async def start_three_while_the_store_is_busy():
        async with store._lock.held():  # another write holds the store: the three queue behind it
            starts = [asyncio.create_task(store.mark_batch_running(batch)) for batch in batches]
            await asyncio.sleep(0.01)
        return await asyncio.gather(*starts)

    started, commits = await _commits_while(store, start_three_while_the_store_is_busy)
    assert commits == 1
    assert [[job.id for job in batch] for batch in started] == batches  # each caller gets its own, in order
    assert all(job.state is JobState.RUNNING and job.attempts == 1 for batch in started for job in batch)


async def test_a_batch_that_cannot_start_does_not_hold_back_the_others_started_with_it(store):
    jobs = [await store.submit_job(new_job(user_id=u), cost=1) for u in range(1, 5)]
    await store.mark_cancelled(jobs[2].id)
    batches = [[jobs[0].id], [jobs[1].id, jobs[2].id], [jobs[3].id]]
    async with store._lock.held():
        starts = [asyncio.create_task(store.mark_batch_running(batch)) for batch in batches]
        await asyncio.sleep(0.01)
    first, refused, last = await asyncio.gather(*starts, return_exceptions=True)
    assert isinstance(refused, IllegalTransitionError)
    assert refused.job_id == jobs[2].id
    assert [job.state for job in first + last] == [JobState.RUNNING, JobState.RUNNING]
    untouched = await store.get_job(jobs[1].id)
    assert (untouched.state, untouched.attempts) == (JobState.QUEUED, 0)  # its batch started whole or not at all


async def test_a_batch_start_cancelled_while_waiting_starts_nothing(store):
    jobs = [await store.submit_job(new_job(user_id=u), cost=1) for u in (1, 2)]
    async with store._lock.held():
        gone = asyncio.create_task(store.mark_batch_running([jobs[0].id]))
        kept = asyncio.create_task(store.mark_batch_running([jobs[1].id]))
        await asyncio.sleep(0.01)
        gone.cancel()
        await asyncio.sleep(0)
    (started,) = await kept
    assert started.state is JobState.RUNNING
    assert (await store.get_job(jobs[0].id)).state is JobState.QUEUED
    with pytest.raises(asyncio.CancelledError):
        await gone
