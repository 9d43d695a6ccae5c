"""Voice jams: the bot sits in a jam's voice channel and plays each new take to the room.

One :class:`VoiceJam` per server: its connection (discord.py's ``VoiceClient``, which follows a moved
voice server and resumes dropped connections by itself), its queue, what plays now and the idle timer.
Decoding is the service's ``voice_audio`` (niced ffmpeg, whole track, before it plays), so discord.py's
audio thread only slices bytes in memory. Which channel a jam plays in is kept with the session, so a
restart rejoins it (and leaves any channel the bot was left "in" without a jam). See docs/SESSIONS.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord

from bot.discord.interactions import bot_of, report_error, send_ephemeral
from bot.discord.views import JOB, TAKE, JobButton
from bot.errors import JamgenError, UserInputError
from bot.service import Delivery, Job
from bot.service.bounce import take_path
from bot.service.sessions import Session
from bot.service.voice import VoicePcm, voice_audio

if TYPE_CHECKING:
    from bot.discord.bot import JamBot

log = logging.getLogger("jamgen.discord.voice")

# A connection that is down this long (discord.py retries meanwhile) is given up, and a new one made.
RECONNECT_WAIT_S = 10.0
# Joining: also how long discord.py's audio thread waits for a lost connection before it stops a track.
CONNECT_TIMEOUT_S = 10.0
QUEUE_LIMIT = 50


class VoicePermissionError(UserInputError):
    """jamgen may not connect or speak in the voice channel."""


@dataclass(frozen=True)
class Track:
    """Something queued to play.

    Args:
        label: how the thread announces it (``\\`k7m2q9xa\\` by <@1>``).
        path: the file to play.
    """

    label: str
    path: Path


class TakeAudio(discord.AudioSource):
    """A decoded track for discord.py's audio thread: 20-ms PCM frames from memory."""

    def __init__(self, pcm: VoicePcm) -> None:
        self._pcm = pcm
        self._next = 0

    def read(self) -> bytes:
        frame = self._pcm.frame(self._next)
        if frame:
            self._next += 1
        return frame

    @property
    def finished(self) -> bool:
        """Every frame was read (a cut-off track has some left)."""
        return not self._pcm.frame(self._next)

    def is_opus(self) -> bool:
        return False


def missing_voice_permissions(channel: discord.VoiceChannel | discord.StageChannel) -> list[str]:
    """What jamgen lacks to play in ``channel`` (View Channel, Connect, Speak)."""
    me = channel.guild.me
    perms = channel.permissions_for(me)
    wanted = {"view_channel": "View Channel", "connect": "Connect", "speak": "Speak"}
    return [name for attr, name in wanted.items() if not getattr(perms, attr)]


def listeners(channel: discord.VoiceChannel | discord.StageChannel) -> list[discord.Member]:
    """The people (not bots) in a voice channel."""
    return [member for member in channel.members if not member.bot]


