"""Shared helpers for the store tests: a controllable clock, a real SQLite store in tmp_path."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.store import JobStore, NewJob

START = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def new_job(user_id: int = 1, guild_id: int | None = 10, **overrides: Any) -> NewJob:
    """A plausible submission."""
    fields: dict[str, Any] = {
        "user_id": user_id,
        "guild_id": guild_id,
        "channel_id": 100,
        "mode": "text",
        "model": "small",
        "prompt": "lofi piano",
        "params": {"duration": 10},
    }
    fields.update(overrides)
    return NewJob(**fields)


def raw(path: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement on a separate plain sqlite3 connection (an independent view of the file)."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(sql, args).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "jamgen.db"


@pytest.fixture
async def store(db_path: Path, clock: FakeClock) -> AsyncIterator[JobStore]:
    async with JobStore.open(db_path, clock=clock, default_budget=600) as opened:
        yield opened
