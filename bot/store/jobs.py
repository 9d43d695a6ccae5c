"""Jobs: submission (checks, charge and queueing in one transaction), reading, bookkeeping, retention.

The state machine that moves a job after submission lives in ``bot.store.states``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

import aiosqlite

from bot.store.base import StoreBase
from bot.store.errors import JobNotFoundError, QuotaExceededError, StoreError, TooManyPendingError
from bot.store.guilds import check_blocked
from bot.store.ids import new_job_id, normalize_job_id
from bot.store.ledger import balance_ms, budget_rule
from bot.store.models import Job, NewJob, Submission
from bot.store.quota import from_ms, next_reset, to_ms, utc_day
from bot.store.rows import (
    JOB_COLUMNS,
    UNSET,
    count_jobs,
    dump_json,
    fetch_job,
    first,
    merge_extra,
    refuse_secrets,
    row_to_job,
    ts,
)
from bot.store.sessions import check_session_budget

log = logging.getLogger("jamgen.store")

_UPDATABLE_MESSAGE_FIELDS = ("progress_message_id", "reply_to_message_id", "request_message_id", "interaction_id")


class JobsMixin(StoreBase):
    """Job submission, reading and bookkeeping methods of :class:`~bot.store.JobStore`."""

    # ------------------------------------------------------------------ submission

    async def submit_job(self, new: NewJob, *, cost: float, **limits: Any) -> Job:
        """:meth:`submit` for callers that need only the job (``limits`` as there)."""
        return (await self.submit(new, cost=cost, **limits)).job

    async def submit(
        self,
        new: NewJob,
        *,
        cost: float,
        max_pending_user: int | None = None,
        max_pending_guild: int | None = None,
        max_queue: int | None = None,
        role_ids: Iterable[int] = (),
        is_admin: bool = False,
        default_budget: float | None = None,
    ) -> Submission:
        """Check, charge and queue a job in one ``BEGIN IMMEDIATE`` transaction; the balance comes back with it.

        Order of checks: block list, the member's pending cap, the server's pending cap,
        the queue cap, then the quota. The debit row is written only if the member's
        balance still covers the cost when the write lock is held, so concurrent
        submissions from any number of connections never overdraw.

        Args:
            new: the job.
            cost: quota seconds (duration × model weight × takes, computed by the service).
            max_pending_user: most queued+running jobs per member (None = no cap).
            max_pending_guild: most queued+running jobs per server (None = no cap; not applied in DMs).
            max_queue: most queued jobs in all (None = no cap).
            role_ids: the member's role ids in this server, for role tiers.
            is_admin: bot admins are never refused for quota (their use is still recorded).
            default_budget: the global daily budget in seconds (default: the store's).

        Raises:
            BlockedError: the member or server is on the block list.
            TooManyPendingError: a pending cap is reached (``scope`` says which).
            QuotaExceededError: today's balance does not cover ``cost``.
            JobNotFoundError: ``new.parent_id`` names no job.
            SessionBudgetExceededError: ``new.session_id``'s jam budget does not cover ``cost``.
        """
        cost_ms = to_ms(cost)
        if new.takes < 1:
            raise ValueError(f"takes must be at least 1, got {new.takes}")
        params_json = dump_json(new.params, "params")
        extra_json = dump_json(new.extra, "extra")
        parent_id = normalize_job_id(new.parent_id) if new.parent_id else None
        now = self.now()
        day = utc_day(now)
        guild_key = new.guild_id or 0
        async with self._tx() as db:
            await check_blocked(db, new.user_id, new.guild_id)
            # The three caps in one query: each round trip to the database thread costs an event-loop turn.
            counts = first(
                await db.execute_fetchall(
                    "SELECT coalesce(sum(user_id = ?), 0), coalesce(sum(guild_id IS ?), 0), "
                    "coalesce(sum(state = 'queued'), 0) FROM jobs WHERE state IN ('queued', 'running')",
                    (new.user_id, new.guild_id),
                )
            )
            user_pending, guild_pending, waiting = (int(n) for n in counts) if counts else (0, 0, 0)
            if max_pending_user is not None and user_pending >= max_pending_user:
                raise TooManyPendingError("user", user_pending, max_pending_user)
            if max_pending_guild is not None and new.guild_id is not None and guild_pending >= max_pending_guild:
                raise TooManyPendingError("guild", guild_pending, max_pending_guild)
            if max_queue is not None and waiting >= max_queue:
                raise TooManyPendingError("queue", waiting, max_queue)
            if parent_id is not None and await count_jobs(db, "id = ?", (parent_id,)) == 0:
                raise JobNotFoundError(parent_id)
            if new.session_id is not None:
                await check_session_budget(db, new.session_id, cost_ms)
            rule = await budget_rule(
                db,
                user_id=new.user_id,
                guild_key=guild_key,
                role_ids=role_ids,
                is_admin=is_admin,
                default_budget=self._budget_or_default(default_budget),
            )
            remaining_ms: int | None = None
            if rule.budget_ms is not None:
                net_ms = await balance_ms(db, new.user_id, guild_key, day)
                remaining_ms = max(0, rule.budget_ms + net_ms)
                if cost_ms > remaining_ms:
                    raise QuotaExceededError(
                        remaining=from_ms(remaining_ms),
                        cost=from_ms(cost_ms),
                        budget=from_ms(rule.budget_ms),
                        resets_at=next_reset(now),
                        now=now,
                    )
            job_id = await _fresh_id(db)
            await db.execute(
                "INSERT INTO jobs (id, user_id, guild_id, channel_id, interaction_id, request_message_id, "
                "reply_to_message_id, progress_message_id, mode, model, prompt, params, takes, seed, parent_id, "
                "session_id, state, cost_ms, priority, created_at, extra) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
                (
                    job_id,
                    new.user_id,
                    new.guild_id,
                    new.channel_id,
                    new.interaction_id,
                    new.request_message_id,
                    new.reply_to_message_id,
                    new.progress_message_id,
                    str(new.mode),
                    new.model,
                    new.prompt,
                    params_json,
                    new.takes,
                    new.seed,
                    parent_id,
                    new.session_id,
                    cost_ms,
                    new.priority,
                    ts(now),
                    extra_json,
                ),
            )
            # The reservation itself is conditional: the row is written only while the balance covers it.
            budget_ms = -1 if rule.budget_ms is None else rule.budget_ms
            cursor = await db.execute(
                "INSERT INTO quota_ledger (user_id, guild_id, day, kind, amount_ms, job_id, created_at) "
                "SELECT ?, ?, ?, 'debit', ?, ?, ? WHERE ? < 0 OR max(0, ? + ("
                "  SELECT coalesce(sum(amount_ms), 0) FROM quota_ledger WHERE user_id = ? AND guild_id = ? AND day = ?"
                ")) >= ?",
                (
                    new.user_id,
                    guild_key,
                    day,
                    -cost_ms,
                    job_id,
                    ts(now),
                    budget_ms,
                    budget_ms,
                    new.user_id,
                    guild_key,
                    day,
                    cost_ms,
                ),
            )
            if cursor.rowcount != 1:
                raise StoreError("the quota reservation did not hold; please try again")
            job = await fetch_job(db, job_id)
        assert job is not None
        log.info("job %s queued for user %s (cost %.3f s, source %s)", job.id, job.user_id, job.cost, rule.source)
        return Submission(job, None if remaining_ms is None else from_ms(remaining_ms - cost_ms))

    # ------------------------------------------------------------------ reading jobs

    async def get_job(self, job_id: str) -> Job | None:
        """The job with this id (as typed: case and dashes do not matter), or None.

        Args:
            job_id: the id.
        """
        async with self._tx(write=False) as db:
            return await fetch_job(db, normalize_job_id(job_id))

    async def list_user_jobs(self, user_id: int, guild_id: int | None = None, limit: int = 10) -> list[Job]:
        """A member's most recent jobs, newest first.

        Args:
            user_id: the member.
            guild_id: only jobs from this server (None = everywhere).
            limit: at most this many.
        """
        where, args = "user_id = ?", [user_id]
        if guild_id is not None:
            where += " AND guild_id = ?"
            args.append(guild_id)
        return await self._select_jobs(f"{where} ORDER BY seq DESC LIMIT ?", (*args, limit))

    async def children(self, job_id: str) -> list[Job]:
        """Jobs made from this one (remixes, continuations), oldest first.

        Args:
            job_id: the parent.
        """
        return await self._select_jobs("parent_id = ? ORDER BY seq", (normalize_job_id(job_id),))

    async def lineage(self, job_id: str) -> list[Job]:
        """The chain of parents from the first job down to this one (root first).

        Args:
            job_id: the last job of the chain.

        Raises:
            JobNotFoundError: no such job.
        """
        wanted = normalize_job_id(job_id)
        async with self._tx(write=False) as db:
            rows = await db.execute_fetchall(
                "WITH RECURSIVE chain (id, parent_id, depth) AS ("
                "  SELECT id, parent_id, 0 FROM jobs WHERE id = ?"
                "  UNION ALL"
                "  SELECT jobs.id, jobs.parent_id, chain.depth + 1 FROM jobs JOIN chain ON jobs.id = chain.parent_id"
                "  WHERE chain.depth < 10000"
                f") SELECT {_prefixed('jobs')} FROM chain JOIN jobs ON jobs.id = chain.id ORDER BY chain.depth DESC",
                (wanted,),
            )
        if not rows:
            raise JobNotFoundError(wanted)
        return [row_to_job(row) for row in rows]

    # ------------------------------------------------------------------ bookkeeping

    async def update_job(
        self,
        job_id: str,
        *,
        progress_message_id: int | None = UNSET,
        reply_to_message_id: int | None = UNSET,
        request_message_id: int | None = UNSET,
        interaction_id: int | None = UNSET,
        params: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Job:
        """Bookkeeping in any state: message ids, the recipe's ``params`` and ``extra``.

        Args:
            job_id: the job.
            progress_message_id: the message showing progress.
            reply_to_message_id: the message the delivery replies to.
            request_message_id: the message that asked.
            interaction_id: the interaction id (never its token).
            params: the new recipe parameters, replacing the old ones whole (e.g. once an input
                file has moved into the job's folder).
            extra: keys to merge into ``job.extra`` (a None value removes a key).
        """
        given = {
            "progress_message_id": progress_message_id,
            "reply_to_message_id": reply_to_message_id,
            "request_message_id": request_message_id,
            "interaction_id": interaction_id,
        }
        changes = {k: v for k, v in given.items() if v is not UNSET}
        params_json = None if params is None else dump_json(dict(params), "params")
        if extra:
            refuse_secrets(extra, "extra")
        wanted = normalize_job_id(job_id)
        async with self._tx() as db:
            job = await fetch_job(db, wanted)
            if job is None:
                raise JobNotFoundError(wanted)
            if changes:
                assigns = ", ".join(f"{name} = ?" for name in changes if name in _UPDATABLE_MESSAGE_FIELDS)
                await db.execute(f"UPDATE jobs SET {assigns} WHERE id = ?", (*changes.values(), wanted))
            if params_json is not None:
                await db.execute("UPDATE jobs SET params = ? WHERE id = ?", (params_json, wanted))
            if extra:
                await db.execute(
                    "UPDATE jobs SET extra = ? WHERE id = ?",
                    (dump_json(merge_extra(job.extra, extra), "extra"), wanted),
                )
            updated = await fetch_job(db, wanted)
        assert updated is not None
        return updated

    # ------------------------------------------------------------------ retention

    async def outputs_older_than(self, days: float) -> list[tuple[str, list[str]]]:
        """Finished jobs whose files were rendered more than ``days`` ago and still exist on record.

        Rendered-but-undelivered jobs are left alone (their delivery may still be retried).

        Args:
            days: age in days.
        """
        cutoff = ts(self.now() - timedelta(days=days))
        async with self._tx(write=False) as db:
            rows = await db.execute_fetchall(
                "SELECT id, outputs FROM jobs WHERE outputs <> '[]' "
                "AND state IN ('delivered', 'failed', 'cancelled') AND coalesce(rendered_at, created_at) < ? "
                "ORDER BY seq",
                (cutoff,),
            )
        return [(row["id"], list(json.loads(row["outputs"]))) for row in rows]

    async def clear_outputs(self, job_id: str) -> None:
        """Forget a job's files after they were deleted (the job and its recipe stay).

        Args:
            job_id: the job.
        """
        wanted = normalize_job_id(job_id)
        async with self._tx() as db:
            cursor = await db.execute(
                "UPDATE jobs SET outputs = '[]', outputs_cleared_at = ? WHERE id = ?", (ts(self.now()), wanted)
            )
            if cursor.rowcount == 0:
                raise JobNotFoundError(wanted)
            await db.execute("DELETE FROM stems WHERE job_id = ?", (wanted,))  # a stems job's files were its stems


def _prefixed(table: str) -> str:
    return ", ".join(f"{table}.{name.strip()}" for name in JOB_COLUMNS.split(","))


async def _fresh_id(db: aiosqlite.Connection) -> str:
    while True:  # a collision is a one-in-10^11 event; the write lock makes the check safe
        candidate = new_job_id()
        if await count_jobs(db, "id = ?", (candidate,)) == 0:
            return candidate
