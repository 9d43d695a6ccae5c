"""Voice jams: /session voice, play and skip (their commands sit in the /session group), the 🔊 Play button,
and the voice states, start and shutdown that move them. The player is ``bot/discord/voice.py``."""

from __future__ import annotations

import logging

import discord
from discord.ext import commands

from bot.discord.bot import JamBot
from bot.discord.interactions import display_name, member_context, send_ephemeral
from bot.discord.voice import PlayButton, Track, VoiceJam, take_track
from bot.errors import UserInputError
from bot.service.sessions import Session

log = logging.getLogger("jamgen.cogs.voice")


def _in_session(bot: JamBot, session: Session) -> VoiceJam:
    jam = bot.voice_jams.for_session(session.id)
    if jam is None:
        raise UserInputError("This jam is not playing in a voice channel; start with `/session voice`.")
    return jam


async def voice(
    bot: JamBot,
    interaction: discord.Interaction,
    channel: discord.VoiceChannel | discord.StageChannel | None,
    leave: bool,
) -> None:
    """/session voice: join (the caller's channel by default), show what plays, or leave."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    session = await bot.sessions.require(interaction.channel_id)
    jam = bot.voice_jams.for_session(session.id)
    context = member_context(interaction)
    moving = leave or channel is not None or jam is None
    if moving and session.owner_id != context["user_id"] and not context["is_admin"]:
        raise UserInputError("Only the jam's starter or a server admin can move jamgen in voice.")
    if leave:
        if jam is None:
            raise UserInputError("jamgen is not in a voice channel for this jam.")
        await jam.close(f"asked by {interaction.user.mention}")
        await send_ephemeral(interaction, "👋 jamgen left the voice channel.")
        return
    if channel is None and jam is not None:
        await send_ephemeral(interaction, jam.describe())
        return
    if channel is None:
        state = getattr(interaction.user, "voice", None)
        channel = state.channel if state is not None else None
        if not isinstance(channel, discord.VoiceChannel | discord.StageChannel):
            raise UserInputError("Join a voice channel first, or name one: `/session voice channel:#lounge`.")
    thread = interaction.channel
    assert isinstance(thread, discord.abc.Messageable)
    jam = await bot.voice_jams.join(session, channel, thread)
    await send_ephemeral(
        interaction, f"🔊 jamgen plays this jam in {channel.mention}: every new take, as soon as it is posted."
    )


async def play(
    bot: JamBot, interaction: discord.Interaction, job_id: str | None, take: int, bounce: str | None
) -> None:
    """/session play: queue a take, or the bounce of the chain that leads to a take."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    session = await bot.sessions.require(interaction.channel_id)
    jam = _in_session(bot, session)
    if bounce is not None:
        plan = await bot.sessions.bounce_plan(bounce.strip().lower(), take - 1)
        names = {uid: await display_name(interaction, uid) for uid in plan.contributors}
        result = await bot.sessions.render_bounce(plan, names=names)
        track = Track(f"the bounce of `{plan.links[-1].job.id}` ({len(plan.links)} takes)", result.path)
    elif job_id is not None:
        track = await take_track(bot, job_id.strip().lower(), take - 1)
    else:
        raise UserInputError("Name a take (`job_id`) or a chain to bounce (`bounce`).")
    place = jam.add(track)
    await send_ephemeral(interaction, f"🔊 Queued {track.label} (#{place} in the queue).")


async def skip(bot: JamBot, interaction: discord.Interaction) -> None:
    """/session skip: stop what plays now; the queue goes on."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    session = await bot.sessions.require(interaction.channel_id)
    jam = _in_session(bot, session)
    skipped = jam.skip()
    if skipped is None:
        raise UserInputError("Nothing is playing right now.")
    await send_ephemeral(interaction, f"⏭ Skipped {skipped.label}.")


class VoiceEvents(commands.Cog):
    """What moves voice jams besides commands: voice states, the start, deliveries, shutdown."""

    def __init__(self, bot: JamBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(PlayButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(PlayButton)

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        await self.bot.voice_jams.restore()

    @commands.Cog.listener()
    async def on_voice_state_update(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        self.bot.voice_jams.voice_state_changed(member.guild)


async def setup(bot: JamBot) -> None:
    await bot.add_cog(VoiceEvents(bot))
