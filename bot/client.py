"""The Discord bootstrap: the bot, delivery of finished takes, and the rendering the cogs share.

This is the one module of ``bot/`` that imports discord. Interaction tokens
live here in memory only (``JamBot.live``), never in the store or the logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
import re
import secrets
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.config import Settings
from bot.engine.types import Mode
from bot.errors import JamgenError, UserInputError
from bot.service import Delivery, DeliveryError, JamService, Job, JobUpdate, Phase, Receipt

log = logging.getLogger("jamgen.discord")

EXTENSIONS = ("cogs.generate", "cogs.remix", "cogs.buttons", "cogs.library", "cogs.admin", "cogs.sessions")
NO_MENTIONS = discord.AllowedMentions.none()
COLOUR = discord.Colour.from_rgb(124, 92, 255)
# Discord lets an interaction token be used for 15 minutes; leave a margin for the upload itself.
TOKEN_LIFETIME = dt.timedelta(minutes=14, seconds=30)
JOB_FOOTER = re.compile(r"\bjob ([a-z0-9]{4,16})\b")
# An upload that has not been answered after this long is given up and retried (the retry first looks
# whether the message arrived anyway). aiohttp's own limit would be 5 minutes.
UPLOAD_TIMEOUT_S = 120.0
# Before posting a track again (a retry, a redelivery after a restart), this many channel messages since
# the job was made are searched for an earlier post of it.
HISTORY_SCAN_LIMIT = 500
# Attachments are read in chunks and cut off past the size limit, whatever size Discord declared.
DOWNLOAD_CHUNK = 64 * 1024
DOWNLOAD_TIMEOUT_S = 60.0


@dataclass
class LiveJob:
    """How to reach the member who asked for a job while jamgen runs (memory only).

    Args:
        interaction: the slash command/button/modal interaction that asked, if any.
        progress_message: a channel message showing progress (reply-to-remix jobs).
    """

    interaction: discord.Interaction | None = None
    progress_message: discord.Message | None = None
    # Set once the receipt is shown, so a fast job's result never gets overwritten by it.
    shown: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_shown(self) -> None:
        """Wait (briefly) until the receipt/progress message exists."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.shown.wait(), 10)


