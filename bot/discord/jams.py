"""The Discord side of jam sessions: loops, reactions on takes, and each take's place in its jam.

The logic lives in ``bot/service/sessions.py``; see docs/SESSIONS.md.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

import discord

from bot.discord.interactions import post_public, report_error
from bot.discord.render import NO_MENTIONS, clip, loop_embed
from bot.discord.tree import JAM_LINE, place_line
from bot.service import Delivery, JamService
from bot.service.sessions import SessionService

if TYPE_CHECKING:
    from bot.discord.bot import JamBot

log = logging.getLogger("jamgen.discord.jams")

# A week without messages before Discord archives a jam's thread by itself.
THREAD_ARCHIVE_MINUTES: Literal[10080] = 10080


async def post_loop(bot: JamBot, interaction: discord.Interaction, job_id: str, take: int) -> None:
    """🔁 Loop: cut a take into whole bars and post it publicly (errors privately).

    Args:
        interaction: the button click (not yet answered).
        take: 0-based take.
    """
    await interaction.response.defer(ephemeral=True, thinking=True)
    try:
        loop = await bot.sessions.loop(job_id, take, byte_limit=interaction.filesize_limit)
        await post_public(
            interaction,
            f"🔁 Loop of `{job_id}` posted.",
            content=f"<@{interaction.user.id}> looped `{job_id}`: {loop.bars} bars at {loop.bpm:.0f} BPM.",
            embed=loop_embed(loop),
            file=discord.File(loop.path, filename=loop.path.name),
        )
    except Exception as exc:
        await report_error(interaction, exc)


async def record_reaction(
    sessions: SessionService, bot_id: int | None, payload: discord.RawReactionActionEvent, *, add: bool
) -> None:
    """Count (or take back) a reaction on a take (``bot_id``: jamgen's own user id)."""
    if payload.guild_id is None or payload.user_id == bot_id:
        return
    author = getattr(payload, "message_author_id", None)
    if add and author is not None and author != bot_id:
        return  # only jamgen's own messages carry takes
    try:
        await sessions.record_reaction(payload.message_id, payload.user_id, str(payload.emoji), add=add)
    except Exception:
        log.exception("could not count a reaction on message %s", payload.message_id)


class JamPlaces:
    """Delivery hook: a session take's message says its place in the jam; its parent's message learns the child.

    Args:
        client: the connected Discord client (to edit the parent's message).
        service: the jam service (its jobs and their sessions).
    """

    def __init__(self, client: discord.Client, service: JamService) -> None:
        self.client = client
        self.service = service

    async def __call__(self, delivery: Delivery, message: dict[str, Any]) -> None:
        job = delivery.job
        if not job.session_id:
            return
        try:
            place = await self.service.sessions.place(job)
            if place is not None:
                message["content"] = clip(f"{message.get('content') or ''}\n{place_line(place)}", 2000)
            if job.parent_id:
                await self._refresh_place(job.parent_id)
        except Exception:
            log.exception("could not show the place of %s in its jam", job.id)

    async def _refresh_place(self, job_id: str) -> None:
        parent = await self.service.job(job_id)
        if not parent.session_id or not parent.delivered_message_ids or parent.channel_id is None:
            return
        place = await self.service.sessions.place(parent)
        if place is None:
            return
        line = place_line(place)
        try:
            channel = self.client.get_channel(parent.channel_id) or await self.client.fetch_channel(parent.channel_id)
            if not isinstance(channel, discord.abc.Messageable):
                return
            if isinstance(channel, discord.Thread) and channel.archived:
                # Discord refuses edits in archived threads (50083); the place is in the store and in /session tree.
                log.info("jam line of %s not refreshed: its thread is archived", parent.id)
                return
            message = await channel.fetch_message(parent.delivered_message_ids[0])
            if message.flags.components_v2:
                await _refresh_card(message, line)
                return
            kept = [text for text in message.content.splitlines() if not text.startswith(JAM_LINE)]
            content = clip("\n".join([*kept, line]), 2000)
            if content != message.content:
                await message.edit(content=content, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            log.info("could not update the jam line of %s: %s", parent.id, exc.status)


def with_place(text: str, line: str) -> str:
    """A take card's first text with ``line`` as its jam line, just under the mention (any older one goes)."""
    kept = [row for row in text.splitlines() if not row.startswith(JAM_LINE)]
    return "\n".join([*kept[:1], line, *kept[1:]])


async def _refresh_card(message: discord.Message, line: str) -> None:
    """A V2 take card cannot take ``content``: its first text display gets the jam line instead."""
    view = discord.ui.LayoutView.from_message(message, timeout=None)
    first = next((item for item in view.walk_children() if isinstance(item, discord.ui.TextDisplay)), None)
    if first is None:
        return
    text = with_place(first.content, line)
    if text != first.content:
        first.content = text
        await message.edit(view=view, allowed_mentions=NO_MENTIONS)
