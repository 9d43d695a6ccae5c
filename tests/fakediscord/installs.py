"""User installs: where a user who installed the app to their account may run its commands, and what Discord sends.

docs: resources/application.mdx "Installation Context" (a user-installed app is visible in all of the user's
servers, DMs and group DMs; apps installed only to a user "can't take actions in a server");
interactions/application-commands.mdx "Contexts" (``integration_types``, ``contexts``);
interactions/receiving-and-responding.mdx "Interaction Structure" (``context``, ``authorizing_integration_owners``,
``app_permissions``, partial ``channel``) and "Create Followup Message" (5 followups for user-install-only
interactions).

Places the bot is not in live in containers that are not in ``fake.guilds`` (so READY and GUILD_CREATE never
show them): an *outside guild* (a server without the bot), a *private channel* (a DM between two users) and
the user's *bot DM* (the same channel id Create DM answers). State is kept per fake in :class:`Installs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.fakediscord.command_registry import CommandHiddenError
from tests.fakediscord.model import FakeChannel, FakeGuild, FakeMember, FakeUser, iso
from tests.fakediscord.permissions import (
    ATTACH_FILES,
    EMBED_LINKS,
    MENTION_EVERYONE,
    MISSING_ACCESS,
    channel_permissions,
)
from tests.fakediscord.records import FakeInteraction, FakeMessage
from tests.fakediscord.rules import DiscordError

if TYPE_CHECKING:
    from tests.fakediscord.server import FakeDiscord

# docs: resources/application.mdx "Application Integration Types".
GUILD_INSTALL, USER_INSTALL = 0, 1
# docs: receiving-and-responding.mdx "Interaction Context Types".
GUILD, BOT_DM, PRIVATE_CHANNEL = 0, 1, 2
DM, GROUP_DM = 1, 3
USE_EXTERNAL_EMOJIS = 1 << 18
# docs: receiving-and-responding.mdx "***": app_permissions in (G)DMs with other users, plus
# USE_EXTERNAL_EMOJIS in the bot's DM. The docs give no value for a server the app is not in; the fake
# sends the (G)DM set there too (what a user-installed app may do in its own responses).
DM_APP_PERMISSIONS = ATTACH_FILES | EMBED_LINKS | MENTION_EVERYONE
BOT_DM_APP_PERMISSIONS = DM_APP_PERMISSIONS | USE_EXTERNAL_EMOJIS
# docs: receiving-and-responding.mdx "Create Followup Message": "Apps are limited to 5 followup messages per
# interaction if it was initiated from a user-installed app and isn't installed in the server";
# topics/opcodes-and-status-codes.mdx 40094 "This interaction has hit the maximum number of follow up messages".
MAX_USER_INSTALL_FOLLOWUPS = 5
FOLLOWUP_LIMIT_REACHED = 40094


class CommandNotAvailableError(CommandHiddenError):
    """Discord would not offer this command here: its contexts/integration_types, or the app is not installed."""


@dataclass
class Installs:
    """Who installed the app to their account, the places the bot is not in, and each interaction's owners."""

    users: set[int] = field(default_factory=set)
    # Containers by id: outside guilds, and holders of private channels / bot DMs (never in fake.guilds).
    outside: dict[int, FakeGuild] = field(default_factory=dict)
    # channel id -> interaction context of the places that are not a server (BOT_DM or PRIVATE_CHANNEL).
    private: dict[int, int] = field(default_factory=dict)
    owners: dict[int, dict[str, str]] = field(default_factory=dict)


def installs(fake: object) -> Installs:
    """The fake's install state (made on first use; ``FakeDiscord`` itself does not know about it).

    Args:
        fake: the fake Discord.
    """
    state = fake.__dict__.get("_installs")
    if state is None:
        state = fake.__dict__["_installs"] = Installs()
    assert isinstance(state, Installs)
    return state


def context_of(fake: FakeDiscord, channel: FakeChannel) -> int:
    """The interaction context of a channel: GUILD, BOT_DM or PRIVATE_CHANNEL."""
    return installs(fake).private.get(channel.id, GUILD)


def is_outside(fake: FakeDiscord, channel: FakeChannel) -> bool:
    """Whether the bot is not in this channel's place (an outside guild, a private channel, a bot DM holder)."""
    return channel.guild_id in installs(fake).outside


def owners_for(
    fake: FakeDiscord, command: dict[str, Any] | None, user: FakeUser, channel: FakeChannel
) -> dict[str, str]:
    """``authorizing_integration_owners`` of a command run here, or :class:`CommandNotAvailableError`.

    docs: receiving-and-responding.mdx "Authorizing Integration Owners Object": a key is present only when the
    app is installed that way, the command supports that installation (``integration_types``) and the
    context; "0" holds the guild id (or "0" in the bot's DM), "1" the authorizing user's id.
    application-commands.mdx: ``integration_types`` default to the app's configured ones (the fake's: guild
    install), ``contexts`` null means every context; PRIVATE_CHANNEL only for user-installed commands.
    """
    context = context_of(fake, channel)
    types = (command or {}).get("integration_types") or [GUILD_INSTALL]
    contexts = (command or {}).get("contexts")
    name = (command or {}).get("name", "?")
    if contexts is not None and context not in contexts:
        raise CommandNotAvailableError(f"/{name} is not offered in interaction context {context} (contexts {contexts})")
    owners: dict[str, str] = {}
    if GUILD_INSTALL in types and context == GUILD and not is_outside(fake, channel):
        owners["0"] = str(channel.guild_id)
    if GUILD_INSTALL in types and context == BOT_DM:
        owners["0"] = "0"
    if USER_INSTALL in types and user.id in installs(fake).users:
        owners["1"] = str(user.id)
    if not owners:
        raise CommandNotAvailableError(
            f"/{name} is not available to {user.username} here: the app is not installed for this place"
            f" (integration_types {types}, user installed: {user.id in installs(fake).users})"
        )
    return owners


