"""The fake Discord's world: ids, clocks, limits, users, roles, channels, members, guilds and CDN files.

Everything here is plain data plus the JSON payload each object has on the real API (v10), complete
enough for discord.py 2.7 to parse. Nothing here talks to the network.
"""

from __future__ import annotations

import datetime as dt
import itertools
import mimetypes
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import discord

from tests.fakediscord.permissions import (
    BOT_INVITE_PERMISSIONS,
    MEMBER_OVERWRITE,
    ROLE_OVERWRITE,
    PermissionOverwrite,
    base_permissions,
    bits_of,
)

DISCORD_EPOCH_MS = 1_420_070_400_000
MIB = 1024 * 1024

# Permission bits used by the defaults; discord.Permissions keeps them honest.
ADMINISTRATOR = discord.Permissions(administrator=True).value
ALL_PERMISSIONS = discord.Permissions.all().value
EVERYONE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    embed_links=True,
    attach_files=True,
    add_reactions=True,
    read_message_history=True,
    use_application_commands=True,
    use_external_emojis=True,
    connect=True,
    speak=True,
).value
# The bot's managed role carries exactly what jamgen's invite link asks for.
BOT_PERMISSIONS = BOT_INVITE_PERMISSIONS

# Gateway intents (bit values), see https://discord.com/developers/docs/events/gateway#gateway-intents
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_GUILD_MESSAGE_REACTIONS = 1 << 10
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

# Channel types.
GUILD_TEXT = 0
PUBLIC_THREAD = 11
PRIVATE_THREAD = 12
THREAD_TYPES = (10, PUBLIC_THREAD, PRIVATE_THREAD)

# docs: change-log.mdx "Default File Upload Limit Change" (10 MiB) and the Server Boosting FAQ linked from
# reference.mdx "Uploading Files": boost tier 2 raises the per-file limit to 50 MiB, tier 3 to 100 MiB.
UPLOAD_LIMIT_BY_PREMIUM_TIER = {0: 10 * MIB, 1: 10 * MIB, 2: 50 * MIB, 3: 100 * MIB}


def iso(moment: dt.datetime) -> str:
    """Discord's ISO-8601 timestamp text.

    Args:
        moment: an aware datetime.
    """
    return moment.isoformat(timespec="microseconds")


class SnowflakeFactory:
    """Strictly increasing, realistic snowflakes (their timestamp part is the real time)."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        """A fresh snowflake."""
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        if candidate <= self._last:
            candidate = self._last + 1
        self._last = candidate
        return candidate


class FakeClock:
    """Time as the fake Discord sees it: real monotonic time plus whatever the test advanced.

    Rules measured on this clock (interaction tokens live 15 minutes) can be crossed instantly with
    :meth:`advance`; message timestamps shown to the bot move along with it.
    """

    def __init__(self) -> None:
        self._offset = 0.0

    @property
    def offset(self) -> float:
        """Seconds the test has advanced so far."""
        return self._offset

    def now(self) -> float:
        """Monotonic seconds, advanced by the test's offset."""
        return time.monotonic() + self._offset

    def utcnow(self) -> dt.datetime:
        """Wall-clock time on the fake clock (real UTC now plus the offset)."""
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self._offset)

    def advance(self, seconds: float) -> None:
        """Jump forward.

        Args:
            seconds: how far; must not be negative.
        """
        if seconds < 0:
            raise ValueError("the fake clock only moves forward")
        self._offset += seconds


@dataclass(frozen=True)
class FakeLimits:
    """Discord's limits as the fake enforces them; shrink them in tests to keep payloads small.

    Args:
        attachment_size_limit: largest file in bytes (per file) for interaction responses and
            channel messages; also sent to the bot as the interaction's ``attachment_size_limit``.
        interaction_ack_deadline: seconds (real monotonic time) after INTERACTION_CREATE within
            which the first callback must arrive.
        interaction_token_lifetime: seconds (fake clock) an interaction token stays usable.
        max_content: characters of message content.
        max_embeds: embeds per message.
        max_custom_id: characters of a component custom_id.
        max_action_rows: top-level action rows per message.
        max_row_components: buttons per action row.
        heartbeat_interval_ms: heartbeat interval announced in HELLO.
        rate_limit_per_route: requests per bucket (route and top-level resource) per window; large by
            default so scenarios never meet it, shrink it to see real 429s.
        rate_limit_window: seconds (real time) after which a bucket refills.
    """

    attachment_size_limit: int = 10 * MIB
    interaction_ack_deadline: float = 3.0
    interaction_token_lifetime: float = 15 * 60.0
    max_content: int = 2000
    max_embeds: int = 10
    max_custom_id: int = 100
    max_action_rows: int = 5
    max_row_components: int = 5
    heartbeat_interval_ms: int = 41_250
    rate_limit_per_route: int = 10_000
    rate_limit_window: float = 1.0


