"""Best-take polls in the store (schema 6): one open poll per jam, closing once, the winner in the session."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.store import JobStore, PollAlreadyOpenError, latest_version
from bot.store.schema import connect, migrate

from .conftest import new_job, raw
from .test_sessions import THREAD, open_session


async def test_a_jam_from_schema_5_gets_polls_and_keeps_its_session(tmp_path, clock):
    path = tmp_path / "v5.db"
    db = await connect(path, create=True)
    try:
        await migrate(db, path, target=5)
        await db.execute(
            "INSERT INTO sessions (id, channel_id, thread_id, owner_id, theme, created_at) "
            "VALUES ('abcd2345', 100, 5000, 1, 'old jam', '2030-01-01T00:00:00.000000+00:00')"
        )
    finally:
        await db.close()
    assert latest_version() >= 6
    async with JobStore.open(path, clock=clock) as store:
        session = await store.session_for_thread(5000)
        assert session is not None
        assert session.theme == "old jam"
        assert await store.open_poll(session.id) is None
        poll = await store.create_poll(
            session_id=session.id, message_id=9, channel_id=5000, job_ids=["a", "b"], ends_at=clock()
        )
        assert poll.is_open
    assert raw(path, "SELECT message_id, state FROM session_polls") == [(9, "open")]


async def test_one_open_poll_per_jam_and_it_closes_once_with_its_winner(store, clock):
    session = await open_session(store)
    jobs = [await store.submit_job(new_job(session_id=session.id, channel_id=THREAD), cost=1) for _ in range(3)]
    ids = [job.id for job in jobs]
    ends = clock() + timedelta(hours=24)
    poll = await store.create_poll(session_id=session.id, message_id=42, channel_id=THREAD, job_ids=ids, ends_at=ends)
    assert poll.job_for_answer(1) == ids[0]
    assert poll.job_for_answer(4) is None
    assert poll.ends_at == ends
    with pytest.raises(PollAlreadyOpenError):
        await store.create_poll(session_id=session.id, message_id=43, channel_id=THREAD, job_ids=ids, ends_at=ends)
    assert [p.message_id for p in await store.open_polls()] == [42]

    closed, first = await store.close_poll(42, {ids[1]: 3, ids[0]: 1}, ids[1], 3)
    again, second = await store.close_poll(42, {}, None, 0)
    assert (first, second) == (True, False)
    assert again.winner_job_id == ids[1]
    assert again.counts == {ids[1]: 3, ids[0]: 1}
    assert not closed.is_open
    assert await store.open_polls() == []
    best = (await store.get_session(session.id)).extra["best_take"]
    assert best == {"job_id": ids[1], "votes": 3, "poll_message_id": 42, "channel_id": THREAD}
    await store.mark_poll_announced(42, 77)
    assert (await store.get_poll(42)).announced_message_id == 77
    # Once closed, a new poll may open.
    await store.create_poll(session_id=session.id, message_id=44, channel_id=THREAD, job_ids=ids, ends_at=ends)
