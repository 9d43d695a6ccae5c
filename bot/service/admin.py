"""What ``/jam`` and the admins need: the service's status, server settings, budgets, grants and blocks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.engine.pool import MemberHealth
from bot.engine.registry import get_model_spec
from bot.engine.types import Engine, EngineHealth
from bot.errors import UserInputError
from bot.service.config import ServiceConfig
from bot.service.delivery import Deliveries
from bot.service.scheduler import Scheduler
from bot.store import GuildSettings, JobStore, QuotaStatus

REMIX_MODES = ("melody", "style", "continuation")


@dataclass(frozen=True)
class ServiceStatus:
    """The service at a glance (for /jam status and doctor).

    Args:
        engine: the engine's health.
        queued: jobs waiting.
        running: jobs in the running batch.
        uptime_s: seconds since start.
        recent_failures: (job id, message) of the last failures.
        engines: every engine of the pool (where, device, models, busy, restarts); one for a single engine.
    """

    engine: EngineHealth
    queued: int
    running: int
    uptime_s: float
    recent_failures: list[tuple[str, str]]
    engines: list[MemberHealth] = field(default_factory=list)


class Admin:
    """Status, quotas and server settings (see the module's docstring).

    Args:
        clock: monotonic clock for the uptime.
    """

    def __init__(
        self,
        config: ServiceConfig,
        store: JobStore,
        engine: Engine,
        scheduler: Scheduler,
        deliveries: Deliveries,
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.store = store
        self.engine = engine
        self.scheduler = scheduler
        self.deliveries = deliveries
        self._clock = clock
        self._started_at = clock()

    def uptime_s(self) -> float:
        """Seconds since the service was built."""
        return self._clock() - self._started_at

    async def status(self) -> ServiceStatus:
        """What /jam status shows."""
        engines = await self.scheduler.pool.members_health()
        return ServiceStatus(
            engine=await self.engine.health() if len(engines) != 1 else engines[0].health,
            queued=len(self.scheduler.queue),
            running=len(self.scheduler.running),
            uptime_s=self.uptime_s(),
            recent_failures=list(self.deliveries.recent_failures),
            engines=engines,
        )

    async def quota(self, user_id: int, guild_id: int | None, role_ids: Sequence[int] = ()) -> QuotaStatus:
        """A member's quota today."""
        return await self.store.quota_status(
            user_id,
            guild_id,
            role_ids=tuple(role_ids),
            default_budget=self.config.daily_budget_seconds,
            is_admin=user_id in self.config.admin_user_ids,
        )

    async def update_guild_settings(self, guild_id: int, **changes: Any) -> GuildSettings:
        """Change a server's settings (model names are checked first)."""
        for name in (changes.get("enabled_models") or ()) + (
            (changes["default_model"],) if changes.get("default_model") else ()
        ):
            get_model_spec(name)
        if changes.get("remix_mode") and changes["remix_mode"] not in REMIX_MODES:
            raise UserInputError("The remix mode must be melody, style or continuation.")
        return await self.store.update_guild_settings(guild_id, **changes)

    async def set_channel_allowed(self, guild_id: int, channel_id: int, allowed: bool) -> GuildSettings:
        """Add a channel to, or remove it from, the server's allowed channels."""
        current = set((await self.store.get_guild_settings(guild_id)).allowed_channel_ids)
        current = current | {channel_id} if allowed else current - {channel_id}
        return await self.store.update_guild_settings(guild_id, allowed_channel_ids=tuple(sorted(current)))

    async def set_user_budget(
        self, guild_id: int, user_id: int, seconds: float | None, *, unlimited: bool | None = None
    ) -> None:
        """Override a member's daily budget and/or unlimited flag."""
        if seconds is not None or unlimited is None:
            await self.store.set_user_budget(user_id, guild_id, seconds)
        if unlimited is not None:
            await self.store.set_unlimited(user_id, guild_id, unlimited)

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        """A server's own settings."""
        return await self.store.get_guild_settings(guild_id)

    async def set_role_tier(self, guild_id: int, role_id: int, seconds: float | None) -> None:
        """Give a role its own daily budget (None removes the tier)."""
        await self.store.set_role_tier(guild_id, role_id, seconds)

    async def grant(self, guild_id: int, user_id: int, seconds: float, *, by: int) -> None:
        """One-off extra seconds for today."""
        await self.store.grant(user_id, guild_id, seconds, by=by)

    async def reset_quota(self, guild_id: int, user_id: int) -> None:
        """Give back today's usage."""
        await self.store.reset_quota(user_id, guild_id)

    async def block_user(self, user_id: int, reason: str = "") -> None:
        """Stop a member from submitting."""
        await self.store.block("user", user_id, reason)

    async def unblock_user(self, user_id: int) -> None:
        """Lift a block."""
        await self.store.unblock("user", user_id)