def guess_content_type(filename: str) -> str:
    """MIME type from a file name, as Discord's CDN reports it.

    Args:
        filename: the attachment's file name.
    """
    guessed, _ = mimetypes.guess_type(filename)
    return guessed or "application/octet-stream"


@dataclass(eq=False)
class FakeAttachment:
    """A file served by the fake CDN: registered by a test or uploaded by the bot.

    ``size`` may be set larger than ``data`` to pretend a huge file without allocating it.
    """

    id: int
    filename: str
    data: bytes
    content_type: str
    url: str
    size: int
    description: str | None = None
    ephemeral: bool = False
    duration_secs: float | None = None

    def payload(self) -> dict[str, Any]:
        """The attachment object of the API."""
        body: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.url,
            "content_type": self.content_type,
        }
        if self.description is not None:
            body["description"] = self.description
        if self.ephemeral:
            body["ephemeral"] = True
        if self.duration_secs is not None:
            body["duration_secs"] = self.duration_secs
        return body


@dataclass(eq=False)
class FakeUser:
    """A Discord user (a person or the bot)."""

    id: int
    username: str
    bot: bool = False
    global_name: str | None = None

    @property
    def mention(self) -> str:
        """``<@id>``, the way content mentions a user."""
        return f"<@{self.id}>"

    def payload(self) -> dict[str, Any]:
        """The user object of the API."""
        body: dict[str, Any] = {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "primary_guild": None,
        }
        if self.bot:
            body["bot"] = True
        return body


