"""/session: jam sessions in a thread, their tree of takes, bounces, the end of a jam; reactions on takes.

The logic lives in ``bot/service/sessions.py`` and the Discord helpers (cards, loops, each take's place
in its jam) in ``bot/discord/``; this cog makes the thread, pins its header, posts trees and bounces and
counts reactions on takes. Private first, public result: every command defers privately (errors stay
private) and posts what everyone should hear as a public followup. See docs/SESSIONS.md.
"""

from __future__ import annotations

import contextlib
import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.bot import JamBot
from bot.discord.interactions import display_name, member_context, model_autocomplete, post_public, send_ephemeral
from bot.discord.jams import THREAD_ARCHIVE_MINUTES, record_reaction
from bot.discord.render import NO_MENTIONS, bounce_embed, clip, render_summary, session_embed
from bot.discord.stems import split_for_bounce
from bot.discord.tree import render_tree_pages
from bot.discord.views import TreePageButton, tree_view
from bot.discord.votes import DEFAULT_POLL_HOURS, MAX_POLL_HOURS, VoteWatcher, build_poll, message_results
from bot.errors import UserInputError
from bot.service.bounce import StemsMissingError, parse_stems
from bot.service.sessions import SessionService
from cogs import voice

log = logging.getLogger("jamgen.cogs.sessions")