class VoiceJam:
    """One server's voice jam.

    Args:
        bot: the bot.
        session: the jam it plays.
        channel: the voice channel.
        thread: where "now playing" is announced (the jam's thread).
        idle_s: seconds the channel may stay empty before the bot leaves.
        on_close: called once it has left, with the reason.
    """

    def __init__(
        self,
        bot: JamBot,
        session: Session,
        channel: discord.VoiceChannel | discord.StageChannel,
        thread: discord.abc.Messageable,
        *,
        idle_s: float,
        on_close: Callable[[VoiceJam], None],
    ) -> None:
        self.bot = bot
        self.session = session
        self.channel = channel
        self.thread = thread
        self.idle_s = idle_s
        self.queue: deque[Track] = deque()
        self.now: Track | None = None
        self._wake = asyncio.Event()
        self._skipped = False
        self._voice: discord.VoiceClient | None = None
        self._player: asyncio.Task[None] | None = None
        self._idle: asyncio.Task[None] | None = None
        self._on_close = on_close
        self.closed = False

    @property
    def guild_id(self) -> int:
        return self.channel.guild.id

    async def connect(self) -> None:
        """Join the channel (or move there) and start the player."""
        current = self.channel.guild.voice_client
        if isinstance(current, discord.VoiceClient) and current.is_connected():
            if current.channel.id != self.channel.id:
                await current.move_to(self.channel)
            self._voice = current
        else:
            if current is not None:
                with contextlib.suppress(Exception):
                    await current.disconnect(force=True)
            self._voice = await self.channel.connect(self_deaf=True, reconnect=True, timeout=CONNECT_TIMEOUT_S)
        self._player = asyncio.create_task(self._play_forever(), name=f"jamgen-voice-{self.guild_id}")
        self.check_idle()

    def add(self, track: Track) -> int:
        """Queue ``track``; returns its place (1 = next)."""
        if len(self.queue) >= QUEUE_LIMIT:
            raise UserInputError(f"The voice queue is full ({QUEUE_LIMIT} tracks); skip some or wait a little.")
        self.queue.append(track)
        self._wake.set()
        return len(self.queue)

    def skip(self) -> Track | None:
        """Stop what plays now (the next track starts); returns it."""
        playing = self.now
        self._skipped = True
        if self._voice is not None and (self._voice.is_playing() or self._voice.is_paused()):
            self._voice.stop()
        return playing

    async def _play_forever(self) -> None:
        upcoming: list[asyncio.Task[VoicePcm]] = []
        try:
            await self._play_queue(upcoming)
        finally:
            for task in upcoming:
                task.cancel()
            await asyncio.gather(*upcoming, return_exceptions=True)

    async def _play_queue(self, upcoming: list[asyncio.Task[VoicePcm]]) -> None:
        """Play the queue as it grows; ``upcoming`` holds the next track's decoding (started while one plays)."""
        while True:
            if not self.queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            track = self.queue.popleft()
            # Decoded while the previous track played (prefetched), or now.
            pcm_task = upcoming.pop() if upcoming else asyncio.create_task(voice_audio(track.path))
            try:
                pcm = await pcm_task
            except JamgenError as exc:
                log.warning("voice %s: cannot play %s: %s", self.guild_id, track.path.name, exc)
                await self._say(f"⚠️ Cannot play {track.label}: {exc.message}")
                continue
            self.now = track
            log.info("voice %s: playing %s (%.1f s)", self.guild_id, track.path.name, pcm.seconds)
            if self.queue:
                upcoming.append(asyncio.create_task(voice_audio(self.queue[0].path)))
            if not await self._play_through(TakeAudio(pcm), f"🔊 Now playing {track.label}"):
                return
            self.now = None

    async def _play_through(self, audio: TakeAudio, announcement: str) -> bool:
        """Play ``audio`` to its end or a skip, saying ``announcement`` once it starts; a connection lost
        meanwhile is made again and the track goes on where it stopped. False when no connection could be
        made (the jam is closed then)."""
        announce: str | None = announcement
        loop = asyncio.get_running_loop()
        self._skipped = False
        while True:
            voice = await self._ready_voice()
            if voice is None:
                return False
            finished: asyncio.Future[None] = loop.create_future()

            def done(error: Exception | None, finished: asyncio.Future[None] = finished) -> None:
                # discord.py's audio thread: hand over to the loop.
                if error is not None:
                    log.warning("voice %s: playback stopped: %s", self.guild_id, error)
                loop.call_soon_threadsafe(_settle, finished)

            voice.play(audio, after=done)
            if announce is not None:
                await self._say(announce)
                announce = None
            await finished
            if self._skipped or audio.finished:
                return True
            log.info("voice %s: playback was cut off; reconnecting to play the rest", self.guild_id)

    async def _ready_voice(self) -> discord.VoiceClient | None:
        """The connection, waiting while discord.py reconnects it; a new one when it gave up."""
        voice = self._voice
        if voice is not None and voice.is_connected():
            return voice
        if voice is not None and self.channel.guild.voice_client is voice and await _reconnects(voice):
            return voice
        with contextlib.suppress(Exception):
            if voice is not None:
                await voice.disconnect(force=True)
        try:
            self._voice = await self.channel.connect(self_deaf=True, reconnect=True, timeout=CONNECT_TIMEOUT_S)
        except (discord.ClientException, TimeoutError, discord.HTTPException) as exc:
            log.warning("voice %s: could not reconnect: %s", self.guild_id, exc)
            await self.close("the voice connection was lost")
            return None
        log.info("voice %s: connected again to %s", self.guild_id, self.channel.id)
        return self._voice

    def check_idle(self) -> None:
        """Start the idle timer when nobody listens; stop it when someone does."""
        if self.closed:
            return
        if listeners(self.channel):
            if self._idle is not None:
                self._idle.cancel()
                self._idle = None
        elif self._idle is None:
            self._idle = asyncio.create_task(self._leave_when_idle(), name=f"jamgen-voice-idle-{self.guild_id}")

    async def _leave_when_idle(self) -> None:
        await asyncio.sleep(self.idle_s)
        self._idle = None
        await self.close("nobody was listening")

    async def close(self, reason: str | None = None, *, forget: bool = True) -> None:
        """Stop playing and leave the channel.

        Args:
            reason: said in the thread ("left: <reason>"); None says nothing.
            forget: also forget the channel in the session (False on shutdown, so a restart rejoins).
        """
        if self.closed:
            return
        self.closed = True
        current = asyncio.current_task()
        tasks = [task for task in (self._player, self._idle) if task is not None and task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._voice is not None:
            self._voice.stop()
            with contextlib.suppress(Exception):
                await self._voice.disconnect(force=True)
        log.info("voice %s: left %s (%s)", self.guild_id, self.channel.id, reason or "shutdown")
        if forget:
            with contextlib.suppress(JamgenError):
                await self.bot.sessions.set_voice_channel(self.session, None)
        if reason is not None:
            await self._say(f"👋 Left {self.channel.mention}: {reason}.")
        self._on_close(self)

    async def _say(self, text: str) -> None:
        try:
            await self.thread.send(text, allowed_mentions=discord.AllowedMentions.none())
        except discord.HTTPException as exc:
            log.info("voice %s: could not post in the jam's thread: %s", self.guild_id, exc.status)

    def describe(self) -> str:
        """What plays and what is queued."""
        lines = [f"🔊 In {self.channel.mention}"]
        lines.append(f"Now playing: {self.now.label}" if self.now else "Nothing is playing right now.")
        if self.queue:
            lines.append("Queued: " + ", ".join(track.label for track in list(self.queue)[:10]))
            if len(self.queue) > 10:
                lines[-1] += f" and {len(self.queue) - 10} more"
        return "\n".join(lines)


def _settle(finished: asyncio.Future[None]) -> None:
    if not finished.done():
        finished.set_result(None)


async def _reconnects(voice: discord.VoiceClient) -> bool:
    with contextlib.suppress(Exception):
        return await asyncio.to_thread(voice.wait_until_connected, RECONNECT_WAIT_S)
    return False


class VoiceJams:
    """Every server's voice jam, and what moves them: deliveries, voice states, the start and the end."""

    def __init__(self, bot: JamBot, *, idle_minutes: float) -> None:
        self.bot = bot
        self.idle_s = idle_minutes * 60
        self.jams: dict[int, VoiceJam] = {}
        self._restored = False

    def get(self, guild_id: int | None) -> VoiceJam | None:
        return self.jams.get(guild_id) if guild_id is not None else None

    def for_session(self, session_id: str) -> VoiceJam | None:
        return next((jam for jam in self.jams.values() if jam.session.id == session_id), None)

    async def join(
        self,
        session: Session,
        channel: discord.VoiceChannel | discord.StageChannel,
        thread: discord.abc.Messageable,
    ) -> VoiceJam:
        """Play ``session`` in ``channel`` (moving from another channel or jam of this server).

        Raises:
            VoicePermissionError: jamgen may not connect or speak there.
        """
        missing = missing_voice_permissions(channel)
        if missing:
            raise VoicePermissionError(
                f"jamgen needs {', '.join(missing)} in {channel.mention} to play the jam there; "
                "ask an admin to allow it for the jamgen role."
            )
        old = self.jams.get(channel.guild.id)
        if old is not None and (old.session.id != session.id or old.channel.id != channel.id):
            await old.close(None)
        elif old is not None:
            return old
        jam = VoiceJam(self.bot, session, channel, thread, idle_s=self.idle_s, on_close=self._forget)
        self.jams[channel.guild.id] = jam
        try:
            await jam.connect()
        except (discord.ClientException, TimeoutError, discord.HTTPException) as exc:
            await jam.close(None)
            raise UserInputError(f"jamgen could not join {channel.mention} ({exc.__class__.__name__}).") from exc
        await self.bot.sessions.set_voice_channel(session, channel.id)
        return jam

    def _forget(self, jam: VoiceJam) -> None:
        if self.jams.get(jam.guild_id) is jam:
            del self.jams[jam.guild_id]

    async def leave(self, guild_id: int | None, reason: str) -> bool:
        """Leave the server's voice jam; whether there was one."""
        jam = self.get(guild_id)
        if jam is None:
            return False
        await jam.close(reason)
        return True

    async def end_session(self, session: Session) -> None:
        """The jam ended: its voice jam leaves too."""
        jam = self.for_session(session.id)
        if jam is not None:
            await jam.close("the jam has ended")

    async def delivered(self, job: Job) -> None:
        """A take was delivered: when its jam plays in voice, queue it."""
        if job.session_id is None:
            return
        jam = self.for_session(job.session_id)
        if jam is None:
            return
        for take, output in enumerate(job.outputs):
            number = f" (take {take + 1})" if len(job.outputs) > 1 else ""
            with contextlib.suppress(UserInputError):
                jam.add(Track(f"`{job.id}`{number} by <@{job.user_id}>", Path(output)))

    def voice_state_changed(self, guild: discord.Guild) -> None:
        """Someone joined or left a voice channel: the idle timer follows who listens."""
        jam = self.jams.get(guild.id)
        if jam is None:
            return
        state = guild.me.voice if guild.me is not None else None
        where = state.channel if state is not None else None
        if isinstance(where, discord.VoiceChannel | discord.StageChannel) and where.id != jam.channel.id:
            jam.channel = where  # moved by a moderator: play on where the bot is
        jam.check_idle()

    async def restore(self) -> None:
        """After a (re)start: rejoin the jams that played in voice; leave channels the bot is left "in"."""
        if self._restored:
            return
        self._restored = True
        for session in await self.bot.sessions.voice_sessions():
            guild = self.bot.get_guild(session.guild_id or 0)
            channel = guild.get_channel(int(session.extra["voice_channel_id"])) if guild else None
            thread = self.bot.get_channel(session.thread_id)
            if not isinstance(channel, discord.VoiceChannel | discord.StageChannel) or not isinstance(
                thread, discord.abc.Messageable
            ):
                await self.bot.sessions.set_voice_channel(session, None)
                continue
            try:
                await self.join(session, channel, thread)
            except JamgenError as exc:
                log.warning("voice: could not rejoin the jam %s in %s: %s", session.id, channel.id, exc.message)
                await self.bot.sessions.set_voice_channel(session, None)
        for guild in self.bot.guilds:
            stale = guild.me is not None and guild.me.voice is not None and guild.id not in self.jams
            if stale:
                log.info("voice %s: leaving a voice channel left over from before the restart", guild.id)
                await guild.change_voice_state(channel=None)

    async def close(self) -> None:
        """Shutdown: leave every channel, but remember them so that the next start rejoins."""
        for jam in list(self.jams.values()):
            await jam.close(None, forget=False)


async def take_track(bot: JamBot, job_id: str, take: int) -> Track:
    """A finished take, ready to queue."""
    job = await bot.service.job(job_id)
    number = f" (take {take + 1})" if len(job.outputs) > 1 else ""
    return Track(f"`{job.id}`{number} by <@{job.user_id}>", take_path(job, take))


class PlayButton(JobButton, template=rf"^jamgen:play:{JOB}{TAKE}$"):
    """🔊 Queue the take in the jam's voice channel."""

    action, label, emoji = "play", "Play", "🔊"

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = bot_of(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            job = await bot.service.job(self.job_id)
            jam = bot.voice_jams.for_session(job.session_id or "")
            if jam is None:
                raise UserInputError("This take's jam is not playing in a voice channel right now.")
            track = await take_track(bot, self.job_id, self.take)
            place = jam.add(track)
        except Exception as exc:
            await report_error(interaction, exc)
            return
        await send_ephemeral(interaction, f"🔊 Queued {track.label} (#{place} in the queue).")


class PlayButtons:
    """A delivery hook: under each take of a jam that plays in voice, a 🔊 Play button (beside the take's own)."""

    def __init__(self, bot: JamBot) -> None:
        self.bot = bot

    async def __call__(self, delivery: Delivery, kwargs: dict[str, Any]) -> None:
        job = delivery.job
        view = kwargs.get("view")
        if job.session_id is None or view is None or self.bot.voice_jams.for_session(job.session_id) is None:
            return
        multi = len(delivery.takes) > 1
        for take in delivery.takes:
            button = PlayButton(job.id, take.index if multi else None)
            button.item.row = take.index + 1  # the take's own row (the classic view's numbering)
            view.add_item(button)
