"""Run a real ``discord.Client``/``commands.Bot`` against a :class:`FakeDiscord`.

The client is pointed at the fake by patching ``discord.http.Route.BASE`` and
``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` for as long as a bot runs (restored on stop);
production code needs no switch. Two speed-ups are applied to the bot instance, not its class:
``guild_ready_timeout`` drops to 0.05 s (discord.py waits 2 s after the last GUILD_CREATE by
default) and, unless the bot's class overrides it, ``before_identify_hook`` becomes a no-op (the
default sleeps 5 s before re-identifying after INVALID_SESSION).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import discord
import discord.gateway
import discord.http
import yarl

from tests.fakediscord.server import FakeDiscord

WATCHED_LOGGERS = ("discord", "asyncio")
_patches: list[tuple[str, yarl.URL]] = []


class _ErrorCollector(logging.Handler):
    """Keeps ERROR records of discord.py and asyncio ("Ignoring exception in command", unretrieved task errors)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _point_discord_at(fake: FakeDiscord) -> None:
    _patches.append((discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY))
    discord.http.Route.BASE = fake.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)


def _restore_discord() -> None:
    base, gateway = _patches.pop()
    discord.http.Route.BASE = base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway


async def _skip_identify_wait(shard_id: int | None, *, initial: bool = False) -> None:
    """Stands in for Client.before_identify_hook, whose 5-s sleep only spaces out real IDENTIFYs."""


@dataclass
class BotRun:
    """A bot running against a fake: stop it with :meth:`stop` (the fixture does)."""

    fake: FakeDiscord
    bot: discord.Client
    task: asyncio.Task[None]
    fail_on_logged_errors: bool = True
    fail_on_unhandled_routes: bool = True
    collector: _ErrorCollector = field(default_factory=_ErrorCollector)
    stopped: bool = False

    @property
    def logged_errors(self) -> list[logging.LogRecord]:
        """ERROR records logged by discord.py/asyncio while the bot ran."""
        return self.collector.records

    def _task_failure(self) -> BaseException | None:
        if self.task.done() and not self.task.cancelled():
            return self.task.exception()
        return None

    async def stop(self) -> None:
        """Let in-flight handlers finish, close the bot, await its task (its exception propagates) and check logs."""
        if self.stopped:
            return
        self.stopped = True
        try:
            await self.fake.wait_idle(quiet=0.05, timeout=2.0)
            await self.bot.close()
            await asyncio.wait_for(asyncio.shield(self.task), timeout=10.0)
            # Unretrieved task exceptions are reported when the task is collected.
            gc.collect()
            await asyncio.sleep(0)
        finally:
            self.fake.remove_failure_check(self._task_failure)
            for name in WATCHED_LOGGERS:
                logging.getLogger(name).removeHandler(self.collector)
            _restore_discord()
        if self.fake.internal_errors:
            raise AssertionError("the fake Discord failed while handling requests") from self.fake.internal_errors[0]
        if self.fail_on_unhandled_routes and self.fake.unhandled_requests:
            routes = sorted({f"{r.method} {r.path}" for r in self.fake.unhandled_requests})
            raise AssertionError(f"the bot called routes the fake does not implement: {routes}")
        if self.fail_on_logged_errors and self.logged_errors:
            shown = "\n".join(
                f"{r.name}: {r.getMessage()}\n{logging.Formatter().formatException(r.exc_info) if r.exc_info else ''}"
                for r in self.logged_errors
            )
            raise AssertionError(f"discord.py logged errors while the bot ran:\n{shown}")


async def start_bot_against(
    fake: FakeDiscord,
    bot: discord.Client,
    *,
    ready_timeout: float = 10.0,
    fail_on_logged_errors: bool = True,
    fail_on_unhandled_routes: bool = True,
    token: str | None = None,
) -> BotRun:
    """Start ``bot`` against ``fake`` and wait until it is ready.

    Args:
        fake: a started fake.
        bot: a fresh, not yet started client/bot (one per test).
        ready_timeout: seconds to wait for on_ready.
        fail_on_logged_errors: make :meth:`BotRun.stop` fail when discord.py/asyncio logged errors
            (unhandled command/view errors, "Task exception was never retrieved").
        fail_on_unhandled_routes: make :meth:`BotRun.stop` fail when the bot called a route the fake lacks.
        token: the token the bot logs in with; the fake's own token when None.
    """
    _point_discord_at(fake)
    bot._connection.guild_ready_timeout = 0.05
    if type(bot).before_identify_hook is discord.Client.before_identify_hook:
        bot.before_identify_hook = _skip_identify_wait  # type: ignore[method-assign]
    collector = _ErrorCollector()
    for name in WATCHED_LOGGERS:
        logging.getLogger(name).addHandler(collector)
    task = asyncio.get_running_loop().create_task(bot.start(token or fake.token), name="fake-discord-bot")
    run = BotRun(
        fake=fake,
        bot=bot,
        task=task,
        fail_on_logged_errors=fail_on_logged_errors,
        fail_on_unhandled_routes=fail_on_unhandled_routes,
        collector=collector,
    )
    fake.add_failure_check(run._task_failure)
    task.add_done_callback(lambda _task: fake.notify())
    ready = asyncio.get_running_loop().create_task(bot.wait_until_ready())
    try:
        done, _ = await asyncio.wait({ready, task}, timeout=ready_timeout, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
            raise RuntimeError("the bot stopped before it was ready")
        if ready not in done:
            raise TimeoutError(f"the bot was not ready after {ready_timeout}s\n{fake.describe_recent()}")
    except BaseException:
        ready.cancel()
        run.fail_on_logged_errors = False
        with contextlib.suppress(BaseException):
            await run.stop()
        raise
    return run


@contextlib.asynccontextmanager
async def running_bot(fake: FakeDiscord, bot: discord.Client, **options: Any) -> AsyncIterator[BotRun]:
    """``async with running_bot(fake, bot) as run:`` — :func:`start_bot_against` then :meth:`BotRun.stop`.

    Args:
        fake: a started fake.
        bot: a fresh client/bot.
        **options: passed to :func:`start_bot_against`.
    """
    run = await start_bot_against(fake, bot, **options)
    try:
        yield run
    finally:
        await run.stop()
