import asyncio

import pytest

from bot.store import JobStore, QuotaExceeded

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
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
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
