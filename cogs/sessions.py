"""/session: jam sessions in a thread, their tree of takes, bounces, the end of a jam; loops of takes.

The logic lives in ``bot/service/sessions.py``; this cog makes the thread, pins its
header, posts trees, loops and bounces, counts reactions on takes and adds each take's
place in its jam to its message. Private first, public result: every command defers
privately (errors stay private) and posts what everyone should hear as a public
followup. See docs/SESSIONS.md.
"""

from __future__ import annotations

import contextlib
import logging
import re
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import (
    COLOUR,
    NO_MENTIONS,
    JamBot,
    clip,
    member_context,
    message_url,
    model_autocomplete,
    report_error,
    send_ephemeral,
)
from bot.errors import UserInputError
from bot.service import Delivery
from bot.service.sessions import (
    BounceResult,
    LoopResult,
    Session,
    SessionService,
    SessionSummary,
    describe_session,
)

log = logging.getLogger("jamgen.cogs.sessions")

THREAD_ARCHIVE_MINUTES = 10080  # a week without messages before Discord archives a jam's thread by itself
JAM_LINE = "🎶 Jam "


async def post_public(interaction: discord.Interaction, note: str, **kwargs: Any) -> discord.Message:
    """Post a result publicly after a private deferral: the private placeholder becomes ``note`` first.

    (The first followup after a deferral would replace the private placeholder and stay private.)

    Args:
        interaction: deferred privately.
        note: what the member's private message says afterwards.
        **kwargs: what to post (content, embed, file, view …).
    """
    await interaction.edit_original_response(content=note)
    return await interaction.followup.send(wait=True, allowed_mentions=NO_MENTIONS, **kwargs)


def session_embed(session: Session) -> discord.Embed:
    """The pinned header of a jam's thread."""
    embed = discord.Embed(
        title=clip(f"🎶 {session.theme}", 256),
        description=(
            "Everything made in this thread belongs to the jam: `/generate`, `/melody`, `/style`, `/continue`, "
            "replies and the buttons under each take. Every prompt gets the jam's tempo, key and time signature "
            "unless you name your own.\n"
            "🔁 **Loop** cuts any take into bars · `/session tree` shows who built on what · "
            "`/session bounce` makes one track of a chain · `/session end` wraps up."
        ),
        colour=COLOUR,
    )
    embed.add_field(name="Feel", value=describe_session(session))
    embed.add_field(name="Model", value=session.model or "server default")
    embed.add_field(name="Jam budget", value=f"{session.budget:g} s" if session.budget is not None else "none")
    embed.add_field(name="Started by", value=f"<@{session.owner_id}>")
    state = "ended" if not session.is_open else "open"
    embed.set_footer(text=f"session {session.id} · {state}")
    return embed


def loop_embed(loop: LoopResult) -> discord.Embed:
    """The card under a loop: bars, tempo, meter."""
    embed = discord.Embed(title=f"🔁 Loop of `{loop.job_id}` take {loop.take + 1}", colour=COLOUR)
    embed.add_field(name="Length", value=f"{loop.bars} bar{'s' if loop.bars != 1 else ''} · {loop.duration_s:.2f} s")
    embed.add_field(name="Tempo", value=f"{loop.bpm:.1f} BPM")
    embed.add_field(name="Time signature", value=loop.time_signature)
    embed.add_field(name="Starts at", value=f"{loop.start_s:.2f} s into the take")
    embed.set_footer(text=f"loop of take {loop.job_id} · cut on the beat, crossfaded at the loop point")
    return embed


def bounce_embed(result: BounceResult, names: dict[int, str]) -> discord.Embed:
    """The card under a bounce: the chain, its length, who played."""
    plan = result.plan
    title = plan.session.theme if plan.session else (plan.last.job.prompt or plan.last.job.mode)
    chain = " → ".join(f"`{link.job.id}`" for link in plan.links)
    embed = discord.Embed(title=clip(f"🎚 Bounce: {title}", 256), description=clip(chain, 4000), colour=COLOUR)
    embed.add_field(name="Length", value=f"{result.duration_s:.1f} s")
    embed.add_field(name="Takes", value=str(len(plan.links)))
    embed.add_field(name="Bitrate", value=f"{result.bitrate_kbps} kbps" if result.bitrate_kbps else "—")
    players = ", ".join(f"<@{uid}>" for uid in plan.contributors)
    embed.add_field(name="Played by", value=clip(players, 1000), inline=False)
    embed.set_footer(text=f"bounce leading to take {plan.last.job.id} · every recipe is in the file's tags")
    return embed