# Server settings and jam threads need the bot in the server: guild install, guild context only.
@app_commands.allowed_installs(guilds=True, users=False)
@app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
class Sessions(commands.GroupCog, group_name="session", group_description="Jam sessions: a thread per jam"):
    """The /session command group and reaction counting (each take's place in its jam is the deliverer's)."""

    def __init__(self, bot: JamBot) -> None:
        self.bot = bot
        self.votes = VoteWatcher(bot)
        self._resumed = False
        super().__init__()

    @property
    def sessions(self) -> SessionService:
        """The service's jam sessions."""
        return self.bot.sessions

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(TreePageButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(TreePageButton)
        self.votes.stop()

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
        pages = render_tree_pages(session, await self.sessions.tree(session))
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
        job_id="The chain's last take (default: the jam's latest take)",
        take="Which take of that job (1-4)",
        stems="Only these stems of every take, e.g. 'drums, bass' (default: the whole takes)",
    )
    async def bounce(
        self,
        interaction: discord.Interaction,
        job_id: app_commands.Range[str, 4, 16] | None = None,
        take: app_commands.Range[int, 1, 4] = 1,
        stems: app_commands.Range[str, 1, 40] | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        wanted = parse_stems(stems)
        if job_id is None:
            session = await self.sessions.require(interaction.channel_id)
            job_id = (await self.sessions.latest_take(session)).id
        plan = await self.sessions.bounce_plan(job_id.strip().lower(), take - 1)
        names = {uid: await display_name(interaction, uid) for uid in plan.contributors}
        await interaction.edit_original_response(content=f"🎚 Bouncing {len(plan.links)} takes…")
        try:
            result = await self.sessions.render_bounce(
                plan, names=names, byte_limit=interaction.filesize_limit, stems=wanted
            )
        except StemsMissingError as missing:
            await send_ephemeral(interaction, await split_for_bounce(self.bot, interaction, missing))
            return
        takes = f"{len(plan.links)} take{'s' if len(plan.links) != 1 else ''}"
        what = f"the {', '.join(wanted)} of {takes}" if wanted else takes
        message = await post_public(
            interaction,
            "🎚 Bounce posted.",
            content=f"<@{interaction.user.id}> bounced {what} into one track.",
            embed=bounce_embed(result),
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
        await self.bot.voice_jams.end_session(summary.session)
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

    # ------------------------------------------------------------- voice jams (cogs/voice.py)
    @app_commands.command(
        name="voice", description="Play the jam's takes in a voice channel, show what plays, or leave"
    )
    @app_commands.describe(
        channel="Where to play (default: the voice channel you are in)",
        leave="Leave the voice channel",
    )
    async def voice(
        self,
        interaction: discord.Interaction,
        channel: discord.VoiceChannel | discord.StageChannel | None = None,
        leave: bool = False,
    ) -> None:
        await voice.voice(self.bot, interaction, channel, leave)

    @app_commands.command(name="play", description="Queue a take, or the bounce of a chain, in the jam's voice channel")
    @app_commands.describe(
        job_id="The take to play",
        take="Which take of that job (1-4)",
        bounce="Play the bounce of the chain that leads to this take instead",
    )
    async def play(
        self,
        interaction: discord.Interaction,
        job_id: app_commands.Range[str, 4, 16] | None = None,
        take: app_commands.Range[int, 1, 4] = 1,
        bounce: app_commands.Range[str, 4, 16] | None = None,
    ) -> None:
        await voice.play(self.bot, interaction, job_id, take, bounce)

    @app_commands.command(name="skip", description="Skip what plays now in the jam's voice channel")
    async def skip(self, interaction: discord.Interaction) -> None:
        await voice.skip(self.bot, interaction)

    # ------------------------------------------------------------- best-take votes
    @app_commands.command(name="vote", description="Post a poll: which of the jam's takes is the best?")
    @app_commands.describe(hours=f"How long the poll stays open, in hours (default {DEFAULT_POLL_HOURS})")
    async def vote(
        self, interaction: discord.Interaction, hours: app_commands.Range[int, 1, MAX_POLL_HOURS] = DEFAULT_POLL_HOURS
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        session = await self.sessions.require(interaction.channel_id)
        context = member_context(interaction)
        plan = await self.sessions.votes.plan(session, user_id=context["user_id"], is_admin=context["is_admin"])
        thread = interaction.channel
        if not isinstance(thread, discord.Thread):
            raise UserInputError("Start the vote inside the jam's thread.")
        names = {job.user_id: await display_name(interaction, job.user_id) for job, _ in plan.takes}
        try:
            message = await thread.send(
                f"🗳️ <@{interaction.user.id}> asks: which take is the jam's best? One vote each.",
                poll=build_poll(plan, names, hours),
                allowed_mentions=NO_MENTIONS,
            )
        except discord.Forbidden as exc:
            raise UserInputError("jamgen may not post polls here: it needs Send Polls in this channel.") from exc
        assert message.poll is not None
        assert message.poll.expires_at is not None
        poll = await self.sessions.votes.remember(
            plan, message_id=message.id, channel_id=thread.id, ends_at=message.poll.expires_at
        )
        self.votes.watch(poll)
        await send_ephemeral(interaction, f"🗳️ Poll posted: {message.jump_url} ({len(plan.takes)} takes, {hours} h).")

    @app_commands.command(name="endvote", description="Close the jam's best-take poll now and announce the winner")
    async def endvote(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        session = await self.sessions.require(interaction.channel_id)
        context = member_context(interaction)
        poll = await self.sessions.votes.open_poll(session, user_id=context["user_id"], is_admin=context["is_admin"])
        thread = interaction.channel
        if not isinstance(thread, discord.Thread):
            raise UserInputError("End the vote inside the jam's thread.")
        try:
            ended = await thread.get_partial_message(poll.message_id).end_poll()
        except discord.HTTPException as exc:
            log.warning("session %s: could not end poll %s: %s", session.id, poll.message_id, exc.status)
            raise UserInputError("Discord would not end that poll (it may have just closed); try again.") from exc
        counts = message_results(ended)
        if counts is not None:  # else Discord is still tallying: the update event (or the timer) brings it
            await self.votes.finish(poll, counts)
        await send_ephemeral(interaction, "🗳️ Poll ended; the winner is announced in the thread.")

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        """After (re)connecting: polls that closed while jamgen was away are announced now."""
        if not self._resumed:
            self._resumed = True
            await self.votes.resume()

    @commands.Cog.listener()
    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        """Discord finalizes a poll with MESSAGE_UPDATE (results.is_finalized)."""
        if "poll" in payload.data:
            await self.votes.on_message_data(payload.message_id, payload.data)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Discord's POLL_RESULT message points at the closed poll."""
        if message.type is discord.MessageType.poll_result and message.reference and message.reference.message_id:
            await self.votes.on_poll_result(message.reference.message_id)

    # ------------------------------------------------------------- reactions
    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        """Count reactions on session takes (reaction events need no message-content intent)."""
        await record_reaction(self.sessions, self.bot.user_id, payload, add=True)

    @commands.Cog.listener()
    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        """A reaction taken back is no longer counted."""
        await record_reaction(self.sessions, self.bot.user_id, payload, add=False)


async def setup(bot: JamBot) -> None:
    """Load the cog."""
    await bot.add_cog(Sessions(bot))
