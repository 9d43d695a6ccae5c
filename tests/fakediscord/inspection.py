"""The test-facing read-back: change notification, waiting, and what the bot sent and asked for."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import time
from collections.abc import Callable
from typing import Any

from tests.fakediscord.model import FakeChannel, FakeMember, FakeUser
from tests.fakediscord.records import ErrorRecord, FakeMessage, RequestRecord


class Inspection:
    """Mixed into :class:`FakeDiscord`: wait for conditions and read back the bot's messages, requests and errors."""

    def notify(self) -> None:
        """Wake every waiter (the server calls this on each change)."""
        self._last_activity = time.monotonic()
        self._changed.set()
        self._changed = asyncio.Event()

    def add_failure_check(self, check: Callable[[], BaseException | None]) -> None:
        """Make waits fail fast: ``check()`` returning an exception ends every wait with it.

        Args:
            check: e.g. "the bot's task died with X".
        """
        self._fail_checks.append(check)

    def remove_failure_check(self, check: Callable[[], BaseException | None]) -> None:
        """Undo :meth:`add_failure_check`.

        Args:
            check: the same callable.
        """
        if check in self._fail_checks:
            self._fail_checks.remove(check)

    async def wait_for(self, predicate: Callable[[], Any], *, timeout: float = 5.0, what: str = "condition") -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every change) and return its value.

        Args:
            predicate: a cheap check of the fake's state.
            timeout: seconds before TimeoutError.
            what: shown in the TimeoutError.
        """
        deadline = time.monotonic() + timeout
        while True:
            if self.internal_errors:
                raise RuntimeError(f"while waiting for {what}: the fake Discord failed") from self.internal_errors[0]
            for check in self._fail_checks:
                failure = check()
                if failure is not None:
                    raise RuntimeError(f"while waiting for {what}: the bot failed") from failure
            changed = self._changed
            value = predicate()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}\n{self.describe_recent()}")
            # Predicates may also read the bot's own state, which does not notify: poll as well.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), min(remaining, 0.05))

    def describe_recent(self, count: int = 12) -> str:
        """The last requests and errors, for failure messages.

        Args:
            count: how many of each.
        """
        lines = ["recent requests:"]
        lines += [
            f"  {r.method} {r.path} -> {r.status}{f' ({r.fault})' if r.fault else ''}" for r in self.requests[-count:]
        ]
        lines.append("recent 4xx:")
        lines += [f"  {e.method} {e.path} -> {e.status} {e.code} {e.message}" for e in self.errors[-count:]]
        return "\n".join(lines)

    def bot_messages(
        self, channel: FakeChannel | int | None = None, *, include_deleted: bool = False
    ) -> list[FakeMessage]:
        """Messages the bot sent (channel messages, interaction responses, followups), oldest first.

        Args:
            channel: only this channel (or thread).
            include_deleted: also deleted ones.
        """
        channel_id = channel.id if isinstance(channel, FakeChannel) else channel
        return [
            message
            for message in self.messages.values()
            if message.author.id == self.bot_user.id
            and (include_deleted or not message.deleted)
            and (channel_id is None or message.channel_id == channel_id)
        ]

    async def wait_for_message(
        self,
        predicate: Callable[[FakeMessage], Any] | None = None,
        *,
        channel: FakeChannel | int | None = None,
        timeout: float = 5.0,
        include_ephemeral: bool = True,
    ) -> FakeMessage:
        """The oldest bot message matching ``predicate`` (waiting for one); "thinking…" placeholders are skipped.

        Args:
            predicate: condition on the message; any when None.
            channel: only this channel (or thread).
            timeout: seconds before TimeoutError.
            include_ephemeral: also ephemeral messages.
        """

        def found() -> FakeMessage | None:
            for message in self.bot_messages(channel):
                if message.loading or (message.ephemeral and not include_ephemeral):
                    continue
                if predicate is None or predicate(message):
                    return message
            return None

        return await self.wait_for(found, timeout=timeout, what="a bot message")

    async def wait_idle(self, quiet: float = 0.05, timeout: float = 2.0) -> bool:
        """Wait until no request is in flight and nothing changed for ``quiet`` seconds.

        Args:
            quiet: seconds of silence.
            timeout: give up after this long (returns False).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._inflight == 0 and time.monotonic() - self._last_activity >= quiet:
                return True
            await asyncio.sleep(quiet / 2)
        return False

    async def wait_until_ready(self, timeout: float = 5.0) -> None:
        """Wait until the bot has a live gateway session.

        Args:
            timeout: seconds before TimeoutError.
        """
        await self.gateway.wait_ready(timeout)

    def dm_messages(self, user: FakeMember | FakeUser) -> list[FakeMessage]:
        """The bot's direct messages to a user, oldest first.

        Args:
            user: the member or user.
        """
        return self.dms.messages_to(user)

    def client_errors(self, *, status: int | None = None, code: int | None = None) -> list[ErrorRecord]:
        """4xx answers the bot received, optionally filtered.

        Args:
            status: only this HTTP status.
            code: only this Discord JSON code.
        """
        return [e for e in self.errors if (status is None or e.status == status) and (code is None or e.code == code)]

    def requests_to(self, method: str | None = None, path: str | None = None) -> list[RequestRecord]:
        """Requests the bot made, filtered by method and an fnmatch-style glob on the path.

        Args:
            method: HTTP method.
            path: glob on the path (API paths without /api/v10).
        """
        return [
            r
            for r in self.requests
            if (method is None or r.method == method.upper()) and (path is None or fnmatch.fnmatchcase(r.path, path))
        ]

    @property
    def unhandled_requests(self) -> list[RequestRecord]:
        """Requests to routes the fake does not implement."""
        return [r for r in self.requests if not r.handled]
