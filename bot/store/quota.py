"""Pure quota arithmetic: units, the UTC day, budget precedence and friendly durations.

Amounts are kept in whole milliseconds of generated audio so that sums in SQL are
exact (no float drift between the ledger and the balance). The public API takes
and returns seconds as floats.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta


def to_ms(seconds: float) -> int:
    """Seconds as whole milliseconds (rounded to nearest).

    Args:
        seconds: a finite, non-negative number of seconds.

    Raises:
        ValueError: for negative, infinite or NaN amounts.
    """
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a quota amount must be a finite number of seconds >= 0, got {seconds!r}")
    return round(seconds * 1000)


def from_ms(ms: int) -> float:
    """Whole milliseconds as seconds."""
    return ms / 1000


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def utc_day(moment: datetime) -> str:
    """The quota day of ``moment``: its UTC calendar date as ``YYYY-MM-DD``."""
    return as_utc(moment).date().isoformat()


def next_reset(moment: datetime) -> datetime:
    """The next 00:00 UTC strictly after ``moment`` (when today's quota resets)."""
    today: date = as_utc(moment).date()
    return datetime.combine(today + timedelta(days=1), time(0), tzinfo=UTC)


@dataclass(frozen=True)
class BudgetRule:
    """Which daily budget applies to a member, and why.

    Args:
        budget_ms: milliseconds per day, or None when unlimited.
        source: ``admin``, ``unlimited`` (per-member flag), ``user`` (override), ``role`` (tier),
            ``guild`` (server default) or ``default`` (global setting).
    """

    budget_ms: int | None
    source: str


def resolve_budget(
    *,
    default_ms: int,
    guild_default_ms: int | None,
    tier_ms: Iterable[int],
    user_override_ms: int | None,
    user_unlimited: bool,
    is_admin: bool,
) -> BudgetRule:
    """Apply the precedence: admin/unlimited flag > member override > best role tier > server default > global.

    Args:
        default_ms: the global default budget (``JAMGEN_DAILY_BUDGET_SECONDS``).
        guild_default_ms: the server's default budget, if it set one.
        tier_ms: budgets of the role tiers the member holds in this server.
        user_override_ms: a per-member budget an admin set, if any.
        user_unlimited: the per-member unlimited flag.
        is_admin: the caller says this member is a bot admin.
    """
    if is_admin:
        return BudgetRule(None, "admin")
    if user_unlimited:
        return BudgetRule(None, "unlimited")
    if user_override_ms is not None:
        return BudgetRule(user_override_ms, "user")
    tiers = list(tier_ms)
    if tiers:
        return BudgetRule(max(tiers), "role")
    if guild_default_ms is not None:
        return BudgetRule(guild_default_ms, "guild")
    return BudgetRule(default_ms, "default")


def format_wait(delta: timedelta) -> str:
    """How long until something, for people: ``in 5 h 12 min``, ``in 3 min``, ``in less than a minute``."""
    seconds = delta.total_seconds()
    if seconds < 60:
        return "in less than a minute"
    minutes = math.ceil(seconds / 60)
    hours, mins = divmod(minutes, 60)
    if hours and mins:
        return f"in {hours} h {mins} min"
    if hours:
        return f"in {hours} h"
    return f"in {mins} min"
