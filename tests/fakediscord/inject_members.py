"""Injecting what members and moderators do besides interactions: posts, reactions, thread state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.fakediscord.messages import DEFAULT_MESSAGE, REPLY
from tests.fakediscord.model import INTENT_GUILD_MESSAGES, FakeAttachment, FakeChannel, FakeMember, iso
from tests.fakediscord.permissions import VIEW_CHANNEL, channel_permissions, send_permission
from tests.fakediscord.records import FakeMessage
from tests.fakediscord.rules import DiscordError
from tests.fakediscord.threads import ArchivedThreadError
from tests.fakediscord.threads import before_post as before_thread_post
from tests.fakediscord.threads import set_archived as set_thread_archived


class MemberActions:
    """Mixed into :class:`FakeDiscord`: member posts and reactions, and a moderator's thread changes."""

    async def post_message(
        self,
        content: str = "",
        *,
        author: FakeMember | None = None,
        channel: FakeChannel | None = None,
        attachments: Sequence[FakeAttachment] = (),
        reply_to: FakeMessage | None = None,
        mention_author: bool = True,
        embeds: Sequence[dict[str, Any]] = (),
    ) -> FakeMessage:
        """A member posts a message (MESSAGE_CREATE). Mentions are parsed from ``<@id>`` / ``<@&id>`` in content.

        Without the MESSAGE_CONTENT intent the bot gets empty content/embeds/attachments/components
        unless the text @mentions it or it is a pinging reply to a regular (non-interaction) bot message.

        Args:
            content: the text; use ``fake.bot_user.mention`` to ping the bot.
            author: who posts; ``bob`` when None.
            channel: where; the default channel when None.
            attachments: files registered with :meth:`attachment`.
            reply_to: the message this replies to (message_reference + referenced_message).
            mention_author: whether the reply pings the replied-to author.
            embeds: embeds.
        """
        await self.wait_until_ready()
        channel = channel or self.channel
        member = author or self.member
        guild = self.guild_of(channel)
        await self._member_may_post(member, channel)
        mention_ids, role_ids, everyone = self._mentions(content, guild, None)
        reference = None
        message_type = DEFAULT_MESSAGE
        if reply_to is not None:
            reference = {
                "type": 0,
                "message_id": str(reply_to.id),
                "channel_id": str(reply_to.channel_id),
                "guild_id": str(reply_to.guild_id),
            }
            message_type = REPLY
            if mention_author and reply_to.author.id not in mention_ids:
                mention_ids.append(reply_to.author.id)
        message = FakeMessage(
            id=self.ids.next(),
            channel_id=channel.id,
            guild_id=guild.id,
            author=member.user,
            source="user",
            content=content,
            embeds=list(embeds),
            attachments=list(attachments),
            type=message_type,
            mention_ids=mention_ids,
            mention_role_ids=role_ids,
            mention_everyone=everyone,
            reference=reference,
            timestamp=iso(self.clock.utcnow()),
        )
        message.snapshot()
        self.messages[message.id] = message
        channel.last_message_id = message.id
        if self.gateway.wants(INTENT_GUILD_MESSAGES):
            await self.gateway.dispatch("MESSAGE_CREATE", self.bot_view(message, gateway=True))
        self.notify()
        return message

    async def _member_may_post(self, member: FakeMember, channel: FakeChannel) -> None:
        # Discord's client lets nobody post without VIEW_CHANNEL and SEND_MESSAGES(_IN_THREADS); a post
        # unarchives an archived unlocked thread, a locked one refuses non-moderators (topics/threads.mdx).
        bits = channel_permissions(self.guild_of(channel), member, channel)
        needed = VIEW_CHANNEL | send_permission(channel)
        if bits & needed != needed:
            raise PermissionError(f"{member.user.username} may not post in #{channel.name}")
        try:
            await before_thread_post(self, channel, bits)
        except DiscordError as refused:
            raise ArchivedThreadError(f"{member.user.username} cannot post in {channel.name!r}: {refused}") from None

    async def set_thread_state(self, thread: FakeChannel, *, archived: bool, locked: bool | None = None) -> None:
        """A moderator (or Discord's auto-archive) archives/unarchives and locks/unlocks a thread (THREAD_UPDATE).

        Args:
            thread: the thread.
            archived: archive (True) or unarchive.
            locked: lock or unlock; unchanged when None.
        """
        await set_thread_archived(self, thread, archived, locked)

    async def react(self, message: FakeMessage, emoji: str, *, user: FakeMember | None = None) -> None:
        """A member adds a reaction (MESSAGE_REACTION_ADD).

        Args:
            message: the message.
            emoji: a unicode emoji, or ``name:id`` for a custom one.
            user: who reacts; ``bob`` when None.
        """
        await self.wait_until_ready()
        await self.set_reaction(message, emoji, (user or self.member).user, add=True)

    async def unreact(self, message: FakeMessage, emoji: str, *, user: FakeMember | None = None) -> None:
        """A member removes a reaction (MESSAGE_REACTION_REMOVE).

        Args:
            message: the message.
            emoji: a unicode emoji, or ``name:id``.
            user: who; ``bob`` when None.
        """
        await self.wait_until_ready()
        await self.set_reaction(message, emoji, (user or self.member).user, add=False)
