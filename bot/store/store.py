"""The job store: jobs and their state machine, the quota ledger, server settings, ETA stats.

One :class:`JobStore` owns one aiosqlite connection. Every public method runs in
its own transaction; writes use ``BEGIN IMMEDIATE`` so that checks and the writes
that depend on them (pending caps, quota reservation, state transitions) are
serialised across every connection and process that opens the same file.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import sqlite3
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiosqlite

from bot.errors import UserInputError
from bot.store import schema
from bot.store.errors import (
    Blocked,
    IllegalTransition,
    JobNotFound,
    QuotaExceeded,
    SecretRefused,
    StoreBusy,
    StoreError,
    TooManyPending,
)
from bot.store.ids import new_job_id, normalize_job_id
from bot.store.models import (
    ALLOWED_FROM,
    BlockEntry,
    GuildSettings,
    Job,
    JobState,
    LedgerEntry,
    NewJob,
    QuotaStatus,
    Recovery,
)
from bot.store.quota import (
    BudgetRule,
    as_utc,
    format_seconds,
    from_ms,
    next_reset,
    resolve_budget,
    to_ms,
    utc_day,
)

log = logging.getLogger("jamgen.store")

DEFAULT_DAILY_BUDGET = 600.0
DEFAULT_MAX_ATTEMPTS = 2
ETA_WEIGHT = 0.2
# Base64 of "interaction:", the start of every Discord interaction token.
_INTERACTION_TOKEN_PREFIX = "aW50ZXJhY3Rpb24"  # noqa: S105 - a prefix to refuse, not a secret

_JOB_COLUMNS = (
    "seq, id, user_id, guild_id, channel_id, interaction_id, request_message_id, reply_to_message_id, "
    "progress_message_id, delivered_message_ids, mode, model, prompt, params, takes, seed, parent_id, "
    "session_id, state, attempts, error, outputs, cost_ms, priority, created_at, started_at, rendered_at, "
    "delivered_at, finished_at, extra, outputs_cleared_at"
)
_UPDATABLE_MESSAGE_FIELDS = ("progress_message_id", "reply_to_message_id", "request_message_id", "interaction_id")
_GUILD_FIELDS = frozenset(f.name for f in dataclasses.fields(GuildSettings)) - {"guild_id", "role_tiers"}


class _Unset:
    """Marks a keyword that was not given (None is a real value)."""


UNSET: Any = _Unset()

_SESSION_COLUMNS = (
    "id, guild_id, channel_id, thread_id, owner_id, theme, bpm, musical_key, time_signature, model, budget_ms, "
    "state, header_message_id, extra, created_at, ended_at"
)


@dataclasses.dataclass(frozen=True)
class Session:
    """A jam session: a thread where every take shares a tempo, a key and a meter.

    Args:
        id: 8 characters from the job id alphabet.
        guild_id: the server.
        channel_id: the text channel it was started in.
        thread_id: its thread; takes made there belong to it.
        owner_id: who started it.
        theme: what the jam is about (the thread's name).
        bpm: shared tempo, or None.
        key: shared key (e.g. "A minor"), or None.
        time_signature: shared meter (e.g. "4/4"), or None.
        model: default model of its takes, or None (the server's).
        budget: seconds of audio the whole jam may use (None = no jam budget; members' quotas still apply).
        state: ``open`` or ``ended``.
        header_message_id: the pinned header in the thread.
        extra: bookkeeping (the bounce, …), merged by ``update_session``.
    """

    id: str
    guild_id: int | None
    channel_id: int
    thread_id: int
    owner_id: int
    theme: str
    bpm: int | None
    key: str | None
    time_signature: str | None
    model: str | None
    budget: float | None
    state: str
    header_message_id: int | None
    extra: dict[str, Any]
    created_at: datetime
    ended_at: datetime | None

    @property
    def is_open(self) -> bool:
        """Whether takes made in its thread still join it."""
        return self.state == "open"


class SessionNotFound(StoreError):
    """No session has that id (a bug: sessions are looked up by ids the store handed out)."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"jamgen lost track of the jam session `{session_id}`.")
        self.session_id = session_id


class SessionBudgetExceeded(UserInputError):
    """The jam's own budget cannot pay for another take.

    Args:
        budget: the jam's budget in seconds.
        used: seconds its takes have used (refunds deducted).
        cost: seconds the new take would cost.
    """

    def __init__(self, *, budget: float, used: float, cost: float) -> None:
        left = max(0.0, budget - used)
        super().__init__(
            f"This jam has {format_seconds(left)} of its {format_seconds(budget)} budget left and this take needs "
            f"{format_seconds(cost)}. The member who started the jam, or an admin, can raise it with `/session budget`."
        )
        self.budget = budget
        self.used = used
        self.cost = cost


class _Opener:
    """What :meth:`JobStore.open` returns: await it, or use it with ``async with``."""

    def __init__(self, factory: Callable[[], Awaitable[JobStore]]) -> None:
        self._factory = factory
        self._store: JobStore | None = None

    def __await__(self) -> Generator[Any, None, JobStore]:
        return self._factory().__await__()

    async def __aenter__(self) -> JobStore:
        self._store = await self._factory()
        return self._store

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._store is not None:
            await self._store.close()


class JobStore:
    """Jobs, quota and server settings in one SQLite file.

    Open with ``store = await JobStore.open(path)`` or ``async with JobStore.open(path) as store``.
    """

    def __init__(self, db: aiosqlite.Connection, path: Path, clock: Callable[[], datetime], default_budget: float):
        self._db: aiosqlite.Connection | None = db
        self._path = path
        self._clock = clock
        self._lock = _FastLaneLock()
        self.default_budget = default_budget

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        clock: Callable[[], datetime] | None = None,
        default_budget: float = DEFAULT_DAILY_BUDGET,
        busy_timeout: float = schema.DEFAULT_BUSY_TIMEOUT,
    ) -> _Opener:
        """Open (creating folders and file if needed) and migrate the database.

        Sets WAL journaling, ``busy_timeout`` and ``foreign_keys = ON`` on the connection.

        Args:
            path: the database file (``Settings.db_path``).
            clock: returns the current time (default: ``datetime.now(UTC)``); tests pass a fake one.
            default_budget: the global daily budget in seconds (``Settings.daily_budget_seconds``).
            busy_timeout: seconds to wait for another writer before giving up.

        Raises:
            DatabaseTooNew: the file was written by a newer jamgen.
            NotADatabase: the file is not SQLite.
        """

        async def factory() -> JobStore:
            db = await schema.connect(Path(path), create=True, busy_timeout=busy_timeout)
            try:
                await schema.migrate(db, Path(path))
            except BaseException:
                await db.close()
                raise
            return cls(db, Path(path), clock or _utc_now, default_budget)

        return _Opener(factory)

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._db is None:
            return
        async with self._lock.held():
            db, self._db = self._db, None
            if db is not None:
                await db.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def now(self) -> datetime:
        """The store's clock, in UTC."""
        return as_utc(self._clock())

    @asynccontextmanager
    async def _tx(self, *, write: bool = True, urgent: bool = False) -> AsyncIterator[aiosqlite.Connection]:
        """One transaction: IMMEDIATE (write lock up front) for writes, deferred for reads.

        ``urgent`` transactions go before every waiting ordinary one (the engine waits on them).
        """
        async with self._lock.held(urgent=urgent):
            if self._db is None:
                raise StoreError("the job store is closed")
            db = self._db
            try:
                await db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except BaseException as exc:
                # A cancelled BEGIN may still have run in the connection's thread: never leave it open.
                await schema.rollback_quietly(db)
                if isinstance(exc, sqlite3.Error):
                    raise _translate(exc) from exc
                raise
            try:
                yield db
                await db.execute("COMMIT")
            except BaseException as exc:
                await schema.rollback_quietly(db)
                if isinstance(exc, sqlite3.Error):
                    raise _translate(exc) from exc
                raise

    # ------------------------------------------------------------------ submission

    async def submit_job(
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
    ) -> Job:
        """Check, charge and queue a job in one ``BEGIN IMMEDIATE`` transaction.

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
            Blocked: the member or server is on the block list.
            TooManyPending: a pending cap is reached (``scope`` says which).
            QuotaExceeded: today's balance does not cover ``cost``.
            JobNotFound: ``new.parent_id`` names no job.
            SessionBudgetExceeded: ``new.session_id``'s jam budget does not cover ``cost``.
        """
        cost_ms = to_ms(cost)
        if new.takes < 1:
            raise ValueError(f"takes must be at least 1, got {new.takes}")
        params_json = _dump_json(new.params, "params")
        extra_json = _dump_json(new.extra, "extra")
        parent_id = normalize_job_id(new.parent_id) if new.parent_id else None
        now = self.now()
        day = utc_day(now)
        guild_key = new.guild_id or 0
        async with self._tx() as db:
            await _check_blocked(db, new.user_id, new.guild_id)
            # The three caps in one query: each round trip to the database thread costs an event-loop turn.
            counts = _first(
                await db.execute_fetchall(
                    "SELECT coalesce(sum(user_id = ?), 0), coalesce(sum(guild_id IS ?), 0), "
                    "coalesce(sum(state = 'queued'), 0) FROM jobs WHERE state IN ('queued', 'running')",
                    (new.user_id, new.guild_id),
                )
            )
            user_pending, guild_pending, waiting = (int(n) for n in counts) if counts else (0, 0, 0)
            if max_pending_user is not None and user_pending >= max_pending_user:
                raise TooManyPending("user", user_pending, max_pending_user)
            if max_pending_guild is not None and new.guild_id is not None and guild_pending >= max_pending_guild:
                raise TooManyPending("guild", guild_pending, max_pending_guild)
            if max_queue is not None and waiting >= max_queue:
                raise TooManyPending("queue", waiting, max_queue)
            if parent_id is not None and await _count(db, "id = ?", (parent_id,)) == 0:
                raise JobNotFound(parent_id)
            if new.session_id is not None:
                await _check_session_budget(db, new.session_id, cost_ms)
            rule = await self._budget_rule(
                db,
                user_id=new.user_id,
                guild_key=guild_key,
                role_ids=role_ids,
                is_admin=is_admin,
                default_budget=default_budget,
            )
            if rule.budget_ms is not None:
                net_ms = await _net_ms(db, new.user_id, guild_key, day)
                remaining_ms = max(0, rule.budget_ms + net_ms)
                if cost_ms > remaining_ms:
                    raise QuotaExceeded(
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
                    _ts(now),
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
                    _ts(now),
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
            job = await _fetch_job(db, job_id)
        assert job is not None
        log.info("job %s queued for user %s (cost %.3f s, source %s)", job.id, job.user_id, job.cost, rule.source)
        return job

    # ------------------------------------------------------------------ reading jobs

    async def get_job(self, job_id: str) -> Job | None:
        """The job with this id (as typed: case and dashes do not matter), or None.

        Args:
            job_id: the id.
        """
        async with self._tx(write=False) as db:
            return await _fetch_job(db, normalize_job_id(job_id))

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
            JobNotFound: no such job.
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
            raise JobNotFound(wanted)
        return [_row_to_job(row) for row in rows]

    async def queued_jobs(self) -> list[Job]:
        """Every queued job in queue order (submission order; requeued jobs keep their place)."""
        return await self._select_jobs("state = 'queued' ORDER BY seq", ())

    async def jobs_in_state(self, state: JobState) -> list[Job]:
        """Every job in one state, in queue order.

        Args:
            state: the state.
        """
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
            return await _count(db, where, tuple(args))

    async def _select_jobs(self, where_order: str, args: tuple[Any, ...]) -> list[Job]:
        async with self._tx(write=False) as db:
            rows = await db.execute_fetchall(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE {where_order}", args)
            return [_row_to_job(row) for row in rows]

    # ------------------------------------------------------------------ transitions

    async def mark_running(self, job_id: str) -> Job:
        """queued -> running; counts an attempt.

        Args:
            job_id: the job.

        Raises:
            IllegalTransition: the job is not queued.
            JobNotFound: no such job.
        """
        (job,) = await self.mark_batch_running([job_id])
        return job

    async def mark_batch_running(self, job_ids: Sequence[str]) -> list[Job]:
        """queued -> running for every job of one engine call, in one transaction (one disk sync).

        Args:
            job_ids: the jobs, in batch order.

        Raises:
            IllegalTransition: a job is not queued (then none of them moves).
            JobNotFound: no such job.
        """
        now = self.now()
        # Urgent: the engine is idle until this commits, so it does not queue behind bookkeeping writes.
        async with self._tx(urgent=True) as db:
            return [
                await _move_locked(
                    db, job_id, JobState.RUNNING, "attempts = attempts + 1, started_at = ?", (_ts(now),), now=now
                )
                for job_id in job_ids
            ]

    async def requeue(self, job_id: str) -> Job:
        """running -> queued (the engine was interrupted); the job keeps its queue place and attempts.

        Args:
            job_id: the job.
        """
        return await self._move(job_id, JobState.QUEUED, "started_at = NULL", ())

    async def mark_rendered(self, job_id: str, outputs: list[str], extra: Mapping[str, Any] | None = None) -> Job:
        """running -> rendered, with the rendered files.

        Args:
            job_id: the job.
            outputs: paths of the rendered files.
            extra: bookkeeping merged into ``job.extra`` (a None value removes a key).
        """
        now = _ts(self.now())
        return await self._move(
            job_id,
            JobState.RENDERED,
            "outputs = ?, rendered_at = ?",
            (_dump_json([str(p) for p in outputs], "outputs"), now),
            extra=extra,
        )

    async def mark_delivered(self, job_id: str, message_ids: Iterable[int]) -> Job:
        """rendered -> delivered, with the message(s) that carried the track.

        Args:
            job_id: the job.
            message_ids: the delivery message ids.
        """
        now = _ts(self.now())
        ids = _dump_json([int(m) for m in message_ids], "message_ids")
        return await self._move(
            job_id, JobState.DELIVERED, "delivered_message_ids = ?, delivered_at = ?, finished_at = ?", (ids, now, now)
        )

    async def mark_failed(self, job_id: str, error: str, *, refund: bool) -> Job:
        """queued/running/rendered -> failed.

        Args:
            job_id: the job.
            error: the sentence the member sees.
            refund: give the job's cost back (ours to blame); refunds are idempotent.
        """
        now = _ts(self.now())
        return await self._move(
            job_id, JobState.FAILED, "error = ?, finished_at = ?", (error, now), refund=lambda _state: refund
        )

    async def mark_cancelled(self, job_id: str) -> Job:
        """queued/running/rendered -> cancelled; refunded unless it was already rendered.

        Args:
            job_id: the job.
        """
        now = _ts(self.now())
        return await self._move(
            job_id,
            JobState.CANCELLED,
            "finished_at = ?",
            (now,),
            refund=lambda previous: previous is not JobState.RENDERED,
        )

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
        params_json = None if params is None else _dump_json(dict(params), "params")
        if extra:
            _refuse_secrets(extra, "extra")
        wanted = normalize_job_id(job_id)
        async with self._tx() as db:
            job = await _fetch_job(db, wanted)
            if job is None:
                raise JobNotFound(wanted)
            if changes:
                assigns = ", ".join(f"{name} = ?" for name in changes if name in _UPDATABLE_MESSAGE_FIELDS)
                await db.execute(f"UPDATE jobs SET {assigns} WHERE id = ?", (*changes.values(), wanted))
            if params_json is not None:
                await db.execute("UPDATE jobs SET params = ? WHERE id = ?", (params_json, wanted))
            if extra:
                await db.execute(
                    "UPDATE jobs SET extra = ? WHERE id = ?", (_dump_json(_merge(job.extra, extra), "extra"), wanted)
                )
            updated = await _fetch_job(db, wanted)
        assert updated is not None
        return updated

    async def _move(
        self,
        job_id: str,
        target: JobState,
        assigns: str,
        args: tuple[Any, ...],
        *,
        refund: Callable[[JobState], bool] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Job:
        async with self._tx() as db:
            return await _move_locked(db, job_id, target, assigns, args, now=self.now(), refund=refund, extra=extra)

    # ------------------------------------------------------------------ recovery

    async def recover(self, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Recovery:
        """Put the database right after a stop or crash (call once at start-up, before the worker runs).

        Running jobs go back to the queue (their attempt was counted by ``mark_running``),
        or fail with a refund once they have had ``max_attempts`` attempts. Rendered jobs
        come back for delivery. Delivered jobs are never touched.

        Args:
            max_attempts: tries per job (``Settings.max_attempts``).
        """
        now = self.now()
        interrupted: list[str] = []
        failed_ids: list[str] = []
        async with self._tx() as db:
            rows = await db.execute_fetchall("SELECT id, attempts FROM jobs WHERE state = 'running' ORDER BY seq")
            for row in rows:
                if row["attempts"] >= max_attempts:
                    await db.execute(
                        "UPDATE jobs SET state = 'failed', error = ?, finished_at = ? WHERE id = ?",
                        (_interrupted_message(row["attempts"]), _ts(now), row["id"]),
                    )
                    await _refund_locked(db, row["id"], now)
                    failed_ids.append(row["id"])
                else:
                    await db.execute("UPDATE jobs SET state = 'queued', started_at = NULL WHERE id = ?", (row["id"],))
                    interrupted.append(row["id"])
            requeued = await _jobs_where(db, "state = 'queued' ORDER BY seq", ())
            redeliver = await _jobs_where(db, "state = 'rendered' ORDER BY seq", ())
            failed = [job for job_id in failed_ids if (job := await _fetch_job(db, job_id)) is not None]
        if interrupted or failed_ids:
            log.warning(
                "recovery: %d jobs requeued, %d given up after %d attempts",
                len(interrupted),
                len(failed_ids),
                max_attempts,
            )
        return Recovery(requeued=requeued, redeliver=redeliver, failed=failed, interrupted_ids=interrupted)

    # ------------------------------------------------------------------ quota

    async def quota_status(
        self,
        user_id: int,
        guild_id: int | None,
        role_ids: Iterable[int] = (),
        *,
        is_admin: bool = False,
        default_budget: float | None = None,
    ) -> QuotaStatus:
        """A member's quota for the current UTC day.

        Args:
            user_id: the member.
            guild_id: the server (None in DMs).
            role_ids: the member's role ids, for role tiers.
            is_admin: bot admins are unlimited.
            default_budget: the global daily budget in seconds (default: the store's).
        """
        now = self.now()
        day = utc_day(now)
        guild_key = guild_id or 0
        async with self._tx(write=False) as db:
            rule = await self._budget_rule(
                db,
                user_id=user_id,
                guild_key=guild_key,
                role_ids=role_ids,
                is_admin=is_admin,
                default_budget=default_budget,
            )
            rows = await db.execute_fetchall(
                "SELECT coalesce(sum(CASE WHEN kind = 'grant' THEN amount_ms END), 0) AS granted, "
                "coalesce(sum(amount_ms), 0) AS net FROM quota_ledger WHERE user_id = ? AND guild_id = ? AND day = ?",
                (user_id, guild_key, day),
            )
            row = _first(rows)
        granted_ms, net_ms = (int(row["granted"]), int(row["net"])) if row else (0, 0)
        used_ms = granted_ms - net_ms
        if rule.budget_ms is None:
            budget, remaining = float("inf"), float("inf")
        else:
            budget, remaining = from_ms(rule.budget_ms), from_ms(max(0, rule.budget_ms + net_ms))
        return QuotaStatus(
            budget=budget,
            used=from_ms(used_ms),
            granted=from_ms(granted_ms),
            remaining=remaining,
            resets_at=next_reset(now),
            unlimited=rule.budget_ms is None,
            source=rule.source,
            day=day,
        )

    async def grant(
        self, user_id: int, guild_id: int | None, seconds: float, by: int | None = None, note: str | None = None
    ) -> None:
        """Give a member extra seconds for the current UTC day (a ``grant`` ledger row).

        Args:
            user_id: the member.
            guild_id: the server (None for DMs).
            seconds: how many seconds (> 0).
            by: who granted them.
            note: why.
        """
        amount_ms = to_ms(seconds)
        if amount_ms <= 0:
            raise ValueError("a grant must be more than 0 seconds")
        now = self.now()
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO quota_ledger (user_id, guild_id, day, kind, amount_ms, actor_id, note, created_at) "
                "VALUES (?, ?, ?, 'grant', ?, ?, ?, ?)",
                (user_id, guild_id or 0, utc_day(now), amount_ms, by, note, _ts(now)),
            )

    async def set_user_budget(self, user_id: int, guild_id: int | None, seconds: float | None) -> None:
        """Override a member's daily budget in one server (None removes the override).

        Args:
            user_id: the member.
            guild_id: the server (None for DMs).
            seconds: the new daily budget, or None.
        """
        budget_ms = None if seconds is None else to_ms(seconds)
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO member_quota (user_id, guild_id, budget_ms) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id, guild_id) DO UPDATE SET budget_ms = excluded.budget_ms",
                (user_id, guild_id or 0, budget_ms),
            )

    async def set_unlimited(self, user_id: int, guild_id: int | None, unlimited: bool) -> None:
        """Switch a member's unlimited flag in one server.

        Args:
            user_id: the member.
            guild_id: the server (None for DMs).
            unlimited: never refuse this member for quota.
        """
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO member_quota (user_id, guild_id, unlimited) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id, guild_id) DO UPDATE SET unlimited = excluded.unlimited",
                (user_id, guild_id or 0, int(unlimited)),
            )

    async def reset_quota(self, user_id: int, guild_id: int | None, by: int | None = None) -> float:
        """Give back everything a member used today with one ``reset`` row (grants stay).

        Args:
            user_id: the member.
            guild_id: the server (None for DMs).
            by: who reset it.

        Returns:
            the seconds given back.
        """
        now = self.now()
        day = utc_day(now)
        guild_key = guild_id or 0
        async with self._tx() as db:
            rows = await db.execute_fetchall(
                "SELECT coalesce(sum(amount_ms), 0) FROM quota_ledger "
                "WHERE user_id = ? AND guild_id = ? AND day = ? AND kind <> 'grant'",
                (user_id, guild_key, day),
            )
            row = _first(rows)
            used_ms = -int(row[0]) if row else 0
            if used_ms <= 0:
                return 0.0
            await db.execute(
                "INSERT INTO quota_ledger (user_id, guild_id, day, kind, amount_ms, actor_id, created_at) "
                "VALUES (?, ?, ?, 'reset', ?, ?, ?)",
                (user_id, guild_key, day, used_ms, by, _ts(now)),
            )
        return from_ms(used_ms)

    async def refund(self, job_id: str) -> float:
        """Give a job's cost back, once: a second call refunds nothing.

        Args:
            job_id: the job.

        Returns:
            the seconds refunded by this call (0 when it was refunded before).
        """
        wanted = normalize_job_id(job_id)
        async with self._tx() as db:
            if await _count(db, "id = ?", (wanted,)) == 0:
                raise JobNotFound(wanted)
            return from_ms(await _refund_locked(db, wanted, self.now()))

    async def ledger(self, user_id: int, guild_id: int | None, *, day: str | None = None) -> list[LedgerEntry]:
        """A member's ledger rows in one server, oldest first.

        Args:
            user_id: the member.
            guild_id: the server (None for DMs).
            day: only rows that count against this UTC day (``YYYY-MM-DD``).
        """
        where, args = "user_id = ? AND guild_id = ?", [user_id, guild_id or 0]
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
                created_at=_parse_ts(row["created_at"]),
            )
            for row in rows
        ]

    async def _budget_rule(
        self,
        db: aiosqlite.Connection,
        *,
        user_id: int,
        guild_key: int,
        role_ids: Iterable[int],
        is_admin: bool,
        default_budget: float | None,
    ) -> BudgetRule:
        default_ms = to_ms(self.default_budget if default_budget is None else default_budget)
        rows = await db.execute_fetchall(
            "SELECT budget_ms, unlimited FROM member_quota WHERE user_id = ? AND guild_id = ?", (user_id, guild_key)
        )
        member = _first(rows)
        roles = sorted({int(r) for r in role_ids})
        tiers: list[int] = []
        guild_default_ms = None
        if guild_key:
            if roles:
                marks = ", ".join("?" for _ in roles)
                rows = await db.execute_fetchall(
                    f"SELECT budget_ms FROM role_tiers WHERE guild_id = ? AND role_id IN ({marks})", (guild_key, *roles)
                )
                tiers = [int(row[0]) for row in rows]
            rows = await db.execute_fetchall(
                "SELECT default_budget_ms FROM guild_settings WHERE guild_id = ?", (guild_key,)
            )
            row = _first(rows)
            guild_default_ms = row[0] if row else None
        return resolve_budget(
            default_ms=default_ms,
            guild_default_ms=guild_default_ms,
            tier_ms=tiers,
            user_override_ms=member["budget_ms"] if member else None,
            user_unlimited=bool(member["unlimited"]) if member else False,
            is_admin=is_admin,
        )

    # ------------------------------------------------------------------ server settings and blocks

    async def get_guild_settings(self, guild_id: int) -> GuildSettings:
        """A server's settings (all defaults when it never changed any).

        Args:
            guild_id: the server.
        """
        async with self._tx(write=False) as db:
            return await _guild_settings(db, guild_id)

    async def update_guild_settings(self, guild_id: int, **changes: Any) -> GuildSettings:
        """Change some of a server's settings (see :class:`GuildSettings` for the names).

        Args:
            guild_id: the server.
            **changes: field name -> new value (None resets a value to the global setting).

        Raises:
            TypeError: for a name that is not a setting.
        """
        unknown = set(changes) - _GUILD_FIELDS
        if unknown:
            raise TypeError(f"unknown server settings: {', '.join(sorted(unknown))}")
        async with self._tx() as db:
            current = await _guild_settings(db, guild_id)
            merged = dataclasses.replace(current, **changes)
            await db.execute(
                "INSERT INTO guild_settings (guild_id, allowed_channel_ids, default_model, enabled_models, "
                "max_duration, max_takes, remix_by_reply, default_budget_ms, updated_at, remix_mode) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id) DO UPDATE SET "
                "allowed_channel_ids = excluded.allowed_channel_ids, default_model = excluded.default_model, "
                "enabled_models = excluded.enabled_models, max_duration = excluded.max_duration, "
                "max_takes = excluded.max_takes, remix_by_reply = excluded.remix_by_reply, "
                "default_budget_ms = excluded.default_budget_ms, updated_at = excluded.updated_at, "
                "remix_mode = excluded.remix_mode",
                (
                    guild_id,
                    _dump_json(sorted({int(c) for c in merged.allowed_channel_ids}), "allowed_channel_ids"),
                    merged.default_model,
                    _dump_json(list(dict.fromkeys(str(m) for m in merged.enabled_models)), "enabled_models"),
                    None if merged.max_duration is None else int(merged.max_duration),
                    None if merged.max_takes is None else int(merged.max_takes),
                    int(bool(merged.remix_by_reply)),
                    None if merged.default_budget is None else to_ms(merged.default_budget),
                    _ts(self.now()),
                    merged.remix_mode,
                ),
            )
            return await _guild_settings(db, guild_id)

    async def set_role_tier(self, guild_id: int, role_id: int, seconds: float | None) -> None:
        """Give members with a role this daily budget in a server (None removes the tier).

        Args:
            guild_id: the server.
            role_id: the role.
            seconds: the daily budget, or None.
        """
        async with self._tx() as db:
            if seconds is None:
                await db.execute("DELETE FROM role_tiers WHERE guild_id = ? AND role_id = ?", (guild_id, role_id))
            else:
                await db.execute(
                    "INSERT INTO role_tiers (guild_id, role_id, budget_ms) VALUES (?, ?, ?) "
                    "ON CONFLICT (guild_id, role_id) DO UPDATE SET budget_ms = excluded.budget_ms",
                    (guild_id, role_id, to_ms(seconds)),
                )

    async def block(self, kind: str, target_id: int, reason: str = "") -> None:
        """Put a user or a whole server on the block list.

        Args:
            kind: ``user`` or ``guild``.
            target_id: the user or server id.
            reason: an admin's note (never shown to the member).
        """
        _check_kind(kind)
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO blocks (kind, target_id, reason, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (kind, target_id) DO UPDATE SET reason = excluded.reason",
                (kind, target_id, reason, _ts(self.now())),
            )

    async def unblock(self, kind: str, target_id: int) -> bool:
        """Take a user or server off the block list.

        Args:
            kind: ``user`` or ``guild``.
            target_id: the id.

        Returns:
            whether it was blocked.
        """
        _check_kind(kind)
        async with self._tx() as db:
            cursor = await db.execute("DELETE FROM blocks WHERE kind = ? AND target_id = ?", (kind, target_id))
            return cursor.rowcount > 0

    async def is_blocked(self, user_id: int, guild_id: int | None) -> bool:
        """Whether the member or the server is on the block list.

        Args:
            user_id: the member.
            guild_id: the server (None in DMs).
        """
        try:
            async with self._tx(write=False) as db:
                await _check_blocked(db, user_id, guild_id)
        except Blocked:
            return True
        return False

    async def list_blocks(self) -> list[BlockEntry]:
        """The whole block list, oldest first."""
        async with self._tx(write=False) as db:
            rows = await db.execute_fetchall("SELECT * FROM blocks ORDER BY created_at, kind, target_id")
        return [BlockEntry(r["kind"], r["target_id"], r["reason"], _parse_ts(r["created_at"])) for r in rows]

    # ------------------------------------------------------------------ ETA statistics

    async def record_step_time(
        self, model: str, batch_size: int, seconds_per_step: float, *, weight: float = ETA_WEIGHT
    ) -> float:
        """Fold one measurement into the moving average of seconds per generation step.

        Args:
            model: registry model name.
            batch_size: requests in the batch.
            seconds_per_step: the measured time per step.
            weight: how much the new measurement counts (0-1).

        Returns:
            the new average.
        """
        if batch_size < 1 or not seconds_per_step >= 0 or not 0 < weight <= 1:
            raise ValueError("batch_size must be >= 1, seconds_per_step >= 0 and weight in (0, 1]")
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO eta_stats (model, batch_size, seconds_per_step, samples, updated_at) "
                "VALUES (?, ?, ?, 1, ?) ON CONFLICT (model, batch_size) DO UPDATE SET "
                "seconds_per_step = eta_stats.seconds_per_step * (1 - ?) + excluded.seconds_per_step * ?, "
                "samples = eta_stats.samples + 1, updated_at = excluded.updated_at",
                (model, batch_size, float(seconds_per_step), _ts(self.now()), weight, weight),
            )
            value = await _step_time(db, model, batch_size)
        assert value is not None
        return value

    async def step_time(self, model: str, batch_size: int) -> float | None:
        """The average seconds per step for a model and batch size, or None before any measurement.

        Args:
            model: registry model name.
            batch_size: requests in the batch.
        """
        async with self._tx(write=False) as db:
            return await _step_time(db, model, batch_size)

    # ------------------------------------------------------------------ retention

    async def outputs_older_than(self, days: float) -> list[tuple[str, list[str]]]:
        """Finished jobs whose files were rendered more than ``days`` ago and still exist on record.

        Rendered-but-undelivered jobs are left alone (their delivery may still be retried).

        Args:
            days: age in days.
        """
        cutoff = _ts(self.now() - timedelta(days=days))
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
                "UPDATE jobs SET outputs = '[]', outputs_cleared_at = ? WHERE id = ?", (_ts(self.now()), wanted)
            )
            if cursor.rowcount == 0:
                raise JobNotFound(wanted)

    # ------------------------------------------------------------------ jam sessions

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
        now = _ts(self.now())
        async with self._tx() as db:
            while True:
                session_id = new_job_id()
                rows = await db.execute_fetchall("SELECT 1 FROM sessions WHERE id = ?", (session_id,))
                if _first(rows) is None:
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
            SessionNotFound: no such session.
        """
        wanted = normalize_job_id(session_id)
        if extra:
            _refuse_secrets(extra, "session extra")
        async with self._tx() as db:
            session = await _fetch_session(db, "id = ?", (wanted,))
            if session is None:
                raise SessionNotFound(wanted)
            if header_message_id is not UNSET:
                await db.execute("UPDATE sessions SET header_message_id = ? WHERE id = ?", (header_message_id, wanted))
            if budget is not UNSET:
                budget_ms = None if budget is None else to_ms(budget)
                await db.execute("UPDATE sessions SET budget_ms = ? WHERE id = ?", (budget_ms, wanted))
            if extra:
                merged = _dump_json(_merge(session.extra, extra), "session extra")
                await db.execute("UPDATE sessions SET extra = ? WHERE id = ?", (merged, wanted))
            updated = await _fetch_session(db, "id = ?", (wanted,))
        assert updated is not None
        return updated

    async def end_session(self, session_id: str) -> tuple[Session, bool]:
        """open -> ended (idempotent).

        Args:
            session_id: the session.

        Returns:
            the session, and whether this call ended it (False when it had ended before).

        Raises:
            SessionNotFound: no such session.
        """
        wanted = normalize_job_id(session_id)
        async with self._tx() as db:
            cursor = await db.execute(
                "UPDATE sessions SET state = 'ended', ended_at = ? WHERE id = ? AND state = 'open'",
                (_ts(self.now()), wanted),
            )
            ended = cursor.rowcount == 1
            session = await _fetch_session(db, "id = ?", (wanted,))
        if session is None:
            raise SessionNotFound(wanted)
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
            row = _first(rows)
            if row is None:
                return None
            job_id = str(row[0])
            if add:
                await db.execute(
                    "INSERT OR IGNORE INTO take_reactions (message_id, user_id, emoji, job_id, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (message_id, user_id, emoji[:64], job_id, _ts(self.now())),
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


# ---------------------------------------------------------------------- helpers


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _ts(moment: datetime) -> str:
    """Timestamps are stored as ISO 8601 text in UTC with microseconds, so they sort as text."""
    return as_utc(moment).isoformat(timespec="microseconds")


def _parse_ts(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _translate(exc: sqlite3.Error) -> StoreError:
    message = str(exc).lower()
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in message or "busy" in message):
        log.warning("database busy: %s", exc)
        return StoreBusy()
    log.error("database error: %s", exc)
    return StoreError()


def _dump_json(value: Any, what: str) -> str:
    _refuse_secrets(value, what)
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON-serialisable: {exc}") from None


def _refuse_secrets(value: Any, where: str) -> None:
    """Refuse anything that looks like a Discord token before it reaches the disk."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if "token" in str(key).lower():
                raise SecretRefused(f"refusing to store the key {key!r} in {where}: tokens never go to disk")
            _refuse_secrets(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_secrets(item, where)
    elif isinstance(value, str) and value.startswith(_INTERACTION_TOKEN_PREFIX):
        raise SecretRefused(f"refusing to store an interaction token in {where}: tokens never go to disk")


def _merge(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _prefixed(table: str) -> str:
    return ", ".join(f"{table}.{name.strip()}" for name in _JOB_COLUMNS.split(","))


def _row_to_job(row: sqlite3.Row) -> Job:
    created = _parse_ts(row["created_at"])
    assert created is not None
    return Job(
        id=row["id"],
        seq=row["seq"],
        user_id=row["user_id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        mode=row["mode"],
        model=row["model"],
        prompt=row["prompt"],
        params=json.loads(row["params"]),
        takes=row["takes"],
        seed=row["seed"],
        parent_id=row["parent_id"],
        session_id=row["session_id"],
        state=JobState(row["state"]),
        attempts=row["attempts"],
        error=row["error"],
        outputs=list(json.loads(row["outputs"])),
        cost=from_ms(row["cost_ms"]),
        priority=row["priority"],
        interaction_id=row["interaction_id"],
        request_message_id=row["request_message_id"],
        reply_to_message_id=row["reply_to_message_id"],
        progress_message_id=row["progress_message_id"],
        delivered_message_ids=list(json.loads(row["delivered_message_ids"])),
        extra=json.loads(row["extra"]),
        created_at=created,
        started_at=_parse_ts(row["started_at"]),
        rendered_at=_parse_ts(row["rendered_at"]),
        delivered_at=_parse_ts(row["delivered_at"]),
        finished_at=_parse_ts(row["finished_at"]),
        outputs_cleared_at=_parse_ts(row["outputs_cleared_at"]),
    )


async def _fetch_job(db: aiosqlite.Connection, job_id: str) -> Job | None:
    rows = await db.execute_fetchall(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
    row = _first(rows)
    return None if row is None else _row_to_job(row)


class _FastLaneLock:
    """An asyncio lock with two queues of waiters: urgent ones are served first, each queue in order."""

    def __init__(self) -> None:
        self._locked = False
        self._waiters: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (deque(), deque())

    @asynccontextmanager
    async def held(self, *, urgent: bool = False) -> AsyncIterator[None]:
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, urgent: bool) -> None:
        if not self._locked:
            self._locked = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._waiters[0 if urgent else 1]
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # handed the lock just as it was cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):  # already dropped by _release
                    queue.remove(waiter)
            raise

    def _release(self) -> None:
        # The lock passes straight to the next waiter, so nobody can slip in between.
        for queue in self._waiters:
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._locked = False


async def _move_locked(
    db: aiosqlite.Connection,
    job_id: str,
    target: JobState,
    assigns: str,
    args: tuple[Any, ...],
    *,
    now: datetime,
    refund: Callable[[JobState], bool] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Job:
    """One state change inside an open transaction; ``now`` dates a refund."""
    wanted = normalize_job_id(job_id)
    job = await _fetch_job(db, wanted)
    if job is None:
        raise JobNotFound(wanted)
    if job.state not in ALLOWED_FROM[target]:
        raise IllegalTransition(wanted, job.state, target)
    await db.execute(f"UPDATE jobs SET state = ?, {assigns} WHERE id = ?", (str(target), *args, wanted))
    if extra:
        await db.execute(
            "UPDATE jobs SET extra = ? WHERE id = ?", (_dump_json(_merge(job.extra, extra), "extra"), wanted)
        )
    if refund is not None and refund(job.state):
        await _refund_locked(db, wanted, now)
    moved = await _fetch_job(db, wanted)
    assert moved is not None
    log.debug("job %s: %s -> %s", wanted, job.state, target)
    return moved


def _first(rows: Iterable[sqlite3.Row]) -> sqlite3.Row | None:
    return next(iter(rows), None)


async def _jobs_where(db: aiosqlite.Connection, where_order: str, args: tuple[Any, ...]) -> list[Job]:
    rows = await db.execute_fetchall(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE {where_order}", args)
    return [_row_to_job(row) for row in rows]


async def _count(db: aiosqlite.Connection, where: str, args: tuple[Any, ...]) -> int:
    rows = await db.execute_fetchall(f"SELECT count(*) FROM jobs WHERE {where}", args)
    row = _first(rows)
    return int(row[0]) if row else 0


async def _net_ms(db: aiosqlite.Connection, user_id: int, guild_key: int, day: str) -> int:
    rows = await db.execute_fetchall(
        "SELECT coalesce(sum(amount_ms), 0) FROM quota_ledger WHERE user_id = ? AND guild_id = ? AND day = ?",
        (user_id, guild_key, day),
    )
    row = _first(rows)
    return int(row[0]) if row else 0


async def _fresh_id(db: aiosqlite.Connection) -> str:
    while True:  # a collision is a one-in-10^11 event; the write lock makes the check safe
        candidate = new_job_id()
        if await _count(db, "id = ?", (candidate,)) == 0:
            return candidate


async def _refund_locked(db: aiosqlite.Connection, job_id: str, now: datetime) -> int:
    """Write the job's refund row unless it exists; it counts against the debit's own day."""
    rows = await db.execute_fetchall(
        "SELECT user_id, guild_id, day, amount_ms FROM quota_ledger WHERE job_id = ? AND kind = 'debit'", (job_id,)
    )
    debit = _first(rows)
    if debit is None:
        return 0
    rows = await db.execute_fetchall("SELECT 1 FROM quota_ledger WHERE job_id = ? AND kind = 'refund'", (job_id,))
    if _first(rows) is not None:
        return 0
    amount_ms = -int(debit["amount_ms"])
    await db.execute(
        "INSERT INTO quota_ledger (user_id, guild_id, day, kind, amount_ms, job_id, created_at) "
        "VALUES (?, ?, ?, 'refund', ?, ?, ?)",
        (debit["user_id"], debit["guild_id"], debit["day"], amount_ms, job_id, _ts(now)),
    )
    return amount_ms


async def _check_blocked(db: aiosqlite.Connection, user_id: int, guild_id: int | None) -> None:
    rows = await db.execute_fetchall(
        "SELECT kind, reason FROM blocks WHERE (kind = 'user' AND target_id = ?) OR (kind = 'guild' AND target_id = ?) "
        "ORDER BY kind DESC",
        (user_id, -1 if guild_id is None else guild_id),
    )
    row = _first(rows)
    if row is not None:
        raise Blocked(row["kind"], row["reason"])


async def _guild_settings(db: aiosqlite.Connection, guild_id: int) -> GuildSettings:
    rows = await db.execute_fetchall(
        "SELECT role_id, budget_ms FROM role_tiers WHERE guild_id = ? ORDER BY role_id", (guild_id,)
    )
    tiers = {int(row["role_id"]): from_ms(row["budget_ms"]) for row in rows}
    rows = await db.execute_fetchall("SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,))
    row = _first(rows)
    if row is None:
        return GuildSettings(guild_id=guild_id, role_tiers=tiers)
    return GuildSettings(
        guild_id=guild_id,
        allowed_channel_ids=tuple(json.loads(row["allowed_channel_ids"])),
        default_model=row["default_model"],
        enabled_models=tuple(json.loads(row["enabled_models"])),
        max_duration=row["max_duration"],
        max_takes=row["max_takes"],
        remix_by_reply=bool(row["remix_by_reply"]),
        default_budget=None if row["default_budget_ms"] is None else from_ms(row["default_budget_ms"]),
        role_tiers=tiers,
        remix_mode=row["remix_mode"],
    )


async def _step_time(db: aiosqlite.Connection, model: str, batch_size: int) -> float | None:
    rows = await db.execute_fetchall(
        "SELECT seconds_per_step FROM eta_stats WHERE model = ? AND batch_size = ?", (model, batch_size)
    )
    row = _first(rows)
    return None if row is None else float(row[0])


def _check_kind(kind: str) -> None:
    if kind not in ("user", "guild"):
        raise ValueError(f"block kind must be 'user' or 'guild', got {kind!r}")


def _interrupted_message(attempts: int) -> str:
    return (
        f"This track was interrupted {attempts} times while it was being made, so jamgen gave up on it. "
        "Its seconds were given back to your quota."
    )


def _row_to_session(row: sqlite3.Row) -> Session:
    created = _parse_ts(row["created_at"])
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
        ended_at=_parse_ts(row["ended_at"]),
    )


async def _fetch_session(db: aiosqlite.Connection, where: str, args: tuple[Any, ...]) -> Session | None:
    rows = await db.execute_fetchall(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE {where}", args)
    row = _first(rows)
    return None if row is None else _row_to_session(row)


async def _session_used_ms(db: aiosqlite.Connection, session_id: str) -> int:
    rows = await db.execute_fetchall(
        "SELECT coalesce(-sum(quota_ledger.amount_ms), 0) FROM quota_ledger JOIN jobs ON jobs.id = quota_ledger.job_id "
        "WHERE jobs.session_id = ? AND quota_ledger.kind IN ('debit', 'refund')",
        (session_id,),
    )
    row = _first(rows)
    return int(row[0]) if row else 0


async def _check_session_budget(db: aiosqlite.Connection, session_id: str, cost_ms: int) -> None:
    """Refuse a take its jam's own budget cannot pay for (no jam budget, or no such session: nothing to check)."""
    rows = await db.execute_fetchall("SELECT budget_ms FROM sessions WHERE id = ?", (session_id,))
    row = _first(rows)
    if row is None or row[0] is None:
        return
    used_ms = await _session_used_ms(db, session_id)
    if used_ms + cost_ms > int(row[0]):
        raise SessionBudgetExceeded(budget=from_ms(int(row[0])), used=from_ms(used_ms), cost=from_ms(cost_ms))
