"""The job store: one class made of one part per table group.

One :class:`JobStore` owns one aiosqlite connection (``bot.store.base``). Its methods come from:

- ``bot.store.jobs``: submission, reading, bookkeeping and retention of jobs;
- ``bot.store.states``: the job state machine and start-up recovery;
- ``bot.store.ledger``: the quota ledger and per-member budgets;
- ``bot.store.guilds``: server settings, role tiers and the block list;
- ``bot.store.sessions``: jam sessions and the reactions on their takes;
- ``bot.store.polls``: best-take polls of jam sessions;
- ``bot.store.stems``: the stems jobs split takes into;
- ``bot.store.eta``: ETA statistics;
- ``bot.store.readers``: read-only views only the tests use.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from bot.store import schema
from bot.store.eta import EtaMixin
from bot.store.guilds import GuildsMixin
from bot.store.jobs import JobsMixin
from bot.store.ledger import LedgerMixin
from bot.store.polls import PollsMixin
from bot.store.readers import ReadersMixin
from bot.store.sessions import SessionsMixin
from bot.store.states import StatesMixin
from bot.store.stems import StemsMixin

DEFAULT_DAILY_BUDGET = 600.0


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


class JobStore(
    JobsMixin, StatesMixin, LedgerMixin, GuildsMixin, SessionsMixin, PollsMixin, StemsMixin, EtaMixin, ReadersMixin
):
    """Jobs, quota and server settings in one SQLite file.

    Open with ``store = await JobStore.open(path)`` or ``async with JobStore.open(path) as store``.
    """

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
            DatabaseTooNewError: the file was written by a newer jamgen.
            NotADatabaseError: the file is not SQLite.
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


def _utc_now() -> datetime:
    return datetime.now(UTC)
