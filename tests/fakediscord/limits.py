"""Upload limits: per-file size by the guild's boost tier, files per message, request size.

docs: reference.mdx "Uploading Files" (the limit applies to each file; 10 MiB by default, more with
the server's Boost Tier; ``attachment_size_limit`` in interactions is that limit), change-log.mdx
"Per-Attachment File Upload Behavior for Apps", resources/message.mdx "Create Message" Limitations
("The maximum request size when sending a message is 25 MiB").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tests.fakediscord.model import MIB
from tests.fakediscord.rules import DiscordError, FormErrors

if TYPE_CHECKING:
    from tests.fakediscord.model import FakeGuild
    from tests.fakediscord.server import FakeDiscord

MAX_ATTACHMENTS = 10
MAX_REQUEST_BYTES = 25 * MIB
REQUEST_ENTITY_TOO_LARGE = 40005


def upload_limit(fake: FakeDiscord, guild: FakeGuild) -> int:
    """The per-file limit in a guild: ``FakeLimits.attachment_size_limit``, raised by boost tier 2/3.

    Args:
        fake: the fake Discord.
        guild: the guild.
    """
    if guild.premium_tier >= 2:
        return max(fake.limits.attachment_size_limit, guild.upload_limit)
    return fake.limits.attachment_size_limit


def too_large() -> DiscordError:
    """Discord's 413."""
    return DiscordError(413, REQUEST_ENTITY_TOO_LARGE, "Request entity too large")


def check_upload(files: Mapping[int, tuple[str, bytes]], size_limit: int) -> None:
    """Refuse a file over the per-file limit, or a request over 25 MiB (or the per-file limit, if larger).

    Args:
        files: uploaded files by index.
        size_limit: the per-file limit.
    """
    sizes = [len(data) for _name, data in files.values()]
    if any(size > size_limit for size in sizes):
        raise too_large()
    # The 25 MiB request cap predates boosted per-file limits above it; a boosted guild's single
    # file may use its whole limit, so the cap is the larger of the two.
    if sum(sizes) > max(MAX_REQUEST_BYTES, size_limit):
        raise too_large()


def check_attachment_count(attachments: Sequence[Any]) -> None:
    """Refuse more than 10 attachments on one message (400 50035).

    Args:
        attachments: the message's attachments after the request.
    """
    if len(attachments) > MAX_ATTACHMENTS:
        errors = FormErrors()
        errors.add(["attachments"], "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_ATTACHMENTS} or fewer in length.")
        errors.raise_if_any()
