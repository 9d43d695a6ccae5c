"""Answering interactions: errors, private answers, who is asking, permission checks, attachments, submits."""

from __future__ import annotations

import contextlib
import logging
import secrets
from typing import TYPE_CHECKING, Any, cast

import aiohttp
import discord
from discord import app_commands

from bot.discord.delivery import LiveJob
from bot.discord.render import NO_MENTIONS, already_split_text, clip, error_text, render_receipt
from bot.engine.types import Mode, SamplingParams
from bot.errors import JamgenError, UserInputError
from bot.service import AudioInput, JamRequest, Receipt

if TYPE_CHECKING:
    from bot.discord.bot import JamBot

log = logging.getLogger("jamgen.discord")

# Attachments are read in chunks and cut off past the size limit, whatever size Discord declared.
DOWNLOAD_CHUNK = 64 * 1024
DOWNLOAD_TIMEOUT_S = 60.0
ADMIN_PERMS = discord.Permissions(manage_guild=True)
DM_NOTE = "⏳ This will take longer than Discord lets me answer here; I'll DM you the take."
POSTING_PERMISSIONS = {
    "view_channel": "View Channel",
    "send_messages": "Send Messages",
    "attach_files": "Attach Files",
    "embed_links": "Embed Links",
}


def bot_of(interaction: discord.Interaction) -> JamBot:
    """The bot an interaction reached, typed (every interaction jamgen sees reaches its ``JamBot``)."""
    return cast("JamBot", interaction.client)


# ---------------------------------------------------------------------- answers
async def report_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Tell the member what went wrong, ephemerally.

    Args:
        interaction: the interaction to answer (deferred or not).
        error: what happened; JamgenErrors carry their own user-facing message.
    """
    if isinstance(error, JamgenError):
        text = error_text(error)
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


async def settings_text(bot: JamBot, guild_id: int | None) -> str:
    """A server's jamgen settings, for ``/jam settings``."""
    assert guild_id is not None
    g = await bot.service.guild_settings(guild_id)
    defaults = bot.settings
    channels = ", ".join(f"<#{c}>" for c in g.allowed_channel_ids) or "all channels"
    models = ", ".join(g.enabled_models) or "all models"
    tiers = ", ".join(f"<@&{r}>: {s} s" for r, s in g.role_tiers.items()) or "none"
    budget = g.default_budget if g.default_budget is not None else defaults.daily_budget_seconds
    return clip(
        f"**Default model:** {g.default_model or defaults.default_model}\n"
        f"**Models:** {models}\n**Channels:** {channels}\n"
        f"**Max duration:** {g.max_duration or defaults.max_duration} s · "
        f"**max takes:** {g.max_takes or defaults.max_takes}\n"
        f"**Remix by reply:** {'on' if g.remix_by_reply else 'off'} (default mode {g.remix_mode})\n"
        f"**Daily budget:** {budget:g} s"
        f" · **role tiers:** {tiers}",
        1900,
    )


# ---------------------------------------------------------------------- who asks, and may jamgen answer
def is_personal(interaction: discord.Interaction) -> bool:
    """Whether jamgen is not installed where the member asks: a DM, or a server reached through a user install.

    Discord's ``authorizing_integration_owners`` names the server under key "0" only when jamgen is installed
    there (``is_guild_integration``); then it behaves as a server bot, else the request is the member's own.
    """
    return interaction.guild_id is None or not interaction.is_guild_integration()


def member_context(interaction: discord.Interaction) -> dict[str, Any]:
    """Who is asking, for a JamRequest: ids, roles, admin flag, upload limit, where to deliver.

    A personal request (:func:`is_personal`) has no server: the member's own quota (the DM ledger), the
    global defaults, no role tiers or server admin rights.
    """
    user = interaction.user
    personal = is_personal(interaction)
    roles = () if personal else tuple(r.id for r in getattr(user, "roles", ()) if r.id != interaction.guild_id)
    perms = None if personal else getattr(user, "guild_permissions", None)
    return {
        "user_id": user.id,
        "guild_id": None if personal else interaction.guild_id,
        "channel_id": interaction.channel_id,
        "role_ids": roles,
        "is_admin": bool(perms and perms.manage_guild),
        "upload_limit_bytes": interaction.filesize_limit,
        "interaction_id": interaction.id,
        "personal": personal,
    }


def server_of(interaction: discord.Interaction) -> int | None:
    """The server whose settings apply to an interaction (None for a personal one)."""
    return None if is_personal(interaction) else interaction.guild_id


def is_guild_admin(interaction: discord.Interaction) -> bool:
    """Server-side check: Manage Server in this guild."""
    perms = getattr(interaction.user, "guild_permissions", None)
    if interaction.guild is None or perms is None or not perms.manage_guild:
        raise app_commands.CheckFailure("admins only")
    return True


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
    if is_personal(interaction):
        return  # delivered through the interaction (or by DM), never posted in the channel
    in_thread = isinstance(interaction.channel, discord.Thread)
    missing = missing_posting_permissions(interaction.app_permissions, in_thread=in_thread)
    if missing:
        raise UserInputError(
            f"jamgen can't post tracks in this channel: it needs {', '.join(missing)} here. "
            "Ask a server admin to allow it, or try another channel."
        )


