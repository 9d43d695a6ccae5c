"""The persistent buttons under takes and progress messages: this extension answers their clicks.

The buttons themselves live in ``bot/discord/views.py``; the deliverer puts them under each take
whether or not this extension is loaded, and this extension registers the handlers of their clicks.
"""

from __future__ import annotations

from discord.ext import commands

from bot.discord.bot import JamBot
from bot.discord.views import JOB_BUTTONS


class Buttons(commands.Cog):
    """Registers the persistent buttons' handlers while loaded."""

    def __init__(self, bot: JamBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(*JOB_BUTTONS)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(*JOB_BUTTONS)


async def setup(bot: JamBot) -> None:
    """Load the cog."""
    await bot.add_cog(Buttons(bot))
