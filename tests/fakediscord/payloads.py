"""The JSON the fake sends for its messages and interactions (API and gateway payloads)."""

from __future__ import annotations

import copy
from typing import Any

from tests.fakediscord.content_intent import gate as gate_content
from tests.fakediscord.model import FakeChannel, FakeMember
from tests.fakediscord.permissions import channel_permissions
from tests.fakediscord.records import FakeInteraction, FakeMessage, answered_components, answered_embeds


def emoji_payload(key: str) -> dict[str, Any]:
    """The emoji object of a reaction: ``name:id`` is a custom emoji, anything else a unicode one.

    Args:
        key: the emoji as reactions store it.
    """
    name, _, emoji_id = key.partition(":")
    if emoji_id.isdigit():
        return {"id": emoji_id, "name": name, "animated": False}
    return {"id": None, "name": key}


class Payloads:
    """Mixed into :class:`FakeDiscord`: message objects (raw and as the bot sees them) and INTERACTION_CREATE."""

    def message_payload(
        self, message: FakeMessage, *, gateway: bool = False, with_reference: bool = True
    ) -> dict[str, Any]:
        """A message object as the API returns it.

        Args:
            message: the message.
            gateway: add ``member`` fields as gateway events do.
            with_reference: add ``referenced_message`` for replies.
        """
        guild = self.guilds.get(message.guild_id) if message.guild_id else None
        mentions = []
        for user_id in message.mention_ids:
            user = self.users.get(user_id)
            if user is None:
                continue
            entry = user.payload()
            if gateway and guild is not None and user_id in guild.members:
                entry["member"] = guild.members[user_id].payload(with_user=False)
            mentions.append(entry)
        body: dict[str, Any] = {
            "id": str(message.id),
            "type": message.type,
            "channel_id": str(message.channel_id),
            "content": message.content,
            "author": message.author.payload(),
            "timestamp": message.timestamp,
            "edited_timestamp": message.edited_timestamp,
            "tts": message.tts,
            "mention_everyone": message.mention_everyone,
            "mentions": mentions,
            "mention_roles": [str(role_id) for role_id in message.mention_role_ids],
            "mention_channels": [],
            "attachments": [attachment.payload() for attachment in message.attachments],
            "embeds": answered_embeds(message.embeds),
            "components": answered_components(message.components, message.attachments),
            "pinned": message.pinned,
            "flags": message.flags,
        }
        if guild is not None:
            body["guild_id"] = str(guild.id)
            if gateway and message.webhook_id is None and message.author.id in guild.members:
                body["member"] = guild.members[message.author.id].payload(with_user=False)
        if message.reactions:
            body["reactions"] = [
                {
                    "emoji": emoji_payload(key),
                    "count": len(users),
                    "count_details": {"burst": 0, "normal": len(users)},
                    "me": self.bot_user.id in users,
                    "me_burst": False,
                    "burst_colors": [],
                }
                for key, users in message.reactions.items()
                if users
            ]
        if message.webhook_id is not None:
            body["webhook_id"] = str(message.webhook_id)
            body["application_id"] = str(self.application_id)
        if message.interaction_id is not None:
            interaction = self.interactions.get(message.interaction_id)
            if interaction is not None:
                body["interaction_metadata"] = interaction.metadata_payload()
        if message.reference is not None:
            body["message_reference"] = copy.deepcopy(message.reference)
            if with_reference:
                referenced = self.messages.get(int(message.reference["message_id"]))
                body["referenced_message"] = (
                    self.message_payload(referenced, with_reference=False)
                    if referenced is not None and not referenced.deleted
                    else None
                )
        if message.thread_id is not None:
            thread = self.find_channel(message.thread_id)
            if thread is not None:
                body["thread"] = thread.payload()
        self.add_poll_fields(message, body)
        return body

    def bot_view(self, message: FakeMessage, *, gateway: bool = False) -> dict[str, Any]:
        """A message as the bot receives it: blanked by the MESSAGE_CONTENT rules (see content_intent).

        Args:
            message: the message.
            gateway: add ``member`` fields as gateway events do.
        """
        return gate_content(self, self.message_payload(message, gateway=gateway))

    def _channel_payload_for(self, channel: FakeChannel, member: FakeMember) -> dict[str, Any]:
        body = channel.payload()
        body["permissions"] = str(channel_permissions(self.guild_of(channel), member, channel))
        return body

    def interaction_payload(
        self,
        interaction: FakeInteraction,
        member: FakeMember,
        channel: FakeChannel,
        *,
        message: FakeMessage | None = None,
        locale: str = "en-US",
    ) -> dict[str, Any]:
        """INTERACTION_CREATE's payload.

        Args:
            interaction: the record.
            member: who triggered it.
            channel: where.
            message: the message of a component or a modal opened from one.
            locale: the user's client locale.
        """
        guild = self.guild_of(channel)
        bot_member = guild.members[self.bot_user.id]
        member_bits = channel_permissions(guild, member, channel)
        body: dict[str, Any] = {
            "id": str(interaction.id),
            "application_id": str(self.application_id),
            "type": interaction.type,
            "token": interaction.token,
            "version": 1,
            "attachment_size_limit": interaction.attachment_size_limit,
            "guild_id": str(guild.id),
            "guild": {"id": str(guild.id), "locale": guild.locale, "features": []},
            "guild_locale": guild.locale,
            "channel_id": str(channel.id),
            "channel": self._channel_payload_for(channel, member),
            # docs: interactions/receiving-and-responding.mdx: member permissions and app_permissions are
            # those in the interaction's channel (overwrites applied, topics/permissions.mdx).
            "member": {**member.payload(with_permissions=True), "permissions": str(member_bits)},
            "app_permissions": str(channel_permissions(guild, bot_member, channel)),
            "locale": locale,
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild.id)},
            "context": 0,
            "data": interaction.data,
        }
        if message is not None:
            body["message"] = self.bot_view(message)
        return body
