"""Jam sessions (the ``sessions`` table), their takes and the reactions on those takes."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Mapping
from typing import Any

import aiosqlite

from bot.store.base import StoreBase
from bot.store.errors import SessionBudgetExceededError, SessionNotFoundError
from bot.store.ids import new_job_id, normalize_job_id
from bot.store.models import Job, Session
from bot.store.quota import from_ms, to_ms
from bot.store.rows import UNSET, dump_json, first, merge_extra, parse_ts, refuse_secrets, ts

log = logging.getLogger("jamgen.store")

_SESSION_COLUMNS = (
    "id, guild_id, channel_id, thread_id, owner_id, theme, bpm, musical_key, time_signature, model, budget_ms, "
    "state, header_message_id, extra, created_at, ended_at"
)


class SessionsMixin(StoreBase):
    """Jam session methods of :class:`~bot.store.JobStore`."""

    async def create_session(
        self,
        *,
        guild_id: int | None,
        channel_id: int,
        thread_id: int,
        owner_id: int,
        theme: str,
        bpm: int | None = None,
        key: str | None = None,
        time_signature: str | None = None,
        model: str | None = None,
        budget: float | None = None,
    ) -> Session:
        """Open a jam session for a thread.

        Args:
            guild_id: the server.
            channel_id: the text channel it was started in.
            thread_id: its thread (one session per thread).
            owner_id: who started it.
            theme: what it is about.
            bpm: shared tempo.
            key: shared key, e.g. "A minor".
            time_signature: shared meter, e.g. "4/4".
            model: default model of its takes.
            budget: seconds the whole jam may use (None = none).
        """
        now = ts(self.now())
        async with self._tx() as db:
            while True:
                session_id = new_job_id()
                rows = await db.execute_fetchall("SELECT 1 FROM sessions WHERE id = ?", (session_id,))
                if first(rows) is None:
                    break
            await db.execute(
                "INSERT INTO sessions (id, guild_id, channel_id, thread_id, owner_id, theme, bpm, musical_key, "
                "time_signature, model, budget_ms, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session_id,
                    guild_id,
                    channel_id,
                    thread_id,
                    owner_id,
                    theme,
                    bpm,
                    key,
                    time_signature,
                    model,
                    None if budget is None else to_ms(budget),
                    now,
                ),
            )
            session = await _fetch_session(db, "id = ?", (session_id,))
        assert session is not None
        log.info("session %s opened in thread %s by %s", session.id, thread_id, owner_id)
        return session

    async def get_session(self, session_id: str) -> Session | None:
        """The session with this id, or None.

        Args:
            session_id: the id (case and dashes do not matter).
        """
        async with self._tx(write=False) as db:
            return await _fetch_session(db, "id = ?", (normalize_job_id(session_id),))

    async def session_for_thread(self, thread_id: int) -> Session | None:
        """The session whose thread this is (open or ended), or None.

        Args:
            thread_id: a channel or thread id.
        """
        async with self._tx(write=False) as db:
            return await _fetch_session(db, "thread_id = ?", (thread_id,))

    async def update_session(
        self,
        session_id: str,
        *,
        header_message_id: int | None = UNSET,
        budget: float | None = UNSET,
        extra: Mapping[str, Any] | None = None,
    ) -> Session:
        """Bookkeeping on a session: its header message, its budget, ``extra`` (merged; None removes a key).

        Args:
            session_id: the session.
            header_message_id: the pinned header.
            budget: seconds the jam may use (None = no jam budget).
            extra: keys to merge into ``session.extra``.

        Raises:
            SessionNotFoundError: no such session.
        """
        wanted = normalize_job_id(session_id)
        if extra:
            refuse_secrets(extra, "session extra")
        async with self._tx() as db:
            session = await _fetch_session(db, "id = ?", (wanted,))
            if session is None:
                raise SessionNotFoundError(wanted)
            if header_message_id is not UNSET:
                await db.execute("UPDATE sessions SET header_message_id = ? WHERE id = ?", (header_message_id, wanted))
            if budget is not UNSET:
                budget_ms = None if budget is None else to_ms(budget)
                await db.execute("UPDATE sessions SET budget_ms = ? WHERE id = ?", (budget_ms, wanted))
            if extra:
                merged = dump_json(merge_extra(session.extra, extra), "session extra")
                await db.execute("UPDATE sessions SET extra = ? WHERE id = ?", (merged, wanted))
            updated = await _fetch_session(db, "id = ?", (wanted,))
        assert updated is not None
        return updated

    async def sessions_with_extra(self, key: str) -> list[Session]:
        """Open sessions whose ``extra`` holds ``key`` (e.g. the voice channel a jam plays in), oldest first."""
        async with self._tx(write=False) as db:
            rows = await db.execute_fetchall(
                f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE state = 'open' "
                "AND json_extract(extra, '$.' || ?) IS NOT NULL ORDER BY created_at",
                (key,),
            )
        return [_row_to_session(row) for row in rows]

    async def end_session(self, session_id: str) -> tuple[Session, bool]:
        """open -> ended (idempotent).

        Args:
            session_id: the session.

        Returns:
            the session, and whether this call ended it (False when it had ended before).

        Raises:
            SessionNotFoundError: no such session.
        """
        wanted = normalize_job_id(session_id)
        async with self._tx() as db:
            cursor = await db.execute(
                "UPDATE sessions SET state = 'ended', ended_at = ? WHERE id = ? AND state = 'open'",
                (ts(self.now()), wanted),
            )
            ended = cursor.rowcount == 1
            session = await _fetch_session(db, "id = ?", (wanted,))
        if session is None:
            raise SessionNotFoundError(wanted)
        return session, ended

    async def session_jobs(self, session_id: str) -> list[Job]:
        """Every job of a session, in submission order (all states).

        Args:
            session_id: the session.
        """
        return await self._select_jobs("session_id = ? ORDER BY seq", (normalize_job_id(session_id),))

    async def session_usage(self, session_id: str) -> float:
        """Seconds of quota the session's jobs were charged, refunds deducted.

        Args:
            session_id: the session.
        """
        async with self._tx(write=False) as db:
            return from_ms(await _session_used_ms(db, normalize_job_id(session_id)))

    async def record_reaction(self, message_id: int, user_id: int, emoji: str, *, add: bool) -> str | None:
        """Count (or uncount) one member's reaction on a message that delivered a session take.

        Args:
            message_id: the reacted-to message.
            user_id: who reacted.
            emoji: the emoji as text.
            add: True for a new reaction, False when it was taken back.

        Returns:
            the take's job id, or None when the message is not a session take (nothing is written).
        """
        async with self._tx() as db:
            rows = await db.execute_fetchall(
                "SELECT jobs.id FROM jobs, json_each(jobs.delivered_message_ids) AS delivered "
                "WHERE jobs.session_id IS NOT NULL AND delivered.value = ? ORDER BY jobs.seq LIMIT 1",
                (message_id,),
            )
            row = first(rows)
            if row is None:
                return None
            job_id = str(row[0])
            if add:
                await db.execute(
                    "INSERT OR IGNORE INTO take_reactions (message_id, user_id, emoji, job_id, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (message_id, user_id, emoji[:64], job_id, ts(self.now())),
                )
            else:
                await db.execute(
                    "DELETE FROM take_reactions WHERE message_id = ? AND user_id = ? AND emoji = ?",
                    (message_id, user_id, emoji[:64]),
                )
        return job_id

    async def reaction_counts(self, session_id: str) -> dict[str, int]:
        """Reactions per take of a session (takes without reactions are left out).

        Args:
            session_id: the session.
        """
        async with self._tx(write=False) as db:
            rows = await db.execute_fetchall(
                "SELECT take_reactions.job_id, count(*) FROM take_reactions "
                "JOIN jobs ON jobs.id = take_reactions.job_id WHERE jobs.session_id = ? GROUP BY take_reactions.job_id",
                (normalize_job_id(session_id),),
            )
            return {str(row[0]): int(row[1]) for row in rows}


async def check_session_budget(db: aiosqlite.Connection, session_id: str, cost_ms: int) -> None:
    """Refuse a take its jam's own budget cannot pay for (no jam budget, or no such session: nothing to check)."""
    rows = await db.execute_fetchall("SELECT budget_ms FROM sessions WHERE id = ?", (session_id,))
    row = first(rows)
    if row is None or row[0] is None:
        return
    used_ms = await _session_used_ms(db, session_id)
    if used_ms + cost_ms > int(row[0]):
        raise SessionBudgetExceededError(budget=from_ms(int(row[0])), used=from_ms(used_ms), cost=from_ms(cost_ms))


