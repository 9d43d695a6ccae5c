"""Fault injection for the fake's HTTP routes: 429s, 5xx bursts, slow answers, connection resets.

A rule matches a request by method (None: any) and a glob on the route path (None: every API route).
API paths are written without the ``/api/v10`` prefix (``/channels/*/messages``,
``/interactions/*/callback``, ``/webhooks/*``); the CDN's are ``/cdn/...`` and only a pattern that
names them matches them. Gateway faults live on :class:`tests.fakediscord.server.FakeDiscord`.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Literal

FaultKind = Literal["rate_limit", "status", "delay", "reset"]
RateLimitScope = Literal["user", "global", "shared"]


@dataclass(eq=False)
class FaultRule:
    """One injected fault. ``times`` None means until removed; ``hits`` counts requests it hit."""

    kind: FaultKind
    method: str | None
    path: str | None
    times: int | None
    retry_after: float = 0.0
    is_global: bool = False
    status: int = 500
    seconds: float = 0.0
    hits: int = 0
    removed: bool = False
    scope: RateLimitScope = "user"
    code: int | None = None

    @property
    def exhausted(self) -> bool:
        """Whether it fired as many times as asked (or was removed)."""
        return self.removed or (self.times is not None and self.hits >= self.times)

    def matches(self, method: str, path: str) -> bool:
        """Whether this rule applies to a request.

        Args:
            method: HTTP method.
            path: route path (API paths without the /api/v10 prefix).
        """
        if self.exhausted:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.path is None:
            return not path.startswith("/cdn/")
        return fnmatch.fnmatchcase(path, self.path)

    def remove(self) -> None:
        """Stop firing."""
        self.removed = True

    def describe(self) -> str:
        """Short text for request records."""
        if self.kind == "rate_limit":
            return f"429{' global' if self.is_global else ''} retry_after={self.retry_after}"
        if self.kind == "status":
            return str(self.status)
        if self.kind == "delay":
            return f"delay {self.seconds}s"
        return "connection reset"


class Faults:
    """The fault rules of one fake; methods return the rule so a test can check ``hits`` or ``remove()`` it."""

    def __init__(self) -> None:
        self.rules: list[FaultRule] = []

    def _add(self, rule: FaultRule) -> FaultRule:
        self.rules.append(rule)
        return rule

    def rate_limit(
        self,
        path: str | None = None,
        *,
        method: str | None = None,
        retry_after: float = 0.1,
        is_global: bool = False,
        times: int | None = 1,
        scope: RateLimitScope | None = None,
        code: int | None = None,
    ) -> FaultRule:
        """Answer 429 as Discord does (ratelimits.rate_limited): ``X-RateLimit-Scope`` user/global/shared, Via.

        Args:
            path: route glob; None for every API route.
            method: HTTP method; None for any.
            retry_after: seconds the client is told to wait.
            is_global: a global rate limit instead of a per-route one (scope "global").
            times: how many requests get it; None until removed.
            scope: "user" (default), "global" or "shared" (a per-resource limit).
            code: an optional JSON error code in the body.
        """
        chosen: RateLimitScope = scope or ("global" if is_global else "user")
        rule = FaultRule(
            "rate_limit", method, path, times, retry_after=retry_after, is_global=chosen == "global", scope=chosen
        )
        rule.code = code
        return self._add(rule)

    def server_error(
        self, path: str | None = None, *, method: str | None = None, status: int = 500, times: int | None = 1
    ) -> FaultRule:
        """Answer a 5xx (a burst of ``times`` requests). discord.py retries 500/502/504 after 1 s, 3 s, ...

        Args:
            path: route glob; None for every API route.
            method: HTTP method; None for any.
            status: the HTTP status (500, 502, 503, ...).
            times: how many requests get it; None until removed.
        """
        return self._add(FaultRule("status", method, path, times, status=status))

    def delay(
        self, path: str | None = None, *, seconds: float, method: str | None = None, times: int | None = None
    ) -> FaultRule:
        """Answer slowly (the request is handled on arrival; the answer waits ``seconds``).

        Args:
            path: route glob; None for every API route.
            seconds: the delay.
            method: HTTP method; None for any.
            times: how many requests get it; None until removed.
        """
        return self._add(FaultRule("delay", method, path, times, seconds=seconds))

    def reset_connection(
        self, path: str | None = None, *, method: str | None = None, times: int | None = 1
    ) -> FaultRule:
        """Close the TCP connection without answering (the request is not handled).

        Args:
            path: route glob; None for every API route.
            method: HTTP method; None for any.
            times: how many requests get it; None until removed.
        """
        return self._add(FaultRule("reset", method, path, times))

    def clear(self) -> None:
        """Remove every rule."""
        for rule in self.rules:
            rule.remove()
        self.rules.clear()

    def take(self, method: str, path: str) -> tuple[FaultRule | None, list[FaultRule]]:
        """Consume the faults for one request: the first matching refusal, and every matching delay.

        Args:
            method: HTTP method.
            path: route path.
        """
        refusal: FaultRule | None = None
        delays: list[FaultRule] = []
        for rule in self.rules:
            if not rule.matches(method, path):
                continue
            if rule.kind == "delay":
                rule.hits += 1
                delays.append(rule)
            elif refusal is None:
                rule.hits += 1
                refusal = rule
        return refusal, delays
