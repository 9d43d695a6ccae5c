"""What the REST route handlers share: request bodies, sendable flags, and the base of the handler classes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web

from tests.fakediscord.messages import CHAT_INPUT_COMMAND, CONTEXT_MENU_COMMAND, DEFAULT_MESSAGE
from tests.fakediscord.model import FakeChannel
from tests.fakediscord.records import COMPONENTS_V2, FakeInteraction, FakeMessage
from tests.fakediscord.responses import json_response
from tests.fakediscord.rules import UNKNOWN_CHANNEL, UNKNOWN_MESSAGE, DiscordError

if TYPE_CHECKING:
    from tests.fakediscord.server import FakeDiscord

Files = dict[int, tuple[str, bytes]]
# Flags a bot may set on messages it sends: SUPPRESS_EMBEDS, SUPPRESS_NOTIFICATIONS, IS_VOICE_MESSAGE, IS_COMPONENTS_V2.
SENDABLE_FLAGS = 4 | 4096 | 8192 | COMPONENTS_V2


async def read_body(request: web.Request) -> tuple[dict[str, Any], Files]:
    """The JSON payload and the uploaded files (``payload_json`` + ``files[n]`` multipart, or plain JSON).

    Args:
        request: the request.
    """
    files: Files = {}
    if request.content_type.startswith("multipart/"):
        payload: dict[str, Any] = {}
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            name = part.name or ""
            if name == "payload_json":
                payload = json.loads(await part.text())
            elif name.startswith("files[") and name.endswith("]"):
                files[int(name[6:-1])] = (part.filename or "file", bytes(await part.read(decode=False)))
            elif name == "file":
                files[len(files)] = (part.filename or "file", bytes(await part.read(decode=False)))
        return payload, files
    if not request.body_exists:
        return {}, files
    text = await request.text()
    return (json.loads(text) if text else {}), files


async def read_body_list(request: web.Request) -> tuple[list[dict[str, Any]], Files]:
    """A JSON array body (bulk command overwrite).

    Args:
        request: the request.
    """
    text = await request.text()
    body = json.loads(text) if text else []
    if not isinstance(body, list):
        raise DiscordError(
            400,
            50035,
            "Invalid Form Body",
            {"_errors": [{"code": "LIST_TYPE_CONVERT", "message": "Only iterables may be used in a ListType"}]},
        )
    return body, {}


def message_type_for(interaction: FakeInteraction) -> int:
    """The type of the messages that answer an interaction (chat input or context menu command, else default).

    Args:
        interaction: the interaction answered.
    """
    if interaction.type == 2:
        return CHAT_INPUT_COMMAND if interaction.data.get("type", 1) == 1 else CONTEXT_MENU_COMMAND
    return DEFAULT_MESSAGE


class RouteBase:
    """What every group of route handlers shares: the fake, and looking up and answering channels and messages.

    Args:
        fake: the fake Discord.
    """

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake

    def _channel(self, request: web.Request) -> FakeChannel:
        channel = self.fake.find_channel(int(request.match_info["channel_id"]))
        if channel is None:
            raise DiscordError(404, UNKNOWN_CHANNEL, "Unknown Channel")
        return channel

    def _message_in(self, channel: FakeChannel, message_id: int) -> FakeMessage:
        message = self.fake.messages.get(message_id)
        if message is None or message.deleted or message.channel_id != channel.id or message.ephemeral:
            raise DiscordError(404, UNKNOWN_MESSAGE, "Unknown Message")
        return message

    def _ok(self, message: FakeMessage) -> web.Response:
        return json_response(self.fake.bot_view(message))

    @staticmethod
    def _no_content() -> web.Response:
        return web.Response(status=204)
