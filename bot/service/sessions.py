"""Jam sessions: a thread per jam with a shared tempo, key and meter; its tree of takes; loops; one bounce.

A session is a row in the store tied to a Discord thread. Every take asked for inside
the thread joins it (:func:`join_session`, called by :meth:`JamService.submit`): the
session's tempo, key and time signature are added to the prompt the way MusicGen follows
best (``"dreamy synths, 100 bpm, in A minor, 4/4"``, see :func:`decorate_prompt`) unless
the member already wrote them, and the session's model is the default. Membership is
decided by where a take is asked for, nothing else, so it survives restarts with the
store. :class:`SessionService` is what the ``/session`` commands and the 🔁 Loop button
call. No Discord here: ids and text only. See docs/SESSIONS.md.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import audio
from bot.audio.arrange import CONTINUATION_CROSSFADE_S, REMIX_CROSSFADE_S, Join
from bot.engine.registry import MODELS
from bot.engine.types import Mode, ModelUnavailableError
from bot.errors import UserInputError
from bot.service.requests import JamRequest, JobNotFoundError
from bot.store import Job, JobState, JobStore
from bot.store.store import Session, SessionBudgetExceeded

if TYPE_CHECKING:
    from bot.service.jam import JamService

log = logging.getLogger("jamgen.sessions")

MIN_BPM = 30
MAX_BPM = 300
MAX_THEME_CHARS = 90
DEFAULT_TIME_SIGNATURE = "4/4"
TREE_PAGE_CHARS = 1900
MAX_CHAIN = 500
MAX_TREE_INDENT = 8
MADE_STATES = frozenset({JobState.RENDERED, JobState.DELIVERED})
DROPPED_STATES = frozenset({JobState.FAILED, JobState.CANCELLED})

_KEY = re.compile(
    r"^\s*(?P<note>[A-Ga-g])\s*(?P<accidental>#|♯|b|♭|-?\s*sharp|-?\s*flat)?\s*"
    r"(?P<quality>major|minor|maj|min|m|M)?\s*$",
    re.IGNORECASE,
)
_TIME_SIGNATURE = re.compile(r"^\s*(\d{1,2})\s*/\s*(\d{1,2})\s*$")
# What a member may already have written: then the session's value is not added.
_MENTIONS_TEMPO = re.compile(r"\bbpm\b|\bbeats per minute\b|\btempo\b", re.IGNORECASE)
_MENTIONS_KEY = re.compile(
    r"(?i:(?<![\w#])[a-g](?:\s?(?:#|♯|♭|b|sharp|flat))?\s?(?:major|minor|maj|min)\b)"
    r"|(?<![\w#])[A-G](?:#|♯|♭|b)?m\b"
    r"|(?i:\bkey\s+of\b|\bin\s+the\s+key\b)"
)
_MENTIONS_METER = re.compile(r"(?<![\d/])\d{1,2}\s*/\s*(?:2|4|8|16)(?![\d/])|\btime signature\b", re.IGNORECASE)
_MODE_ICONS = {"text": "✨", "unconditional": "✨", "continuation": "⏩", "melody": "🎼", "style": "🎨"}


class NotInSessionError(UserInputError):
    """A session command was used outside a jam's thread."""

    def __init__(self) -> None:
        super().__init__("This only works inside a jam's thread. Start a jam with `/session start`.")


class SessionEndedError(UserInputError):
    """The jam is over."""


class SessionPermissionError(UserInputError):
    """Only the member who started the jam, or a server admin, may do this."""

    def __init__(self, what: str) -> None:
        super().__init__(f"Only the member who started this jam, or a server admin, can {what}.")


# ---------------------------------------------------------------------- settings and prompts
def parse_bpm(bpm: float | None) -> int | None:
    """A session tempo: a whole number of beats per minute from 30 to 300 (None = none).

    Args:
        bpm: what the member gave.
    """
    if bpm is None:
        return None
    if not MIN_BPM <= bpm <= MAX_BPM:
        raise UserInputError(f"The tempo must be between {MIN_BPM} and {MAX_BPM} bpm; you gave {bpm:g}.")
    return round(bpm)


