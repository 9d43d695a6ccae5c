"""Thread state rules: archived threads are read-only, locked threads are for moderators.

docs: topics/threads.mdx "Locked Threads", "Active & Archived Threads", "Editing & Deleting Threads";
resources/channel.mdx "Modify Channel" (JSON Params (Thread)), "Start Thread without Message".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.fakediscord.model import PRIVATE_THREAD, PUBLIC_THREAD, iso
from tests.fakediscord.permissions import MANAGE_THREADS, SEND_MESSAGES, missing_permissions
from tests.fakediscord.rules import DiscordError, FormErrors

if TYPE_CHECKING:
    from tests.fakediscord.model import FakeChannel
    from tests.fakediscord.server import FakeDiscord

THREAD_ARCHIVED = 50083
THREAD_LOCKED = 160005
# docs: resources/channel.mdx "Thread Metadata Object": auto_archive_duration can be 60, 1440, 4320, 10080.
AUTO_ARCHIVE_DURATIONS = (60, 1440, 4320, 10080)


class ArchivedThreadError(PermissionError):
    """Members cannot use application commands in an archived thread (the test API refuses to inject it)."""


def archived_error() -> DiscordError:
    """Discord's 400 for an action on an archived thread."""
    return DiscordError(400, THREAD_ARCHIVED, "Thread is archived")


def locked_error() -> DiscordError:
    """Discord's refusal for a non-moderator changing a locked thread."""
    return DiscordError(400, THREAD_LOCKED, "Thread is locked")


def refuse_if_archived(channel: FakeChannel) -> None:
    """Archived threads refuse message edits, reactions, pins and joins.

    Args:
        channel: a channel or thread.
    """
    # docs: topics/threads.mdx "Active & Archived Threads": "Users cannot edit messages, add reactions,
    # use application commands, or join archived threads."
    if channel.is_thread and channel.archived:
        raise archived_error()


def refuse_if_locked(channel: FakeChannel, bits: int) -> None:
    """Locked threads refuse creating and updating messages without MANAGE_THREADS.

    Args:
        channel: a channel or thread.
        bits: the current user's permissions there.
    """
    # docs: topics/threads.mdx "Locked Threads"
    if channel.is_thread and channel.locked and not bits & MANAGE_THREADS:
        raise locked_error()


def refuse_delete_if_frozen(channel: FakeChannel, bits: int) -> None:
    """Deleting messages in a locked thread needs it active, unless the user has MANAGE_THREADS.

    Args:
        channel: a channel or thread.
        bits: the current user's permissions there.
    """
    # docs: topics/threads.mdx "Locked Threads": deleting messages and reactions only while active.
    if channel.is_thread and channel.locked and channel.archived and not bits & MANAGE_THREADS:
        raise archived_error()


async def before_post(fake: FakeDiscord, channel: FakeChannel, bits: int) -> None:
    """A message is about to be posted: refuse in locked threads, unarchive archived unlocked ones.

    Args:
        fake: the fake Discord.
        channel: where.
        bits: the poster's permissions there.
    """
    if not channel.is_thread:
        return
    refuse_if_locked(channel, bits)
    if not channel.archived:
        return
    if channel.locked:
        # docs: topics/threads.mdx "Active & Archived Threads": "Sending a message will automatically
        # unarchive the thread, unless the thread has been locked by a moderator."
        raise archived_error()
    await set_archived(fake, channel, False)


async def set_archived(fake: FakeDiscord, channel: FakeChannel, archived: bool, locked: bool | None = None) -> None:
    """Archive or unarchive (and lock or unlock) a thread; the bot gets THREAD_UPDATE.

    Args:
        fake: the fake Discord.
        channel: the thread.
        archived: the new state.
        locked: the new lock state; unchanged when None.
    """
    if not channel.is_thread:
        raise ValueError(f"{channel.name!r} is not a thread")
    channel.archived = archived
    if locked is not None:
        channel.locked = locked
    channel.archive_timestamp = iso(fake.clock.utcnow())
    await fake.gateway.dispatch("THREAD_UPDATE", channel.payload())
    fake.notify()


def validate_new_thread(body: dict[str, Any], *, from_message: bool) -> int:
    """Check a start-thread body and return the thread type to create.

    Args:
        body: the JSON body.
        from_message: started from a message (always a public thread).
    """
    errors = FormErrors()
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        errors.add(["name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    _check_auto_archive(errors, body)
    thread_type = PUBLIC_THREAD
    if not from_message:
        # docs: resources/channel.mdx "Start Thread without Message": type defaults to PRIVATE_THREAD.
        thread_type = int(body.get("type") or PRIVATE_THREAD)
        if thread_type not in (PUBLIC_THREAD, PRIVATE_THREAD, 10):
            errors.add(["type"], "BASE_TYPE_CHOICES", "Value must be one of {10, 11, 12}.")
    errors.raise_if_any()
    return thread_type


def _check_auto_archive(errors: FormErrors, body: dict[str, Any]) -> None:
    duration = body.get("auto_archive_duration")
    if duration is not None and duration not in AUTO_ARCHIVE_DURATIONS:
        errors.add(
            ["auto_archive_duration"],
            "BASE_TYPE_CHOICES",
            f"Value must be one of {{{', '.join(str(d) for d in AUTO_ARCHIVE_DURATIONS)}}}.",
        )


def check_thread_edit(channel: FakeChannel, changes: dict[str, Any], bits: int, user_id: int) -> None:
    """Refuse a thread edit the current user may not make.

    Args:
        channel: the thread.
        changes: the PATCH body.
        bits: the user's permissions in the thread.
        user_id: the current user.
    """
    errors = FormErrors()
    _check_auto_archive(errors, changes)
    if "name" in changes and not (isinstance(changes["name"], str) and 1 <= len(changes["name"]) <= 100):
        errors.add(["name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    errors.raise_if_any()
    moderator = bool(bits & MANAGE_THREADS)
    creator = channel.owner_id == user_id
    unarchiving = changes.get("archived") is False
    # docs: resources/channel.mdx "JSON Params (Thread)": the thread must be active or be unarchived by this request.
    if channel.archived and not unarchiving:
        raise archived_error()
    # docs: topics/threads.mdx "Editing & Deleting Threads": locked and rate_limit_per_user need MANAGE_THREADS.
    if ("locked" in changes or "rate_limit_per_user" in changes) and not moderator:
        raise missing_permissions()
    if unarchiving and channel.archived:
        # docs: topics/threads.mdx "Active & Archived Threads": only MANAGE_THREADS unarchives a locked thread;
        # resources/channel.mdx: an unlocked one needs only SEND_MESSAGES.
        if channel.locked and not moderator:
            raise locked_error()
        if not channel.locked and not (moderator or creator or bits & SEND_MESSAGES):
            raise missing_permissions()
    elif channel.locked and not moderator:
        # docs: topics/threads.mdx "Locked Threads": no title changes without MANAGE_THREADS.
        raise locked_error()
    touched = {"name", "auto_archive_duration"} & set(changes) or changes.get("archived") is True
    if touched and not (moderator or creator):
        raise missing_permissions()
    if "invitable" in changes and channel.type != PRIVATE_THREAD:
        errors.add(["invitable"], "BASE_TYPE_INVALID", "invitable is only available on private threads")
        errors.raise_if_any()
