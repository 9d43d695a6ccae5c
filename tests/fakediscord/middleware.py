"""The HTTP plumbing: every request is recorded, faults are injected, and errors become Discord's answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.base_protocol import BaseProtocol
from aiohttp.streams import StreamReader

from tests.fakediscord.faults import FaultRule
from tests.fakediscord.ratelimits import Bucket, rate_limited
from tests.fakediscord.records import ErrorRecord, RequestRecord
from tests.fakediscord.responses import API_PREFIX, DISCORD_CODE, DISCORD_MESSAGE, INTERACTION_ID, json_response
from tests.fakediscord.rules import DiscordError


class HttpPlumbing:
    """Mixed into :class:`FakeDiscord`: the aiohttp middleware around every route, and its authorization."""

    def _fault_response(self, rule: FaultRule) -> web.Response:
        if rule.kind == "rate_limit":
            # The same shape as a real bucket's 429 (ratelimits.rate_limited), with an exhausted bucket's headers.
            now = time.monotonic()
            bucket = Bucket(
                "injected " + (rule.path or "*"), 5, rule.retry_after, used=5, reset_at=now + rule.retry_after
            )
            response = rate_limited(
                rule.retry_after, scope=rule.scope, bucket_headers=bucket.headers(now), code=rule.code
            )
            response[DISCORD_CODE] = rule.code
            response[DISCORD_MESSAGE] = "You are being rate limited."
            return response
        status_text = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}.get(
            rule.status, ""
        )
        return json_response({"message": f"{rule.status}: {status_text}", "code": 0}, status=rule.status)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        if request.path.startswith("/gateway"):
            return await handler(request)
        path = request.path[len(API_PREFIX) :] if request.path.startswith(API_PREFIX) else request.path
        self._inflight += 1
        self.notify()
        status = 0
        code: int | None = None
        message = ""
        fault: str | None = None
        handled = True
        # Raw bodies and answers for the conformance check (conformance.py); the CDN is not the API.
        request_body = b""
        answer: web.StreamResponse | None = None
        if request.body_exists and not path.startswith("/cdn/"):
            request_body = await request.read()
            # read() caches the bytes for text()/json(), but multipart readers stream: give them a
            # fresh stream over the same bytes (its limit is above the size, so it never pauses a transport).
            replay = StreamReader(BaseProtocol(asyncio.get_running_loop()), max(2**16, len(request_body)))
            replay.feed_data(request_body)
            replay.feed_eof()
            request._payload = replay
        try:
            refusal, delays = self.faults.take(request.method, path)
            if refusal is not None and refusal.kind == "reset":
                fault = refusal.describe()
                if request.transport is not None:
                    request.transport.abort()
                # Nothing reaches the client; aiohttp drops this answer on the closed transport.
                return web.Response(status=500)
            if refusal is not None:
                fault = refusal.describe()
                response: web.StreamResponse = self._fault_response(refusal)
            else:
                try:
                    if path.startswith("/cdn/") or self._authorized(request, path):
                        response = await handler(request)
                    else:
                        response = json_response({"message": "401: Unauthorized", "code": 0}, status=401)
                except DiscordError as error:
                    response = json_response(error.body(), status=error.status)
                except web.HTTPNotFound:
                    handled = False
                    response = json_response({"message": "404: Not Found", "code": 0}, status=404)
                except web.HTTPMethodNotAllowed:
                    handled = False
                    response = json_response({"message": "405: Method Not Allowed", "code": 0}, status=405)
                except Exception as error:
                    # A bug in the fake: answer a non-retried 400 and make every wait and the bot's stop fail.
                    self.internal_errors.append(error)
                    text = f"fake Discord internal error: {error!r}"
                    response = json_response({"message": text, "code": 0}, status=400)
            for delay in delays:
                fault = fault or delay.describe()
                await asyncio.sleep(delay.seconds)
            status = response.status
            code = response.get(DISCORD_CODE)  # type: ignore[assignment]
            message = response.get(DISCORD_MESSAGE, "")
            answer = response
            return response
        finally:
            now = time.monotonic()
            answer_body = answer.body if isinstance(answer, web.Response) else None
            self.requests.append(
                RequestRecord(
                    method=request.method,
                    path=path,
                    query=dict(request.query),
                    status=status,
                    at=now,
                    error_code=code,
                    fault=fault,
                    handled=handled,
                    request_content_type=request.headers.get("Content-Type", ""),
                    request_body=request_body,
                    answer_headers=dict(answer.headers) if answer is not None else {},
                    answer_body=answer_body if isinstance(answer_body, bytes) else b"",
                )
            )
            if 400 <= status < 500:
                self.errors.append(
                    ErrorRecord(
                        method=request.method,
                        path=path,
                        status=status,
                        code=code,
                        message=message,
                        at=now,
                        interaction_id=request.get(INTERACTION_ID),
                        fault=fault,
                    )
                )
            self._inflight -= 1
            self.notify()

    def _authorized(self, request: web.Request, path: str) -> bool:
        # Interaction callbacks and webhook calls authenticate with the token in the URL.
        if path.startswith(("/interactions/", "/webhooks/")):
            return True
        return request.headers.get("Authorization") == f"Bot {self.token}"