def parse_key(text: str | None) -> str | None:
    """A key in the form MusicGen's training captions use: ``"A minor"``, ``"F# major"``, ``"Bb minor"``.

    Accepts ``Am``, ``a minor``, ``C#m``, ``Eb``, ``F sharp major``, ``bb min`` …; no quality means major.

    Args:
        text: what the member typed (None or blank = no key).

    Raises:
        UserInputError: it is not a key.
    """
    if text is None or not text.strip():
        return None
    match = _KEY.match(text)
    if not match:
        raise UserInputError(f"The key must look like 'A minor', 'F# major' or 'Ebm'; you wrote '{text.strip()[:30]}'.")
    accidental = (match.group("accidental") or "").replace(" ", "").replace("-", "").lower()
    sign = {"#": "#", "♯": "#", "sharp": "#", "b": "b", "♭": "b", "flat": "b"}.get(accidental, "")
    quality = match.group("quality") or ""
    minor = quality == "m" or quality.lower() in ("minor", "min")
    return f"{match.group('note').upper()}{sign} {'minor' if minor else 'major'}"


def parse_time_signature(text: str | None) -> str | None:
    """A time signature ``N/D`` with N from 1 to 16 and D one of 2, 4, 8, 16 (None or blank = none).

    Args:
        text: what the member typed.

    Raises:
        UserInputError: it is not one.
    """
    if text is None or not text.strip():
        return None
    match = _TIME_SIGNATURE.match(text)
    if not match or not 1 <= int(match.group(1)) <= 16 or int(match.group(2)) not in (2, 4, 8, 16):
        raise UserInputError(f"The time signature must look like 4/4, 3/4 or 6/8; you wrote '{text.strip()[:20]}'.")
    return f"{int(match.group(1))}/{int(match.group(2))}"


def beats_per_bar(time_signature: str | None) -> int:
    """How many of the beats librosa tracks make one bar.

    The tracked pulse is the quarter note in x/4 (x beats), the half note in x/2 (x beats) and,
    in compound meters (6/8, 9/8, 12/8), the dotted quarter (x/3 beats); in other x/8 and x/16
    meters every written beat counts. None means 4/4.

    Args:
        time_signature: e.g. "4/4" (as :func:`parse_time_signature` returns it).
    """
    numerator, denominator = (int(part) for part in (time_signature or DEFAULT_TIME_SIGNATURE).split("/"))
    if denominator >= 8 and numerator % 3 == 0 and numerator > 3:
        return numerator // 3
    return numerator


def _decoration(bpm: int | None, key: str | None, time_signature: str | None) -> list[str]:
    parts = []
    if bpm:
        parts.append(f"{bpm} bpm")
    if key:
        parts.append(f"in {key}")
    if time_signature:
        parts.append(time_signature)
    return parts


def decorate_prompt(
    prompt: str, *, bpm: int | None = None, key: str | None = None, time_signature: str | None = None
) -> str:
    """Add a session's tempo, key and meter to a prompt, as MusicGen's captions put them.

    ``decorate_prompt("dreamy synths", bpm=100, key="A minor", time_signature="4/4")`` is
    ``"dreamy synths, 100 bpm, in A minor, 4/4"``. What the member already said wins: a prompt
    that names a tempo (``bpm``, ``tempo``), a key (``D major``, ``in the key of …``, ``F#m``) or a
    meter (``3/4``, ``time signature``) gets no second one. A prompt that needs nothing is
    returned unchanged, so decorating twice changes nothing.

    Args:
        prompt: the member's prompt.
        bpm: the session's tempo.
        key: the session's key, e.g. "A minor".
        time_signature: the session's meter, e.g. "4/4".
    """
    additions = []
    if bpm and not _MENTIONS_TEMPO.search(prompt):
        additions.append(f"{bpm} bpm")
    if key and not _MENTIONS_KEY.search(prompt):
        additions.append(f"in {key}")
    if time_signature and not _MENTIONS_METER.search(prompt):
        additions.append(time_signature)
    if not additions:
        return prompt
    base = prompt.strip().rstrip(",;. ")
    return ", ".join([base, *additions] if base else additions)


def strip_decoration(prompt: str, session: Session) -> str:
    """The member's words of a decorated prompt (the session's trailing tempo/key/meter removed), for display.

    Args:
        prompt: a prompt as stored.
        session: its session.
    """
    pieces = [piece.strip() for piece in prompt.split(",")]
    added = set(_decoration(session.bpm, session.key, session.time_signature))
    while pieces and pieces[-1] in added:
        pieces.pop()
    return ", ".join(pieces)


