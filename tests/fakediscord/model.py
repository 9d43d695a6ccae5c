"""The fake Discord's world: ids, clocks, limits, users, roles, channels, members, guilds and CDN files.

Everything here is plain data plus the JSON payload each object has on the real API (v10), complete
enough for discord.py 2.7 to parse. Nothing here talks to the network. The parts live in basics.py
(constants, ids, clock, limits), entities.py (files, users, roles, channels, members) and guild.py
(``FakeGuild``, the container of a guild's state); import them from here.
"""

from tests.fakediscord.basics import (
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    BOT_PERMISSIONS,
    DISCORD_EPOCH_MS,
    EVERYONE_PERMISSIONS,
    GUILD_TEXT,
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MEMBERS,
    INTENT_GUILD_MESSAGE_REACTIONS,
    INTENT_GUILD_MESSAGES,
    INTENT_GUILD_PRESENCES,
    INTENT_GUILDS,
    INTENT_MESSAGE_CONTENT,
    MIB,
    PRIVATE_THREAD,
    PRIVILEGED_INTENTS,
    PUBLIC_THREAD,
    THREAD_TYPES,
    UPLOAD_LIMIT_BY_PREMIUM_TIER,
    FakeClock,
    FakeLimits,
    SnowflakeFactory,
    iso,
)
from tests.fakediscord.entities import (
    FakeAttachment,
    FakeChannel,
    FakeMember,
    FakeRole,
    FakeUser,
    guess_content_type,
)
from tests.fakediscord.guild import FakeGuild

__all__ = [
    "ADMINISTRATOR",
    "ALL_PERMISSIONS",
    "BOT_PERMISSIONS",
    "DISCORD_EPOCH_MS",
    "EVERYONE_PERMISSIONS",
    "GUILD_TEXT",
    "INTENT_DIRECT_MESSAGES",
    "INTENT_GUILDS",
    "INTENT_GUILD_MEMBERS",
    "INTENT_GUILD_MESSAGES",
    "INTENT_GUILD_MESSAGE_REACTIONS",
    "INTENT_GUILD_PRESENCES",
    "INTENT_MESSAGE_CONTENT",
    "MIB",
    "PRIVATE_THREAD",
    "PRIVILEGED_INTENTS",
    "PUBLIC_THREAD",
    "THREAD_TYPES",
    "UPLOAD_LIMIT_BY_PREMIUM_TIER",
    "FakeAttachment",
    "FakeChannel",
    "FakeClock",
    "FakeGuild",
    "FakeLimits",
    "FakeMember",
    "FakeRole",
    "FakeUser",
    "SnowflakeFactory",
    "guess_content_type",
    "iso",
]
