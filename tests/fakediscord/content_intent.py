"""Which messages a bot without the MESSAGE_CONTENT intent may read, and how the others are blanked.

docs: gateway/you-might-not-need-a-privileged-intent.mdx "Message Content Intent": without the intent,
``content``, ``embeds``, ``attachments``, ``components`` and ``poll`` are empty in gateway events and
REST answers, except for messages the app sent, DMs to the app, messages that @mention the app, and
replies (Discord's reply feature, with "ping on reply") to a *regular* bot message, not to an
interaction response.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from tests.fakediscord.model import INTENT_MESSAGE_CONTENT

if TYPE_CHECKING:
    from tests.fakediscord.records import FakeMessage
    from tests.fakediscord.server import FakeDiscord

# Message types of interaction responses (resources/message.mdx "Message Types").
CHAT_INPUT_COMMAND = 20
CONTEXT_MENU_COMMAND = 23
USER_MENTION = re.compile(r"<@!?(\d+)>")


def has_content_access(fake: FakeDiscord) -> bool:
    """Whether the bot may read every message: it identified with MESSAGE_CONTENT and the portal allows it.

    Args:
        fake: the fake Discord.
    """
    return bool(
        fake.gateway.intents & INTENT_MESSAGE_CONTENT and fake.allowed_privileged_intents & INTENT_MESSAGE_CONTENT
    )


def is_interaction_response(message: FakeMessage) -> bool:
    """Whether a message answers an interaction (interaction_metadata, webhook, or type 20/23).

    Args:
        message: the message.
    """
    return (
        message.interaction_id is not None
        or message.webhook_id is not None
        or message.type in (CHAT_INPUT_COMMAND, CONTEXT_MENU_COMMAND)
    )


def readable_without_intent(fake: FakeDiscord, message: FakeMessage) -> bool:
    """Whether the intent's exceptions let the bot read this message.

    Args:
        fake: the fake Discord.
        message: the message.
    """
    bot_id = fake.bot_user.id
    if message.author.id == bot_id or message.guild_id is None:
        return True
    # An @mention in the text (the reply ping alone does not count: see below).
    if str(bot_id) in USER_MENTION.findall(message.content):
        return True
    if message.reference is None or message.type != 19:
        return False
    referenced = fake.messages.get(int(message.reference.get("message_id") or 0))
    if referenced is None or referenced.author.id != bot_id or is_interaction_response(referenced):
        return False
    # "ping on reply": the reply mentions the replied-to author (the bot).
    return bot_id in message.mention_ids


def blank(payload: dict[str, Any]) -> dict[str, Any]:
    """Empty the intent-gated fields of a message payload (in place) and return it.

    Args:
        payload: a message object.
    """
    payload.update({"content": "", "embeds": [], "attachments": [], "components": []})
    payload.pop("poll", None)
    return payload


def gate(fake: FakeDiscord, payload: dict[str, Any]) -> dict[str, Any]:
    """Apply the intent to a message payload and its ``referenced_message`` (in place) and return it.

    Args:
        fake: the fake Discord.
        payload: a message object built by ``fake.message_payload``.
    """
    if has_content_access(fake):
        return payload
    message = fake.messages.get(int(payload["id"]))
    if message is not None and not readable_without_intent(fake, message):
        blank(payload)
    referenced = payload.get("referenced_message")
    if isinstance(referenced, dict):
        gate(fake, referenced)
    return payload