async def join_session(
    store: JobStore, request: JamRequest, *, max_prompt_length: int
) -> tuple[JamRequest, int | None]:
    """Make a request asked for inside a jam's thread part of the jam (called first thing by ``submit``).

    Inside an open session's thread: ``session_id`` is set, the prompt is decorated (unless that
    would make it longer than ``max_prompt_length``) and the session's model is the default when
    it can do the mode. Anywhere else a request belongs to no session (a ``session_id`` copied from
    a parent is dropped): membership is decided by where a take is asked for.

    Args:
        store: the job store.
        request: what the member asked for.
        max_prompt_length: the longest prompt accepted.

    Returns:
        the request to submit, and the channel the server's allowed-channel list is checked
        against (a session thread counts as the channel it was started in).
    """
    session = await store.session_for_thread(request.channel_id) if request.channel_id is not None else None
    if session is None or not session.is_open:
        cleared = dataclasses.replace(request, session_id=None) if request.session_id else request
        return cleared, (session.channel_id if session else request.channel_id)
    prompt = decorate_prompt(request.prompt, bpm=session.bpm, key=session.key, time_signature=session.time_signature)
    if len(prompt) > max_prompt_length:
        prompt = request.prompt
    model = request.model
    spec = MODELS.get(session.model or "")
    if model is None and spec is not None and spec.supports(request.mode):
        model = session.model
    return dataclasses.replace(request, prompt=prompt, model=model, session_id=session.id), session.channel_id


# ---------------------------------------------------------------------- results
@dataclass(frozen=True)
class SessionSettings:
    """A jam's settings, checked.

    Args:
        theme: what it is about (the thread's name).
        bpm: tempo.
        key: e.g. "A minor".
        time_signature: e.g. "4/4".
        model: default model.
        budget: seconds the whole jam may use.
    """

    theme: str
    bpm: int | None = None
    key: str | None = None
    time_signature: str | None = None
    model: str | None = None
    budget: float | None = None

    def describe(self) -> str:
        """``100 bpm · A minor · 4/4`` (or ``free tempo and key``)."""
        parts = [f"{self.bpm} bpm" if self.bpm else "", self.key or "", self.time_signature or ""]
        return " · ".join(part for part in parts if part) or "free tempo and key"


def describe_session(session: Session) -> str:
    """A session's musical settings in one line, e.g. ``100 bpm · A minor · 4/4``.

    Args:
        session: the session.
    """
    return SessionSettings(session.theme, session.bpm, session.key, session.time_signature).describe()


@dataclass(frozen=True)
class TreeEntry:
    """One take in a session's tree.

    Args:
        job: the take.
        depth: 0 for takes that start a branch.
        parent_id: its parent inside the session (None for a root).
        children: its children inside the session, oldest first.
        bpm: the detected tempo of its first take.
    """

    job: Job
    depth: int
    parent_id: str | None
    children: tuple[str, ...]
    bpm: float | None


@dataclass(frozen=True)
class LoopResult:
    """A loop cut from a take.

    Args:
        job_id: the take's job.
        take: 0-based take index.
        path: the loop MP3.
        bars: whole bars.
        bpm: detected tempo.
        beats_per_bar: beats per bar.
        time_signature: the meter it was cut in.
        duration_s: its length.
        start_s: where it starts in the take.
        bitrate_kbps: MP3 bitrate.
    """

    job_id: str
    take: int
    path: Path
    bars: int
    bpm: float
    beats_per_bar: int
    time_signature: str
    duration_s: float
    start_s: float
    bitrate_kbps: int | None


@dataclass(frozen=True)
class ChainLink:
    """One take in a bounce's chain.

    Args:
        job: the job.
        take: which of its takes (0-based).
        join: how it joins the previous link (``start``, ``continuation`` or ``crossfade``).
        prompt_s: continuation: seconds at its start that repeat the previous link.
        cut_previous_at_s: continuation: where in the previous link it continued from (None = its end).
    """

    job: Job
    take: int
    join: Join
    prompt_s: float = 0.0
    cut_previous_at_s: float | None = None


@dataclass(frozen=True)
class BouncePlan:
    """What a bounce will join.

    Args:
        links: root first.
        session: the session of the last take, if any.
        contributors: user ids in order of first appearance.
    """

    links: tuple[ChainLink, ...]
    session: Session | None
    contributors: tuple[int, ...]

    @property
    def last(self) -> ChainLink:
        """The take the bounce leads to."""
        return self.links[-1]


