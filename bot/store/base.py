"""What every part of the job store shares: the connection, its lock and the transaction helper.

Every public method runs in its own transaction; writes use ``BEGIN IMMEDIATE`` so that checks
and the writes that depend on them (pending caps, quota reservation, state transitions) are
serialised across every connection and process that opens the same file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiosqlite

from bot.store import schema
from bot.store.errors import StoreBusyError, StoreError
from bot.store.models import Job
from bot.store.quota import as_utc
from bot.store.rows import jobs_where

log = logging.getLogger("jamgen.store")


class StoreBase:
    """One aiosqlite connection, the lock its transactions queue on, and the store's clock."""

    def __init__(self, db: aiosqlite.Connection, path: Path, clock: Callable[[], datetime], default_budget: float):
        self._db: aiosqlite.Connection | None = db
        self._path = path
        self._clock = clock
        self._lock = _FastLaneLock()
        self._batch_starts: list[Any] = []  # batches waiting to start together (states.py)
        self.default_budget = default_budget

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

    def _budget_or_default(self, default_budget: float | None) -> float:
        """The global daily budget a call was given, else the store's."""
        return self.default_budget if default_budget is None else default_budget

    @asynccontextmanager
    async def _tx(self, *, write: bool = True, urgent: bool = False) -> AsyncIterator[aiosqlite.Connection]:
        """One transaction: IMMEDIATE (write lock up front) for writes, deferred for reads.

        ``urgent`` transactions go before every waiting ordinary one (the engine waits on them).
        """
        async with self._lock.held(urgent=urgent), self._tx_held(write=write) as db:
            yield db

    @asynccontextmanager
    async def _tx_held(self, *, write: bool = True) -> AsyncIterator[aiosqlite.Connection]:
        """A transaction for a caller that already holds the store's lock."""
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

    async def _select_jobs(self, where_order: str, args: tuple[Any, ...]) -> list[Job]:
        async with self._tx(write=False) as db:
            return await jobs_where(db, where_order, args)


def _translate(exc: sqlite3.Error) -> StoreError:
    message = str(exc).lower()
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in message or "busy" in message):
        log.warning("database busy: %s", exc)
        return StoreBusyError()
    log.error("database error: %s", exc)
    return StoreError()


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
