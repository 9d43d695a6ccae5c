"""Messages in the fake: mentions, attachments, replies; create, edit, delete and react, with their gateway events."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

from tests.fakediscord.limits import check_attachment_count, check_upload
from tests.fakediscord.model import (
    INTENT_GUILD_MESSAGE_REACTIONS,
    INTENT_GUILD_MESSAGES,
    FakeAttachment,
    FakeChannel,
    FakeGuild,
    FakeUser,
    iso,
)
from tests.fakediscord.payloads import emoji_payload
from tests.fakediscord.records import (
    COMPONENTS_V2,
    EPHEMERAL,
    HAS_THREAD,
    LOADING,
    FakeInteraction,
    FakeMessage,
    MessageSource,
    walk_components,
)
from tests.fakediscord.rules import DiscordError

USER_MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")

# Message types.
DEFAULT_MESSAGE = 0
REPLY = 19
CHAT_INPUT_COMMAND = 20
CONTEXT_MENU_COMMAND = 23


def mention_text(payload: dict[str, Any], flags: int) -> str:
    """The text whose mentions ping: the content, or a V2 message's text displays.

    docs: components/reference.mdx "Text Display": pingable mentions in it "will ping and send notifications
    based on the value of the allowed mention object"; resources/message.mdx "Edit Message" (mentions come
    from the components when IS_COMPONENTS_V2 is set).
    """
    if not flags & COMPONENTS_V2:
        return str(payload.get("content") or "")
    components = payload.get("components") or []
    return "\n".join(str(c.get("content") or "") for c in walk_components(components) if c.get("type") == 10)


class MessageStore:
    """Mixed into :class:`FakeDiscord`: the message operations shared by the REST routes and the injection API."""

    def _mentions(
        self, content: str, guild: FakeGuild | None, allowed: dict[str, Any] | None
    ) -> tuple[list[int], list[int], bool]:
        parse = set(allowed.get("parse", [])) if allowed is not None else {"users", "roles", "everyone"}
        allowed_users = {int(u) for u in (allowed or {}).get("users", [])}
        allowed_roles = {int(r) for r in (allowed or {}).get("roles", [])}
        users = [
            int(found)
            for found in dict.fromkeys(USER_MENTION.findall(content))
            if int(found) in self.users and ("users" in parse or int(found) in allowed_users)
        ]
        roles = [
            int(found)
            for found in dict.fromkeys(ROLE_MENTION.findall(content))
            if guild is not None and int(found) in guild.roles and ("roles" in parse or int(found) in allowed_roles)
        ]
        everyone = ("@everyone" in content or "@here" in content) and "everyone" in parse
        return users, roles, everyone

    def build_attachments(
        self,
        payload: dict[str, Any],
        files: Mapping[int, tuple[str, bytes]],
        *,
        channel_id: int,
        existing: Sequence[FakeAttachment] = (),
        size_limit: int,
        ephemeral: bool = False,
    ) -> list[FakeAttachment] | None:
        """Attachments after a create/edit: kept ones plus uploaded files (registered on the CDN).

        Args:
            payload: the message JSON (its ``attachments`` list decides what is kept).
            files: uploaded files by index (``files[n]``).
            channel_id: for CDN URLs.
            existing: the message's current attachments (edits).
            size_limit: largest file allowed.
            ephemeral: mark attachments ephemeral.

        Returns:
            The new list, or None when the payload does not touch attachments (edit without files).
        """
        check_upload(files, size_limit)
        listed = payload.get("attachments")
        if listed is None and not files:
            return None
        kept_by_id = {attachment.id: attachment for attachment in existing}
        result: list[FakeAttachment] = []
        used: set[int] = set()
        if listed is None:
            result.extend(existing)
            listed = [{"id": index} for index in sorted(files)]
        for position, entry in enumerate(listed):
            entry_id = int(entry.get("id"))
            if entry_id in kept_by_id:
                result.append(kept_by_id[entry_id])
            elif entry_id in files:
                filename, data = files[entry_id]
                used.add(entry_id)
                result.append(
                    self._register_cdn(
                        entry.get("filename") or filename,
                        data,
                        channel_id=channel_id,
                        description=entry.get("description"),
                        ephemeral=ephemeral,
                    )
                )
            else:
                raise DiscordError(
                    400,
                    50035,
                    "Invalid Form Body",
                    {
                        "attachments": {
                            str(position): {
                                "_errors": [{"code": "ATTACHMENT_NOT_FOUND", "message": "Unknown attachment"}]
                            }
                        }
                    },
                )
        for index in sorted(set(files) - used):
            filename, data = files[index]
            result.append(self._register_cdn(filename, data, channel_id=channel_id, ephemeral=ephemeral))
        check_attachment_count(result)
        return result

    def resolve_reference(self, payload: dict[str, Any], channel: FakeChannel) -> dict[str, Any] | None:
        """The stored ``message_reference`` of a reply, or Discord's error for an unknown target.

        Args:
            payload: the message JSON.
            channel: the channel the reply goes to.
        """
        reference = payload.get("message_reference")
        if not reference:
            return None
        target = self.messages.get(int(reference.get("message_id") or 0))
        if target is None or target.deleted:
            if reference.get("fail_if_not_exists", True):
                raise DiscordError(
                    400,
                    50035,
                    "Invalid Form Body",
                    {
                        "message_reference": {
                            "_errors": [{"code": "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "message": "Unknown message"}]
                        }
                    },
                )
            return None
        return {
            "type": 0,
            "message_id": str(target.id),
            "channel_id": str(target.channel_id),
            "guild_id": str(channel.guild_id),
            "fail_if_not_exists": reference.get("fail_if_not_exists", True),
        }

    async def store_message(
        self,
        *,
        channel: FakeChannel,
        author: FakeUser,
        payload: dict[str, Any],
        attachments: list[FakeAttachment],
        source: MessageSource,
        flags: int = 0,
        message_type: int = DEFAULT_MESSAGE,
        interaction: FakeInteraction | None = None,
        reference: dict[str, Any] | None = None,
        message_id: int | None = None,
    ) -> FakeMessage:
        """Create a message, store it, and tell the bot (MESSAGE_CREATE) when Discord would.

        Args:
            channel: where.
            author: who.
            payload: the message JSON (content, embeds, components, allowed_mentions, tts).
            attachments: its files.
            source: who made it and how.
            flags: message flags.
            message_type: the message type.
            interaction: the interaction it answers.
            reference: the stored message_reference (replies).
            message_id: a fixed id.
        """
        guild = self.guild_of(channel)
        content = str(payload.get("content") or "")
        allowed = payload.get("allowed_mentions")
        mention_ids, role_ids, everyone = self._mentions(mention_text(payload, flags), guild, allowed)
        if reference is not None:
            referenced = self.messages[int(reference["message_id"])]
            replied_user = True if allowed is None else allowed.get("replied_user", False)
            if replied_user and referenced.author.id not in mention_ids:
                mention_ids.append(referenced.author.id)
            if message_type == DEFAULT_MESSAGE:
                message_type = REPLY
        now = self.clock.utcnow()
        message = FakeMessage(
            id=message_id or self.ids.next(),
            channel_id=channel.id,
            guild_id=guild.id,
            author=author,
            source=source,
            content=content,
            embeds=list(payload.get("embeds") or []),
            components=list(payload.get("components") or []),
            attachments=attachments,
            flags=flags,
            type=message_type,
            tts=bool(payload.get("tts")),
            mention_ids=mention_ids,
            mention_role_ids=role_ids,
            mention_everyone=everyone,
            reference=reference,
            interaction_id=interaction.id if interaction is not None else None,
            webhook_id=self.application_id if source in ("interaction", "followup") else None,
            timestamp=iso(now),
            raw=copy.deepcopy(payload),
        )
        message.snapshot()
        self.messages[message.id] = message
        if not message.ephemeral:
            channel.last_message_id = message.id
            if channel.is_thread:
                channel.message_count += 1
            if self.gateway.wants(INTENT_GUILD_MESSAGES):
                await self.gateway.dispatch("MESSAGE_CREATE", self.bot_view(message, gateway=True))
        self.notify()
        return message

    async def edit_message(
        self,
        message: FakeMessage,
        payload: dict[str, Any],
        attachments: list[FakeAttachment] | None,
    ) -> FakeMessage:
        """Apply an edit (fields present in ``payload`` replace the old ones) and send MESSAGE_UPDATE.

        Args:
            message: the message.
            payload: the edit JSON.
            attachments: the new attachment list, or None to keep them.
        """
        if "content" in payload:
            message.content = str(payload["content"] or "")
            guild = self.guilds.get(message.guild_id or 0)
            message.mention_ids, message.mention_role_ids, message.mention_everyone = self._mentions(
                message.content, guild, payload.get("allowed_mentions")
            )
        if "embeds" in payload:
            message.embeds = list(payload["embeds"] or [])
        if "components" in payload:
            message.components = list(payload["components"] or [])
        # An edit cannot make a message ephemeral or not; it always ends the "thinking..." state.
        kept = message.flags & (EPHEMERAL | HAS_THREAD)
        flags = int(payload["flags"]) if payload.get("flags") is not None else message.flags
        message.flags = (flags & ~(EPHEMERAL | LOADING | HAS_THREAD)) | kept
        if attachments is not None:
            message.attachments = attachments
        message.edited_timestamp = iso(self.clock.utcnow())
        message.raw = copy.deepcopy(payload)
        message.snapshot()
        if not message.ephemeral and self.gateway.wants(INTENT_GUILD_MESSAGES):
            await self.gateway.dispatch("MESSAGE_UPDATE", self.bot_view(message, gateway=True))
        self.notify()
        return message

    async def delete_message(self, message: FakeMessage) -> None:
        """Mark a message deleted and send MESSAGE_DELETE.

        Args:
            message: the message.
        """
        message.deleted = True
        if not message.ephemeral and self.gateway.wants(INTENT_GUILD_MESSAGES):
            await self.gateway.dispatch(
                "MESSAGE_DELETE",
                {"id": str(message.id), "channel_id": str(message.channel_id), "guild_id": str(message.guild_id)},
            )
        self.notify()

    async def set_reaction(self, message: FakeMessage, emoji: str, user: FakeUser, *, add: bool) -> None:
        """Add or remove one user's reaction and tell the bot.

        Args:
            message: the message.
            emoji: a unicode emoji or ``name:id``.
            user: who reacts.
            add: add (True) or remove (False).
        """
        users = message.reactions.setdefault(emoji, [])
        if add and user.id not in users:
            users.append(user.id)
        elif not add and user.id in users:
            users.remove(user.id)
        else:
            return
        if self.gateway.wants(INTENT_GUILD_MESSAGE_REACTIONS):
            event: dict[str, Any] = {
                "user_id": str(user.id),
                "channel_id": str(message.channel_id),
                "message_id": str(message.id),
                "guild_id": str(message.guild_id),
                "emoji": emoji_payload(emoji),
                "burst": False,
                "burst_colors": [],
                "type": 0,
            }
            if add:
                guild = self.guilds[message.guild_id or 0]
                if user.id in guild.members:
                    event["member"] = guild.members[user.id].payload()
                event["message_author_id"] = str(message.author.id)
            await self.gateway.dispatch("MESSAGE_REACTION_ADD" if add else "MESSAGE_REACTION_REMOVE", event)
        self.notify()