@dataclass(frozen=True)
class BounceResult:
    """A rendered bounce.

    Args:
        plan: what was joined.
        path: the MP3.
        duration_s: its length.
        bitrate_kbps: its bitrate.
        size_bytes: its size.
    """

    plan: BouncePlan
    path: Path
    duration_s: float
    bitrate_kbps: int | None
    size_bytes: int


@dataclass(frozen=True)
class SessionSummary:
    """What ``/session end`` posts.

    Args:
        session: the session (ended).
        takes: takes made (rendered or delivered).
        contributors: user ids of the members who made them, in order of first take.
        most_reacted: the take with the most reactions and its count (None without reactions).
        bounce: the last bounce (``job_id``, ``duration_s``, ``channel_id``, ``message_id``), if one was made.
    """

    session: Session
    takes: int
    contributors: tuple[int, ...]
    most_reacted: tuple[Job, int] | None
    bounce: Mapping[str, Any] | None


# ---------------------------------------------------------------------- the tree
def build_tree(jobs: Sequence[Job]) -> list[TreeEntry]:
    """A session's takes in tree order (each parent before its children, branches oldest first).

    Failed and cancelled jobs are left out; a take whose parent is outside the session starts a branch.

    Args:
        jobs: the session's jobs in submission order.
    """
    kept = [job for job in jobs if job.state not in DROPPED_STATES]
    ids = {job.id for job in kept}
    children: dict[str | None, list[Job]] = {}
    for job in kept:
        children.setdefault(job.parent_id if job.parent_id in ids else None, []).append(job)
    entries: list[TreeEntry] = []
    stack: list[tuple[Job, int]] = [(job, 0) for job in reversed(children.get(None, []))]
    while stack:
        job, depth = stack.pop()
        kids = children.get(job.id, [])
        takes = (job.extra or {}).get("takes") or [{}]
        entries.append(
            TreeEntry(
                job=job,
                depth=depth,
                parent_id=job.parent_id if job.parent_id in ids else None,
                children=tuple(kid.id for kid in kids),
                bpm=takes[0].get("bpm"),
            )
        )
        stack.extend((kid, depth + 1) for kid in reversed(kids))
    return entries


