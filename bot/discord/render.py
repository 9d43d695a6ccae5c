"""How jamgen looks on Discord: receipts, progress, result cards, recipes and the cards of a jam.

Pure functions of the service's records: nothing here talks to Discord or the service.
"""

from __future__ import annotations

import json
import re
from typing import Any

import discord

from bot.errors import ChannelNotAllowedError, JamgenError
from bot.service import Delivery, Job, JobState, JobUpdate, Phase, Receipt, RenderedTake
from bot.service.sessions import BounceResult, LoopResult, Session, SessionSummary, describe_session

NO_MENTIONS = discord.AllowedMentions.none()
COLOUR = discord.Colour.from_rgb(124, 92, 255)
JOB_FOOTER = re.compile(r"\bjob ([a-z0-9]{4,16})\b")
# A take card's small last line (bot/discord/cards.py); only that line, so a prompt saying "job x" is not read.
CARD_JOB_LINE = re.compile(r"^-# job ([a-z0-9]{4,16})\b", re.MULTILINE)
STEM_EMOJI = {"drums": "🥁", "bass": "🎸", "other": "🎹", "vocals": "🎤"}


def clip(text: str, limit: int) -> str:
    """Shorten to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_text(error: JamgenError) -> str:
    """An error's sentence for Discord, with the channels named where the error points at some."""
    if isinstance(error, ChannelNotAllowedError) and error.allowed_channel_ids:
        where = ", ".join(f"<#{c}>" for c in error.allowed_channel_ids[:5])
        return f"⚠️ {error.message} {error.hint} {where}."
    return f"⚠️ {error.message}"


def progress_bar(fraction: float, width: int = 12) -> str:
    """``▰▰▰▱▱▱`` style bar."""
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "▰" * filled + "▱" * (width - filled)


def format_eta(seconds: float | None) -> str:
    """An estimate: ``~45 s`` / ``~3 min``; ``unknown`` when None."""
    if seconds is None:
        return "unknown"
    if seconds < 90:
        return f"~{max(1, round(seconds))} s"
    return f"~{round(seconds / 60)} min"


def message_url(guild_id: int | None, channel_id: int | None, message_id: int | None) -> str | None:
    """Jump link to a message."""
    if not channel_id or not message_id:
        return None
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


def owner_only(job: Job) -> discord.AllowedMentions:
    """Ping the member whose take it is, and nobody else (prompts may contain mentions)."""
    return discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(job.user_id)])


def job_id_of(message: discord.Message) -> str | None:
    """The job a jamgen result message belongs to (its embed footer, or a take card's "-# job <id>" line)."""
    for embed in message.embeds:
        match = JOB_FOOTER.search(embed.footer.text or "")
        if match:
            return match.group(1)
    # The last job line: the card's own comes after the prompt, whatever the prompt says.
    found = CARD_JOB_LINE.findall("\n".join(_card_texts(message.components)))
    return found[-1] if found else None


def _card_texts(components: Any) -> list[str]:
    """The text displays of a Components V2 message, depth first (containers, sections)."""
    texts: list[str] = []
    for component in components or ():
        content = getattr(component, "content", None)
        if isinstance(content, str):
            texts.append(content)
        texts += _card_texts(getattr(component, "children", None))
    return texts


# ---------------------------------------------------------------------- a job's life
def render_receipt(receipt: Receipt) -> str:
    """The first message after a submit."""
    lines = [
        f"⏳ Queued `{receipt.job_id}` · position {receipt.position} · ETA {format_eta(receipt.eta_s)}",
        f"{receipt.model} · {receipt.duration:g} s · costs {receipt.cost:g} s of quota"
        + (f" · {receipt.remaining:g} s left today" if receipt.remaining is not None else ""),
    ]
    lines += [f"ℹ️ {w}" for w in receipt.warnings]
    return "\n".join(lines)