def user_install_only(fake: FakeDiscord, interaction_id: int) -> bool:
    """Whether an interaction was authorized by a user install alone (no ``"0"`` owner)."""
    owners = installs(fake).owners.get(interaction_id)
    return owners is not None and "0" not in owners


def check_followup_room(fake: FakeDiscord, interaction_id: int, used: int) -> None:
    """Refuse a sixth followup of a user-install-only interaction (400 40094, see MAX_USER_INSTALL_FOLLOWUPS)."""
    if user_install_only(fake, interaction_id) and used >= MAX_USER_INSTALL_FOLLOWUPS:
        raise DiscordError(
            400, FOLLOWUP_LIMIT_REACHED, "This interaction has hit the maximum number of follow up messages"
        )


def refuse_outside(fake: FakeDiscord, channel: FakeChannel) -> None:
    """The bot's own REST calls to a place it is not in: 403 Missing Access (50001), as for a hidden channel."""
    # docs: topics/opcodes-and-status-codes.mdx 50001 "Missing access"; resources/application.mdx "apps installed
    # only to a user can't take actions in a server" (only the interaction's own webhook reaches there).
    if is_outside(fake, channel):
        raise DiscordError(403, MISSING_ACCESS, "Missing Access")


def with_owners(fake: FakeDiscord, body: dict[str, Any], interaction_id: int) -> dict[str, Any]:
    """INTERACTION_CREATE of a server the bot is in, with the owners the command was authorized by."""
    owners = installs(fake).owners.get(interaction_id)
    return body if owners is None else {**body, "authorizing_integration_owners": owners}


def outside_payload(
    fake: FakeDiscord,
    interaction: FakeInteraction,
    member: FakeMember,
    channel: FakeChannel,
    *,
    message: FakeMessage | None = None,
    locale: str = "en-US",
) -> dict[str, Any]:
    """INTERACTION_CREATE where the bot is not: context, owners, app_permissions and a partial channel.

    Args:
        interaction: the record (its owners were set when it was made).
        member: who, as a member of the place.
        channel: where.
        message: the message of a component.
        locale: the user's locale.
    """
    guild = fake.guild_of(channel)
    context = context_of(fake, channel)
    member_bits = str(channel_permissions(guild, member, channel))
    body: dict[str, Any] = {
        "id": str(interaction.id),
        "application_id": str(fake.application_id),
        "type": interaction.type,
        "token": interaction.token,
        "version": 1,
        "attachment_size_limit": interaction.attachment_size_limit,
        "channel_id": str(channel.id),
        "locale": locale,
        "entitlements": [],
        "authorizing_integration_owners": installs(fake).owners[interaction.id],
        "context": context,
        "data": interaction.data,
    }
    if message is not None:
        body["message"] = fake.bot_view(message)
    if context == GUILD:
        body.update(
            guild_id=str(guild.id),
            guild={"id": str(guild.id), "locale": guild.locale, "features": []},
            guild_locale=guild.locale,
            channel={**channel.payload(), "permissions": member_bits},
            member={**member.payload(with_permissions=True), "permissions": member_bits},
            app_permissions=str(DM_APP_PERMISSIONS),
        )
        return body
    # ``user`` instead of ``member`` outside servers (docs: "member is sent when the interaction is invoked in a
    # guild, and user is sent when invoked in a DM"); a DM's partial channel names its recipients.
    body["user"] = member.user.payload()
    body["app_permissions"] = str(BOT_DM_APP_PERMISSIONS if context == BOT_DM else DM_APP_PERMISSIONS)
    recipients = [m.user.payload() for m in guild.members.values() if m.user.id != member.user.id]
    body["channel"] = {
        "id": str(channel.id),
        "type": channel.type,
        "last_message_id": None,
        "flags": 0,
        "recipients": recipients or [member.user.payload()],
        "permissions": member_bits,
    }
    return body


def store_outside_message(
    fake: FakeDiscord,
    *,
    channel: FakeChannel,
    payload: dict[str, Any],
    attachments: list[Any],
    source: str,
    flags: int,
    message_type: int,
    interaction_id: int,
) -> FakeMessage:
    """A response or followup in a place the bot is not in: stored, but no gateway event (the bot is not there)."""
    message = FakeMessage(
        id=fake.ids.next(),
        channel_id=channel.id,
        guild_id=None if channel.id in installs(fake).private else channel.guild_id,
        author=fake.bot_user,
        source=source,
        content=str(payload.get("content") or ""),
        embeds=list(payload.get("embeds") or []),
        components=list(payload.get("components") or []),
        attachments=attachments,
        flags=flags,
        type=message_type,
        interaction_id=interaction_id,
        webhook_id=fake.application_id,
        timestamp=iso(fake.clock.utcnow()),
        raw=dict(payload),
    )
    message.snapshot()
    fake.messages[message.id] = message
    fake.notify()
    return message