def _clip(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def tree_line(entry: TreeEntry, session: Session) -> str:
    """One take as a line: indentation, job id, who, what, tempo.

    Args:
        entry: the take.
        session: its session (its decoration is left out of the prompt snippet).
    """
    job = entry.job
    if entry.depth == 0:
        prefix = ""
    elif entry.depth <= MAX_TREE_INDENT:
        prefix = "\u2003" * (entry.depth - 1) + "└ "
    else:
        prefix = "\u2003" * (MAX_TREE_INDENT - 1) + f"└({entry.depth}) "
    icon = "🎲" if job.mode == "text" and job.parent_id else _MODE_ICONS.get(job.mode, "•")
    words = _clip(strip_decoration(job.prompt, session), 40) or job.mode
    tempo = f" · {entry.bpm:.0f} BPM" if entry.bpm else ""
    state = " · ⏳" if job.state not in MADE_STATES else ""
    return f"{prefix}`{job.id}` <@{job.user_id}> {icon} {words}{tempo}{state}"


def render_tree_pages(
    session: Session, entries: Sequence[TreeEntry], *, page_chars: int = TREE_PAGE_CHARS
) -> list[str]:
    """The tree as one or more messages of at most ``page_chars`` characters, each with the header.

    Args:
        session: the session.
        entries: from :func:`build_tree`.
        page_chars: the most characters per page (Discord allows 2000 per message).
    """
    members = len({entry.job.user_id for entry in entries})
    header = (
        f"🎶 **{_clip(session.theme, MAX_THEME_CHARS)}** · {describe_session(session)} · "
        f"{len(entries)} take{'s' if len(entries) != 1 else ''} by {members} member{'s' if members != 1 else ''}"
    )
    if not entries:
        return [header + "\nNo takes yet: `/generate` here to lay down the first one."]
    room = page_chars - len(header) - 20
    pages: list[list[str]] = [[]]
    used = 0
    for entry in entries:
        line = tree_line(entry, session)
        line = line if len(line) <= room else line[: room - 1] + "…"  # keep the indentation
        if pages[-1] and used + len(line) + 1 > room:
            pages.append([])
            used = 0
        pages[-1].append(line)
        used += len(line) + 1
    if len(pages) == 1:
        return [header + "\n" + "\n".join(pages[0])]
    return [f"{header} · page {n}/{len(pages)}\n" + "\n".join(lines) for n, lines in enumerate(pages, start=1)]


# ---------------------------------------------------------------------- the service
class SessionService:
    """Jam sessions on top of the jam service (stateless: everything lives in the store).

    Args:
        service: the jam service (store, settings, recipes, output folder).
    """

    def __init__(self, service: JamService) -> None:
        self.service = service
        self.store = service.store

    # -------------------------------------------------------------- opening and finding
    async def check_settings(
        self,
        *,
        guild_id: int | None,
        channel_id: int | None,
        theme: str,
        bpm: float | None = None,
        key: str | None = None,
        time_signature: str | None = None,
        model: str | None = None,
        budget: float | None = None,
    ) -> SessionSettings:
        """Check a new jam's settings before its thread is made.

        Args:
            guild_id: the server (jams need one).
            channel_id: where it is started.
            theme: what it is about.
            bpm: tempo.
            key: key, e.g. "A minor" or "Am".
            time_signature: e.g. "4/4".
            model: default model.
            budget: seconds the whole jam may use (None = no jam budget).

        Raises:
            UserInputError: a setting is not valid here.
        """
        if guild_id is None:
            raise UserInputError("Jams happen in servers: start one from a server's text channel.")
        theme = " ".join(theme.split())
        if not theme:
            raise UserInputError("Give the jam a theme, e.g. 'late night drive'.")
        guild = await self.store.get_guild_settings(guild_id)
        if guild.allowed_channel_ids and channel_id not in guild.allowed_channel_ids:
            where = ", ".join(f"<#{c}>" for c in guild.allowed_channel_ids[:5])
            raise UserInputError(f"jamgen doesn't play in this channel. Start the jam in {where}.")
        if model is not None:
            names = await self.service.models_for_guild(guild_id)
            if model not in names:
                raise ModelUnavailableError(
                    f"The model '{model}' is not enabled here. Pick one of: {', '.join(names)}."
                )
        if budget is not None and budget <= 0:
            raise UserInputError("A jam budget must be more than 0 seconds (leave it out for no jam budget).")
        return SessionSettings(
            theme=_clip(theme, MAX_THEME_CHARS),
            bpm=parse_bpm(bpm),
            key=parse_key(key),
            time_signature=parse_time_signature(time_signature),
            model=model,
            budget=budget,
        )

    async def open(
        self, settings: SessionSettings, *, guild_id: int, channel_id: int, thread_id: int, owner_id: int
    ) -> Session:
        """Store a new jam for a thread that was just made.

        Args:
            settings: from :meth:`check_settings`.
            guild_id: the server.
            channel_id: the channel it was started in.
            thread_id: its thread.
            owner_id: who started it.
        """
        return await self.store.create_session(
            guild_id=guild_id,
            channel_id=channel_id,
            thread_id=thread_id,
            owner_id=owner_id,
            theme=settings.theme,
            bpm=settings.bpm,
            key=settings.key,
            time_signature=settings.time_signature,
            model=settings.model,
            budget=settings.budget,
        )

    async def remember_header(self, session_id: str, message_id: int) -> Session:
        """Record the pinned header message.

        Args:
            session_id: the session.
            message_id: the header.
        """
        return await self.store.update_session(session_id, header_message_id=message_id)

    async def for_channel(self, channel_id: int | None) -> Session | None:
        """The session whose thread this is, if any.

        Args:
            channel_id: the interaction's channel.
        """
        return None if channel_id is None else await self.store.session_for_thread(channel_id)

    async def require(self, channel_id: int | None) -> Session:
        """The session whose thread this is.

        Args:
            channel_id: the interaction's channel.

        Raises:
            NotInSessionError: not a jam's thread.
        """
        session = await self.for_channel(channel_id)
        if session is None:
            raise NotInSessionError()
        return session

    async def get(self, session_id: str) -> Session | None:
        """A session by id.

        Args:
            session_id: the id.
        """
        return await self.store.get_session(session_id)

    # -------------------------------------------------------------- the tree and a take's place
    async def tree(self, session: Session) -> list[TreeEntry]:
        """The session's takes in tree order.

        Args:
            session: the session.
        """
        return build_tree(await self.store.session_jobs(session.id))

    async def tree_pages(self, session: Session, *, page_chars: int = TREE_PAGE_CHARS) -> list[str]:
        """``/session tree`` as messages.

        Args:
            session: the session.
            page_chars: the most characters per page.
        """
        return render_tree_pages(session, await self.tree(session), page_chars=page_chars)

    async def place_line(self, job: Job) -> str | None:
        """A take's place in its jam, for its message: number, parent and children (None outside a jam).

        Args:
            job: the take.
        """
        if not job.session_id:
            return None
        session = await self.store.get_session(job.session_id)
        if session is None:
            return None
        jobs = [j for j in await self.store.session_jobs(session.id) if j.state not in DROPPED_STATES]
        ids = [j.id for j in jobs]
        number = ids.index(job.id) + 1 if job.id in ids else len(ids) + 1
        line = f"🎶 Jam **{_clip(session.theme, 60)}** · take #{number}"
        if job.parent_id:
            line += f" · from `{job.parent_id}`"
        children = [j.id for j in jobs if j.parent_id == job.id]
        if children:
            shown = ", ".join(f"`{c}`" for c in children[:8])
            line += f" · led to {shown}" + (f" and {len(children) - 8} more" if len(children) > 8 else "")
        return line

    # -------------------------------------------------------------- loops
    async def loop(self, job_id: str, take: int = 0, *, byte_limit: int | None = None) -> LoopResult:
        """Cut take ``take`` of a job into a loop of whole bars at its detected tempo (in its jam's meter, else 4/4).

        Args:
            job_id: the job.
            take: 0-based take.
            byte_limit: the upload limit (default: the configured one).

        Raises:
            UserInputError: no such take, not finished, no beat, too short.
        """
        job = await self.service.job(job_id)
        path = self._take_path(job, take)
        session = await self.store.get_session(job.session_id) if job.session_id else None
        meter = (session.time_signature if session else None) or DEFAULT_TIME_SIGNATURE
        target = self.service.outputs_dir / job.id / f"{job.id}-take{take + 1}-loop.mp3"
        title = f"{_clip(strip_decoration(job.prompt, session) if session else job.prompt, 100)} (loop)"
        track = await audio.make_loop(
            path,
            target,
            beats_per_bar=beats_per_bar(meter),
            title=title,
            recipe={**self.service.recipe(job, seed=_seed(job, take), take=take), "time_signature": meter},
            byte_limit=byte_limit or self.service.config.upload_limit_bytes,
            limits=self.service.config.audio_limits,
        )
        log.info("job %s take %d: %d-bar loop at %.1f bpm", job.id, take + 1, track.bars, track.bpm)
        return LoopResult(
            job_id=job.id,
            take=take,
            path=track.path,
            bars=track.bars,
            bpm=track.bpm,
            beats_per_bar=track.beats_per_bar,
            time_signature=meter,
            duration_s=track.duration_s,
            start_s=track.start_s,
            bitrate_kbps=track.bitrate_kbps,
        )

    # -------------------------------------------------------------- bounces
    async def latest_take(self, session: Session) -> Job:
        """The session's most recent finished take.

        Args:
            session: the session.

        Raises:
            UserInputError: it has none yet.
        """
        made = [job for job in await self.store.session_jobs(session.id) if job.state in MADE_STATES]
        if not made:
            raise UserInputError("This jam has no finished takes to bounce yet.")
        return made[-1]

    async def bounce_plan(self, job_id: str, take: int = 0) -> BouncePlan:
        """The chain of takes that leads to take ``take`` of ``job_id``, root first.

        A take's predecessor is the take whose audio it was made from (a continuation, an extend,
        a melody or style remix of a take); a reroll stands in for the take it rerolled. The chain
        stops at a take made from words or from an attached file.

        Args:
            job_id: the last take's job.
            take: 0-based take of it.

        Raises:
            UserInputError: a take is missing, unfinished or its audio was cleaned up.
        """
        job = await self.service.job(job_id)
        if job.state not in MADE_STATES:
            raise UserInputError(f"Take `{job.id}` isn't finished yet.")
        chain: list[tuple[Job, int]] = [(job, take)]
        seen = {job.id}
        while len(chain) < MAX_CHAIN:
            previous = await self._predecessor(chain[-1][0])
            if previous is None or previous[0].id in seen:
                break
            seen.add(previous[0].id)
            chain.append(previous)
        chain.reverse()
        links: list[ChainLink] = []
        for index, (link_job, link_take) in enumerate(chain):
            self._take_path(link_job, link_take)
            if index == 0:
                links.append(ChainLink(link_job, link_take, "start"))
            elif link_job.mode == Mode.CONTINUATION.value:
                end = link_job.params.get("audio_end")
                links.append(
                    ChainLink(
                        link_job,
                        link_take,
                        "continuation",
                        prompt_s=float(link_job.params.get("prompt_seconds") or 0.0),
                        cut_previous_at_s=None if end is None else float(end),
                    )
                )
            else:
                links.append(ChainLink(link_job, link_take, "crossfade"))
        contributors = tuple(dict.fromkeys(link.job.user_id for link in links))
        session = await self.store.get_session(job.session_id) if job.session_id else None
        return BouncePlan(links=tuple(links), session=session, contributors=contributors)

    async def _predecessor(self, job: Job) -> tuple[Job, int] | None:
        current = job
        for _ in range(MAX_CHAIN):
            source = current.params.get("audio_from_job")
            if source:
                parent = await self.store.get_job(source)
                return None if parent is None else (parent, int(current.params.get("audio_take") or 0))
            if not current.parent_id:
                return None
            # A reroll (same recipe, new seed) stands in for the take it rerolled.
            parent = await self.store.get_job(current.parent_id)
            if parent is None:
                return None
            current = parent
        return None

    async def render_bounce(
        self, plan: BouncePlan, *, names: Mapping[int, str] | None = None, byte_limit: int | None = None
    ) -> BounceResult:
        """Render the plan into one MP3, tagged with every take's recipe and the contributors.

        Args:
            plan: from :meth:`bounce_plan`.
            names: display names of the contributors (user id -> name).
            byte_limit: the upload limit (default: the configured one).

        Raises:
            BounceTooLongError: too long, or cannot fit the limit even at 64 kbps.
        """
        names = names or {}
        config = self.service.config
        parts = [
            audio.BouncePart(
                path=self._take_path(link.job, link.take),
                join=link.join,
                prompt_s=link.prompt_s,
                cut_previous_at_s=link.cut_previous_at_s,
            )
            for link in plan.links
        ]
        recipes = [
            self.service.recipe(link.job, seed=_seed(link.job, link.take), take=link.take) for link in plan.links
        ]
        contributors = [{"user_id": uid, "name": names.get(uid, str(uid))} for uid in plan.contributors]
        last = plan.last
        if plan.session is not None:
            title = f"{plan.session.theme} (bounce)"
        else:
            title = f"{_clip(last.job.prompt or last.job.mode, 100)} (bounce)"
        tags = audio.bounce_tags(
            title,
            recipes,
            contributors,
            session_id=plan.session.id if plan.session else None,
            leads_to=last.job.id,
            continuation_crossfade_s=CONTINUATION_CROSSFADE_S,
            remix_crossfade_s=REMIX_CROSSFADE_S,
        )
        target = self.service.outputs_dir / last.job.id / f"{last.job.id}-take{last.take + 1}-bounce.mp3"
        track = await audio.bounce(
            parts,
            target,
            tags=tags,
            byte_limit=byte_limit or config.upload_limit_bytes,
            limits=config.audio_limits,
            normalization=config.normalization,  # type: ignore[arg-type]
            loudness_target=config.loudness_target,
        )
        log.info(
            "bounce of %s: %d parts, %.1f s, %s kbps", last.job.id, len(parts), track.duration_s, track.bitrate_kbps
        )
        if plan.session is not None:
            record = {"job_id": last.job.id, "take": last.take, "duration_s": round(track.duration_s, 3)}
            await self.store.update_session(plan.session.id, extra={"bounce": record})
        return BounceResult(
            plan=plan,
            path=track.path,
            duration_s=track.duration_s,
            bitrate_kbps=track.bitrate_kbps,
            size_bytes=track.size_bytes,
        )

    async def remember_bounce(self, result: BounceResult, *, channel_id: int, message_id: int) -> None:
        """Record where a session's bounce was posted (for the end-of-jam summary).

        Args:
            result: the bounce.
            channel_id: where it was posted.
            message_id: the message.
        """
        if result.plan.session is None:
            return
        record = {
            "job_id": result.plan.last.job.id,
            "take": result.plan.last.take,
            "duration_s": round(result.duration_s, 3),
            "channel_id": channel_id,
            "message_id": message_id,
        }
        await self.store.update_session(result.plan.session.id, extra={"bounce": record})

    # -------------------------------------------------------------- budget, reactions, the end
    async def set_budget(self, session: Session, seconds: float | None, *, user_id: int, is_admin: bool) -> Session:
        """Set (or with None remove) the jam's budget.

        Args:
            session: the session.
            seconds: seconds the whole jam may use; None = no jam budget.
            user_id: who asks (the starter, unless ``is_admin``).
            is_admin: a server admin.
        """
        if session.owner_id != user_id and not is_admin:
            raise SessionPermissionError("change its budget")
        if seconds is not None and seconds <= 0:
            raise UserInputError("A jam budget must be more than 0 seconds.")
        return await self.store.update_session(session.id, budget=seconds)

    async def usage(self, session: Session) -> float:
        """Seconds the jam's takes have used (refunds deducted).

        Args:
            session: the session.
        """
        return await self.store.session_usage(session.id)

    async def record_reaction(self, message_id: int, user_id: int, emoji: str, *, add: bool) -> str | None:
        """Count a reaction on a session take's message (other messages are ignored).

        Args:
            message_id: the message.
            user_id: who reacted.
            emoji: the emoji as text.
            add: added (True) or removed.

        Returns:
            the take's job id, or None when the message is not a session take.
        """
        return await self.store.record_reaction(message_id, user_id, emoji, add=add)

    async def summary(self, session: Session) -> SessionSummary:
        """Contributors, takes, the most-reacted take and the bounce.

        Args:
            session: the session.
        """
        made = [job for job in await self.store.session_jobs(session.id) if job.state in MADE_STATES]
        counts = await self.store.reaction_counts(session.id)
        best: tuple[Job, int] | None = None
        for job in made:  # oldest first, so the first of equals wins
            count = counts.get(job.id, 0)
            if count and (best is None or count > best[1]):
                best = (job, count)
        return SessionSummary(
            session=session,
            takes=len(made),
            contributors=tuple(dict.fromkeys(job.user_id for job in made)),
            most_reacted=best,
            bounce=session.extra.get("bounce"),
        )

    async def end(self, session: Session, *, user_id: int, is_admin: bool) -> SessionSummary:
        """Close the jam: takes made in its thread from now on are ordinary takes.

        Args:
            session: the session.
            user_id: who asks (the starter, unless ``is_admin``).
            is_admin: a server admin.

        Raises:
            SessionPermissionError: someone else's jam.
            SessionEndedError: it had ended already.
        """
        if session.owner_id != user_id and not is_admin:
            raise SessionPermissionError("end it")
        ended_session, ended = await self.store.end_session(session.id)
        if not ended:
            raise SessionEndedError("This jam has already ended.")
        log.info("session %s ended by %s", session.id, user_id)
        return await self.summary(ended_session)

    # -------------------------------------------------------------- helpers
    @staticmethod
    def _take_path(job: Job, take: int) -> Path:
        if job.state not in MADE_STATES:
            raise UserInputError(f"Take `{job.id}` isn't finished yet.")
        if not 0 <= take < len(job.outputs):
            if not job.outputs and job.outputs_cleared_at is not None:
                raise UserInputError(f"The audio of take `{job.id}` has been cleaned up.")
            raise JobNotFoundError(f"Job `{job.id}` has no take {take + 1}.")
        path = Path(job.outputs[take])
        if not path.exists():
            raise UserInputError(f"The audio of take `{job.id}` has been cleaned up.")
        return path


def _seed(job: Job, take: int) -> int | None:
    takes = (job.extra or {}).get("takes") or []
    return takes[take].get("seed") if take < len(takes) else job.seed


__all__ = [
    "DEFAULT_TIME_SIGNATURE",
    "BouncePlan",
    "BounceResult",
    "ChainLink",
    "LoopResult",
    "NotInSessionError",
    "Session",
    "SessionBudgetExceeded",
    "SessionEndedError",
    "SessionPermissionError",
    "SessionService",
    "SessionSettings",
    "SessionSummary",
    "TreeEntry",
    "beats_per_bar",
    "build_tree",
    "decorate_prompt",
    "describe_session",
    "join_session",
    "parse_bpm",
    "parse_key",
    "parse_time_signature",
    "render_tree_pages",
    "strip_decoration",
    "tree_line",
]