def _row_to_session(row: sqlite3.Row) -> Session:
    created = parse_ts(row["created_at"])
    assert created is not None
    return Session(
        id=row["id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        thread_id=row["thread_id"],
        owner_id=row["owner_id"],
        theme=row["theme"],
        bpm=row["bpm"],
        key=row["musical_key"],
        time_signature=row["time_signature"],
        model=row["model"],
        budget=None if row["budget_ms"] is None else from_ms(row["budget_ms"]),
        state=row["state"],
        header_message_id=row["header_message_id"],
        extra=json.loads(row["extra"]),
        created_at=created,
        ended_at=parse_ts(row["ended_at"]),
    )


async def _fetch_session(db: aiosqlite.Connection, where: str, args: tuple[Any, ...]) -> Session | None:
    rows = await db.execute_fetchall(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE {where}", args)
    row = first(rows)
    return None if row is None else _row_to_session(row)


async def _session_used_ms(db: aiosqlite.Connection, session_id: str) -> int:
    rows = await db.execute_fetchall(
        "SELECT coalesce(-sum(quota_ledger.amount_ms), 0) FROM quota_ledger JOIN jobs ON jobs.id = quota_ledger.job_id "
        "WHERE jobs.session_id = ? AND quota_ledger.kind IN ('debit', 'refund')",
        (session_id,),
    )
    row = first(rows)
    return int(row[0]) if row else 0
