"""pytest fixtures for the fake Discord; import them in a conftest.py::

    from tests.fakediscord.fixtures import fake_discord, fake_discord_options, start_bot  # noqa: F401

``fake_discord`` is a started :class:`FakeDiscord` with the default guild. ``start_bot`` is an
async callable: ``run = await start_bot(bot)`` starts a fresh bot against it, waits for on_ready,
and at teardown lets in-flight work finish, closes the bot, awaits its task (its exception fails
the test), and fails the test if discord.py logged errors or the bot hit an unimplemented route.
At teardown ``fake_discord`` also holds every HTTP exchange against Discord's openapi.json
(``conformance.py``; the exceptions are in ``spec_exceptions.py``) and fails the test on a violation.
Customise the fake by overriding ``fake_discord_options`` (keyword arguments of FakeDiscord) in a
test module or class, e.g. ``return {"limits": FakeLimits(attachment_size_limit=1024)}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import discord
import pytest

from tests.fakediscord.conformance import spec_available, verify
from tests.fakediscord.runner import BotRun, start_bot_against
from tests.fakediscord.server import FakeDiscord

StartBot = Callable[..., Awaitable[BotRun]]


@pytest.fixture
def fake_discord_options() -> dict[str, Any]:
    """Keyword arguments for the ``fake_discord`` fixture's FakeDiscord; override it to customise."""
    return {}


@pytest.fixture
async def fake_discord(fake_discord_options: dict[str, Any]) -> AsyncIterator[FakeDiscord]:
    """A started fake Discord on 127.0.0.1 (a fresh one per test); its exchanges are checked at teardown."""
    async with FakeDiscord(**fake_discord_options) as fake:
        yield fake
    check_conformance(fake)


def check_conformance(fake: FakeDiscord) -> None:
    """Hold a stopped fake's HTTP exchanges against openapi.json; raises ConformanceError on a violation.

    Fixtures that build their own FakeDiscord call it after the fake stopped (every request is then
    recorded and none is in flight). Without the spec (a checkout without ``shared/``) nothing is
    checked and the session summary says so.

    Args:
        fake: the stopped fake.
    """
    if spec_available():
        verify(fake.requests)


@pytest.fixture
async def start_bot(fake_discord: FakeDiscord) -> AsyncIterator[StartBot]:
    """``await start_bot(bot, **options)`` runs a bot against ``fake_discord`` until the test ends."""
    runs: list[BotRun] = []

    async def start(bot: discord.Client, **options: Any) -> BotRun:
        run = await start_bot_against(fake_discord, bot, **options)
        runs.append(run)
        return run

    yield start
    failures: list[BaseException] = []
    for run in reversed(runs):
        try:
            await run.stop()
        except BaseException as error:  # every bot is stopped before the first failure is raised
            failures.append(error)
    if failures:
        raise failures[0]
