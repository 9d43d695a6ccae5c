"""Per-server settings, role tiers and the block list."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import aiosqlite

from bot.store.base import StoreBase
from bot.store.errors import BlockedError
from bot.store.models import GuildSettings
from bot.store.quota import from_ms, to_ms
from bot.store.rows import dump_json, first, ts

_GUILD_FIELDS = frozenset(f.name for f in dataclasses.fields(GuildSettings)) - {"guild_id", "role_tiers"}


class GuildsMixin(StoreBase):
    """Server settings and block list methods of :class:`~bot.store.JobStore`."""

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
                    dump_json(sorted({int(c) for c in merged.allowed_channel_ids}), "allowed_channel_ids"),
                    merged.default_model,
                    dump_json(list(dict.fromkeys(str(m) for m in merged.enabled_models)), "enabled_models"),
                    None if merged.max_duration is None else int(merged.max_duration),
                    None if merged.max_takes is None else int(merged.max_takes),
                    int(bool(merged.remix_by_reply)),
                    None if merged.default_budget is None else to_ms(merged.default_budget),
                    ts(self.now()),
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
                (kind, target_id, reason, ts(self.now())),
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


async def check_blocked(db: aiosqlite.Connection, user_id: int, guild_id: int | None) -> None:
    """Raise :class:`BlockedError` when the member or the server is on the block list (the member's entry first)."""
    rows = await db.execute_fetchall(
        "SELECT kind, reason FROM blocks WHERE (kind = 'user' AND target_id = ?) OR (kind = 'guild' AND target_id = ?) "
        "ORDER BY kind DESC",
        (user_id, -1 if guild_id is None else guild_id),
    )
    row = first(rows)
    if row is not None:
        raise BlockedError(row["kind"], row["reason"])


async def _guild_settings(db: aiosqlite.Connection, guild_id: int) -> GuildSettings:
    rows = await db.execute_fetchall(
        "SELECT role_id, budget_ms FROM role_tiers WHERE guild_id = ? ORDER BY role_id", (guild_id,)
    )
    tiers = {int(row["role_id"]): from_ms(row["budget_ms"]) for row in rows}
    rows = await db.execute_fetchall("SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,))
    row = first(rows)
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


def _check_kind(kind: str) -> None:
    if kind not in ("user", "guild"):
        raise ValueError(f"block kind must be 'user' or 'guild', got {kind!r}")
