"""Channel permissions as Discord computes them, and the REST refusals that follow from them.

docs: topics/permissions.mdx "Permission Overwrites" (base from @everyone + roles, owner and
ADMINISTRATOR get everything, then overwrites: @everyone, roles, member), "Implicit Permissions"
(no VIEW_CHANNEL denies everything; no SEND_MESSAGES denies MENTION_EVERYONE, SEND_TTS_MESSAGES,
ATTACH_FILES and EMBED_LINKS) and "Inherited Permissions (Threads)" (threads use the parent's
overwrites; SEND_MESSAGES_IN_THREADS replaces SEND_MESSAGES).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord

if TYPE_CHECKING:
    from tests.fakediscord.model import FakeChannel, FakeGuild, FakeMember
    from tests.fakediscord.rules import DiscordError

ALL = discord.Permissions.all().value
ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
SEND_TTS_MESSAGES = 1 << 12
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
CONNECT = 1 << 20
SPEAK = 1 << 21
MOVE_MEMBERS = 1 << 24
# docs: topics/permissions.mdx SEND_POLLS (1 << 49) "Allows sending polls".
SEND_POLLS = 1 << 49
MANAGE_ROLES = 1 << 28
USE_APPLICATION_COMMANDS = 1 << 31
MANAGE_THREADS = 1 << 34
CREATE_PUBLIC_THREADS = 1 << 35
CREATE_PRIVATE_THREADS = 1 << 36
SEND_MESSAGES_IN_THREADS = 1 << 38
PIN_MESSAGES = 1 << 51

# What the README's invite link asks for (README "Create the Discord application": 2252109051448320).
BOT_INVITE_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | SEND_MESSAGES_IN_THREADS
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | CREATE_PUBLIC_THREADS
    | PIN_MESSAGES
    | CONNECT
    | SPEAK
    | SEND_POLLS
)

# JSON error codes (topics/opcodes-and-status-codes.mdx "JSON Error Codes").
MISSING_ACCESS = 50001
MISSING_PERMISSIONS = 50013
CANNOT_REPLY_WITHOUT_HISTORY = 160002

ROLE_OVERWRITE = 0
MEMBER_OVERWRITE = 1


@dataclass
class PermissionOverwrite:
    """One channel overwrite (resources/channel.mdx "Overwrite Object"): a role (type 0) or a member (1)."""

    id: int
    type: int
    allow: int = 0
    deny: int = 0

    def payload(self) -> dict[str, Any]:
        """The overwrite object of the API (bit sets as strings)."""
        return {"id": str(self.id), "type": self.type, "allow": str(self.allow), "deny": str(self.deny)}


def bits_of(value: int | discord.Permissions) -> int:
    """An int from an int or a discord.Permissions.

    Args:
        value: permission bits.
    """
    return value.value if isinstance(value, discord.Permissions) else int(value)


def base_permissions(guild: FakeGuild, member: FakeMember) -> int:
    """Guild-level permissions.

    Args:
        guild: the guild.
        member: the member.
    """
    # docs: topics/permissions.mdx "Permission Overwrites" (compute_base_permissions)
    if member.id == guild.owner_id:
        return ALL
    bits = guild.everyone.permissions
    for role_id in member.role_ids:
        role = guild.roles.get(role_id)
        if role is not None:
            bits |= role.permissions
    if bits & ADMINISTRATOR:
        return ALL
    return bits


def channel_permissions(guild: FakeGuild, member: FakeMember, channel: FakeChannel) -> int:
    """A member's permissions in a channel or thread, implicit denials applied.

    Args:
        guild: the channel's guild.
        member: the member.
        channel: a text channel or a thread.
    """
    base = base_permissions(guild, member)
    if base & ADMINISTRATOR:
        return ALL
    # docs: topics/permissions.mdx "Inherited Permissions (Threads)": threads use the parent's overwrites.
    source = guild.channels.get(channel.parent_id or 0) if channel.is_thread else channel
    overwrites = source.overwrites if source is not None else {}
    bits = base
    # docs: topics/permissions.mdx "Permission Overwrites": @everyone, then all roles together, then the member.
    everyone = overwrites.get(guild.id)
    if everyone is not None:
        bits = (bits & ~everyone.deny) | everyone.allow
    allow = deny = 0
    for role_id in member.role_ids:
        overwrite = overwrites.get(role_id)
        if overwrite is not None and overwrite.type == ROLE_OVERWRITE:
            allow |= overwrite.allow
            deny |= overwrite.deny
    bits = (bits & ~deny) | allow
    personal = overwrites.get(member.id)
    if personal is not None and personal.type == MEMBER_OVERWRITE:
        bits = (bits & ~personal.deny) | personal.allow
    # docs: topics/permissions.mdx "Implicit Permissions"
    if not bits & VIEW_CHANNEL:
        return 0
    # docs: topics/threads.mdx "Permissions": private threads need an invitation or MANAGE_THREADS.
    if channel.type == 12 and member.id not in channel.member_ids and not bits & MANAGE_THREADS:
        return 0
    send = SEND_MESSAGES_IN_THREADS if channel.is_thread else SEND_MESSAGES
    if not bits & send:
        bits &= ~(MENTION_EVERYONE | SEND_TTS_MESSAGES | ATTACH_FILES | EMBED_LINKS)
    return bits


def missing_permissions() -> DiscordError:
    """Discord's 403 for a permission the current user lacks."""
    # Imported here: rules.py needs model.py, which needs this module.
    from tests.fakediscord.rules import DiscordError

    return DiscordError(403, MISSING_PERMISSIONS, "Missing Permissions")


def require(bits: int, needed: int) -> None:
    """Refuse unless every bit of ``needed`` is in ``bits`` (no VIEW_CHANNEL: 50001 Missing Access).

    Args:
        bits: the current user's channel permissions.
        needed: the bits the action needs.
    """
    if not bits & VIEW_CHANNEL:
        from tests.fakediscord.rules import DiscordError

        raise DiscordError(403, MISSING_ACCESS, "Missing Access")
    if bits & needed != needed:
        raise missing_permissions()


def send_permission(channel: FakeChannel) -> int:
    """The bit that allows posting here.

    Args:
        channel: a text channel or a thread.
    """
    # docs: topics/threads.mdx "Permissions": SEND_MESSAGES has no effect in threads.
    return SEND_MESSAGES_IN_THREADS if channel.is_thread else SEND_MESSAGES


def apply_overwrites(channel: FakeChannel, changes: dict[str, Any]) -> None:
    """Replace a text channel's overwrites from a Modify Channel body's ``permission_overwrites``.

    Args:
        channel: the channel.
        changes: the PATCH body.
    """
    listed = changes.get("permission_overwrites")
    if listed is None or channel.is_thread:
        return
    # docs: resources/channel.mdx "Modify Channel": allow/deny may be omitted or null, both meaning "0".
    channel.overwrites = {
        int(entry["id"]): PermissionOverwrite(
            id=int(entry["id"]),
            type=int(entry.get("type") or 0),
            allow=int(entry.get("allow") or 0),
            deny=int(entry.get("deny") or 0),
        )
        for entry in listed
    }
