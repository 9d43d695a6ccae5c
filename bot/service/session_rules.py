"""The pure rules of jam sessions: settings, prompt decoration, and joining a session on submit.

A session is a row in the store tied to a Discord thread. Every take asked for inside
the thread joins it (:func:`join_session`, called first thing when a take is submitted): the
session's tempo, key and time signature are added to the prompt the way MusicGen follows
best (``"dreamy synths, 100 bpm, in A minor, 4/4"``, see :func:`decorate_prompt`) unless
the member already wrote them, and the session's model is the default. Membership is
decided by where a take is asked for, nothing else, so it survives restarts with the
store. No Discord and no I/O but the store here. See docs/SESSIONS.md.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from bot.engine.registry import MODELS
from bot.errors import UserInputError
from bot.service.requests import JamRequest
from bot.store import JobState, JobStore, Session

MIN_BPM = 30
MAX_BPM = 300
MAX_THEME_CHARS = 90
DEFAULT_TIME_SIGNATURE = "4/4"
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


# ---------------------------------------------------------------------- a jam's settings
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
    """A session's musical settings in one line, e.g. ``100 bpm · A minor · 4/4``."""
    return SessionSettings(session.theme, session.bpm, session.key, session.time_signature).describe()


def clip_text(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
