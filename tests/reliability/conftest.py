"""Fixtures of the reliability world: the real bot (production factory), service, store and audio, one real
engine worker with the debug models and every fault hook armed, and the fake Discord (the world is built by
tests/harness.py).

Faults are chosen per job by a tag in its prompt, e.g. ``/generate prompt:"boom [crash]"``:
:class:`~tests.harness.PlannedEngine` renames that job's request ids with the worker's fault prefix, so one
shared worker serves healthy and faulty jobs side by side. ``[crash-once]`` (and the like) fault only the
job's first attempt.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.harness import FAULT_PREFIXES, JamWorld, PlannedEngine, start_debug_engine, world_env
from tests.reliability.secrets_watch import BOT_TOKEN, debug_log_file, fake_discord  # noqa: F401

# The watchdog allows base + factor x duration per generate call: a hung 1-s take is killed after 6 s.
WATCHDOG_BASE_S = 5.0
WATCHDOG_FACTOR = 1.0
SLOW_STEP_S = 0.05

# Settings of a reliability bot: debug models, 1-s takes, the realistic test token, DEBUG logs.
RELIABILITY_ENV = {
    "DISCORD_TOKEN": BOT_TOKEN,
    "JAMGEN_DEBUG_MODELS": "true",
    "JAMGEN_DEFAULT_MODEL": "debug",
    "JAMGEN_ENABLED_MODELS": "debug,debug-melody,debug-style",
    "JAMGEN_DEFAULT_DURATION": "1",
    "JAMGEN_PROGRESS_INTERVAL": "0.2",
    "JAMGEN_DAILY_BUDGET_SECONDS": "600",
    "JAMGEN_LOG_LEVEL": "DEBUG",
    "JAMGEN_CPU_THREADS": "1",
}


@pytest.fixture
def fake_discord_options() -> dict[str, Any]:
    """Every fake of this suite accepts a bot token of Discord's real shape (see secrets_watch)."""
    return {"token": BOT_TOKEN}


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def fault_engine() -> AsyncIterator[Any]:
    """One real worker with the debug models and every fault hook armed (each fires only on its prefix)."""
    from bot.engine.protocol import EngineFaults

    faults = EngineFaults(
        oom_prefix=FAULT_PREFIXES["oom"],
        oom_min_batch=2,
        error_prefix=FAULT_PREFIXES["error"],
        hang_prefix=FAULT_PREFIXES["hang"],
        crash_prefix=FAULT_PREFIXES["crash"],
        slow_prefix=FAULT_PREFIXES["slow"],
        slow_step_s=SLOW_STEP_S,
    )
    engine = await start_debug_engine(
        faults, watchdog_base_s=WATCHDOG_BASE_S, watchdog_factor=WATCHDOG_FACTOR, max_duration=30.0
    )
    yield engine
    await engine.close()


@pytest.fixture
def world_overrides() -> dict[str, str]:
    """Settings overrides for the ``world`` fixture (override in a module)."""
    return {}


@pytest.fixture
def world_run_options() -> dict[str, Any]:
    """Options for start_bot (override in a module, e.g. ``fail_on_logged_errors``)."""
    return {}


@pytest.fixture
async def world(
    tmp_path,
    fault_engine,
    fake_discord,  # noqa: F811 - the fixture imported above
    start_bot,
    world_overrides,
    world_run_options,
) -> AsyncIterator[JamWorld]:
    w = JamWorld(
        tmp_path,
        PlannedEngine(fault_engine),
        fake_discord,
        start_bot,
        world_env(tmp_path, RELIABILITY_ENV, world_overrides),
        dict(world_run_options),
    )
    await w.boot()
    yield w
    await w.shutdown()
