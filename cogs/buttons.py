"""Persistent buttons on takes and progress messages.

Each button is a ``DynamicItem`` whose custom_id carries the job id (and take),
so it keeps working after a restart. The id only says *which* job: the
clicking member's rights are checked again by the service on every click.
"""

from __future__ import annotations

import json
import re
from typing import Any

import discord
from discord.ext import commands

from bot.client import JamBot, clip, member_context, report_error, send_ephemeral, submit_and_track
from bot.service import Job, NotYourJobError
from cogs.remix import RemixModal
from cogs.sessions import post_loop

JOB = r"(?P<job>[a-z0-9]{4,16})"
TAKE = r"(?::(?P<take>[0-3]))?"


class JobButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"^$"):
    """A button bound to one job (and optionally one take)."""

    action = ""
    label = ""
    emoji = ""
    style = discord.ButtonStyle.secondary

    def __init__(self, job_id: str, take: int | None = None) -> None:
        suffix = "" if take is None else f":{take}"
        label = self.label if take is None else f"{self.label} {take + 1}"
        super().__init__(
            discord.ui.Button(
                label=label, emoji=self.emoji, style=self.style, custom_id=f"jamgen:{self.action}:{job_id}{suffix}"
            )
        )
        self.job_id = job_id
        self.take = take or 0

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button[Any], match: re.Match[str], /
    ) -> JobButton:
        take = match.group("take") if "take" in match.groupdict() else None
        return cls(match.group("job"), None if take is None else int(take))

    def bot(self, interaction: discord.Interaction) -> JamBot:
        """The bot, typed."""
        return interaction.client  # type: ignore[return-value]


class RerollButton(JobButton, template=rf"^jamgen:reroll:{JOB}$"):
    """🎲 Same recipe, new seed."""

    action, label, emoji = "reroll", "Reroll", "🎲"

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = self.bot(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            request = await bot.service.reroll_request(self.job_id, **member_context(interaction))
        except Exception as exc:
            await report_error(interaction, exc)
            return
        await submit_and_track(bot, interaction, request)


class ExtendButton(JobButton, template=rf"^jamgen:extend:{JOB}{TAKE}$"):
    """⏩ Continue the take from its end."""

    action, label, emoji, style = "extend", "Extend", "⏩", discord.ButtonStyle.primary

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = self.bot(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            request = await bot.service.extend_request(self.job_id, self.take, **member_context(interaction))
        except Exception as exc:
            await report_error(interaction, exc)
            return
        await submit_and_track(bot, interaction, request)


class RemixButton(JobButton, template=rf"^jamgen:remix:{JOB}{TAKE}$"):
    """🎛 Remix the take (opens the modal)."""

    action, label, emoji = "remix", "Remix", "🎛"

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = self.bot(interaction)
        try:
            await bot.service.job(self.job_id)
        except Exception as exc:
            await report_error(interaction, exc)
            return
        await interaction.response.send_modal(RemixModal(bot, from_job=self.job_id, take=self.take))


class LoopButton(JobButton, template=rf"^jamgen:loop:{JOB}{TAKE}$"):
    """🔁 Cut the take into a seamless loop of whole bars (posted publicly)."""

    action, label, emoji = "loop", "Loop", "🔁"

    async def callback(self, interaction: discord.Interaction) -> None:
        await post_loop(self.bot(interaction), interaction, self.job_id, self.take)


class RecipeButton(JobButton, template=rf"^jamgen:recipe:{JOB}$"):
    """ℹ️ The full recipe, privately."""

    action, label, emoji = "recipe", "Recipe", "ℹ️"

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = self.bot(interaction)
        try:
            job = await bot.service.job(self.job_id)
        except Exception as exc:
            await report_error(interaction, exc)
            return
        await send_ephemeral(interaction, render_recipe(bot, job))


class DeleteButton(JobButton, template=rf"^jamgen:delete:{JOB}$"):
    """🗑 Delete the take's message (its owner or an admin)."""

    action, label, emoji, style = "delete", "Delete", "🗑", discord.ButtonStyle.danger

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = self.bot(interaction)
        context = member_context(interaction)
        try:
            # The rights are checked on the job the custom_id names, and the clicked message is what gets
            # deleted: a forged custom_id naming one's own job must not delete someone else's message.
            if interaction.message is None or bot.job_id_of(interaction.message) != self.job_id:
                raise NotYourJobError("This button does not belong to this take.")
            await bot.service.delete_take(self.job_id, context["user_id"], is_admin=context["is_admin"])
        except Exception as exc:
            await report_error(interaction, exc)
            return
        await interaction.response.defer()
        if interaction.message is not None:
            await interaction.message.delete()


class CancelButton(JobButton, template=rf"^jamgen:cancel:{JOB}$"):
    """✖ Cancel a queued or running job (its owner or an admin)."""

    action, label, emoji, style = "cancel", "Cancel", "✖️", discord.ButtonStyle.danger

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = self.bot(interaction)
        context = member_context(interaction)
        try:
            job = await bot.service.cancel(self.job_id, context["user_id"], is_admin=context["is_admin"])
        except Exception as exc:
            await report_error(interaction, exc)
            return
        await send_ephemeral(interaction, f"🛑 Cancelling `{job.id}`…")


def render_recipe(bot: JamBot, job: Job) -> str:
    """Every parameter of a job, as a code block that fits one message."""
    recipe = bot.service.recipe(job)
    seeds = [t.get("seed") for t in (job.extra or {}).get("takes", [])]
    if seeds:
        recipe["seeds"] = seeds
    recipe["state"] = job.state.value
    return clip(f"**Recipe of `{job.id}`**\n```json\n{json.dumps(recipe, indent=1, ensure_ascii=False)}\n```", 1990)


def result_view(job: Job, takes: int) -> discord.ui.View:
    """Buttons under a finished job: one row for the job, one per take for extend/remix/loop."""
    view = discord.ui.View(timeout=None)
    for item in (RerollButton(job.id), RecipeButton(job.id), DeleteButton(job.id)):
        view.add_item(item)
    for take in range(takes):
        multi = takes > 1
        for cls in (ExtendButton, RemixButton, LoopButton):
            item = cls(job.id, take if multi else None)
            item.item.row = take + 1
            view.add_item(item)
    return view


def progress_view(job_id: str) -> discord.ui.View:
    """The Cancel button under a waiting job."""
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id))
    return view


class Buttons(commands.Cog):
    """Registers the persistent buttons."""

    def __init__(self, bot: JamBot) -> None:
        self.bot = bot


async def setup(bot: JamBot) -> None:
    """Register the dynamic items and the view factories the deliverer uses."""
    bot.add_dynamic_items(RerollButton, ExtendButton, RemixButton, LoopButton, RecipeButton, DeleteButton, CancelButton)
    bot.result_view = result_view
    bot.progress_view = progress_view
    await bot.add_cog(Buttons(bot))
