"""The job state machine: transitions (see ``ALLOWED_FROM``) and recovery after a stop or crash."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

from bot.store.base import StoreBase
from bot.store.errors import IllegalTransitionError, JobNotFoundError
from bot.store.ids import normalize_job_id
from bot.store.ledger import refund_locked
from bot.store.models import ALLOWED_FROM, Job, JobState, Recovery
from bot.store.rows import dump_json, fetch_job, jobs_where, merge_extra, ts

log = logging.getLogger("jamgen.store")

DEFAULT_MAX_ATTEMPTS = 2


class _NotAllQueuedError(Exception):
    """Inside a batch start: a job was not queued (the transaction rolls back, then the error is found)."""


@dataclass(eq=False)
class _BatchStart:
    """One batch waiting to start, and where its started jobs (or its error) go."""

    job_ids: list[str]
    started: asyncio.Future[list[Job]]


class StatesMixin(StoreBase):
    """Job state transition and recovery methods of :class:`~bot.store.JobStore`."""

    _batch_starts: list[_BatchStart]

    # ------------------------------------------------------------------ transitions

    async def mark_running(self, job_id: str) -> Job:
        """queued -> running; counts an attempt.

        Args:
            job_id: the job.

        Raises:
            IllegalTransitionError: the job is not queued.
            JobNotFoundError: no such job.
        """
        (job,) = await self.mark_batch_running([job_id])
        return job

    async def mark_batch_running(self, job_ids: Sequence[str]) -> list[Job]:
        """queued -> running for every job of one engine call, in one transaction (one disk sync).

        An engine waits on this, so it is one UPDATE and one SELECT whatever the batch's size, and
        batches that start at the same moment (engines that finished together) share one
        transaction: whoever gets the store's lock starts every batch waiting for it.

        Args:
            job_ids: the jobs, in batch order.

        Raises:
            IllegalTransitionError: a job is not queued (then none of the batch's jobs moves).
            JobNotFoundError: no such job.
        """
        wanted = [normalize_job_id(job_id) for job_id in job_ids]
        if len(set(wanted)) != len(wanted):
            raise ValueError("a job cannot be twice in one batch")
        mine = _BatchStart(wanted, asyncio.get_running_loop().create_future())
        self._batch_starts.append(mine)
        try:
            # Urgent: the engine is idle until this commits, so it does not queue behind bookkeeping writes.
            async with self._lock.held(urgent=True):
                if not mine.started.done():
                    group = [mine, *(start for start in self._batch_starts if start is not mine)]
                    self._batch_starts.clear()
                    await self._start_batches(group)
        finally:
            if mine in self._batch_starts:  # cancelled while waiting: start nothing of it
                self._batch_starts.remove(mine)
        return mine.started.result()

    async def _start_batches(self, group: list[_BatchStart]) -> None:
        """Start a group of batches in one transaction, or each alone when one of them cannot start."""
        if len(group) > 1:
            with contextlib.suppress(_NotAllQueuedError):
                started = await self._start_jobs_locked([job_id for start in group for job_id in start.job_ids])
                for start in group:
                    start.started.set_result([started[job_id] for job_id in start.job_ids])
                return
        for start in group:
            try:
                started = await self._start_jobs_locked(start.job_ids)
            except _NotAllQueuedError:
                start.started.set_exception(await self._refusal_locked(start.job_ids))
            except Exception as exc:
                start.started.set_exception(exc)
            else:
                start.started.set_result([started[job_id] for job_id in start.job_ids])

    async def _start_jobs_locked(self, job_ids: list[str]) -> dict[str, Job]:
        now = self.now()
        marks = ", ".join("?" * len(job_ids))
        async with self._tx_held() as db:
            cursor = await db.execute(
                "UPDATE jobs SET state = ?, attempts = attempts + 1, started_at = ? "
                f"WHERE id IN ({marks}) AND state = ?",
                (str(JobState.RUNNING), ts(now), *job_ids, str(JobState.QUEUED)),
            )
            if cursor.rowcount != len(job_ids):
                raise _NotAllQueuedError  # rolls back
            started = {job.id: job for job in await jobs_where(db, f"id IN ({marks})", tuple(job_ids))}
        for job_id in job_ids:
            log.debug("job %s: queued -> running", job_id)
        return started

    async def _refusal_locked(self, job_ids: list[str]) -> Exception:
        """The error that says which job of a batch that could not start was not queued."""
        async with self._tx_held(write=False) as db:
            jobs = {
                job.id: job for job in await jobs_where(db, f"id IN ({', '.join('?' * len(job_ids))})", tuple(job_ids))
            }
        for job_id in job_ids:
            if job_id not in jobs:
                return JobNotFoundError(job_id)
            if jobs[job_id].state is not JobState.QUEUED:
                return IllegalTransitionError(job_id, jobs[job_id].state, JobState.RUNNING)
        return IllegalTransitionError(job_ids[0], JobState.QUEUED, JobState.RUNNING)  # moved back meanwhile

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
        now = ts(self.now())
        return await self._move(
            job_id,
            JobState.RENDERED,
            "outputs = ?, rendered_at = ?",
            (dump_json([str(p) for p in outputs], "outputs"), now),
            extra=extra,
        )

    async def mark_delivered(self, job_id: str, message_ids: Iterable[int]) -> Job:
        """rendered -> delivered, with the message(s) that carried the track.

        Args:
            job_id: the job.
            message_ids: the delivery message ids.
        """
        now = ts(self.now())
        ids = dump_json([int(m) for m in message_ids], "message_ids")
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
        now = ts(self.now())
        return await self._move(
            job_id, JobState.FAILED, "error = ?, finished_at = ?", (error, now), refund=lambda _state: refund
        )

    async def mark_cancelled(self, job_id: str) -> Job:
        """queued/running/rendered -> cancelled; refunded unless it was already rendered.

        Args:
            job_id: the job.
        """
        now = ts(self.now())
        return await self._move(
            job_id,
            JobState.CANCELLED,
            "finished_at = ?",
            (now,),
            refund=lambda previous: previous is not JobState.RENDERED,
        )

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
                        (_interrupted_message(row["attempts"]), ts(now), row["id"]),
                    )
                    await refund_locked(db, row["id"], now)
                    failed_ids.append(row["id"])
                else:
                    await db.execute("UPDATE jobs SET state = 'queued', started_at = NULL WHERE id = ?", (row["id"],))
                    interrupted.append(row["id"])
            requeued = await jobs_where(db, "state = 'queued' ORDER BY seq", ())
            redeliver = await jobs_where(db, "state = 'rendered' ORDER BY seq", ())
            failed = [job for job_id in failed_ids if (job := await fetch_job(db, job_id)) is not None]
        if interrupted or failed_ids:
            log.warning(
                "recovery: %d jobs requeued, %d given up after %d attempts",
                len(interrupted),
                len(failed_ids),
                max_attempts,
            )
        return Recovery(requeued=requeued, redeliver=redeliver, failed=failed, interrupted_ids=interrupted)


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
    job = await fetch_job(db, wanted)
    if job is None:
        raise JobNotFoundError(wanted)
    if job.state not in ALLOWED_FROM[target]:
        raise IllegalTransitionError(wanted, job.state, target)
    await db.execute(f"UPDATE jobs SET state = ?, {assigns} WHERE id = ?", (str(target), *args, wanted))
    if extra:
        await db.execute(
            "UPDATE jobs SET extra = ? WHERE id = ?", (dump_json(merge_extra(job.extra, extra), "extra"), wanted)
        )
    if refund is not None and refund(job.state):
        await refund_locked(db, wanted, now)
    moved = await fetch_job(db, wanted)
    assert moved is not None
    log.debug("job %s: %s -> %s", wanted, job.state, target)
    return moved


def _interrupted_message(attempts: int) -> str:
    return (
        f"This track was interrupted {attempts} times while it was being made, so jamgen gave up on it. "
        "Its seconds were given back to your quota."
    )
