"""Jam sessions in the store: the session row, its jam budget, reactions on its takes, restarts."""

from __future__ import annotations

import pytest

from bot.store import JobStore, Session, SessionBudgetExceededError, SessionNotFoundError, StoreError

from .conftest import new_job, raw

THREAD = 5000


async def open_session(store: JobStore, **overrides) -> Session:
    fields = {
        "guild_id": 10,
        "channel_id": 100,
        "thread_id": THREAD,
        "owner_id": 1,
        "theme": "night drive",
        "bpm": 100,
        "key": "A minor",
        "time_signature": "4/4",
        "model": "small",
    }
    fields.update(overrides)
    return await store.create_session(**fields)


async def deliver(store: JobStore, job_id: str, message_id: int) -> None:
    await store.mark_running(job_id)
    await store.mark_rendered(job_id, [f"/tmp/{job_id}.mp3"])
    await store.mark_delivered(job_id, [message_id])


async def test_a_session_is_found_by_id_and_by_thread_and_survives_a_restart(db_path, clock):
    async with JobStore.open(db_path, clock=clock) as store:
        session = await open_session(store, budget=90)
        job = await store.submit_job(new_job(session_id=session.id, channel_id=THREAD), cost=5)
        await store.update_session(session.id, header_message_id=777, extra={"bounce": {"job_id": job.id}})
    async with JobStore.open(db_path, clock=clock) as store:
        again = await store.session_for_thread(THREAD)
        assert again is not None
        assert again.id == session.id
        assert (again.bpm, again.key, again.time_signature, again.model) == (100, "A minor", "4/4", "small")
        assert again.budget == 90
        assert again.header_message_id == 777
        assert again.extra == {"bounce": {"job_id": job.id}}
        assert again.is_open
        assert [j.id for j in await store.session_jobs(session.id)] == [job.id]
        assert (await store.get_session(session.id.upper())).id == session.id


async def test_update_session_sets_removes_and_refuses_unknown_sessions(store):
    session = await open_session(store, budget=60)
    updated = await store.update_session(session.id, budget=None, extra={"a": 1, "b": 2})
    assert updated.budget is None
    updated = await store.update_session(session.id, extra={"a": None})
    assert updated.extra == {"b": 2}
    with pytest.raises(SessionNotFoundError):
        await store.update_session("zzzzzzzz", budget=1)
    with pytest.raises(StoreError):
        await open_session(store)  # one session per thread


async def test_ending_is_recorded_once(store, clock):
    session = await open_session(store)
    clock.advance(minutes=5)
    ended, first = await store.end_session(session.id)
    assert first
    assert not ended.is_open
    assert ended.ended_at == clock.now
    again, second = await store.end_session(session.id)
    assert not second
    assert again.ended_at == ended.ended_at
    with pytest.raises(SessionNotFoundError):
        await store.end_session("zzzzzzzz")


async def test_the_jam_budget_refuses_what_it_cannot_pay_and_counts_refunds(store, db_path):
    session = await open_session(store, budget=10)
    first = await store.submit_job(new_job(user_id=1, session_id=session.id), cost=6)
    await store.submit_job(new_job(user_id=2, session_id=session.id), cost=3)
    assert await store.session_usage(session.id) == 9
    jobs_before = raw(db_path, "SELECT count(*) FROM jobs")[0][0]
    with pytest.raises(SessionBudgetExceededError) as refused:
        await store.submit_job(new_job(user_id=3, session_id=session.id), cost=2)
    assert "1 s of its 10 s budget left" in refused.value.message
    assert "/session budget" in refused.value.message
    assert raw(db_path, "SELECT count(*) FROM jobs")[0][0] == jobs_before  # a refusal writes nothing
    await store.mark_failed(first.id, "engine fault", refund=True)
    assert await store.session_usage(session.id) == 3
    await store.submit_job(new_job(user_id=3, session_id=session.id), cost=2)
    # Jobs outside the jam, and jams without a budget, are not limited by it.
    await store.submit_job(new_job(user_id=3), cost=50)
    free = await open_session(store, thread_id=THREAD + 1, budget=None)
    await store.submit_job(new_job(user_id=4, session_id=free.id), cost=50)


async def test_reactions_count_per_take_only_on_session_takes(store):
    session = await open_session(store)
    liked = await store.submit_job(new_job(session_id=session.id), cost=1)
    other = await store.submit_job(new_job(session_id=session.id), cost=1)
    outside = await store.submit_job(new_job(), cost=1)
    await deliver(store, liked.id, 9001)
    await deliver(store, other.id, 9002)
    await deliver(store, outside.id, 9003)
    assert await store.record_reaction(9001, 2, "🔥", add=True) == liked.id
    assert await store.record_reaction(9001, 2, "🔥", add=True) == liked.id  # the same reaction counts once
    await store.record_reaction(9001, 3, "🔥", add=True)
    await store.record_reaction(9001, 3, "🎸", add=True)
    await store.record_reaction(9002, 2, "🔥", add=True)
    assert await store.record_reaction(9003, 2, "🔥", add=True) is None
    assert await store.record_reaction(1234, 2, "🔥", add=True) is None
    assert await store.reaction_counts(session.id) == {liked.id: 3, other.id: 1}
    await store.record_reaction(9001, 3, "🎸", add=False)
    assert await store.reaction_counts(session.id) == {liked.id: 2, other.id: 1}
