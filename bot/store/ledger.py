"""The quota ledger: balances, grants, resets, refunds and per-member budgets.

See ``bot.store.quota`` for the budget rules and docs/STORE.md "Quota" for how the ledger adds up.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import aiosqlite

from bot.store.base import StoreBase
from bot.store.errors import JobNotFoundError
from bot.store.ids import normalize_job_id
from bot.store.models import QuotaStatus
from bot.store.quota import BudgetRule, from_ms, next_reset, resolve_budget, to_ms, utc_day
from bot.store.rows import count_jobs, first, ts


class LedgerMixin(StoreBase):
    """Quota methods of :class:`~bot.store.JobStore` (the debit itself is written by ``submit_job``)."""

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
            rule = await budget_rule(
                db,
                user_id=user_id,
                guild_key=guild_key,
                role_ids=role_ids,
                is_admin=is_admin,
                default_budget=self._budget_or_default(default_budget),
            )
            rows = await db.execute_fetchall(
                "SELECT coalesce(sum(CASE WHEN kind = 'grant' THEN amount_ms END), 0) AS granted, "
                "coalesce(sum(amount_ms), 0) AS net FROM quota_ledger WHERE user_id = ? AND guild_id = ? AND day = ?",
                (user_id, guild_key, day),
            )
            row = first(rows)
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
                (user_id, guild_id or 0, utc_day(now), amount_ms, by, note, ts(now)),
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
            row = first(rows)
            used_ms = -int(row[0]) if row else 0
            if used_ms <= 0:
                return 0.0
            await db.execute(
                "INSERT INTO quota_ledger (user_id, guild_id, day, kind, amount_ms, actor_id, created_at) "
                "VALUES (?, ?, ?, 'reset', ?, ?, ?)",
                (user_id, guild_key, day, used_ms, by, ts(now)),
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
            if await count_jobs(db, "id = ?", (wanted,)) == 0:
                raise JobNotFoundError(wanted)
            return from_ms(await refund_locked(db, wanted, self.now()))


async def budget_rule(
    db: aiosqlite.Connection,
    *,
    user_id: int,
    guild_key: int,
    role_ids: Iterable[int],
    is_admin: bool,
    default_budget: float,
) -> BudgetRule:
    """The budget rule that applies to a member in one server (``guild_key`` 0 in DMs)."""
    default_ms = to_ms(default_budget)
    rows = await db.execute_fetchall(
        "SELECT budget_ms, unlimited FROM member_quota WHERE user_id = ? AND guild_id = ?", (user_id, guild_key)
    )
    member = first(rows)
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
        row = first(rows)
        guild_default_ms = row[0] if row else None
    return resolve_budget(
        default_ms=default_ms,
        guild_default_ms=guild_default_ms,
        tier_ms=tiers,
        user_override_ms=member["budget_ms"] if member else None,
        user_unlimited=bool(member["unlimited"]) if member else False,
        is_admin=is_admin,
    )


async def balance_ms(db: aiosqlite.Connection, user_id: int, guild_key: int, day: str) -> int:
    """A member's ledger balance for one UTC day in one server (negative when more was spent than granted)."""
    rows = await db.execute_fetchall(
        "SELECT coalesce(sum(amount_ms), 0) FROM quota_ledger WHERE user_id = ? AND guild_id = ? AND day = ?",
        (user_id, guild_key, day),
    )
    row = first(rows)
    return int(row[0]) if row else 0


async def refund_locked(db: aiosqlite.Connection, job_id: str, now: datetime) -> int:
    """Write the job's refund row unless it exists; it counts against the debit's own day."""
    rows = await db.execute_fetchall(
        "SELECT user_id, guild_id, day, amount_ms FROM quota_ledger WHERE job_id = ? AND kind = 'debit'", (job_id,)
    )
    debit = first(rows)
    if debit is None:
        return 0
    rows = await db.execute_fetchall("SELECT 1 FROM quota_ledger WHERE job_id = ? AND kind = 'refund'", (job_id,))
    if first(rows) is not None:
        return 0
    amount_ms = -int(debit["amount_ms"])
    await db.execute(
        "INSERT INTO quota_ledger (user_id, guild_id, day, kind, amount_ms, job_id, created_at) "
        "VALUES (?, ?, ?, 'refund', ?, ?, ?)",
        (debit["user_id"], debit["guild_id"], debit["day"], amount_ms, job_id, ts(now)),
    )
    return amount_ms
