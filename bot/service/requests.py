"""What the Discord layer sends to the jam service, and what it gets back."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from bot.engine.types import Mode, SamplingParams
from bot.errors import UserInputError
from bot.store import Job, JobNotFoundError, JobStore


@dataclass(frozen=True)
class AudioInput:
    """Conditioning audio for melody, style and continuation takes.

    Exactly one of ``data`` (an attachment's bytes) and ``from_job`` (a take
    jamgen made earlier) is set.

    Args:
        data: raw bytes of an attachment.
        from_job: id of an earlier job whose output is used.
        take: which take of ``from_job`` (0-based).
        start: seconds into the audio where the excerpt begins (None = the mode's default).
        end: seconds where it ends (continuation; None = the end of the file).
        filename: the attachment's name, for messages only (never used in a path).
    """

    data: bytes | None = None
    from_job: str | None = None
    take: int = 0
    start: float | None = None
    end: float | None = None
    filename: str = ""


@dataclass(frozen=True)
class JamRequest:
    """One member's request for takes.

    Args:
        user_id: who asked.
        guild_id: where (None in DMs).
        channel_id: channel to deliver into when the interaction has expired.
        mode: text, melody, style or continuation (text with an empty prompt is unconditional).
        prompt: the description.
        model: registry name (None = the guild's default).
        duration: seconds (None = the configured default).
        takes: how many variations (1-4).
        seed: explicit seed (the takes then run alone, seeds seed, seed+1, …).
        sampling: sampling parameters.
        audio: conditioning audio.
        parent_id: the job this remixes/extends/rerolls (lineage).
        role_ids: the member's roles (quota tiers).
        is_admin: whether the member administers the guild.
        upload_limit_bytes: largest file the reply may carry (the interaction's attachment_size_limit).
        interaction_id: the Discord interaction that asked (for delivery bookkeeping).
        reply_to_message_id: message to reply to when delivering in the channel.
        session_id: jam session the take belongs to.
        personal: asked where jamgen is not installed in the server (a user install, a DM): charged to the
            member's own ledger, no server settings, delivered only through the interaction or by DM.
    """

    user_id: int
    guild_id: int | None
    channel_id: int | None
    mode: Mode
    prompt: str = ""
    model: str | None = None
    duration: float | None = None
    takes: int = 1
    seed: int | None = None
    sampling: SamplingParams = field(default_factory=SamplingParams)
    audio: AudioInput | None = None
    parent_id: str | None = None
    role_ids: tuple[int, ...] = ()
    is_admin: bool = False
    upload_limit_bytes: int | None = None
    interaction_id: int | None = None
    reply_to_message_id: int | None = None
    session_id: str | None = None
    personal: bool = False


class Phase(StrEnum):
    """What a job is doing, as a member sees it."""

    QUEUED = "queued"
    RUNNING = "running"
    RENDERING = "rendering"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class JobUpdate:
    """A progress report for one job.

    Args:
        phase: what it is doing.
        position: 1-based place in the queue while queued.
        fraction: 0..1 of decoding done while running.
        eta_s: estimated seconds until the track is ready (None = unknown).
        message: user-facing text for failures and cancellations.
    """

    job_id: str
    phase: Phase
    position: int | None = None
    fraction: float = 0.0
    eta_s: float | None = None
    message: str = ""


@dataclass(frozen=True)
class Receipt:
    """The answer to a submit: the job is safely queued.

    Args:
        job_id: its id.
        position: 1-based place in the queue.
        eta_s: estimated seconds until ready.
        cost: quota seconds reserved.
        remaining: quota seconds left today (None = unlimited).
        model: the model chosen.
        duration: seconds of audio per take.
        warnings: notes for the member (e.g. the attachment is silent).
    """

    job_id: str
    position: int
    eta_s: float | None
    cost: float
    remaining: float | None
    model: str
    duration: float
    warnings: tuple[str, ...] = ()


# The job's ``extra`` key of a personal request (JamRequest.personal).
PERSONAL = "personal"


def is_personal(job: Job) -> bool:
    """Whether a job was asked where jamgen is not installed in the server: it never posts in the channel."""
    return bool((job.extra or {}).get(PERSONAL))


class QueueFullError(UserInputError):
    """The queue holds as many jobs as the admin allows."""


class ServiceClosingError(UserInputError):
    """jamgen is shutting down and takes no new jobs."""


class NotYourJobError(UserInputError):
    """Members may only act on their own jobs."""


# No job has that id: one class, wherever it is noticed (the store or the service), under its service name too.
async def find_job(store: JobStore, job_id: str) -> Job:
    """A job by id, or a :class:`JobNotFoundError` that says there is none."""
    job = await store.get_job(job_id)
    if job is None:
        raise JobNotFoundError(job_id, f"There is no job with id {job_id}.")
    return job
