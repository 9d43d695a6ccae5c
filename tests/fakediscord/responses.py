"""JSON answers as discord.py expects them, and what the server stores on each request and response."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

API_PREFIX = "/api/v10"
# Per-request/response storage: which interaction a request concerns, and the Discord error it got.
INTERACTION_ID = web.RequestKey("interaction_id", int)
DISCORD_CODE = web.ResponseKey("discord_code", object)
DISCORD_MESSAGE = web.ResponseKey("discord_message", str)


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON answer with ``Content-Type: application/json`` exactly (discord.py needs that).

    Args:
        body: JSON-able body.
        status: HTTP status.
        headers: extra headers.
    """
    response = web.Response(
        body=json.dumps(body).encode(), status=status, headers={"Content-Type": "application/json", **(headers or {})}
    )
    if isinstance(body, dict) and status >= 400:
        response[DISCORD_CODE] = body.get("code")
        response[DISCORD_MESSAGE] = str(body.get("message", ""))
    return response
