"""The fake Discord's entity types: CDN files, users, roles, channels/threads and members.

Each is plain data plus the JSON payload it has on the real API (v10), complete enough for discord.py 2.7
to parse. The guild that holds them is in guild.py.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import discord

from tests.fakediscord.basics import ADMINISTRATOR, GUILD_TEXT, THREAD_TYPES
from tests.fakediscord.permissions import MEMBER_OVERWRITE, ROLE_OVERWRITE, PermissionOverwrite, bits_of

GUILD_VOICE = 2  # resources/channel.mdx "Channel Types"

if TYPE_CHECKING:
    from tests.fakediscord.guild import FakeGuild


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
    # Voice channels only (0: no limit).
    user_limit: int = 0
    bitrate: int = 64000
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
        if self.type == GUILD_VOICE:
            body.update({"bitrate": self.bitrate, "user_limit": self.user_limit, "rtc_region": None})
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
