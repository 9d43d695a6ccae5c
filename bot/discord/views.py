"""Persistent buttons on takes, progress messages and jam trees, and the views that carry them.

Each button is a ``DynamicItem`` whose custom_id carries the job id (and take), so it keeps working
after a restart. The id only says *which* job: the clicking member's rights are checked again by the
service on every click.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord

from bot.discord.interactions import (
    ask_for_stems,
    bot_of,
    member_context,
    report_error,
    send_ephemeral,
    submit_and_track,
)
from bot.discord.jams import post_loop
from bot.discord.remix import open_remix_form
from bot.discord.render import NO_MENTIONS, job_id_of, render_recipe
from bot.discord.stems import StemRemixButton, stems_request_for
from bot.discord.tree import render_tree_pages
from bot.errors import UserInputError
from bot.service import JamRequest, Job, NotYourJobError

if TYPE_CHECKING:
    from bot.discord.bot import JamBot

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
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> JobButton:
        take = match.group("take") if "take" in match.groupdict() else None
        return cls(match.group("job"), None if take is None else int(take))


Submit = Callable[["JamBot", discord.Interaction, JamRequest], Awaitable[object]]


async def submit_built(
    interaction: discord.Interaction,
    build: Callable[[JamBot], Awaitable[JamRequest]],
    submit: Submit = submit_and_track,
) -> None:
    """A button that makes a job: answer privately at once, build its request (a refusal is told), submit it."""
    bot = bot_of(interaction)
    await interaction.response.defer(ephemeral=True, thinking=True)
    try:
        request = await build(bot)
    except Exception as exc:
        await report_error(interaction, exc)
        return
    await submit(bot, interaction, request)


class RerollButton(JobButton, template=rf"^jamgen:reroll:{JOB}$"):
    """🎲 Same recipe, new seed."""

    action, label, emoji = "reroll", "Reroll", "🎲"

    async def callback(self, interaction: discord.Interaction) -> None:
        await submit_built(
            interaction, lambda bot: bot.service.reroll_request(self.job_id, **member_context(interaction))
        )


class ExtendButton(JobButton, template=rf"^jamgen:extend:{JOB}{TAKE}$"):
    """⏩ Continue the take from its end."""

    action, label, emoji, style = "extend", "Extend", "⏩", discord.ButtonStyle.primary

    async def callback(self, interaction: discord.Interaction) -> None:
        context = member_context(interaction)
        await submit_built(interaction, lambda bot: bot.service.extend_request(self.job_id, self.take, **context))


class RemixButton(JobButton, template=rf"^jamgen:remix:{JOB}{TAKE}$"):
    """🎛 Remix the take (opens the modal)."""

    action, label, emoji = "remix", "Remix", "🎛"

    async def callback(self, interaction: discord.Interaction) -> None:
        await open_remix_form(bot_of(interaction), interaction, self.job_id, self.take)


class LoopButton(JobButton, template=rf"^jamgen:loop:{JOB}{TAKE}$"):
    """🔁 Cut the take into a seamless loop of whole bars (posted publicly)."""

    action, label, emoji = "loop", "Loop", "🔁"

    async def callback(self, interaction: discord.Interaction) -> None:
        await post_loop(bot_of(interaction), interaction, self.job_id, self.take)


class StemsButton(JobButton, template=rf"^jamgen:stems:{JOB}{TAKE}$"):
    """🎚 Split the take into drums, bass, other and vocals (free and at once when that was done before)."""

    action, label, emoji = "stems", "Stems", "🎚"

    async def callback(self, interaction: discord.Interaction) -> None:
        await submit_built(
            interaction, lambda bot: stems_request_for(bot, interaction, self.job_id, self.take), ask_for_stems
        )


class RecipeButton(JobButton, template=rf"^jamgen:recipe:{JOB}$"):
    """ℹ️ The full recipe, privately."""

    action, label, emoji = "recipe", "Recipe", "ℹ️"

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = bot_of(interaction)
        try:
            job = await bot.service.job(self.job_id)
        except Exception as exc:
            await report_error(interaction, exc)
            return
        await send_ephemeral(interaction, render_recipe(job, bot.service.recipe(job)))


class DeleteButton(JobButton, template=rf"^jamgen:delete:{JOB}$"):
    """🗑 Delete the take's message (its owner or an admin)."""

    action, label, emoji, style = "delete", "Delete", "🗑", discord.ButtonStyle.danger

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = bot_of(interaction)
        context = member_context(interaction)
        try:
            # The rights are checked on the job the custom_id names, and the clicked message is what gets
            # deleted: a forged custom_id naming one's own job must not delete someone else's message.
            if interaction.message is None or job_id_of(interaction.message) != self.job_id:
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
        bot = bot_of(interaction)
        context = member_context(interaction)
        try:
            job = await bot.service.cancel(self.job_id, context["user_id"], is_admin=context["is_admin"])
        except Exception as exc:
            await report_error(interaction, exc)
            return
        await send_ephemeral(interaction, f"🛑 Cancelling `{job.id}`…")