# ---------------------------------------------------------------------- autocomplete
async def _model_choices(
    interaction: discord.Interaction, current: str, mode: Mode | None
) -> list[app_commands.Choice[str]]:
    names = await bot_of(interaction).service.models_for_guild(server_of(interaction), mode=mode)
    return [app_commands.Choice(name=n, value=n) for n in names if current.lower() in n.lower()][:25]


async def model_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    """The server's enabled models matching what the member typed (a slash command's autocomplete)."""
    return await _model_choices(interaction, current, None)


async def melody_model_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    """Only the enabled models that can follow a melody."""
    return await _model_choices(interaction, current, Mode.MELODY)


# ---------------------------------------------------------------------- requests
def sampling_from(
    top_k: int | None = None,
    top_p: float | None = None,
    temperature: float | None = None,
    cfg: float | None = None,
    **style: Any,
) -> SamplingParams:
    """Sampling parameters with the member's overrides on top of the defaults."""
    defaults = SamplingParams()
    return SamplingParams(
        top_k=defaults.top_k if top_k is None else top_k,
        top_p=defaults.top_p if top_p is None else top_p,
        temperature=defaults.temperature if temperature is None else temperature,
        cfg_coef=defaults.cfg_coef if cfg is None else cfg,
        **{k: v for k, v in style.items() if v is not None},
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


async def submit_command(
    bot: JamBot,
    interaction: discord.Interaction,
    attachment: discord.Attachment | None = None,
    source: dict[str, Any] | None = None,
    **fields: Any,
) -> None:
    """A slash command's request: defer privately, download the attachment (if any), and submit.

    Args:
        source: where in the attachment to start/end (``AudioInput`` fields).
        **fields: the ``JamRequest`` fields the command sets (mode, prompt, model …).
    """
    await interaction.response.defer(ephemeral=True, thinking=True)
    if attachment is not None:
        data = await read_attachment(bot, attachment)
        fields["audio"] = AudioInput(data=data, filename=attachment.filename, **(source or {}))
    if fields.get("model") is None and fields["mode"] != Mode.TEXT:
        fields["model"] = await bot.service.default_model_for(server_of(interaction), fields["mode"])
    await submit_and_track(bot, interaction, JamRequest(**member_context(interaction), **fields))


async def submit_request(bot: JamBot, request: JamRequest, stem: str | None = None) -> tuple[Receipt | None, str]:
    """Submit a request, or a remix of one ``stem`` of the take it names (split first when needed).

    Returns:
        the receipt to follow (None when the remix waits for stems someone else is having made), and a
        note for the member when the remix waits for its stems.
    """
    if stem is None:
        return await bot.service.submit(request), ""
    answer = await bot.service.submit_stem_remix(request, stem)
    if not answer.waits_for_stems:
        return answer.receipt, ""
    source = request.audio.from_job if request.audio else None
    return answer.receipt, (
        f"🎚 `{source}` is split into stems first (`{answer.stems_job_id}`); your {stem} remix starts as soon as "
        "they are posted, and is charged then."
    )


async def submit_and_track(
    bot: JamBot, interaction: discord.Interaction, request: JamRequest, *, stem: str | None = None
) -> Receipt | None:
    """Submit a deferred interaction's request, show the receipt and follow the job's progress.

    Args:
        interaction: already deferred privately (thinking): progress is private, the result public.
        stem: remix this stem of the take the request names (see :func:`submit_request`).

    Returns:
        the receipt, or None when the request was refused (the member was told why, privately).
    """
    try:
        check_can_post(interaction)
        receipt, note = await submit_request(bot, request, stem)
    except JamgenError as exc:
        await report_error(interaction, exc)
        return None
    if receipt is None:
        await send_ephemeral(interaction, note)
        return None
    live = LiveJob(interaction=interaction, personal=request.personal)
    if request.personal and bot.deliverer.outlives_token(receipt.eta_s):
        # The interaction's token would be dead before the take is: say so now, and send it by DM.
        live.by_dm = True
        note = "\n".join(filter(None, (note, DM_NOTE)))
    bot.deliverer.track(receipt.job_id, live)
    try:
        message = await interaction.edit_original_response(
            content="\n".join(filter(None, (render_receipt(receipt), note))),
            view=bot.deliverer.progress_view(receipt.job_id),
            allowed_mentions=NO_MENTIONS,
        )
        await bot.service.remember_progress_message(receipt.job_id, message.id)
    except discord.HTTPException as exc:
        log.warning("could not show the receipt of %s: %s", receipt.job_id, exc.status)
    finally:
        live.shown.set()
    return receipt


async def ask_for_stems(bot: JamBot, interaction: discord.Interaction, request: JamRequest) -> None:
    """Split what ``request`` names into stems, or say where the take's stems already are (free, at once).

    Args:
        interaction: already deferred privately (thinking), like every request that downloads or submits.
        request: a stems request (a take of a job, or an attachment).
    """
    source = request.audio
    if source is not None and source.from_job is not None:
        try:
            existing = await bot.service.find_stems(source.from_job, source.take)
        except Exception as exc:
            await report_error(interaction, exc)
            return
        if existing is not None:
            await send_ephemeral(interaction, already_split_text(existing, source.from_job))
            return
    await submit_and_track(bot, interaction, request)