def render_summary(summary: SessionSummary) -> str:
    """What ``/session end`` posts in the thread."""
    session = summary.session
    players = ", ".join(f"<@{uid}>" for uid in summary.contributors) or "nobody yet"
    lines = [
        f"🏁 **The jam is over: {clip(session.theme, 90)}**",
        f"{summary.takes} take{'s' if summary.takes != 1 else ''} by "
        f"{len(summary.contributors)} member{'s' if len(summary.contributors) != 1 else ''}: {players}",
    ]
    if summary.most_reacted is not None:
        job, count = summary.most_reacted
        first = job.delivered_message_ids[0] if job.delivered_message_ids else None
        url = message_url(job.guild_id, job.channel_id, first)
        lines.append(
            f"🏆 Most-reacted take: `{job.id}` by <@{job.user_id}> ({count} reaction{'s' if count != 1 else ''})"
            + (f" {url}" if url else "")
        )
    else:
        lines.append("🏆 No reactions on any take.")
    bounce = summary.bounce
    if bounce:
        url = message_url(session.guild_id, bounce.get("channel_id"), bounce.get("message_id"))
        lines.append(
            f"🎚 Bounce: {float(bounce.get('duration_s') or 0):.1f} s leading to `{bounce.get('job_id')}`"
            + (f" {url}" if url else "")
        )
    else:
        lines.append("🎚 No bounce was made; `/session bounce job_id: …` still works on any take.")
    return clip("\n".join(lines), 2000)


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
        cls, interaction: discord.Interaction, item: discord.ui.Button[Any], match: re.Match[str], /
    ) -> TreePageButton:
        return cls(match.group("session"), int(match.group("page")), label=item.label or "")

    async def callback(self, interaction: discord.Interaction) -> None:
        bot: JamBot = interaction.client  # type: ignore[assignment]
        service = SessionService(bot.service)
        try:
            session = await service.get(self.session_id)
            if session is None:
                raise UserInputError("That jam no longer exists.")
            pages = await service.tree_pages(session)
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


async def post_loop(bot: JamBot, interaction: discord.Interaction, job_id: str, take: int) -> None:
    """🔁 Loop: cut a take into whole bars and post it publicly (errors privately).

    Args:
        bot: the bot.
        interaction: the button click (not yet answered).
        job_id: the take's job.
        take: 0-based take.
    """
    await interaction.response.defer(ephemeral=True, thinking=True)
    try:
        loop = await SessionService(bot.service).loop(job_id, take, byte_limit=interaction.filesize_limit)
        await post_public(
            interaction,
            f"🔁 Loop of `{job_id}` posted.",
            content=f"<@{interaction.user.id}> looped `{job_id}`: {loop.bars} bars at {loop.bpm:.0f} BPM.",
            embed=loop_embed(loop),
            file=discord.File(loop.path, filename=loop.path.name),
        )
    except Exception as exc:
        await report_error(interaction, exc)


async def display_name(interaction: discord.Interaction, user_id: int) -> str:
    """A member's name for the tags of a bounce (their server nickname when it can be read)."""
    guild = interaction.guild
    member = guild.get_member(user_id) if guild else None
    if member is not None:
        return member.display_name
    with contextlib.suppress(discord.HTTPException):
        if guild is not None:
            return (await guild.fetch_member(user_id)).display_name
    with contextlib.suppress(discord.HTTPException):
        return (await interaction.client.fetch_user(user_id)).name
    return str(user_id)


