"""FakeGuild: the state container of one guild (its @everyone role, roles, channels, threads and members)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import discord

from tests.fakediscord.basics import (
    EVERYONE_PERMISSIONS,
    PRIVATE_THREAD,
    PUBLIC_THREAD,
    UPLOAD_LIMIT_BY_PREMIUM_TIER,
    FakeClock,
    SnowflakeFactory,
    iso,
)
from tests.fakediscord.entities import GUILD_VOICE, FakeChannel, FakeMember, FakeRole, FakeUser
from tests.fakediscord.permissions import base_permissions

if TYPE_CHECKING:
    from tests.fakediscord.voice_world import FakeVoiceState


class FakeGuild:
    """A guild: @everyone role, channels, roles and members. The bot is a member of every guild.

    Args:
        guild_id: the guild's snowflake (also the @everyone role's id).
        name: the guild's name.
        ids: where new ids come from.
        clock: the fake clock (joined_at and thread timestamps).
        everyone_permissions: what @everyone may do.
    """

    def __init__(
        self,
        guild_id: int,
        name: str,
        *,
        ids: SnowflakeFactory,
        clock: FakeClock,
        everyone_permissions: int = EVERYONE_PERMISSIONS,
    ) -> None:
        self.id = guild_id
        self.name = name
        self.owner_id: int = 0
        self.locale = "en-US"
        # Server Boost level 0-3 (resources/guild.mdx "Premium Tier"); raises the upload limit.
        self.premium_tier = 0
        self.roles: dict[int, FakeRole] = {}
        self.channels: dict[int, FakeChannel] = {}
        self.members: dict[int, FakeMember] = {}
        # Who is in which voice channel (voice_world.py keeps it).
        self.voice_states: dict[int, FakeVoiceState] = {}
        self._ids = ids
        self._clock = clock
        self._positions = itertools.count(1)
        # Set by FakeDiscord: called with (event name, payload) when something changes after the bot connected.
        self.on_change: Callable[[str, dict[str, Any]], None] | None = None
        self.roles[guild_id] = FakeRole(
            id=guild_id, guild_id=guild_id, name="@everyone", permissions=everyone_permissions
        )

    @property
    def everyone(self) -> FakeRole:
        """The @everyone role."""
        return self.roles[self.id]

    def _changed(self, event: str, payload: dict[str, Any]) -> None:
        if self.on_change is not None:
            self.on_change(event, payload)

    def add_role(self, name: str, permissions: int | discord.Permissions = 0, *, managed: bool = False) -> FakeRole:
        """Create a role.

        Args:
            name: the role's name.
            permissions: permission bits (an int or a discord.Permissions).
            managed: whether an integration owns it (the bot's own role).
        """
        bits = permissions.value if isinstance(permissions, discord.Permissions) else int(permissions)
        role = FakeRole(
            id=self._ids.next(),
            guild_id=self.id,
            name=name,
            permissions=bits,
            position=next(self._positions),
            managed=managed,
        )
        self.roles[role.id] = role
        self._changed("GUILD_ROLE_CREATE", {"guild_id": str(self.id), "role": role.payload()})
        return role

    def add_text_channel(self, name: str, *, topic: str | None = None) -> FakeChannel:
        """Create a text channel.

        Args:
            name: the channel's name.
            topic: its topic.
        """
        channel = FakeChannel(
            id=self._ids.next(), guild_id=self.id, name=name, position=len(self.channels), topic=topic
        )
        channel.on_change = self._changed
        self.channels[channel.id] = channel
        self._changed("CHANNEL_CREATE", channel.payload())
        return channel

    def add_voice_channel(self, name: str, *, user_limit: int = 0) -> FakeChannel:
        """Create a voice channel (type 2).

        Args:
            name: the channel's name.
            user_limit: most users at once (0: no limit).
        """
        channel = FakeChannel(
            id=self._ids.next(), guild_id=self.id, name=name, type=GUILD_VOICE, position=len(self.channels)
        )
        channel.user_limit = user_limit
        channel.on_change = self._changed
        self.channels[channel.id] = channel
        self._changed("CHANNEL_CREATE", channel.payload())
        return channel

    def add_thread(
        self,
        parent: FakeChannel,
        name: str,
        *,
        owner_id: int,
        thread_id: int | None = None,
        private: bool = False,
        auto_archive_duration: int = 1440,
    ) -> FakeChannel:
        """Create a thread under a text channel (the REST routes call this; tests may too).

        Args:
            parent: the text channel.
            name: the thread's name.
            owner_id: who created it.
            thread_id: the id (a thread started from a message has that message's id).
            private: a private thread (type 12) instead of a public one (type 11).
            auto_archive_duration: minutes of inactivity before Discord would archive it.
        """
        now = iso(self._clock.utcnow())
        thread = FakeChannel(
            id=thread_id or self._ids.next(),
            guild_id=self.id,
            name=name,
            type=PRIVATE_THREAD if private else PUBLIC_THREAD,
            parent_id=parent.id,
            owner_id=owner_id,
            auto_archive_duration=auto_archive_duration,
            archive_timestamp=now,
            created_timestamp=now,
            member_ids={owner_id},
        )
        self.channels[thread.id] = thread
        payload = thread.payload()
        payload["newly_created"] = True
        self._changed("THREAD_CREATE", payload)
        return thread

    def add_member(
        self,
        user: FakeUser,
        *,
        roles: Iterable[FakeRole] = (),
        nick: str | None = None,
    ) -> FakeMember:
        """Make a user a member.

        Args:
            user: the user.
            roles: roles besides @everyone.
            nick: a server nickname.
        """
        member = FakeMember(
            user=user,
            guild=self,
            role_ids=[role.id for role in roles],
            joined_at=iso(self._clock.utcnow()),
            nick=nick,
        )
        self.members[user.id] = member
        payload = member.payload()
        payload["guild_id"] = str(self.id)
        self._changed("GUILD_MEMBER_ADD", payload)
        return member

    def threads(self) -> list[FakeChannel]:
        """Threads, in creation order."""
        return [channel for channel in self.channels.values() if channel.is_thread]

    def text_channels(self) -> list[FakeChannel]:
        """Text channels (no threads), in creation order."""
        return [c for c in self.channels.values() if not c.is_thread and c.type != GUILD_VOICE]

    def voice_channels(self) -> list[FakeChannel]:
        """Voice channels, in creation order."""
        return [channel for channel in self.channels.values() if channel.type == GUILD_VOICE]

    def channel_named(self, name: str) -> FakeChannel:
        """The channel or thread with this name.

        Args:
            name: its name.
        """
        for channel in self.channels.values():
            if channel.name == name:
                return channel
        raise KeyError(f"no channel named {name!r} in guild {self.name!r}")

    def member_named(self, username: str) -> FakeMember:
        """The member whose username is this.

        Args:
            username: the user's name.
        """
        for member in self.members.values():
            if member.user.username == username:
                return member
        raise KeyError(f"no member named {username!r} in guild {self.name!r}")

    def permissions_of(self, member: FakeMember) -> int:
        """Guild-level permissions of a member: @everyone plus its roles; owners and admins get all.

        Args:
            member: the member.
        """
        return base_permissions(self, member)

    @property
    def upload_limit(self) -> int:
        """The per-file upload limit its boost tier gives (10 MiB, 50 MiB at tier 2, 100 MiB at tier 3)."""
        return UPLOAD_LIMIT_BY_PREMIUM_TIER.get(self.premium_tier, UPLOAD_LIMIT_BY_PREMIUM_TIER[0])

    def payload(self) -> dict[str, Any]:
        """The full GUILD_CREATE payload (member_count equals the members listed, so no chunking)."""
        now = iso(self._clock.utcnow())
        text = self.text_channels()
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": self.premium_tier,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": self.locale,
            "system_channel_id": str(text[0].id) if text else None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "vanity_url_code": None,
            "features": [],
            "emojis": [],
            "stickers": [],
            "roles": [role.payload() for role in self.roles.values()],
            "channels": [channel.payload(with_guild_id=False) for channel in [*text, *self.voice_channels()]],
            # docs: topics/threads.mdx "Gateway Events": GUILD_CREATE lists active threads only.
            "threads": [c.payload() for c in self.channels.values() if c.is_thread and not c.archived],
            "members": [member.payload() for member in self.members.values()],
            "member_count": len(self.members),
            "large": False,
            "unavailable": False,
            "joined_at": now,
            "voice_states": [
                state.payload(self.members.get(user_id), with_guild_id=False)
                for user_id, state in self.voice_states.items()
            ],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "max_members": 500_000,
            "max_video_channel_users": 25,
            "lazy": True,
            "application_id": None,
        }
