"""Wiring for `jamgen run`: store, engine, service and their background upkeep, opened and closed together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from bot.config import Settings
from bot.engine.backends import engine_from_settings
from bot.engine.pool import EnginePool
from bot.heartbeat import heartbeat_path, run_heartbeat
from bot.service.jam import JamService, ServiceConfig
from bot.store import JobStore, run_retention

log = logging.getLogger("jamgen.runtime")

RETENTION_SWEEP_S = 3600.0


@contextlib.asynccontextmanager
async def running_service(settings: Settings) -> AsyncIterator[JamService]:
    """Open the store, start the engine worker, and keep the heartbeat and retention sweeps going.

    The service itself is started by the Discord client, with its deliverer (``service.start(deliverer)``).
    """
    store = await JobStore.open(settings.db_path, default_budget=settings.daily_budget_seconds)
    engine = engine_from_settings(settings)  # one local child unless JAMGEN_ENGINES / JAMGEN_ENGINE_BACKEND say more
    upkeep: list[asyncio.Task[None]] = []
    try:
        await engine.start()
        health = await engine.health()
        config = ServiceConfig.from_settings(settings, on_gpu="cuda" in health.device)
        service = JamService(config, store, engine)
        lines = engine.describe if isinstance(engine, EnginePool) else None  # one line per engine of a pool
        upkeep.append(
            asyncio.create_task(run_heartbeat(heartbeat_path(settings.data_dir), engine.health, engines=lines))
        )
        upkeep.append(asyncio.create_task(run_retention(store, settings.retention_days, RETENTION_SWEEP_S)))
        yield service
    finally:
        for task in upkeep:
            task.cancel()
        await asyncio.gather(*upkeep, return_exceptions=True)
        await engine.close()
        await store.close()
