"""Direct messages from the bot to users: Create DM and posting to the DM channel.

docs: resources/user.mdx "Create DM" (returns the existing DM channel if there is one);
topics/opcodes-and-status-codes.mdx 50007 "Cannot send messages to this user" (a member who closed
their DMs). Only what a bot that DMs members needs: no group DMs, no incoming DMs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tests.fakediscord.model import INTENT_DIRECT_MESSAGES, FakeMember, FakeUser, iso
from tests.fakediscord.records import FakeMessage
from tests.fakediscord.rules import DiscordError, validate_message

if TYPE_CHECKING:
    from collections.abc import Mapping

    from tests.fakediscord.server import FakeDiscord

DM_CHANNEL = 1
CANNOT_MESSAGE_USER = 50007


@dataclass
class DmChannel:
    """The bot's DM channel with one user."""

    id: int
    recipient: FakeUser

    def payload(self) -> dict[str, Any]:
        """The DM channel object of the API."""
        return {
            "id": str(self.id),
            "type": DM_CHANNEL,
            "last_message_id": None,
            "flags": 0,
            "recipients": [self.recipient.payload()],
        }


class DirectMessages:
    """The bot's DM channels, and the users who do not accept DMs.

    Args:
        fake: the fake Discord.
    """

    def __init__(self, fake: FakeDiscord) -> None:
        self._fake = fake
        self.by_user: dict[int, DmChannel] = {}
        self.closed: set[int] = set()

    def get(self, channel_id: int) -> DmChannel | None:
        """The DM channel with this id.

        Args:
            channel_id: its id.
        """
        return next((dm for dm in self.by_user.values() if dm.id == channel_id), None)

    def open(self, user: FakeUser) -> DmChannel:
        """The DM channel with a user (created on first use, as Create DM does).

        Args:
            user: the recipient.
        """
        if user.id not in self.by_user:
            self.by_user[user.id] = DmChannel(self._fake.ids.next(), user)
        return self.by_user[user.id]

    async def send(self, dm: DmChannel, payload: dict[str, Any], files: Mapping[int, tuple[str, bytes]]) -> FakeMessage:
        """Post the bot's message in a DM channel; 403 50007 when the user closed their DMs.

        Args:
            dm: the channel.
            payload: the message JSON.
            files: uploaded files.
        """
        fake = self._fake
        validate_message(payload, fake.limits, creating=True, file_count=len(files))
        if dm.recipient.id in self.closed:
            raise DiscordError(403, CANNOT_MESSAGE_USER, "Cannot send messages to this user")
        attachments = fake.build_attachments(
            payload, files, channel_id=dm.id, size_limit=fake.limits.attachment_size_limit
        )
        message = FakeMessage(
            id=fake.ids.next(),
            channel_id=dm.id,
            guild_id=None,
            author=fake.bot_user,
            source="channel",
            content=str(payload.get("content") or ""),
            embeds=list(payload.get("embeds") or []),
            components=list(payload.get("components") or []),
            attachments=attachments or [],
            timestamp=iso(fake.clock.utcnow()),
            raw=dict(payload),
        )
        message.snapshot()
        fake.messages[message.id] = message
        if fake.gateway.wants(INTENT_DIRECT_MESSAGES):
            await fake.gateway.dispatch("MESSAGE_CREATE", fake.bot_view(message))
        fake.notify()
        return message

    def messages_to(self, target: FakeUser | FakeMember) -> list[FakeMessage]:
        """The bot's DMs to a user, oldest first.

        Args:
            target: the user or member.
        """
        user = target.user if isinstance(target, FakeMember) else target
        dm = self.by_user.get(user.id)
        if dm is None:
            return []
        return [m for m in self._fake.messages.values() if m.channel_id == dm.id and not m.deleted]