@dataclass(eq=False)
class FakeRole:
    """A guild role; the guild's @everyone role has the guild's id."""

    id: int
    guild_id: int
    name: str
    permissions: int
    position: int = 0
    managed: bool = False
    color: int = 0

    @property
    def mention(self) -> str:
        """``<@&id>``, the way content mentions a role."""
        return f"<@&{self.id}>"

    def payload(self) -> dict[str, Any]:
        """The role object of the API."""
        return {
            "id": str(self.id),
            "name": self.name,
            "color": self.color,
            "colors": {"primary_color": self.color, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed,
            "mentionable": False,
            "flags": 0,
        }


@dataclass(eq=False)
class FakeChannel:
    """A guild text channel or a thread in one."""

    id: int
    guild_id: int
    name: str
    type: int = GUILD_TEXT
    position: int = 0
    topic: str | None = None
    parent_id: int | None = None
    # Threads only.
    owner_id: int | None = None
    archived: bool = False
    locked: bool = False
    auto_archive_duration: int = 1440
    archive_timestamp: str = ""
    invitable: bool = True
    created_timestamp: str = ""
    message_count: int = 0
    member_ids: set[int] = field(default_factory=set)
    last_message_id: int | None = None
    # Text channels only: permission overwrites by role or member id (threads use their parent's).
    overwrites: dict[int, PermissionOverwrite] = field(default_factory=dict)
    # Set by the guild: called with (event, payload) when a test changes the channel.
    on_change: Callable[[str, dict[str, Any]], None] | None = field(default=None, repr=False)

    def set_overwrite(
        self,
        target: FakeRole | FakeMember,
        *,
        allow: int | discord.Permissions = 0,
        deny: int | discord.Permissions = 0,
    ) -> PermissionOverwrite:
        """Set (replace) the overwrite of a role or a member; the bot gets CHANNEL_UPDATE.

        Args:
            target: the role (``guild.everyone`` for @everyone) or the member.
            allow: bits allowed here.
            deny: bits denied here.
        """
        if self.is_thread:
            # docs: topics/permissions.mdx "Inherited Permissions (Threads)": threads have no overwrites of their own.
            raise ValueError("threads inherit their parent's overwrites; set them on the parent channel")
        kind = ROLE_OVERWRITE if isinstance(target, FakeRole) else MEMBER_OVERWRITE
        overwrite = PermissionOverwrite(id=target.id, type=kind, allow=bits_of(allow), deny=bits_of(deny))
        self.overwrites[target.id] = overwrite
        if self.on_change is not None:
            self.on_change("CHANNEL_UPDATE", self.payload())
        return overwrite

    def clear_overwrite(self, target: FakeRole | FakeMember) -> None:
        """Remove the overwrite of a role or member (CHANNEL_UPDATE).

        Args:
            target: the role or member.
        """
        if self.overwrites.pop(target.id, None) is not None and self.on_change is not None:
            self.on_change("CHANNEL_UPDATE", self.payload())

    @property
    def is_thread(self) -> bool:
        """Whether this is a thread."""
        return self.type in THREAD_TYPES

    @property
    def mention(self) -> str:
        """``<#id>``."""
        return f"<#{self.id}>"

    def payload(self, *, with_guild_id: bool = True) -> dict[str, Any]:
        """The channel object of the API.

        Args:
            with_guild_id: GUILD_CREATE lists channels without their guild_id.
        """
        body: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "name": self.name,
            "position": self.position,
            "flags": 0,
            "nsfw": False,
            "rate_limit_per_user": 0,
            "last_message_id": str(self.last_message_id) if self.last_message_id else None,
        }
        if with_guild_id:
            body["guild_id"] = str(self.guild_id)
        if self.is_thread:
            body.update(
                {
                    "parent_id": str(self.parent_id),
                    "owner_id": str(self.owner_id),
                    "message_count": self.message_count,
                    "total_message_sent": self.message_count,
                    "member_count": len(self.member_ids),
                    "thread_metadata": {
                        "archived": self.archived,
                        "auto_archive_duration": self.auto_archive_duration,
                        "archive_timestamp": self.archive_timestamp,
                        "locked": self.locked,
                        "invitable": self.invitable,
                        "create_timestamp": self.created_timestamp,
                    },
                }
            )
        else:
            body.update(
                {
                    "parent_id": str(self.parent_id) if self.parent_id else None,
                    "topic": self.topic,
                    "permission_overwrites": [o.payload() for o in self.overwrites.values()],
                    "default_auto_archive_duration": 1440,
                    "default_thread_rate_limit_per_user": 0,
                }
            )
        return body


@dataclass(eq=False)
class FakeMember:
    """A user's membership of a guild, with roles (permissions come from the roles)."""

    user: FakeUser
    guild: FakeGuild
    role_ids: list[int]
    joined_at: str
    nick: str | None = None

    @property
    def id(self) -> int:
        """The user's id."""
        return self.user.id

    @property
    def mention(self) -> str:
        """``<@id>``."""
        return self.user.mention

    @property
    def permissions(self) -> int:
        """Guild-level permissions (channel overwrites not applied; see permissions.channel_permissions)."""
        return self.guild.permissions_of(self)

    @property
    def is_admin(self) -> bool:
        """Whether the member has ADMINISTRATOR (or owns the guild)."""
        return self.permissions & ADMINISTRATOR == ADMINISTRATOR

    def payload(self, *, with_user: bool = True, with_permissions: bool = False) -> dict[str, Any]:
        """The guild member object of the API.

        Args:
            with_user: include ``user`` (MESSAGE_CREATE's ``member`` omits it).
            with_permissions: include ``permissions`` as interactions do.
        """
        body: dict[str, Any] = {
            "roles": [str(role_id) for role_id in self.role_ids],
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if with_user:
            body["user"] = self.user.payload()
        if with_permissions:
            body["permissions"] = str(self.permissions)
        return body


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
        return [channel for channel in self.channels.values() if not channel.is_thread]

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
            "channels": [channel.payload(with_guild_id=False) for channel in text],
            # docs: topics/threads.mdx "Gateway Events": GUILD_CREATE lists active threads only.
            "threads": [c.payload() for c in self.channels.values() if c.is_thread and not c.archived],
            "members": [member.payload() for member in self.members.values()],
            "member_count": len(self.members),
            "large": False,
            "unavailable": False,
            "joined_at": now,
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "max_members": 500_000,
            "max_video_channel_users": 25,
            "lazy": True,
            "application_id": None,
        }
