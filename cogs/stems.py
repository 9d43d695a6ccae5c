"""Stems of any audio: ``/stems`` (a take by its id, or an uploaded file) and *Apps ▸ Split into stems*.

The 🎚 Stems button under every take and the stem buttons under stems live in ``bot/discord/views.py``
and ``bot/discord/stems.py``.
"""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.bot import JamBot
from bot.discord.interactions import ask_for_stems, read_attachment, report_error
from bot.discord.remix import audio_attachments
from bot.discord.render import job_id_of
from bot.discord.stems import attachment_stems_request, stems_request_for
from bot.errors import UserInputError
from bot.service import JamRequest


class Stems(commands.Cog):
    """Split takes and files into drums, bass, other and vocals."""

    def __init__(self, bot: JamBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name="Split into stems", callback=self.stems_menu)
        bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    @app_commands.command(name="stems", description="Split a take or an audio file into drums, bass, other and vocals")
    @app_commands.describe(
        job_id="A take's id (in its footer), e.g. k7m2q9xa",
        take="Which take of that job (1-4)",
        audio="Or any audio file to split",
    )
    async def stems(
        self,
        interaction: discord.Interaction,
        job_id: app_commands.Range[str, 4, 16] | None = None,
        take: app_commands.Range[int, 1, 4] = 1,
        audio: discord.Attachment | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            if (job_id is None) == (audio is None):
                raise UserInputError("Give either a take's `job_id` or an `audio` file to split, not both.")
            if audio is not None:
                request = await self._attachment_request(interaction, audio)
            elif job_id is not None:
                request = await stems_request_for(self.bot, interaction, job_id.strip().lower(), take - 1)
        except Exception as exc:
            await report_error(interaction, exc)
            return
        await ask_for_stems(self.bot, interaction, request)

    async def stems_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Apps ▸ Split into stems: a jamgen take's first take, or the message's first audio file."""
        own_job = job_id_of(message) if message.author.id == self.bot.user_id else None
        attachments = audio_attachments(message)
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            if own_job is not None:
                request = await stems_request_for(self.bot, interaction, own_job, 0)
            elif attachments:
                request = await self._attachment_request(interaction, attachments[0])
            else:
                raise UserInputError("That message has no audio to split into stems.")
        except Exception as exc:
            await report_error(interaction, exc)
            return
        await ask_for_stems(self.bot, interaction, request)

    async def _attachment_request(self, interaction: discord.Interaction, attachment: discord.Attachment) -> JamRequest:
        data = await read_attachment(self.bot, attachment)
        return attachment_stems_request(interaction, data, attachment.filename)


async def setup(bot: JamBot) -> None:
    """Load the cog."""
    await bot.add_cog(Stems(bot))
