"""A loopback fake Discord (API v10 subset + gateway + CDN) for testing discord.py bots; see README.md."""

from tests.fakediscord.faults import FaultRule, Faults
from tests.fakediscord.model import (
    ADMINISTRATOR,
    MIB,
    FakeAttachment,
    FakeChannel,
    FakeClock,
    FakeGuild,
    FakeLimits,
    FakeMember,
    FakeRole,
    FakeUser,
)
from tests.fakediscord.permissions import PermissionOverwrite
from tests.fakediscord.records import (
    AutocompleteChoice,
    CallbackRecord,
    ErrorRecord,
    FakeInteraction,
    FakeMessage,
    RequestRecord,
    WebhookCall,
)
from tests.fakediscord.rules import DiscordError
from tests.fakediscord.runner import BotRun, running_bot, start_bot_against
from tests.fakediscord.server import CommandHiddenError, FakeDiscord
from tests.fakediscord.threads import ArchivedThreadError

__all__ = [
    "ADMINISTRATOR",
    "MIB",
    "ArchivedThreadError",
    "AutocompleteChoice",
    "BotRun",
    "CallbackRecord",
    "CommandHiddenError",
    "DiscordError",
    "ErrorRecord",
    "FakeAttachment",
    "FakeChannel",
    "FakeClock",
    "FakeDiscord",
    "FakeGuild",
    "FakeInteraction",
    "FakeLimits",
    "FakeMember",
    "FakeMessage",
    "FakeRole",
    "FakeUser",
    "FaultRule",
    "Faults",
    "PermissionOverwrite",
    "RequestRecord",
    "WebhookCall",
    "running_bot",
    "start_bot_against",
]
