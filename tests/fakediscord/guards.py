"""What each REST route the bot uses requires of it: permissions, thread state and limits.

Each function raises Discord's error or returns what the route needs; the handlers in rest_*.py call
them with a line each. Permission rules cite resources/message.mdx and resources/channel.mdx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.fakediscord import installs, threads
from tests.fakediscord.permissions import (
    ADD_REACTIONS,
    ATTACH_FILES,
    CANNOT_REPLY_WITHOUT_HISTORY,
    CREATE_PRIVATE_THREADS,
    CREATE_PUBLIC_THREADS,
    EMBED_LINKS,
    MANAGE_CHANNELS,
    MANAGE_MESSAGES,
    MANAGE_ROLES,
    MANAGE_THREADS,
    MENTION_EVERYONE,
    PIN_MESSAGES,
    READ_MESSAGE_HISTORY,
    SEND_TTS_MESSAGES,
    VIEW_CHANNEL,
    channel_permissions,
    missing_permissions,
    require,
    send_permission,
)
from tests.fakediscord.rules import DiscordError, FormErrors

if TYPE_CHECKING:
    from tests.fakediscord.model import FakeChannel
    from tests.fakediscord.records import FakeMessage
    from tests.fakediscord.server import FakeDiscord

MAX_PINS = 250
MAX_PINS_REACHED = 30003
MESSAGE_LIST_LIMIT = (1, 100)


def bot_bits(fake: FakeDiscord, channel: FakeChannel) -> int:
    """The bot's permissions in a channel or thread.

    Args:
        fake: the fake Discord.
        channel: the channel.
    """
    installs.refuse_outside(fake, channel)
    guild = fake.guild_of(channel)
    return channel_permissions(guild, guild.members[fake.bot_user.id], channel)


def view(fake: FakeDiscord, channel: FakeChannel) -> int:
    """Refuse (50001) a channel the bot cannot see; return its permissions there.

    Args:
        fake: the fake Discord.
        channel: the channel.
    """
    bits = bot_bits(fake, channel)
    require(bits, VIEW_CHANNEL)
    return bits


async def create_message(
    fake: FakeDiscord, channel: FakeChannel, payload: dict[str, Any], file_count: int
) -> dict[str, Any]:
    """Check a channel post; return the payload to store (embeds dropped without EMBED_LINKS).

    Args:
        fake: the fake Discord.
        channel: where.
        payload: the message JSON.
        file_count: uploaded files.
    """
    bits = bot_bits(fake, channel)
    # docs: resources/message.mdx "Create Message" Limitations: SEND_MESSAGES (in threads:
    # SEND_MESSAGES_IN_THREADS, topics/threads.mdx "Permissions"), SEND_TTS_MESSAGES for tts.
    require(bits, send_permission(channel))
    if payload.get("tts"):
        require(bits, SEND_TTS_MESSAGES)
    # docs: topics/permissions.mdx ATTACH_FILES "Allows for uploading images and files".
    if file_count:
        require(bits, ATTACH_FILES)
    if payload.get("message_reference") and not bits & READ_MESSAGE_HISTORY:
        # docs: resources/message.mdx "Create Message": a reply needs READ_MESSAGE_HISTORY (error 160002).
        raise DiscordError(403, CANNOT_REPLY_WITHOUT_HISTORY, "Cannot reply without permission to read message history")
    await threads.before_post(fake, channel, bits)
    stored = dict(payload)
    if payload.get("embeds") and not bits & EMBED_LINKS:
        # Discord does not refuse: without EMBED_LINKS the embeds are not shown (dropped here).
        stored["embeds"] = []
    if not bits & MENTION_EVERYONE:
        # docs: topics/permissions.mdx MENTION_EVERYONE: without it @everyone/@here does not notify anyone.
        allowed = dict(stored.get("allowed_mentions") or {"parse": ["users", "roles", "everyone"]})
        allowed["parse"] = [kind for kind in allowed.get("parse", []) if kind != "everyone"]
        stored["allowed_mentions"] = allowed
    return stored


def same_channel_reply(fake: FakeDiscord, channel: FakeChannel, payload: dict[str, Any]) -> dict[str, Any]:
    """Refuse (400 50035) a reply whose target is in another channel; return the payload to use.

    Args:
        fake: the fake Discord.
        channel: where the reply goes.
        payload: the message JSON.
    """
    reference = payload.get("message_reference") or {}
    if not reference or int(reference.get("type") or 0) != 0:
        return payload
    target = fake.messages.get(int(reference.get("message_id") or 0))
    named = reference.get("channel_id")
    elsewhere = (named is not None and int(named) != channel.id) or (
        target is not None and not target.deleted and target.channel_id != channel.id
    )
    if not elsewhere:
        return payload
    if reference.get("fail_if_not_exists") is False:
        # Not a message of this channel: sent as an ordinary message, as for an unknown target.
        return {key: value for key, value in payload.items() if key != "message_reference"}
    # docs: resources/message.mdx "Replies": "The channel_id and guild_id will be the same as the reply."
    errors = FormErrors()
    errors.add(["message_reference"], "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
    errors.raise_if_any()
    return payload


def read_message(fake: FakeDiscord, channel: FakeChannel) -> None:
    """GET one message: VIEW_CHANNEL and READ_MESSAGE_HISTORY.

    Args:
        fake: the fake Discord.
        channel: the channel.
    """
    # docs: resources/message.mdx "Get Channel Message"
    require(bot_bits(fake, channel), VIEW_CHANNEL | READ_MESSAGE_HISTORY)


def list_messages(fake: FakeDiscord, channel: FakeChannel, query: Any) -> tuple[int, bool]:
    """GET messages: VIEW_CHANNEL; returns (limit, whether history is readable).

    Args:
        fake: the fake Discord.
        channel: the channel.
        query: the request's query.
    """
    bits = view(fake, channel)
    errors = FormErrors()
    # docs: resources/message.mdx "Get Channel Messages": limit 1-100, before/after/around exclusive.
    try:
        limit = int(query.get("limit", 50))
    except ValueError:
        limit = 0
        errors.add(["limit"], "NUMBER_TYPE_COERCE", "Value is not int.")
    if not MESSAGE_LIST_LIMIT[0] <= limit <= MESSAGE_LIST_LIMIT[1]:
        errors.add(["limit"], "NUMBER_TYPE_MAX" if limit > 100 else "NUMBER_TYPE_MIN", "Must be between 1 and 100.")
    if sum(1 for key in ("before", "after", "around") if key in query) > 1:
        errors.add(["before"], "BASE_TYPE_INVALID", "before, after and around are mutually exclusive.")
    errors.raise_if_any()
    # "If the current user is missing the READ_MESSAGE_HISTORY permission ... no messages will be returned."
    return limit, bool(bits & READ_MESSAGE_HISTORY)


def history_visible(fake: FakeDiscord, channel: FakeChannel) -> bool:
    """GET pins: VIEW_CHANNEL; returns whether READ_MESSAGE_HISTORY lets pins show.

    Args:
        fake: the fake Discord.
        channel: the channel.
    """
    # docs: resources/message.mdx "Get Channel Pins"
    return bool(view(fake, channel) & READ_MESSAGE_HISTORY)


def edit_message(fake: FakeDiscord, channel: FakeChannel, message: FakeMessage) -> None:
    """PATCH a message: archived threads refuse, locked ones need MANAGE_THREADS.

    Args:
        fake: the fake Discord.
        channel: the channel.
        message: the message.
    """
    bits = view(fake, channel)
    threads.refuse_if_archived(channel)
    threads.refuse_if_locked(channel, bits)
    # docs: resources/message.mdx "Edit Message": other users' messages: only flags, with MANAGE_MESSAGES.
    if message.author.id != fake.bot_user.id:
        require(bits, MANAGE_MESSAGES)


def delete_message(fake: FakeDiscord, channel: FakeChannel, message: FakeMessage) -> None:
    """DELETE a message: another user's needs MANAGE_MESSAGES.

    Args:
        fake: the fake Discord.
        channel: the channel.
        message: the message.
    """
    bits = view(fake, channel)
    # docs: resources/message.mdx "Delete Message"
    if message.author.id != fake.bot_user.id:
        require(bits, MANAGE_MESSAGES)
    threads.refuse_delete_if_frozen(channel, bits)


def pin(fake: FakeDiscord, channel: FakeChannel, *, pinning: bool, pinned_count: int) -> None:
    """PUT/DELETE a pin: PIN_MESSAGES, an active thread, at most 250 pins.

    Args:
        fake: the fake Discord.
        channel: the channel.
        pinning: pin (True) or unpin.
        pinned_count: pins already in the channel.
    """
    # docs: resources/message.mdx "Pin Message" / "Unpin Message": PIN_MESSAGES (split from
    # MANAGE_MESSAGES; change-log.mdx "Pin Permission Split": MANAGE_MESSAGES alone no longer suffices).
    require(bot_bits(fake, channel), PIN_MESSAGES)
    threads.refuse_if_archived(channel)
    if pinning and pinned_count >= MAX_PINS:
        # docs: topics/opcodes-and-status-codes.mdx 30003 "Maximum number of pins reached for the channel (250)".
        raise DiscordError(400, MAX_PINS_REACHED, "Maximum number of pins reached (250)")


def react(fake: FakeDiscord, channel: FakeChannel, message: FakeMessage, emoji: str) -> None:
    """PUT own reaction: READ_MESSAGE_HISTORY, ADD_REACTIONS for a new emoji, an active thread.

    Args:
        fake: the fake Discord.
        channel: the channel.
        message: the message.
        emoji: the emoji key.
    """
    bits = bot_bits(fake, channel)
    # docs: resources/message.mdx "Create Reaction"
    require(bits, READ_MESSAGE_HISTORY)
    if not message.reactions.get(emoji):
        require(bits, ADD_REACTIONS)
    threads.refuse_if_archived(channel)


def unreact(fake: FakeDiscord, channel: FakeChannel, *, others: bool) -> None:
    """DELETE reactions: someone else's (or all) need MANAGE_MESSAGES; archived threads refuse.

    Args:
        fake: the fake Discord.
        channel: the channel.
        others: removing another user's reaction or clearing reactions.
    """
    bits = view(fake, channel)
    # docs: resources/message.mdx "Delete User Reaction", "Delete All Reactions (for Emoji)"
    if others:
        require(bits, MANAGE_MESSAGES)
    threads.refuse_if_archived(channel)


def start_thread(fake: FakeDiscord, channel: FakeChannel, thread_type: int, *, from_message: bool) -> None:
    """Start a thread: CREATE_PUBLIC_THREADS or CREATE_PRIVATE_THREADS (and READ_MESSAGE_HISTORY from a message).

    Args:
        fake: the fake Discord.
        channel: the parent.
        thread_type: 11 or 12.
        from_message: started from a message.
    """
    # docs: topics/permissions.mdx CREATE_PUBLIC_THREADS / CREATE_PRIVATE_THREADS
    needed = CREATE_PRIVATE_THREADS if thread_type == 12 else CREATE_PUBLIC_THREADS
    if from_message:
        needed |= READ_MESSAGE_HISTORY
    require(bot_bits(fake, channel), needed)


def edit_channel(fake: FakeDiscord, channel: FakeChannel, changes: dict[str, Any]) -> None:
    """PATCH a channel: MANAGE_CHANNELS (+ MANAGE_ROLES for overwrites); threads by their own rules.

    Args:
        fake: the fake Discord.
        channel: the channel or thread.
        changes: the body.
    """
    bits = view(fake, channel)
    if channel.is_thread:
        threads.check_thread_edit(channel, changes, bits, fake.bot_user.id)
        return
    # docs: resources/channel.mdx "Modify Channel" JSON Params (Guild channel)
    require(bits, MANAGE_CHANNELS)
    if "permission_overwrites" in changes:
        require(bits, MANAGE_ROLES)


def delete_channel(fake: FakeDiscord, channel: FakeChannel) -> None:
    """DELETE a channel: MANAGE_CHANNELS, or MANAGE_THREADS for a thread.

    Args:
        fake: the fake Discord.
        channel: the channel.
    """
    # docs: resources/channel.mdx "Delete/Close Channel"
    require(view(fake, channel), MANAGE_THREADS if channel.is_thread else MANAGE_CHANNELS)


def thread_member(fake: FakeDiscord, channel: FakeChannel, user_id: int, *, adding: bool) -> None:
    """Join/leave/add/remove thread members: an active thread, send rights to add, MANAGE_THREADS to remove.

    Args:
        fake: the fake Discord.
        channel: the thread.
        user_id: whose membership changes.
        adding: PUT (True) or DELETE.
    """
    bits = view(fake, channel)
    # docs: resources/channel.mdx "Join Thread" ... "Remove Thread Member": the thread must not be archived.
    threads.refuse_if_archived(channel)
    if user_id == fake.bot_user.id:
        return
    if adding:
        require(bits, send_permission(channel))
    elif not (bits & MANAGE_THREADS or (channel.type == 12 and channel.owner_id == fake.bot_user.id)):
        raise missing_permissions()


def pin_page_limit(query: Any) -> int:
    """The ``limit`` of Get Channel Pins (1-50, default 50).

    Args:
        query: the request's query.
    """
    # docs: resources/message.mdx "Get Channel Pins" Query String Params
    try:
        limit = int(query.get("limit", 50))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 50:
        errors = FormErrors()
        errors.add(["limit"], "NUMBER_TYPE_MAX" if limit > 50 else "NUMBER_TYPE_MIN", "Must be between 1 and 50.")
        errors.raise_if_any()
    return limit
