"""Best-take polls of jam sessions (the ``session_polls`` table, schema 6).

A poll is stored once Discord has posted it; closing it stores the final counts and the winner, and copies the
winner into ``sessions.extra['best_take']`` in the same transaction. Only the call that closes a poll gets
``closed=True`` back, so the announcement is made once however many paths (events, timers, start-up) notice it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

from bot.store.base import StoreBase
from bot.store.errors import SessionNotFoundError
from bot.store.ids import normalize_job_id
from bot.store.rows import dump_json, first, merge_extra, parse_ts, ts
from bot.store.sessions import _fetch_session

log = logging.getLogger("jamgen.store")

_POLL_COLUMNS = (
    "message_id, session_id, channel_id, job_ids, ends_at, state, counts, winner_job_id, winner_votes, "
    "announced_message_id, created_at, closed_at"
)


class PollAlreadyOpenError(Exception):
    """The session has an open poll already (the partial unique index refused a second one)."""


@dataclass(frozen=True)
class SessionPoll:
    """A best-take poll of a jam.

    Args:
        message_id: the poll's message.
        session_id: the jam.
        channel_id: where it was posted.
        job_ids: the takes in answer order (answer ``n`` is ``job_ids[n - 1]``).
        ends_at: its expiry as Discord gave it.
        state: ``open`` or ``closed``.
        counts: final votes per job id (empty while open).
        winner_job_id: the winning take (None while open, or closed without votes).
        winner_votes: its votes.
        announced_message_id: the announcement, once posted.
    """

    message_id: int
    session_id: str
    channel_id: int
    job_ids: tuple[str, ...]
    ends_at: datetime
    state: str
    counts: dict[str, int]
    winner_job_id: str | None
    winner_votes: int
    announced_message_id: int | None
    created_at: datetime
    closed_at: datetime | None

    @property
    def is_open(self) -> bool:
        """Whether the poll still waits for its result."""
        return self.state == "open"

    def job_for_answer(self, answer_id: int) -> str | None:
        """The take behind answer ``answer_id`` (Discord numbers answers from 1)."""
        return self.job_ids[answer_id - 1] if 1 <= answer_id <= len(self.job_ids) else None


class PollsMixin(StoreBase):
    """Best-take poll methods of :class:`~bot.store.JobStore`."""

    async def create_poll(
        self, *, session_id: str, message_id: int, channel_id: int, job_ids: Sequence[str], ends_at: datetime
    ) -> SessionPoll:
        """Store a poll Discord has just posted.

        Raises:
            PollAlreadyOpenError: the session has an open poll already.
            SessionNotFoundError: no such session.
        """
        wanted = normalize_job_id(session_id)
        async with self._tx() as db:
            if await _fetch_session(db, "id = ?", (wanted,)) is None:
                raise SessionNotFoundError(wanted)
            try:
                await db.execute(
                    f"INSERT INTO session_polls ({_POLL_COLUMNS}) VALUES (?, ?, ?, ?, ?, 'open', NULL, NULL, 0, "
                    "NULL, ?, NULL)",
                    (message_id, wanted, channel_id, json.dumps(list(job_ids)), ts(ends_at), ts(self.now())),
                )
            except sqlite3.IntegrityError as exc:
                raise PollAlreadyOpenError(wanted) from exc
            poll = await _fetch_poll(db, "message_id = ?", (message_id,))
        assert poll is not None
        log.info("session %s: poll %s of %d takes stored", wanted, message_id, len(job_ids))
        return poll

    async def get_poll(self, message_id: int) -> SessionPoll | None:
        """The poll posted as this message, or None."""
        async with self._tx(write=False) as db:
            return await _fetch_poll(db, "message_id = ?", (message_id,))

    async def open_poll(self, session_id: str) -> SessionPoll | None:
        """The session's open poll, or None."""
        async with self._tx(write=False) as db:
            return await _fetch_poll(db, "session_id = ? AND state = 'open'", (normalize_job_id(session_id),))

    async def open_polls(self) -> list[SessionPoll]:
        """Every open poll, soonest end first (what a restart must look after)."""
        async with self._tx(write=False) as db:
            rows = await db.execute_fetchall(
                f"SELECT {_POLL_COLUMNS} FROM session_polls WHERE state = 'open' ORDER BY ends_at"
            )
            return [_row_to_poll(row) for row in rows]

    async def close_poll(
        self, message_id: int, counts: Mapping[str, int], winner_job_id: str | None, winner_votes: int
    ) -> tuple[SessionPoll, bool]:
        """open -> closed with its final counts and winner (idempotent).

        Returns:
            the poll, and whether this call closed it (False: it was closed before; nothing changed).

        Raises:
            KeyError: no poll has this message.
        """
        async with self._tx() as db:
            now = ts(self.now())
            cursor = await db.execute(
                "UPDATE session_polls SET state = 'closed', counts = ?, winner_job_id = ?, winner_votes = ?, "
                "closed_at = ? WHERE message_id = ? AND state = 'open'",
                (dump_json(dict(counts), "poll counts"), winner_job_id, winner_votes, now, message_id),
            )
            closed = cursor.rowcount == 1
            poll = await _fetch_poll(db, "message_id = ?", (message_id,))
            if poll is None:
                raise KeyError(message_id)
            if closed:
                session = await _fetch_session(db, "id = ?", (poll.session_id,))
                assert session is not None
                best: dict[str, Any] = {
                    "job_id": winner_job_id,
                    "votes": winner_votes,
                    "poll_message_id": message_id,
                    "channel_id": poll.channel_id,
                }
                merged = dump_json(merge_extra(session.extra, {"best_take": best}), "session extra")
                await db.execute("UPDATE sessions SET extra = ? WHERE id = ?", (merged, poll.session_id))
        return poll, closed

    async def mark_poll_announced(self, message_id: int, announced_message_id: int) -> None:
        """Record the announcement of a closed poll."""
        async with self._tx() as db:
            await db.execute(
                "UPDATE session_polls SET announced_message_id = ? WHERE message_id = ?",
                (announced_message_id, message_id),
            )


def _row_to_poll(row: sqlite3.Row) -> SessionPoll:
    ends_at, created_at = parse_ts(row["ends_at"]), parse_ts(row["created_at"])
    return SessionPoll(
        message_id=int(row["message_id"]),
        session_id=row["session_id"],
        channel_id=int(row["channel_id"]),
        job_ids=tuple(str(job_id) for job_id in json.loads(row["job_ids"])),
        ends_at=ends_at,
        state=row["state"],
        counts={str(k): int(v) for k, v in json.loads(row["counts"] or "{}").items()},
        winner_job_id=row["winner_job_id"],
        winner_votes=int(row["winner_votes"]),
        announced_message_id=row["announced_message_id"],
        created_at=created_at,
        closed_at=parse_ts(row["closed_at"]),
    )


async def _fetch_poll(db: aiosqlite.Connection, where: str, args: tuple[Any, ...]) -> SessionPoll | None:
    rows = await db.execute_fetchall(f"SELECT {_POLL_COLUMNS} FROM session_polls WHERE {where}", args)
    row = first(rows)
    return None if row is None else _row_to_poll(row)