JOB_BUTTONS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (
    RerollButton,
    ExtendButton,
    RemixButton,
    LoopButton,
    StemsButton,
    RecipeButton,
    DeleteButton,
    CancelButton,
    StemRemixButton,
)


def result_view(job: Job, takes: int) -> discord.ui.View:
    """Buttons under a finished job: one row for the job, one per take for extend/remix/loop/stems."""
    view = discord.ui.View(timeout=None)
    for item in (RerollButton(job.id), RecipeButton(job.id), DeleteButton(job.id)):
        view.add_item(item)
    per_take: tuple[type[JobButton], ...] = (ExtendButton, RemixButton, LoopButton, StemsButton)
    for take in range(takes):
        multi = takes > 1
        for cls in per_take:
            button = cls(job.id, take if multi else None)
            button.item.row = take + 1
            view.add_item(button)
    return view


def progress_view(job_id: str) -> discord.ui.View:
    """The Cancel button under a waiting job."""
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id))
    return view


# ---------------------------------------------------------------------- jam trees
class TreePageButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"^jamgen:tree:(?P<session>[a-z0-9]{8}):(?P<page>\d{1,3})$",
):
    """◀ / ▶ under a paged tree: shows another page (works after a restart: the ids are in the custom_id)."""

    def __init__(self, session_id: str, page: int, *, label: str, disabled: bool = False) -> None:
        super().__init__(
            discord.ui.Button(
                label=label,
                style=discord.ButtonStyle.secondary,
                custom_id=f"jamgen:tree:{session_id}:{page}",
                disabled=disabled,
            )
        )
        self.session_id = session_id
        self.page = page

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> TreePageButton:
        label = item.label if isinstance(item, discord.ui.Button) else None
        return cls(match.group("session"), int(match.group("page")), label=label or "")

    async def callback(self, interaction: discord.Interaction) -> None:
        service = bot_of(interaction).sessions
        try:
            session = await service.get(self.session_id)
            if session is None:
                raise UserInputError("That jam no longer exists.")
            pages = render_tree_pages(session, await service.tree(session))
        except Exception as exc:
            await report_error(interaction, exc)
            return
        page = max(1, min(self.page, len(pages)))
        await interaction.response.edit_message(
            content=pages[page - 1], view=tree_view(session.id, page, len(pages)), allowed_mentions=NO_MENTIONS
        )


def tree_view(session_id: str, page: int, pages: int) -> discord.ui.View:
    """◀ ▶ buttons for a tree of several pages (an empty view for one page)."""
    view = discord.ui.View(timeout=None)
    if pages > 1:
        view.add_item(TreePageButton(session_id, page - 1, label="◀", disabled=page <= 1))
        view.add_item(TreePageButton(session_id, page + 1, label="▶", disabled=page >= pages))
    return view
