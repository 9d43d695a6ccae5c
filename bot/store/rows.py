"""Helpers the store's table modules share: timestamps, JSON columns, the token guard, job rows."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, overload

import aiosqlite

from bot.store.errors import SecretRefusedError
from bot.store.models import Job, JobState
from bot.store.quota import as_utc, from_ms

# Base64 of "interaction:", the start of every Discord interaction token.
_INTERACTION_TOKEN_PREFIX = "aW50ZXJhY3Rpb24"  # noqa: S105 - a prefix to refuse, not a secret

JOB_COLUMNS = (
    "seq, id, user_id, guild_id, channel_id, interaction_id, request_message_id, reply_to_message_id, "
    "progress_message_id, delivered_message_ids, mode, model, prompt, params, takes, seed, parent_id, "
    "session_id, state, attempts, error, outputs, cost_ms, priority, created_at, started_at, rendered_at, "
    "delivered_at, finished_at, extra, outputs_cleared_at"
)


class _Unset:
    """Marks a keyword that was not given (None is a real value)."""


UNSET: Any = _Unset()


def ts(moment: datetime) -> str:
    """Timestamps are stored as ISO 8601 text in UTC with microseconds, so they sort as text."""
    return as_utc(moment).isoformat(timespec="microseconds")


@overload
def parse_ts(text: str) -> datetime: ...
@overload
def parse_ts(text: None) -> None: ...
def parse_ts(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def dump_json(value: Any, what: str) -> str:
    refuse_secrets(value, what)
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON-serialisable: {exc}") from None


def refuse_secrets(value: Any, where: str) -> None:
    """Refuse anything that looks like a Discord token before it reaches the disk."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if "token" in str(key).lower():
                raise SecretRefusedError(f"refusing to store the key {key!r} in {where}: tokens never go to disk")
            refuse_secrets(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for item in value:
            refuse_secrets(item, where)
    elif isinstance(value, str) and value.startswith(_INTERACTION_TOKEN_PREFIX):
        raise SecretRefusedError(f"refusing to store an interaction token in {where}: tokens never go to disk")


def merge_extra(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``current`` with ``changes`` applied; a None value removes its key."""
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def first(rows: Iterable[sqlite3.Row]) -> sqlite3.Row | None:
    return next(iter(rows), None)


def row_to_job(row: sqlite3.Row) -> Job:
    created = parse_ts(row["created_at"])
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
        started_at=parse_ts(row["started_at"]),
        rendered_at=parse_ts(row["rendered_at"]),
        delivered_at=parse_ts(row["delivered_at"]),
        finished_at=parse_ts(row["finished_at"]),
        outputs_cleared_at=parse_ts(row["outputs_cleared_at"]),
    )


async def fetch_job(db: aiosqlite.Connection, job_id: str) -> Job | None:
    row = first(await db.execute_fetchall(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)))
    return None if row is None else row_to_job(row)


async def jobs_where(db: aiosqlite.Connection, where_order: str, args: tuple[Any, ...]) -> list[Job]:
    rows = await db.execute_fetchall(f"SELECT {JOB_COLUMNS} FROM jobs WHERE {where_order}", args)
    return [row_to_job(row) for row in rows]


async def count_jobs(db: aiosqlite.Connection, where: str, args: tuple[Any, ...]) -> int:
    row = first(await db.execute_fetchall(f"SELECT count(*) FROM jobs WHERE {where}", args))
    return int(row[0]) if row else 0