def render_update(update: JobUpdate) -> str:
    """The progress message for a job update."""
    if update.phase == Phase.QUEUED:
        return f"⏳ Queued `{update.job_id}` · position {update.position or '?'} · ETA {format_eta(update.eta_s)}"
    if update.phase == Phase.RUNNING:
        return (
            f"🎛 Generating `{update.job_id}` {progress_bar(update.fraction)} {round(update.fraction * 100)}%"
            f" · ETA {format_eta(update.eta_s)}"
        )
    if update.phase == Phase.RENDERING:
        return f"🎚 Mixing down `{update.job_id}`…"
    if update.phase == Phase.DONE:
        return f"✅ `{update.job_id}` is ready."
    if update.phase == Phase.CANCELLED:
        return f"🛑 `{update.job_id}` cancelled. {update.message}"
    return f"⚠️ `{update.job_id}` failed: {update.message}"


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


# ---------------------------------------------------------------------- stems
def stem_messages(delivery: Delivery) -> list[list[RenderedTake]]:
    """The stems of a delivery grouped by the message that carries them (see the service's rendering)."""
    groups: dict[int, list[RenderedTake]] = {}
    for stem in delivery.takes:
        groups.setdefault(stem.message, []).append(stem)
    return [groups[key] for key in sorted(groups)]


def stems_embed(delivery: Delivery, stems: list[RenderedTake], part: int, parts: int) -> discord.Embed:
    """The card of one stems message: which take, which stems, how to jam on them."""
    job = delivery.job
    source = delivery.recipe.get("audio_from_job")
    what = f"`{source}`" if source else f"`{delivery.recipe.get('audio_filename') or 'your file'}`"
    title = f"🎚 Stems of {what}" + (f" ({part + 1}/{parts})" if parts > 1 else "")
    embed = discord.Embed(
        title=title,
        description="Jam on one stem with the buttons: continue from it, follow its melody, or take its style.",
        colour=COLOUR,
    )
    for stem in stems:
        rate = f" · {stem.bitrate_kbps} kbps" if stem.bitrate_kbps else ""
        embed.add_field(name=f"{STEM_EMOJI.get(stem.stem or '', '')} {stem.stem}", value=f"{stem.duration:.1f} s{rate}")
    picture = delivery.takes[0].waveform_path
    if part == 0 and picture is not None:
        embed.set_image(url=f"attachment://{picture.name}")
    embed.set_footer(text=f"job {job.id} · stems · by jamgen")
    return embed


def stems_files(stems: list[RenderedTake], *, with_picture: bool) -> list[discord.File]:
    """The MP3s of one stems message (and the picture of all stems on the first)."""
    files = [discord.File(stem.path, filename=stem.path.name) for stem in stems]
    picture = stems[0].waveform_path if with_picture else None
    if picture is not None and picture.exists():
        files.append(discord.File(picture, filename=picture.name))
    return files


def already_split_text(stems_job: Job, source_job: str) -> str:
    """Where the stems of a take are, when they were asked for before."""
    if stems_job.state in (JobState.QUEUED, JobState.RUNNING):
        return f"🎚 The stems of `{source_job}` are being made (`{stems_job.id}`); they will be posted here."
    first = stems_job.delivered_message_ids[0] if stems_job.delivered_message_ids else None
    url = message_url(stems_job.guild_id, stems_job.channel_id, first)
    return f"🎚 The stems of `{source_job}` are already here, free: {url or f'job `{stems_job.id}`'}"


def render_recipe(job: Job, recipe: dict[str, Any]) -> str:
    """Every parameter of a job (``recipe``: the service's recipe of it), as a code block that fits one message."""
    seeds = [t.get("seed") for t in (job.extra or {}).get("takes", [])]
    if seeds:
        recipe["seeds"] = seeds
    recipe["state"] = job.state.value
    return clip(f"**Recipe of `{job.id}`**\n```json\n{json.dumps(recipe, indent=1, ensure_ascii=False)}\n```", 1990)


# ---------------------------------------------------------------------- jam sessions
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


def bounce_embed(result: BounceResult) -> discord.Embed:
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
    if summary.best_take is not None:
        job, votes = summary.best_take
        first = job.delivered_message_ids[0] if job.delivered_message_ids else None
        url = message_url(job.guild_id, job.channel_id, first)
        lines.append(
            f"🗳️ Best take by vote: `{job.id}` by <@{job.user_id}> with {votes} vote{'s' if votes != 1 else ''}"
            + (f" {url}" if url else "")
        )
    elif summary.vote_held:
        lines.append("🗳️ The best-take vote closed without votes.")
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
