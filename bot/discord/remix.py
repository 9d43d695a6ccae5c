"""Remixing: the remix modal, the ``melody:``/``style:``/``continue:`` words, and reply-to-remix."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import discord

from bot.discord.delivery import LiveJob
from bot.discord.interactions import (
    ask_for_stems,
    member_context,
    missing_posting_permissions,
    read_attachment,
    report_error,
    server_of,
    submit_and_track,
    submit_request,
)
from bot.discord.render import NO_MENTIONS, error_text, render_receipt
from bot.engine.types import STEM_NAMES, Mode
from bot.errors import JamgenError, UserInputError
from bot.service import AudioInput, JamRequest

if TYPE_CHECKING:
    from bot.discord.bot import JamBot

log = logging.getLogger("jamgen.discord.remix")

MODE_WORDS = {"melody": Mode.MELODY, "style": Mode.STYLE, "continue": Mode.CONTINUATION, "extend": Mode.CONTINUATION}
PREFIX = re.compile(r"^\s*(melody|style|continue|extend)\s*:\s*", re.IGNORECASE)
# A stem word first ("bass: continue, add a funky clavinet"); after it the mode word may end with a comma.
STEM_PREFIX = re.compile(rf"^\s*({'|'.join(STEM_NAMES)})\s*:\s*", re.IGNORECASE)
AFTER_STEM = re.compile(r"^\s*(melody|style|continue|extend)\s*[:,]\s*", re.IGNORECASE)
AUDIO_TYPES = ("audio/", "video/")
AUDIO_EXTENSIONS = (".mp3", ".wav", ".flac", ".ogg", ".opus", ".m4a", ".aac", ".aiff", ".mp4", ".mov", ".webm", ".mkv")


def audio_attachments(message: discord.Message) -> list[discord.Attachment]:
    """Attachments that look like audio (Discord's content type, else the extension)."""
    found = []
    for attachment in message.attachments:
        kind = attachment.content_type or ""
        if kind.startswith(AUDIO_TYPES) or attachment.filename.lower().endswith(AUDIO_EXTENSIONS):
            found.append(attachment)
    return found


def parse_stem(text: str) -> tuple[str | None, str]:
    """Split a ``drums:``/``bass:``/``other:``/``vocals:`` prefix off a remix prompt."""
    match = STEM_PREFIX.match(text)
    if not match:
        return None, text
    return match.group(1).lower(), text[match.end() :]


def parse_mode(text: str, default: Mode, *, after_stem: bool = False) -> tuple[Mode, str]:
    """Split a ``melody:``/``style:``/``continue:`` prefix off a remix prompt (``continue,`` after a stem)."""
    match = (AFTER_STEM if after_stem else PREFIX).match(text)
    if not match:
        return default, text.strip()
    return MODE_WORDS[match.group(1).lower()], text[match.end() :].strip()


def parse_duration(text: str) -> int | None:
    """The modal's duration field (empty = default)."""
    text = text.strip().removesuffix("s").strip()
    if not text:
        return None
    try:
        return int(float(text))
    except ValueError:
        raise UserInputError(f"Duration must be a number of seconds; you wrote '{text[:20]}'.") from None


class AudioUpload(discord.ui.FileUpload[Any]):
    """A modal's file upload that offers audio files only (Discord filters by extension)."""

    def to_component_dict(self) -> Any:
        # discord.py 2.7 has no file_types yet; Discord's reference does (components/reference.mdx, File Upload).
        return {**super().to_component_dict(), "file_types": ["audio", *UPLOAD_VIDEO_TYPES]}


# The form's modes: (radio value, label, description). "stems" splits the input instead of remixing it.
FORM_MODES = (
    ("melody", "Melody", "Follow its tune"),
    ("style", "Style", "Make something in its style"),
    ("continue", "Continue", "Carry on from its end"),
    ("stems", "Stems", "Split it into drums, bass, other and vocals"),
)
# Videos whose sound jamgen takes (the "audio" filter alone would hide them).
UPLOAD_VIDEO_TYPES = (".mp4", ".mov", ".webm", ".mkv")


class RemixModal(discord.ui.Modal, title="Remix with jamgen"):
    """The remix form: prompt, mode, duration, and an upload (optional when a take or a message's file is the input).

    Args:
        from_job: remix take ``take`` of this job …
        take: … (0-based)
        attachment: … or this attachment (a message's, from the context menu).
        parent_id: lineage parent.
        default_mode: the mode chosen when the form opens.
    """

    def __init__(
        self,
        bot: JamBot,
        *,
        from_job: str | None = None,
        take: int = 0,
        attachment: discord.Attachment | None = None,
        parent_id: str | None = None,
        default_mode: str = "melody",
    ) -> None:
        super().__init__()
        self.bot = bot
        self.from_job = from_job
        self.take = take
        self.attachment = attachment
        self.parent_id = parent_id
        self.prompt: discord.ui.TextInput[RemixModal] = discord.ui.TextInput(
            style=discord.TextStyle.paragraph,
            placeholder="e.g. jazzy piano trio, brushed drums (start with bass: to remix one stem)",
            max_length=2000,
            required=False,
        )
        self.mode: discord.ui.RadioGroup[RemixModal] = discord.ui.RadioGroup(
            options=[
                discord.RadioGroupOption(label=label, value=value, description=about, default=value == default_mode)
                for value, label, about in FORM_MODES
            ]
        )
        self.duration: discord.ui.TextInput[RemixModal] = discord.ui.TextInput(
            placeholder="default", required=False, max_length=5
        )
        has_input = from_job is not None or attachment is not None
        self.upload = AudioUpload(required=not has_input, min_values=0 if has_input else 1, max_values=1)
        what = "the take" if from_job else "the message's file" if attachment else ""
        for text, component, about in (
            ("Prompt", self.prompt, None),
            ("Mode", self.mode, None),
            ("Duration in seconds", self.duration, None),
            ("Your own clip", self.upload, f"Optional: leave it empty to use {what}." if what else "An audio file."),
        ):
            self.add_item(discord.ui.Label(text=text, component=component, description=about))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        uploaded = self.upload.values[0] if self.upload.values else None
        source = uploaded or self.attachment
        data = await read_attachment(self.bot, source) if source else None
        audio = AudioInput(
            data=data,
            from_job=None if data else self.from_job,
            take=self.take,
            filename=source.filename if source else "",
        )
        context = member_context(interaction)
        if self.mode.value == "stems":
            await ask_for_stems(self.bot, interaction, JamRequest(**context, mode=Mode.STEMS, audio=audio))
            return
        mode = MODE_WORDS[self.mode.value or "melody"]
        # "bass: …" in the prompt remixes that stem of the take (not of an uploaded file: split that first).
        stem, prompt = parse_stem(self.prompt.value) if self.from_job and not data else (None, self.prompt.value)
        request = JamRequest(
            **context,
            mode=mode,
            prompt=prompt.strip(),
            duration=parse_duration(self.duration.value),
            model=await self.bot.service.default_model_for(server_of(interaction), mode),
            audio=audio,
            parent_id=self.parent_id or self.from_job,
        )
        await submit_and_track(self.bot, interaction, request, stem=stem)

    async def on_error(
        self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item[Any] | None = None, /
    ) -> None:
        # discord.py calls a modal's on_error with (interaction, error); the optional item keeps the signature
        # compatible with BaseView.on_error, which type checkers compare it with.
        await report_error(interaction, error)


async def open_remix_form(
    bot: JamBot, interaction: discord.Interaction, job_id: str | None, take: int = 0, *, default_mode: str = "melody"
) -> None:
    """Open the remix form for take ``take`` of ``job_id`` (checked first), or for an upload when None."""
    if job_id is not None:
        try:
            job_id = (await bot.service.job(job_id.strip().lower())).id
        except Exception as exc:
            await report_error(interaction, exc)
            return
    await interaction.response.send_modal(RemixModal(bot, from_job=job_id, take=take, default_mode=default_mode))


# ---------------------------------------------------------------------- reply-to-remix
async def remix_reply(
    bot: JamBot, message: discord.Message, *, own_job: str | None, heard: list[discord.Attachment], default_mode: Mode
) -> None:
    """Submit the remix a reply asks for and answer it with a public progress reply.

    Args:
        message: the member's reply (in a server channel).
        own_job: the jamgen take it replies to, if it does.
        heard: the audio attachments of the message it replies to.
        default_mode: the server's mode for a reply without a mode word.
    """
    assert message.guild is not None
    text = message.content
    if bot.user is not None:
        text = text.replace(bot.user.mention, "").replace(f"<@!{bot.user.id}>", "")
    stem, text = parse_stem(text)
    mode, prompt = parse_mode(text, default_mode, after_stem=stem is not None)
    # The reply's own audio, when it has some, is the input; the replied-to take stays the parent.
    own_audio = audio_attachments(message) if own_job and stem is None else []
    source = own_audio[0] if own_audio else None if own_job else heard[0]
    author = message.author
    try:
        if stem is not None and own_job is None:
            raise UserInputError(
                f"Only a take of jamgen's can be remixed by its {stem}; split this file with "
                "*Apps ▸ Split into stems* first, then reply to the stems."
            )
        data = await read_attachment(bot, source) if source else None
        request = JamRequest(
            user_id=author.id,
            guild_id=message.guild.id,
            channel_id=message.channel.id,
            mode=mode,
            prompt=prompt,
            model=await bot.service.default_model_for(message.guild.id, mode),
            audio=AudioInput(
                data=data, from_job=None if source else own_job, filename=source.filename if source else ""
            ),
            parent_id=own_job,
            role_ids=tuple(r.id for r in getattr(author, "roles", ())),
            is_admin=isinstance(author, discord.Member) and author.guild_permissions.manage_guild,
            reply_to_message_id=message.id,
        )
        receipt, note = await submit_request(bot, request, stem)
    except JamgenError as exc:
        await bot.reply_briefly(message, error_text(exc))
        return
    if receipt is None:
        await bot.reply_briefly(message, note)
        return
    live = LiveJob()
    bot.deliverer.track(receipt.job_id, live)
    try:
        live.progress_message = await message.reply(
            "\n".join(filter(None, (render_receipt(receipt), note))),
            view=bot.deliverer.progress_view(receipt.job_id),
            allowed_mentions=NO_MENTIONS,
        )
        await bot.service.remember_progress_message(receipt.job_id, live.progress_message.id)
    except discord.HTTPException as exc:
        # The take is still made and posted (or refunded if that fails too); only the receipt is missing.
        log.info("job %s: could not show its progress reply: %s", receipt.job_id, exc.status)
    finally:
        live.shown.set()


async def explain_hidden_files(bot: JamBot, message: discord.Message) -> None:
    """Without the Message Content intent, Discord hands over another member's message with its
    files removed (it does not mention jamgen): say what works instead of ignoring the mention."""
    if not await can_answer(message):
        return
    await bot.reply_briefly(
        message,
        "ℹ️ jamgen can't see the files of a message that doesn't mention it. To remix that audio, "
        "use *Apps ▸ Remix with jamgen* on the message (right-click or long-press), or attach the file "
        "to a `/melody`, `/style` or `/continue`.",
    )


async def can_answer(message: discord.Message) -> bool:
    """Whether jamgen may reply with a track here; if not, tell the member by DM (nothing is charged).

    A message event has no private answer like an interaction's: a direct message is the only
    private way, and members may have closed their DMs, so that is tried once and let go.
    """
    channel = message.channel
    me = message.guild.me if message.guild else None
    if me is None or not isinstance(channel, discord.abc.GuildChannel | discord.Thread):
        return True
    missing = missing_posting_permissions(
        channel.permissions_for(me), in_thread=isinstance(channel, discord.Thread), replying=True
    )
    if not missing:
        return True
    log.info("reply-to-remix in channel %s skipped: jamgen lacks %s there", channel.id, ", ".join(missing))
    text = (
        f"jamgen can't answer your reply in {channel.mention}: it needs {', '.join(missing)} there. "
        "Nothing was charged. Ask a server admin to allow it, or remix from a channel where jamgen can post."
    )
    try:
        await message.author.send(text, allowed_mentions=NO_MENTIONS)
    except discord.HTTPException as exc:
        log.info("could not tell member %s by DM either: %s", message.author.id, exc.status)
    return False