class Sessions(commands.GroupCog, group_name="session", group_description="Jam sessions: a thread per jam"):
    """The /session command group, reaction counting and each take's place in its jam."""

    def __init__(self, bot: JamBot) -> None:
        self.bot = bot
        self.sessions = SessionService(bot.service)
        super().__init__()

    async def cog_load(self) -> None:
        self.bot.delivery_hooks.append(self.add_jam_place)

    async def cog_unload(self) -> None:
        with contextlib.suppress(ValueError):
            self.bot.delivery_hooks.remove(self.add_jam_place)

    # ------------------------------------------------------------- start
    @app_commands.command(name="start", description="Open a jam: a thread where every take shares tempo and key")
    @app_commands.describe(
        theme="What the jam is about, e.g. 'late night drive' (the thread's name)",
        bpm="Shared tempo in beats per minute",
        key="Shared key, e.g. A minor, F# major, Ebm",
        time_signature="Shared time signature, e.g. 4/4, 3/4, 6/8",
        model="Default model of the jam's takes",
        budget="Seconds of music the whole jam may make (members' own quotas apply too)",
    )
    @app_commands.autocomplete(model=model_autocomplete)
    async def start(
        self,
        interaction: discord.Interaction,
        theme: app_commands.Range[str, 1, 90],
        bpm: app_commands.Range[int, 30, 300] | None = None,
        key: app_commands.Range[str, 1, 20] | None = None,
        time_signature: app_commands.Range[str, 3, 5] | None = None,
        model: str | None = None,
        budget: app_commands.Range[int, 1, 1_000_000] | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        channel = interaction.channel
        if not isinstance(channel, discord.TextChannel):
            raise UserInputError("Start a jam from a server's text channel (not from inside a thread).")
        settings = await self.sessions.check_settings(
            guild_id=interaction.guild_id,
            channel_id=channel.id,
            theme=theme,
            bpm=bpm,
            key=key,
            time_signature=time_signature,
            model=model,
            budget=budget,
        )
        try:
            thread = await channel.create_thread(
                name=clip(f"🎶 {settings.theme}", 100),
                type=discord.ChannelType.public_thread,
                auto_archive_duration=THREAD_ARCHIVE_MINUTES,
                reason=f"jam session started by {interaction.user}",
            )
        except discord.Forbidden as exc:
            raise UserInputError("jamgen may not make threads here: it needs Create Public Threads.") from exc
        assert interaction.guild_id is not None
        try:
            session = await self.sessions.open(
                settings,
                guild_id=interaction.guild_id,
                channel_id=channel.id,
                thread_id=thread.id,
                owner_id=interaction.user.id,
            )
        except BaseException:
            with contextlib.suppress(discord.HTTPException):
                await thread.delete()  # no jam without its record: don't leave an empty thread behind
            raise
        header = await thread.send(embed=session_embed(session), allowed_mentions=NO_MENTIONS)
        await self.sessions.remember_header(session.id, header.id)
        pinned = True
        try:
            await header.pin(reason="jam session header")
        except discord.HTTPException as exc:
            pinned = False
            log.warning("session %s: could not pin the header: %s", session.id, exc.status)
        note = "" if pinned else " (jamgen could not pin its header: it needs Pin Messages there)"
        await send_ephemeral(
            interaction, f"🎶 Your jam is open: {thread.mention}. Everything made there belongs to it.{note}"
        )

    # ------------------------------------------------------------- tree
    @app_commands.command(name="tree", description="The jam's takes as a tree: who built on what")
    @app_commands.describe(page="Which page, when the tree is long")
    async def tree(self, interaction: discord.Interaction, page: app_commands.Range[int, 1, 999] = 1) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        session = await self.sessions.require(interaction.channel_id)
        pages = await self.sessions.tree_pages(session)
        page = min(page, len(pages))
        await post_public(
            interaction,
            "🌳 Tree posted.",
            content=pages[page - 1],
            view=tree_view(session.id, page, len(pages)),
        )

    # ------------------------------------------------------------- bounce
    @app_commands.command(name="bounce", description="One track from the chain of takes that leads to a take")
    @app_commands.describe(
        job_id="The chain's last take (default: the jam's latest take)", take="Which take of that job (1-4)"
    )
    async def bounce(
        self,
        interaction: discord.Interaction,
        job_id: app_commands.Range[str, 4, 16] | None = None,
        take: app_commands.Range[int, 1, 4] = 1,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        if job_id is None:
            session = await self.sessions.require(interaction.channel_id)
            job_id = (await self.sessions.latest_take(session)).id
        plan = await self.sessions.bounce_plan(job_id.strip().lower(), take - 1)
        names = {uid: await display_name(interaction, uid) for uid in plan.contributors}
        await interaction.edit_original_response(content=f"🎚 Bouncing {len(plan.links)} takes…")
        result = await self.sessions.render_bounce(plan, names=names, byte_limit=interaction.filesize_limit)
        message = await post_public(
            interaction,
            "🎚 Bounce posted.",
            content=f"<@{interaction.user.id}> bounced {len(plan.links)} takes into one track.",
            embed=bounce_embed(result, names),
            file=discord.File(result.path, filename=result.path.name),
        )
        await self.sessions.remember_bounce(result, channel_id=message.channel.id, message_id=message.id)

    # ------------------------------------------------------------- budget
    @app_commands.command(name="budget", description="Set the jam's own budget (its starter or a server admin)")
    @app_commands.describe(seconds="Seconds of music the whole jam may make; 0 removes the jam budget")
    async def budget(self, interaction: discord.Interaction, seconds: app_commands.Range[int, 0, 1_000_000]) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        session = await self.sessions.require(interaction.channel_id)
        context = member_context(interaction)
        updated = await self.sessions.set_budget(
            session, seconds or None, user_id=context["user_id"], is_admin=context["is_admin"]
        )
        used = await self.sessions.usage(updated)
        if updated.budget is None:
            text = f"💰 This jam has no budget of its own now ({used:g} s used so far); members' quotas still apply."
        else:
            text = f"💰 This jam may use {updated.budget:g} s of music ({used:g} s used so far)."
        await send_ephemeral(interaction, text)

    # ------------------------------------------------------------- end
    @app_commands.command(name="end", description="Close the jam: post a summary and archive the thread")
    async def end(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        session = await self.sessions.require(interaction.channel_id)
        context = member_context(interaction)
        summary = await self.sessions.end(session, user_id=context["user_id"], is_admin=context["is_admin"])
        await post_public(interaction, "🏁 Jam ended; its thread is archived.", content=render_summary(summary))
        thread = interaction.channel
        if not isinstance(thread, discord.Thread):
            return
        if summary.session.header_message_id:
            with contextlib.suppress(discord.HTTPException):
                await thread.get_partial_message(summary.session.header_message_id).edit(
                    embed=session_embed(summary.session)
                )
        try:
            await thread.edit(archived=True, reason="jam session ended")
        except discord.HTTPException as exc:
            log.warning("session %s: could not archive its thread: %s", session.id, exc.status)
            await send_ephemeral(interaction, "🏁 Jam ended, but jamgen may not archive the thread (Manage Threads).")

    # ------------------------------------------------------------- reactions and each take's place
    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        """Count reactions on session takes (reaction events need no message-content intent)."""
        await self._reaction(payload, add=True)

    @commands.Cog.listener()
    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        """A reaction taken back is no longer counted."""
        await self._reaction(payload, add=False)

    async def _reaction(self, payload: discord.RawReactionActionEvent, *, add: bool) -> None:
        if payload.guild_id is None or payload.user_id == self.bot.user_id:
            return
        author = getattr(payload, "message_author_id", None)
        if add and author is not None and author != self.bot.user_id:
            return  # only jamgen's own messages carry takes
        try:
            await self.sessions.record_reaction(payload.message_id, payload.user_id, str(payload.emoji), add=add)
        except Exception:
            log.exception("could not count a reaction on message %s", payload.message_id)

    async def add_jam_place(self, delivery: Delivery, message: dict[str, Any]) -> None:
        """Delivery hook: a session take's message says its place in the jam; its parent's message learns the child."""
        job = delivery.job
        if not job.session_id:
            return
        try:
            line = await self.sessions.place_line(job)
            if line:
                message["content"] = clip(f"{message.get('content') or ''}\n{line}", 2000)
            if job.parent_id:
                await self._refresh_place(job.parent_id)
        except Exception:
            log.exception("could not show the place of %s in its jam", job.id)

    async def _refresh_place(self, job_id: str) -> None:
        parent = await self.bot.service.job(job_id)
        if not parent.session_id or not parent.delivered_message_ids:
            return
        line = await self.sessions.place_line(parent)
        if not line:
            return
        try:
            channel = self.bot.get_channel(parent.channel_id) or await self.bot.fetch_channel(parent.channel_id)
            if not isinstance(channel, discord.abc.Messageable):
                return
            if isinstance(channel, discord.Thread) and channel.archived:
                # Discord refuses edits in archived threads (50083); the place is in the store and in /session tree.
                log.info("jam line of %s not refreshed: its thread is archived", parent.id)
                return
            message = await channel.fetch_message(parent.delivered_message_ids[0])
            kept = [text for text in message.content.splitlines() if not text.startswith(JAM_LINE)]
            content = clip("\n".join([*kept, line]), 2000)
            if content != message.content:
                await message.edit(content=content, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            log.info("could not update the jam line of %s: %s", parent.id, exc.status)


async def setup(bot: JamBot) -> None:
    """Load the cog and the tree's page buttons."""
    bot.add_dynamic_items(TreePageButton)
    await bot.add_cog(Sessions(bot))
