"""Per-route rate-limit buckets, their headers on every API answer, and Discord's 429 shape.

docs: topics/rate-limits.mdx: per-route limits are counted per top-level resource (``channel_id``,
``guild_id``, ``webhook_id`` + token); every answer carries ``X-RateLimit-Limit``, ``-Remaining``,
``-Reset``, ``-Reset-After`` and ``-Bucket``; a 429 has ``{message, retry_after, global}`` (optional
``code``), ``Retry-After`` and ``X-RateLimit-Scope`` (``user``, ``global`` or ``shared``).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from aiohttp import web

from tests.fakediscord.responses import API_PREFIX, json_response
from tests.fakediscord.rules import DiscordError

if TYPE_CHECKING:
    from tests.fakediscord.server import FakeDiscord

Scope = Literal["user", "global", "shared"]
# Cloudflare's marker: discord.py treats a 429 without ``Via`` as a Cloudflare ban, not a rate limit.
VIA = "1.1 google"
_SNOWFLAKE = re.compile(r"/\d{5,}")
_MAJOR = (
    re.compile(r"^/channels/(\d+)"),
    re.compile(r"^/guilds/(\d+)"),
    re.compile(r"^/webhooks/(\d+)/([^/]+)"),
    re.compile(r"^/interactions/(\d+)/([^/]+)"),
    re.compile(r"^/applications/(\d+)/guilds/(\d+)"),
)


def route_key(method: str, path: str) -> tuple[str, str]:
    """(bucket name, top-level resource) of a request: the bucket excludes the top-level ids.

    Args:
        method: HTTP method.
        path: API path without /api/v10.
    """
    major = ""
    template = path
    for pattern in _MAJOR:
        found = pattern.match(path)
        if found is not None:
            major = "/".join(found.groups())
            template = pattern.sub(pattern.pattern.split("(")[0].lstrip("^") + "{major}", path, count=1)
            break
    # Reactions share one bucket whatever the emoji; other ids (message ids...) are minor parameters.
    template = re.sub(r"/reactions/[^/]+", "/reactions/{emoji}", template)
    template = _SNOWFLAKE.sub("/{id}", template)
    return f"{method.upper()} {template}", major


def bucket_hash(name: str) -> str:
    """The opaque ``X-RateLimit-Bucket`` value of a bucket name.

    Args:
        name: e.g. ``POST /channels/{major}/messages``.
    """
    return hashlib.sha1(name.encode()).hexdigest()[:16]


@dataclass
class Bucket:
    """One bucket for one top-level resource: ``limit`` requests per ``window`` seconds (real time)."""

    name: str
    limit: int
    window: float
    used: int = 0
    reset_at: float = 0.0

    def take(self, now: float) -> bool:
        """Count one request; False when the bucket is empty.

        Args:
            now: monotonic seconds.
        """
        if now >= self.reset_at:
            self.used = 0
            self.reset_at = now + self.window
        if self.used >= self.limit:
            return False
        self.used += 1
        return True

    def headers(self, now: float) -> dict[str, str]:
        """The X-RateLimit-* headers of an answer from this bucket.

        Args:
            now: monotonic seconds.
        """
        reset_after = max(0.0, self.reset_at - now)
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.limit - self.used)),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket_hash(self.name),
        }


def rate_limited(
    retry_after: float,
    *,
    scope: Scope = "user",
    bucket_headers: dict[str, str] | None = None,
    code: int | None = None,
) -> web.Response:
    """Discord's 429 answer.

    Args:
        retry_after: seconds to wait.
        scope: user (per-route), global, or shared (per-resource).
        bucket_headers: the route's X-RateLimit-* headers (not sent with a global limit).
        code: an optional JSON error code.
    """
    body: dict[str, object] = {
        "message": "The resource is being rate limited." if scope == "shared" else "You are being rate limited.",
        "retry_after": round(retry_after, 3),
        "global": scope == "global",
    }
    if code is not None:
        body["code"] = code
    # Retry-After is whole seconds and never shorter than retry_after.
    headers = {"Content-Type": "application/json", "Retry-After": str(math.ceil(retry_after)), "Via": VIA}
    headers["X-RateLimit-Scope"] = scope
    if scope == "global":
        headers["X-RateLimit-Global"] = "true"
    elif bucket_headers:
        headers.update(bucket_headers)
    return web.Response(body=json.dumps(body).encode(), status=429, headers=headers)


class RateLimiter:
    """The fake's buckets; sizes come from ``FakeLimits.rate_limit_per_route`` / ``rate_limit_window``.

    Args:
        fake: the fake Discord.
    """

    def __init__(self, fake: FakeDiscord) -> None:
        self._fake = fake
        self.buckets: dict[tuple[str, str], Bucket] = {}

    def bucket_for(self, method: str, path: str) -> Bucket:
        """The bucket a request counts against (created on first use).

        Args:
            method: HTTP method.
            path: API path without /api/v10.
        """
        name, major = route_key(method, path)
        bucket = self.buckets.get((name, major))
        if bucket is None:
            limits = self._fake.limits
            bucket = Bucket(name, limits.rate_limit_per_route, limits.rate_limit_window)
            self.buckets[(name, major)] = bucket
        return bucket

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Count API requests in their bucket, answer 429 when it is empty, add the headers to every answer."""
        if not request.path.startswith(API_PREFIX):
            return await handler(request)
        path = request.path[len(API_PREFIX) :]
        bucket = self.bucket_for(request.method, path)
        now = time.monotonic()
        if not bucket.take(now):
            return rate_limited(bucket.reset_at - now, bucket_headers=bucket.headers(now))
        try:
            response = await handler(request)
        except DiscordError as error:
            response = json_response(error.body(), status=error.status)
        response.headers.update(bucket.headers(now))
        return response