class JamBot(commands.Bot):
    """jamgen's Discord client.

    Args:
        settings: validated settings.
        service: the jam service (started in ``setup_hook``).
        options: extra ``discord.Client`` options (tests pass ``guild_ready_timeout``).
    """

    def __init__(self, settings: Settings, service: JamService, **options: Any) -> None:
        intents = discord.Intents.default()
        intents.message_content = settings.message_content_intent
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            allowed_mentions=NO_MENTIONS,
            **options,
        )
        self.settings = settings
        self.service = service
        self.live: dict[str, LiveJob] = {}
        self.result_view: Callable[[Job, int], discord.ui.View] = lambda job, takes: discord.ui.View()
        self.progress_view: Callable[[str], discord.ui.View] = lambda job_id: discord.ui.View()
        # Called with each delivery and the message's kwargs before it is posted (cogs.sessions adds a take's
        # place in its jam); a hook must not raise.
        self.delivery_hooks: list[Callable[[Delivery, dict[str, Any]], Awaitable[None]]] = []
        # Deletions of short-lived replies; discord.py's own ``delete_after`` outlives the bot's close.
        self._expiring: set[asyncio.Task[None]] = set()

    async def on_message(self, message: discord.Message, /) -> None:
        """jamgen has no prefix commands: messages only matter to the reply-to-remix listener."""

    @property
    def user_id(self) -> int | None:
        """The bot's own user id once logged in."""
        return self.user.id if self.user else None

    @staticmethod
    def job_id_of(message: discord.Message) -> str | None:
        """The job a jamgen result message belongs to (from its embed footer)."""
        for embed in message.embeds:
            match = JOB_FOOTER.search(embed.footer.text or "")
            if match:
                return match.group(1)
        return None

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        self.tree.on_error = self.on_app_command_error
        self.service.deliverer = DiscordDeliverer(self)
        await self.service.start()
        await self.sync_commands()

    async def sync_commands(self, *, force: bool = False) -> bool:
        """Sync slash commands when they changed since the last sync (or when forced).

        Returns:
            whether a sync was sent to Discord.
        """
        guild = discord.Object(self.settings.dev_guild_id) if self.settings.dev_guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        payload = [c.to_dict(self.tree) for c in self.tree.get_commands(guild=guild)]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        marker = self.settings.data_dir / f"commands-{self.settings.dev_guild_id or 'global'}.sha256"
        if not force and marker.exists() and marker.read_text() == digest:
            return False
        await self.tree.sync(guild=guild)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(digest)
        log.info("synced %d application commands", len(payload))
        return True

    async def reply_briefly(self, message: discord.Message, text: str, *, seconds: float = 60.0) -> None:
        """Reply in the channel and delete the reply after ``seconds`` (or when the bot closes)."""
        try:
            reply = await message.reply(text, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            log.info("could not reply to message %s: %s", message.id, exc.status)
            return

        async def expire() -> None:
            await asyncio.sleep(seconds)
            with contextlib.suppress(discord.HTTPException):
                await reply.delete()

        task = asyncio.create_task(expire(), name="jamgen-expire-reply")
        self._expiring.add(task)
        task.add_done_callback(self._expiring.discard)

    async def close(self) -> None:
        for task in list(self._expiring):
            task.cancel()
        await self.service.close()
        await super().close()

    async def on_app_command_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        """Turn any error into a friendly ephemeral message; details go to the log with an error id."""
        cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        await report_error(interaction, cause)


async def report_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Tell the member what went wrong, ephemerally.

    Args:
        interaction: the interaction to answer (deferred or not).
        error: what happened; JamgenErrors carry their own user-facing message.
    """
    if isinstance(error, JamgenError):
        text = f"⚠️ {error.message}"
        if not error.user_error:
            error_id = secrets.token_hex(3)
            log.error("error %s: %s", error_id, error.message, exc_info=error)
            text += f" (error id `{error_id}`)"
    elif isinstance(error, app_commands.CheckFailure):
        text = "⚠️ You don't have permission to do that."
    else:
        error_id = secrets.token_hex(3)
        log.error("error %s in an interaction", error_id, exc_info=error)
        text = f"⚠️ Something went wrong on jamgen's side. Please try again. (error id `{error_id}`)"
    await send_ephemeral(interaction, text)


async def send_ephemeral(interaction: discord.Interaction, text: str, **kwargs: Any) -> None:
    """Answer privately whatever state the interaction is in.

    jamgen defers privately ("thinking…" only the member sees), so an answer to a deferred
    interaction replaces that placeholder; otherwise it is a private followup.
    """
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS, **kwargs)
        elif interaction.response.type == discord.InteractionResponseType.deferred_channel_message:
            await interaction.edit_original_response(content=text, allowed_mentions=NO_MENTIONS, **kwargs)
        else:
            await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS, **kwargs)
    except discord.HTTPException as exc:
        log.warning("could not answer an interaction: %s", exc.text)


def interaction_alive(interaction: discord.Interaction) -> bool:
    """Whether the interaction's token can still be used (with a safety margin)."""
    return discord.utils.utcnow() - interaction.created_at < TOKEN_LIFETIME


# ---------------------------------------------------------------------- rendering
def progress_bar(fraction: float, width: int = 12) -> str:
    """``▰▰▰▱▱▱`` style bar."""
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "▰" * filled + "▱" * (width - filled)


def format_seconds(seconds: float | None) -> str:
    """``~45 s`` / ``~3 min``; ``unknown`` when None."""
    if seconds is None:
        return "unknown"
    if seconds < 90:
        return f"~{max(1, round(seconds))} s"
    return f"~{round(seconds / 60)} min"


def render_receipt(receipt: Receipt) -> str:
    """The first message after a submit."""
    lines = [
        f"⏳ Queued `{receipt.job_id}` · position {receipt.position} · ETA {format_seconds(receipt.eta_s)}",
        f"{receipt.model} · {receipt.duration:g} s · costs {receipt.cost:g} s of quota"
        + (f" · {receipt.remaining:g} s left today" if receipt.remaining is not None else ""),
    ]
    lines += [f"ℹ️ {w}" for w in receipt.warnings]
    return "\n".join(lines)


def render_update(update: JobUpdate) -> str:
    """The progress message for a job update."""
    if update.phase == Phase.QUEUED:
        return f"⏳ Queued `{update.job_id}` · position {update.position or '?'} · ETA {format_seconds(update.eta_s)}"
    if update.phase == Phase.RUNNING:
        return (
            f"🎛 Generating `{update.job_id}` {progress_bar(update.fraction)} {round(update.fraction * 100)}%"
            f" · ETA {format_seconds(update.eta_s)}"
        )
    if update.phase == Phase.RENDERING:
        return f"🎚 Mixing down `{update.job_id}`…"
    if update.phase == Phase.DONE:
        return f"✅ `{update.job_id}` is ready."
    if update.phase == Phase.CANCELLED:
        return f"🛑 `{update.job_id}` cancelled. {update.message}"
    return f"⚠️ `{update.job_id}` failed: {update.message}"


def clip(text: str, limit: int) -> str:
    """Shorten to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def result_embeds(delivery: Delivery, parent_url: str | None = None) -> list[discord.Embed]:
    """One embed per take: prompt, model, mode, duration, seed, tempo, time, job id, parent link, waveform."""
    job = delivery.job
    embeds = []
    for take in delivery.takes:
        title = clip(job.prompt, 200) if job.prompt else f"{job.mode} take"
        embed = discord.Embed(
            title=title if len(delivery.takes) == 1 else f"Take {take.index + 1}: {title}", colour=COLOUR
        )
        embed.add_field(name="Model", value=job.model)
        embed.add_field(name="Mode", value=job.mode)
        embed.add_field(name="Duration", value=f"{take.duration:.1f} s")
        embed.add_field(name="Seed", value=str(take.seed))
        embed.add_field(name="Tempo", value=f"{take.bpm:.0f} BPM" if take.bpm else "—")
        if take.key:
            embed.add_field(name="Key", value=take.key)
        embed.add_field(name="Made in", value=f"{delivery.generation_s:.1f} s")
        if job.parent_id:
            link = f"[`{job.parent_id}`]({parent_url})" if parent_url else f"`{job.parent_id}`"
            embed.add_field(name="From", value=link)
        if take.waveform_path is not None:
            embed.set_image(url=f"attachment://{take.waveform_path.name}")
        embed.set_footer(text=f"job {job.id} · take {take.index + 1}/{job.takes} · by jamgen")
        embeds.append(embed)
    return embeds


def result_files(delivery: Delivery) -> list[discord.File]:
    """MP3s and waveform pictures of a delivery."""
    files = []
    for take in delivery.takes:
        files.append(discord.File(take.path, filename=take.path.name))
        if take.waveform_path is not None and take.waveform_path.exists():
            files.append(discord.File(take.waveform_path, filename=take.waveform_path.name))
    return files


def message_url(guild_id: int | None, channel_id: int | None, message_id: int | None) -> str | None:
    """Jump link to a message."""
    if not channel_id or not message_id:
        return None
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


def owner_only(job: Job) -> discord.AllowedMentions:
    """Ping the member whose take it is, and nobody else (prompts may contain mentions)."""
    return discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(job.user_id)])


class DiscordDeliverer:
    """Posts finished takes as regular channel messages, so members can reply to them.

    A reply to an interaction's followup reaches a bot without the Message Content intent with
    empty content and no attachments (Discord's docs, "you might not need a privileged intent"), so
    takes go into the channel and the member's private progress message becomes a link to the take.
    A followup is used only where a channel post is impossible (the bot may not post or see there).

    Args:
        bot: the running bot.
    """

    def __init__(self, bot: JamBot) -> None:
        self.bot = bot
        self.upload_timeout_s = UPLOAD_TIMEOUT_S

    async def deliver(self, delivery: Delivery) -> list[int]:
        try:
            return await self._deliver(delivery)
        except discord.Forbidden as exc:
            raise DeliveryError(
                "jamgen may not post here (it needs Send Messages, Attach Files and Embed Links).", retriable=False
            ) from exc
        except discord.NotFound as exc:
            raise DeliveryError("the channel or message to reply to is gone.", retriable=False) from exc
        except discord.HTTPException as exc:
            raise DeliveryError(
                f"Discord refused the upload ({exc.status}).", retriable=exc.status >= 500 or exc.status == 429
            ) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise DeliveryError("Discord could not be reached.", retriable=True) from exc

    async def _deliver(self, delivery: Delivery) -> list[int]:
        job = delivery.job
        live = self.bot.live.get(job.id)
        if live is not None:
            await live.wait_shown()
        posted = await self._find_posted(job) if delivery.retry else None
        if posted is not None:
            log.info("job %s: an earlier try already posted it (message %s); not posting again", job.id, posted.id)
        else:
            posted = await self._post_take(delivery, live)
        await self._resolve_progress(job, live, posted)
        self.bot.live.pop(job.id, None)
        return [posted.id]

    async def _post_take(self, delivery: Delivery, live: LiveJob | None) -> discord.Message:
        job = delivery.job
        parent_url = await self._parent_url(job)
        content = f"<@{job.user_id}> here's your take." if job.takes == 1 else f"<@{job.user_id}> here are your takes."
        kwargs: dict[str, Any] = {
            "content": content,
            "embeds": result_embeds(delivery, parent_url),
            "view": self.bot.result_view(job, len(delivery.takes)),
        }
        for hook in self.bot.delivery_hooks:
            await hook(delivery, kwargs)
        try:
            return await asyncio.wait_for(
                self._post_in_channel(job, files=result_files(delivery), **kwargs), self.upload_timeout_s
            )
        except (discord.Forbidden, discord.NotFound) as exc:
            if live is None or live.interaction is None or not interaction_alive(live.interaction):
                raise
            # The channel is closed to the bot but the member's interaction still answers: a followup
            # (replies to it cannot carry words without the intent, but the member gets the take).
            log.info("job %s: cannot post in the channel (%s); delivering as a followup", job.id, exc.status)
        return await asyncio.wait_for(
            live.interaction.followup.send(
                files=result_files(delivery), allowed_mentions=owner_only(job), wait=True, **kwargs
            ),
            self.upload_timeout_s,
        )

    async def _resolve_progress(self, job: Job, live: LiveJob | None, posted: discord.Message) -> None:
        """The member's progress message, private or public, now points to (or gives way to) the take."""
        if live is not None and live.interaction is not None and interaction_alive(live.interaction):
            with contextlib.suppress(discord.HTTPException):
                await live.interaction.edit_original_response(
                    # Followup messages come back without their guild, so their own jump_url says "@me".
                    content=f"✅ `{job.id}` is ready: {message_url(job.guild_id, posted.channel.id, posted.id)}",
                    view=None,
                )
        elif live is not None and live.progress_message is not None:
            with contextlib.suppress(discord.HTTPException):
                await live.progress_message.delete()
        elif live is None:
            await self._delete_stored_progress(job)

    async def _delete_stored_progress(self, job: Job) -> None:
        """After a restart, the public progress reply of a reply-to-remix job would stay "Queued" forever."""
        if job.progress_message_id is None or job.interaction_id is not None or job.channel_id is None:
            return  # an interaction's private progress can only be edited with its token, gone with the process
        channel = self.bot.get_partial_messageable(job.channel_id)
        try:
            await channel.get_partial_message(job.progress_message_id).delete()
        except discord.HTTPException as exc:
            log.info("job %s: could not remove its progress message: %s", job.id, exc.status)

    async def notify_failure(self, job: Job, message: str) -> None:
        live = self.bot.live.pop(job.id, None)
        if live and live.interaction and interaction_alive(live.interaction):
            with contextlib.suppress(discord.HTTPException):
                await live.interaction.followup.send(f"⚠️ `{job.id}`: {message}", ephemeral=True)
                return
        if live is None:
            await self._delete_stored_progress(job)
        await self._post_in_channel(job, content=f"<@{job.user_id}> ⚠️ `{job.id}`: {message}")

    async def _post_in_channel(self, job: Job, **kwargs: Any) -> discord.Message:
        if job.channel_id is None:
            raise RuntimeError(f"job {job.id} has no channel to deliver to")
        channel = self.bot.get_channel(job.channel_id) or await self.bot.fetch_channel(job.channel_id)
        assert isinstance(channel, discord.abc.Messageable)
        # Reply to the member's own message (reply-to-remix); an interaction's private progress can't be replied to.
        reference = job.reply_to_message_id
        return await channel.send(
            reference=discord.MessageReference(
                message_id=reference, channel_id=job.channel_id, fail_if_not_exists=False
            )
            if reference
            else None,
            allowed_mentions=owner_only(job),
            **kwargs,
        )

    async def _find_posted(self, job: Job) -> discord.Message | None:
        """The message an earlier try posted for ``job`` (jamgen's, with files, its footer naming the job)."""
        if job.channel_id is None or self.bot.user is None:
            return None
        channel = self.bot.get_channel(job.channel_id) or await self.bot.fetch_channel(job.channel_id)
        assert isinstance(channel, discord.abc.Messageable)
        since = discord.Object(discord.utils.time_snowflake(job.created_at - dt.timedelta(minutes=1)))
        try:
            async for message in channel.history(limit=HISTORY_SCAN_LIMIT, after=since):
                mine = message.author.id == self.bot.user.id and message.attachments
                if mine and self.bot.job_id_of(message) == job.id:
                    return message
        except discord.Forbidden:
            log.warning("job %s: cannot read the channel's history to look for an earlier post", job.id)
        return None

    async def _parent_url(self, job: Job) -> str | None:
        if not job.parent_id:
            return None
        parent = await self.bot.service.store.get_job(job.parent_id)
        if parent is None or not parent.delivered_message_ids:
            return None
        return message_url(parent.guild_id, parent.channel_id, parent.delivered_message_ids[0])


def track_progress(bot: JamBot, job_id: str, live: LiveJob) -> None:
    """Keep the member's progress message up to date as the job moves (throttled by the service)."""
    bot.live[job_id] = live

    async def on_update(update: JobUpdate) -> None:
        await live.wait_shown()
        if update.phase == Phase.DONE:
            return
        view = bot.progress_view(job_id) if update.phase in (Phase.QUEUED, Phase.RUNNING) else None
        shown = False
        try:
            if live.interaction is not None and interaction_alive(live.interaction):
                await live.interaction.edit_original_response(content=render_update(update), view=view)
                shown = True
            elif live.progress_message is not None:
                await live.progress_message.edit(content=render_update(update), view=view)
                shown = True
        except discord.HTTPException as exc:
            log.debug("progress edit for %s failed: %s", job_id, exc.status)
        if update.phase in (Phase.FAILED, Phase.CANCELLED):
            bot.live.pop(job_id, None)
            if not shown and update.phase == Phase.FAILED:
                # The private message can no longer be edited: say it in the channel rather than not at all.
                job = await bot.service.job(job_id)
                await DiscordDeliverer(bot).notify_failure(job, update.message)

    bot.service.subscribe(job_id, on_update)


def build_bot(settings: Settings, service: JamService, **options: Any) -> JamBot:
    """The production factory; tests build the bot the same way (plus test-only client options).

    Args:
        settings: validated settings.
        service: the jam service (not yet started).
        options: extra discord.Client options.
    """
    return JamBot(settings, service, **options)


async def run_bot(settings: Settings) -> None:
    """Run the bot until it is stopped; SIGTERM/SIGINT close it gracefully (the running batch may finish)."""
    from bot.service.runtime import running_service

    token = settings.require_token()
    async with running_service(settings) as service:
        bot = build_bot(settings, service)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lambda: asyncio.ensure_future(bot.close()))
        async with bot:
            await bot.start(token)


async def _model_choices(
    interaction: discord.Interaction, current: str, mode: Mode | None
) -> list[app_commands.Choice[str]]:
    bot: JamBot = interaction.client  # type: ignore[assignment]
    names = await bot.service.models_for_guild(interaction.guild_id, mode=mode)
    return [app_commands.Choice(name=n, value=n) for n in names if current.lower() in n.lower()][:25]


async def model_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    """The server's enabled models matching what the member typed (a slash command's autocomplete)."""
    return await _model_choices(interaction, current, None)


async def melody_model_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    """Only the enabled models that can follow a melody."""
    return await _model_choices(interaction, current, Mode.MELODY)


def member_context(interaction: discord.Interaction) -> dict[str, Any]:
    """Who is asking, for a JamRequest: ids, roles, admin flag, upload limit, where to deliver."""
    user = interaction.user
    roles = tuple(r.id for r in getattr(user, "roles", ()) if r.id != interaction.guild_id)
    perms = getattr(user, "guild_permissions", None)
    return {
        "user_id": user.id,
        "guild_id": interaction.guild_id,
        "channel_id": interaction.channel_id,
        "role_ids": roles,
        "is_admin": bool(perms and perms.manage_guild),
        "upload_limit_bytes": interaction.filesize_limit,
        "interaction_id": interaction.id,
    }


POSTING_PERMISSIONS = {
    "view_channel": "View Channel",
    "send_messages": "Send Messages",
    "attach_files": "Attach Files",
    "embed_links": "Embed Links",
}


def missing_posting_permissions(
    permissions: discord.Permissions, *, in_thread: bool, replying: bool = False
) -> list[str]:
    """What jamgen lacks to post a track in a channel (as a reply, which also needs Read Message History)."""
    needed = dict(POSTING_PERMISSIONS)
    if in_thread:
        needed["send_messages_in_threads"] = "Send Messages in Threads"
        needed.pop("send_messages")
    if replying:
        needed["read_message_history"] = "Read Message History"
    return [label for name, label in needed.items() if not getattr(permissions, name)]


def check_can_post(interaction: discord.Interaction) -> None:
    """Refuse up front, privately, when jamgen could not post the track in this channel."""
    if interaction.guild_id is None:
        return
    in_thread = isinstance(interaction.channel, discord.Thread)
    missing = missing_posting_permissions(interaction.app_permissions, in_thread=in_thread)
    if missing:
        raise UserInputError(
            f"jamgen can't post tracks in this channel: it needs {', '.join(missing)} here. "
            "Ask a server admin to allow it, or try another channel."
        )


async def read_attachment(bot: JamBot, attachment: discord.Attachment) -> bytes:
    """Download an attachment after checking its declared size (the service checks the real size again).

    The download stops as soon as it passes the size limit, whatever size Discord declared, so a
    file that lies about its size cannot fill the bot's memory.
    """
    bot.service.check_attachment_size(attachment.size)
    limit = bot.service.config.audio_limits.max_bytes
    data = bytearray()
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT_S)) as session,
            session.get(attachment.url) as response,
        ):
            if response.status != 200:
                raise UserInputError(f"Discord would not hand over the file (HTTP {response.status}); attach it again.")
            async for chunk in response.content.iter_chunked(DOWNLOAD_CHUNK):
                data += chunk
                if len(data) > limit:
                    bot.service.check_attachment_size(len(data))
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise UserInputError("jamgen could not download the file from Discord; attach it again.") from exc
    return bytes(data)


async def submit_and_track(bot: JamBot, interaction: discord.Interaction, request: Any) -> Receipt | None:
    """Submit a deferred interaction's request, show the receipt and follow the job's progress.

    Args:
        bot: the bot.
        interaction: already deferred privately (thinking): progress is private, the result public.
        request: the JamRequest.

    Returns:
        the receipt, or None when the request was refused (the member was told why, privately).
    """
    try:
        check_can_post(interaction)
        receipt = await bot.service.submit(request)
    except JamgenError as exc:
        await report_error(interaction, exc)
        return None
    live = LiveJob(interaction=interaction)
    track_progress(bot, receipt.job_id, live)
    try:
        message = await interaction.edit_original_response(
            content=render_receipt(receipt), view=bot.progress_view(receipt.job_id), allowed_mentions=NO_MENTIONS
        )
        await bot.service.remember_progress_message(receipt.job_id, message.id)
    except discord.HTTPException as exc:
        log.warning("could not show the receipt of %s: %s", receipt.job_id, exc.status)
    finally:
        live.shown.set()
    return receipt
