"""A minimal discord.py bot for the fake's own tests (jamgen's bot is tested elsewhere)."""

from __future__ import annotations

import discord
from discord.ext import commands


class MiniBot(commands.Bot):
    """A ``commands.Bot`` that syncs its tree globally on setup and remembers what happened to it.

    Tests add commands with ``@bot.tree.command(...)`` before starting it.

    Args:
        intents: gateway intents; ``Intents.default()`` when None.
        sync: sync the command tree in ``setup_hook``.
    """

    def __init__(self, *, intents: discord.Intents | None = None, sync: bool = True) -> None:
        super().__init__(
            command_prefix="!",
            intents=intents or discord.Intents.default(),
            # What a bot under the fake must set (the fixture also forces it): ready 0.05 s after GUILD_CREATE.
            guild_ready_timeout=0.05,
        )
        self.sync_on_setup = sync
        # HTTP errors the bot's handlers caught, for assertions.
        self.http_errors: list[discord.HTTPException] = []
        self.seen_messages: list[discord.Message] = []
        self.seen_reactions: list[discord.RawReactionActionEvent] = []

    async def setup_hook(self) -> None:
        """Sync slash commands (global) so the fake knows their option types."""
        if self.sync_on_setup:
            await self.tree.sync()

    async def on_message(self, message: discord.Message) -> None:
        """Remember messages (commands are not processed)."""
        self.seen_messages.append(message)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        """Remember reactions."""
        self.seen_reactions.append(payload)
