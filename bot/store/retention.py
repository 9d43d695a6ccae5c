"""Deleting old output files on a schedule; the jobs and their recipes stay in the database."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from bot.store.store import JobStore

log = logging.getLogger("jamgen.store.retention")

RemoveFiles = Callable[[Sequence[str]], Awaitable[None]]


async def delete_files(paths: Sequence[str]) -> None:
    """Delete files in a worker thread; files already gone are fine.

    Args:
        paths: the files.
    """

    def remove_all() -> None:
        for path in paths:
            Path(path).unlink(missing_ok=True)

    await asyncio.to_thread(remove_all)


async def sweep_outputs(store: JobStore, days: float, *, remove: RemoveFiles = delete_files) -> int:
    """Delete the files of jobs rendered more than ``days`` ago and forget their paths.

    A job whose files cannot be deleted keeps its paths and is tried again next sweep.

    Args:
        store: the job store.
        days: keep files this many days (``Settings.retention_days``).
        remove: deletes a job's files (default: :func:`delete_files`).

    Returns:
        how many jobs had their files removed.
    """
    cleared = 0
    for job_id, paths in await store.outputs_older_than(days):
        try:
            await remove(paths)
        except OSError as exc:
            log.warning("could not delete the files of job %s: %s", job_id, exc)
            continue
        await store.clear_outputs(job_id)
        cleared += 1
    if cleared:
        log.info("retention: deleted the files of %d jobs older than %s days", cleared, days)
    return cleared


async def run_retention(store: JobStore, days: float, interval: float, *, remove: RemoveFiles = delete_files) -> None:
    """Sweep now and then every ``interval`` seconds until cancelled (run it as a task).

    Args:
        store: the job store.
        days: keep files this many days.
        interval: seconds between sweeps.
        remove: deletes a job's files.
    """
    while True:
        try:
            await sweep_outputs(store, days, remove=remove)
        except asyncio.CancelledError:
            raise
        except Exception:  # one failed sweep must not end the loop
            log.exception("retention sweep failed")
        await asyncio.sleep(interval)
