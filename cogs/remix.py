"""Remix anything with audio: the "Remix with jamgen" context menu and reply-to-remix.

The modal, the mode words and the reply's request live in ``bot/discord/remix.py``.
"""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.bot import JamBot
from bot.discord.interactions import report_error
from bot.discord.remix import (
    RemixModal,
    audio_attachments,
    can_answer,
    explain_hidden_files,
    open_remix_form,
    remix_reply,
)
from bot.discord.render import job_id_of
from bot.engine.types import Mode
from bot.errors import UserInputError


class Remix(commands.Cog):
    """Remix from any message with audio."""

    def __init__(self, bot: JamBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name="Remix with jamgen", callback=self.remix_menu)
        bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    @app_commands.command(name="remix", description="Remix a take, or a clip you upload in the form")
    @app_commands.describe(
        job_id="A take to remix (leave it out to upload a clip)", take="Which take of that job (1-4)"
    )
    async def remix(
        self,
        interaction: discord.Interaction,
        job_id: app_commands.Range[str, 4, 16] | None = None,
        take: app_commands.Range[int, 1, 4] = 1,
    ) -> None:
        """/remix: the remix form, for a take or for an upload."""
        await open_remix_form(self.bot, interaction, job_id, take - 1)

    async def remix_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Apps ▸ Remix with jamgen: opens the remix modal for the message's audio."""
        own_job = job_id_of(message) if message.author.id == self.bot.user_id else None
        attachments = audio_attachments(message)
        if not attachments and own_job is None:
            await report_error(interaction, UserInputError("That message has no audio to remix."))
            return
        modal = RemixModal(self.bot, from_job=own_job, attachment=None if own_job else attachments[0])
        await interaction.response.send_modal(modal)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Reply-to-remix: a reply to a jamgen track, or a reply that mentions jamgen on any message with audio."""
        if message.author.bot or message.reference is None or message.guild is None:
            return
        referenced = message.reference.resolved
        if not isinstance(referenced, discord.Message):
            return
        to_us = referenced.author.id == self.bot.user_id
        mentioned = self.bot.user is not None and self.bot.user in message.mentions
        own_job = job_id_of(referenced) if to_us else None
        attachments = audio_attachments(referenced)
        if mentioned and not to_us and not attachments and not self.bot.intents.message_content:
            await explain_hidden_files(self.bot, message)
            return
        if not (own_job or (mentioned and attachments)):
            return
        guild = await self.bot.service.guild_settings(message.guild.id)
        if not guild.remix_by_reply:
            return
        if not await can_answer(message):
            return
        await remix_reply(self.bot, message, own_job=own_job, heard=attachments, default_mode=Mode(guild.remix_mode))


async def setup(bot: JamBot) -> None:
    """Load the cog."""
    await bot.add_cog(Remix(bot))
