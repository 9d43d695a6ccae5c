"""Read-only views that only the tests use: the bot itself never calls them."""

from __future__ import annotations

from typing import Any

from bot.store.base import StoreBase
from bot.store.errors import BlockedError
from bot.store.guilds import check_blocked
from bot.store.ids import normalize_job_id
from bot.store.models import BlockEntry, Job, JobState, LedgerEntry
from bot.store.quota import from_ms
from bot.store.rows import count_jobs, parse_ts


class ReadersMixin(StoreBase):
    """Test-only read methods of :class:`~bot.store.JobStore`."""

    # ------------------------------------------------------------------ jobs

    async def queued_jobs(self) -> list[Job]:
        """Every queued job in queue order (submission order; requeued jobs keep their place)."""
        return await self._select_jobs("state = 'queued' ORDER BY seq", ())

    async def jobs_in_state(self, state: JobState) -> list[Job]:
        """Every job in one state, in queue order."""
        return await self._select_jobs("state = ? ORDER BY seq", (str(state),))

    async def count_pending(self, user_id: int | None = None, guild_id: int | None = None) -> int:
        """How many jobs are queued or running, optionally for one member and/or server.

        Args:
            user_id: only this member's.
            guild_id: only this server's.
        """
        where, args = "state IN ('queued', 'running')", []
        if user_id is not None:
            where += " AND user_id = ?"
            args.append(user_id)
        if guild_id is not None:
            where += " AND guild_id = ?"
            args.append(guild_id)
        async with self._tx(write=False) as db:
            return await count_jobs(db, where, tuple(args))

    # ------------------------------------------------------------------ quota ledger

    async def ledger(self, user_id: int, guild_id: int | None, *, day: str | None = None) -> list[LedgerEntry]:
        """A member's ledger rows in one server, oldest first.

        Args:
            user_id: the member.
            guild_id: the server (None for DMs).
            day: only rows that count against this UTC day (``YYYY-MM-DD``).
        """
        where = "user_id = ? AND guild_id = ?"
        args: list[int | str] = [user_id, guild_id or 0]
        if day is not None:
            where += " AND day = ?"
            args.append(day)
        return await self._select_ledger(where, tuple(args))

    async def job_ledger(self, job_id: str) -> list[LedgerEntry]:
        """The debit and refund rows of one job.

        Args:
            job_id: the job.
        """
        return await self._select_ledger("job_id = ?", (normalize_job_id(job_id),))

    async def _select_ledger(self, where: str, args: tuple[Any, ...]) -> list[LedgerEntry]:
        async with self._tx(write=False) as db:
            rows = await db.execute_fetchall(f"SELECT * FROM quota_ledger WHERE {where} ORDER BY id", args)
        return [
            LedgerEntry(
                id=row["id"],
                user_id=row["user_id"],
                guild_id=row["guild_id"] or None,
                day=row["day"],
                kind=row["kind"],
                amount=from_ms(row["amount_ms"]),
                job_id=row["job_id"],
                actor_id=row["actor_id"],
                note=row["note"],
                created_at=parse_ts(row["created_at"]),
            )
            for row in rows
        ]

    # ------------------------------------------------------------------ block list

    async def is_blocked(self, user_id: int, guild_id: int | None) -> bool:
        """Whether the member or the server is on the block list.

        Args:
            user_id: the member.
            guild_id: the server (None in DMs).
        """
        try:
            async with self._tx(write=False) as db:
                await check_blocked(db, user_id, guild_id)
        except BlockedError:
            return True
        return False

    async def list_blocks(self) -> list[BlockEntry]:
        """The whole block list, oldest first."""
        async with self._tx(write=False) as db:
            rows = await db.execute_fetchall("SELECT * FROM blocks ORDER BY created_at, kind, target_id")
        return [BlockEntry(r["kind"], r["target_id"], r["reason"], parse_ts(r["created_at"])) for r in rows]
