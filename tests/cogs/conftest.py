"""Fixtures of the end-to-end cog tests: the real bot (same factory as production), service, store and audio,
and the fake Discord (the world is built by tests/harness.py).

A scenario runs on the fake engine unless it is marked ``@pytest.mark.engine``: those run on one real engine
worker with the debug models (torch, in its own process), started once for the session when first needed.
``pytest tests/cogs -m "not engine"`` is the fast loop: it never starts the worker nor imports torch.
"""

from __future__ import annotations

import gc
import importlib.abc
import os
import sys
import traceback
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.harness import (
    COGS_ENV,
    TORCH_REPORT_ENV,
    FakeEngine,
    GatedEngine,
    JamWorld,
    start_debug_engine,
    world_env,
)

# The fake engine's pace: a call reports progress 5 times in about 0.05 s (the scenarios that need a job held
# queued or running close the world's gate instead).
FAKE_STEPS = 5
FAKE_STEP_S = 0.01


HERE = Path(__file__).resolve().parent
TORCH_LIKE = ("torch", "torchaudio", "audiocraft")


class TorchWatch(importlib.abc.MetaPathFinder):
    """Notes the stack of the first import of torch in this process (it never stops the import)."""

    def __init__(self) -> None:
        self.stack: str | None = None

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if self.stack is None and name.split(".", maxsplit=1)[0] in TORCH_LIKE:
            self.stack = "".join(traceback.format_stack()[:-1])


TORCH_WATCH = TorchWatch()
sys.meta_path.insert(0, TORCH_WATCH)


def runs_only_the_fast_loop(session: pytest.Session) -> bool:
    """Whether every test of this session is a scenario of tests/cogs on the fake engine."""
    return bool(session.items) and all(
        item.path.is_relative_to(HERE) and item.get_closest_marker("engine") is None for item in session.items
    )


@pytest.fixture(scope="session")
def fast_loop(request: pytest.FixtureRequest) -> bool:
    """Whether this session is the fast loop (``pytest tests/cogs -m "not engine"`` or a part of it)."""
    return runs_only_the_fast_loop(request.session)


@pytest.fixture(scope="session", autouse=True)
def _the_fast_loop_imports_no_torch(request: pytest.FixtureRequest):
    """After the last scenario of a fast-loop session: fail if torch was imported (and say from where)."""
    yield
    if not runs_only_the_fast_loop(request.session):
        return
    imported = sorted(m for m in sys.modules if m.split(".")[0] in TORCH_LIKE and "." not in m)
    if report := os.environ.get(TORCH_REPORT_ENV):
        Path(report).write_text("".join(f"{m}\n" for m in imported))
    if imported:
        where = TORCH_WATCH.stack or "before tests/cogs/conftest.py was loaded\n"
        pytest.fail(f"the fast loop imported {', '.join(imported)}; first from:\n{where}", pytrace=False)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def debug_engine() -> AsyncIterator[Any]:
    """One real engine worker with the debug models, shared by every ``engine``-marked scenario."""
    engine = await start_debug_engine()
    yield engine
    await engine.close()


@pytest.fixture
def jam_engine(request: pytest.FixtureRequest) -> Any:
    """The engine under the world's gate: the real debug worker for ``@pytest.mark.engine``, else a fake."""
    if request.node.get_closest_marker("engine") is not None:
        return request.getfixturevalue("debug_engine")
    return FakeEngine(steps=FAKE_STEPS, step_delay=FAKE_STEP_S)


@pytest.fixture
def world_overrides() -> dict[str, str]:
    """Settings overrides for the ``jam`` fixture (override in a module, or parametrize)."""
    return {}


@pytest.fixture
async def jam(tmp_path, jam_engine, fake_discord, start_bot, world_overrides) -> AsyncIterator[JamWorld]:
    world = JamWorld(
        tmp_path, GatedEngine(jam_engine), fake_discord, start_bot, world_env(tmp_path, COGS_ENV, world_overrides)
    )
    await world.boot()
    _freeze_the_heap_once()
    yield world
    await world.shutdown()


_frozen: list[bool] = []


def _freeze_the_heap_once() -> None:
    """After the first boot (librosa, scipy and numba are loaded by then) move what lives to gc's permanent
    generation: each bot's stop collects garbage, and the collections then only walk what the tests made."""
    if not _frozen:
        gc.collect()
        gc.freeze()
        _frozen.append(True)


ACK_LOG: list[tuple[str, str, float]] = []


@pytest.fixture(autouse=True)
def _every_interaction_is_acknowledged_within_3s(request, fake_discord):
    """Record each interaction's time to first callback and fail the scenario if any took 3 s or more."""
    yield
    for interaction in fake_discord.interactions.values():
        if interaction.callbacks:
            ACK_LOG.append((request.node.name, interaction.name or str(interaction.type), interaction.ack_latency))
            assert interaction.ack_latency < 3, f"{interaction} acknowledged after {interaction.ack_latency:.2f} s"


def pytest_sessionfinish(session, exitstatus):  # pragma: no cover - reporting only
    if ACK_LOG:
        worst = max(ACK_LOG, key=lambda row: row[2])
        print(
            f"\ninteraction acknowledgements: {len(ACK_LOG)}, slowest {worst[2] * 1000:.0f} ms ({worst[0]}: {worst[1]})"
        )
