"""The fake Discord's basics: shared constants (permission bits, intents, channel types), ids, time and limits.

Plain data and helpers with no entity in them; the entities (entities.py) and guilds (guild.py) build on these.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import discord

from tests.fakediscord.permissions import BOT_INVITE_PERMISSIONS

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
