"""Plain dataclasses the store hands out and takes in (no SQL here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    """Where a job is in its life.

    ``queued -> running -> rendered -> delivered``; ``failed`` and ``cancelled`` end a job early.
    """

    QUEUED = "queued"
    RUNNING = "running"
    RENDERED = "rendered"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"


PENDING_STATES: frozenset[JobState] = frozenset({JobState.QUEUED, JobState.RUNNING})
FINAL_STATES: frozenset[JobState] = frozenset({JobState.DELIVERED, JobState.FAILED, JobState.CANCELLED})

# target state -> the states a job may come from
ALLOWED_FROM: dict[JobState, frozenset[JobState]] = {
    JobState.RUNNING: frozenset({JobState.QUEUED}),
    JobState.QUEUED: frozenset({JobState.RUNNING}),  # requeue after an interruption
    JobState.RENDERED: frozenset({JobState.RUNNING}),
    JobState.DELIVERED: frozenset({JobState.RENDERED}),
    JobState.FAILED: frozenset({JobState.QUEUED, JobState.RUNNING, JobState.RENDERED}),
    JobState.CANCELLED: frozenset({JobState.QUEUED, JobState.RUNNING, JobState.RENDERED}),
}


@dataclass(frozen=True)
class NewJob:
    """A job as submitted by the service; the store adds id, state, cost and times.

    Interaction tokens have no field here on purpose: they must never reach the disk.

    Args:
        user_id: the member who asked.
        guild_id: the server, or None in direct messages.
        channel_id: where the track is delivered.
        mode: how the takes are conditioned (``bot.engine.types.Mode`` value).
        model: registry model name.
        prompt: the text prompt ('' for none).
        params: the rest of the recipe (duration, sampling, input file paths …), JSON-serialisable.
        takes: how many takes.
        seed: explicit seed, or None.
        parent_id: the job this one remixes/continues, or None.
        session_id: the jam session it belongs to (future feature), or None.
        interaction_id: the slash-command interaction id (never its token).
        request_message_id: the message that asked (prefix command or reply), if any.
        reply_to_message_id: the message the delivery should reply to, if any.
        progress_message_id: the message that shows progress, if already sent.
        priority: higher runs sooner if the scheduler honours it (admins).
        extra: service bookkeeping, JSON-serialisable.
    """

    user_id: int
    guild_id: int | None
    channel_id: int
    mode: str
    model: str
    prompt: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    takes: int = 1
    seed: int | None = None
    parent_id: str | None = None
    session_id: str | None = None
    interaction_id: int | None = None
    request_message_id: int | None = None
    reply_to_message_id: int | None = None
    progress_message_id: int | None = None
    priority: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    """One stored job: its recipe, where to deliver it, its state and its charge.

    Args:
        id: 8-character id from an unambiguous alphabet (no 0/o/1/l/i).
        seq: queue order (submission order; a requeued job keeps its place).
        cost: quota seconds charged at submission.
        outputs: rendered file paths (emptied once retention deleted them).
        delivered_message_ids: the messages that carried the track.
        extra: service bookkeeping merged by ``update_job``/``mark_rendered``.
    """

    id: str
    seq: int
    user_id: int
    guild_id: int | None
    channel_id: int
    mode: str
    model: str
    prompt: str
    params: dict[str, Any]
    takes: int
    seed: int | None
    parent_id: str | None
    session_id: str | None
    state: JobState
    attempts: int
    error: str | None
    outputs: list[str]
    cost: float
    priority: int
    interaction_id: int | None
    request_message_id: int | None
    reply_to_message_id: int | None
    progress_message_id: int | None
    delivered_message_ids: list[int]
    extra: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    rendered_at: datetime | None
    delivered_at: datetime | None
    finished_at: datetime | None
    outputs_cleared_at: datetime | None

    @property
    def is_pending(self) -> bool:
        """Queued or running."""
        return self.state in PENDING_STATES

    @property
    def is_final(self) -> bool:
        """Delivered, failed or cancelled: nothing more will happen."""
        return self.state in FINAL_STATES


@dataclass(frozen=True)
class Submission:
    """A job just accepted, and what its member has left today after its charge (None: no limit)."""

    job: Job
    remaining: float | None


@dataclass(frozen=True)
class QuotaStatus:
    """A member's quota for the current UTC day.

    ``remaining = max(0, budget + granted - used)``; ``used`` is what today's debits
    minus refunds and resets add up to, ``granted`` what today's grants add up to.
    For unlimited members ``budget`` and ``remaining`` are ``math.inf``.

    Args:
        budget: daily budget in seconds.
        used: net seconds charged today.
        granted: one-off seconds granted today.
        remaining: seconds left today (never negative).
        resets_at: next 00:00 UTC.
        unlimited: admin or per-member unlimited flag.
        source: where the budget comes from (see ``bot.store.quota.resolve_budget``).
        day: the UTC day, ``YYYY-MM-DD``.
    """

    budget: float
    used: float
    granted: float
    remaining: float
    resets_at: datetime
    unlimited: bool
    source: str
    day: str


@dataclass(frozen=True)
class LedgerEntry:
    """One quota ledger row. ``amount`` is negative for debits, positive otherwise.

    Args:
        kind: ``debit``, ``refund``, ``grant`` or ``reset``.
        day: the UTC day the row counts against (a refund counts against its debit's day).
        job_id: the job for debits and refunds, None for grants and resets.
        actor_id: who granted/reset, if recorded.
    """

    id: int
    user_id: int
    guild_id: int | None
    day: str
    kind: str
    amount: float
    job_id: str | None
    actor_id: int | None
    note: str | None
    created_at: datetime


@dataclass(frozen=True)
class GuildSettings:
    """A server's own settings; None/empty means "use the global setting".

    Args:
        allowed_channel_ids: channels where jamgen answers (empty = everywhere).
        default_model: the server's default model.
        enabled_models: models members may pick (empty = every globally enabled model).
        max_duration: longest track in seconds.
        max_takes: most takes per request.
        remix_by_reply: whether replying to a track remixes it.
        default_budget: the daily budget in seconds for members without an override or tier.
        role_tiers: role id -> daily budget in seconds (the best tier a member holds applies).
        remix_mode: mode of a reply-to-remix without a prefix: melody, style or continuation.
    """

    guild_id: int
    allowed_channel_ids: tuple[int, ...] = ()
    default_model: str | None = None
    enabled_models: tuple[str, ...] = ()
    max_duration: int | None = None
    max_takes: int | None = None
    remix_by_reply: bool = True
    default_budget: float | None = None
    role_tiers: dict[int, float] = field(default_factory=dict)
    remix_mode: str = "melody"


@dataclass(frozen=True)
class BlockEntry:
    """One row of the block list.

    Args:
        kind: ``user`` or ``guild``.
        target_id: the blocked user or guild id.
        reason: the admin's note.
    """

    kind: str
    target_id: int
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class Recovery:
    """What start-up recovery found and did.

    Args:
        requeued: every job waiting to run after recovery, in queue order: the ones that were
            running when the bot stopped (put back) and the ones that never started.
        redeliver: rendered jobs whose delivery never finished.
        failed: running jobs that had used up their attempts; now failed and refunded.
        interrupted_ids: ids of the jobs that were running and went back to the queue.
    """

    requeued: list[Job]
    redeliver: list[Job]
    failed: list[Job]
    interrupted_ids: list[str]


@dataclass(frozen=True)
class Session:
    """A jam session: a thread where every take shares a tempo, a key and a meter.

    Args:
        id: 8 characters from the job id alphabet.
        guild_id: the server.
        channel_id: the text channel it was started in.
        thread_id: its thread; takes made there belong to it.
        owner_id: who started it.
        theme: what the jam is about (the thread's name).
        bpm: shared tempo, or None.
        key: shared key (e.g. "A minor"), or None.
        time_signature: shared meter (e.g. "4/4"), or None.
        model: default model of its takes, or None (the server's).
        budget: seconds of audio the whole jam may use (None = no jam budget; members' quotas still apply).
        state: ``open`` or ``ended``.
        header_message_id: the pinned header in the thread.
        extra: bookkeeping (the bounce, …), merged by ``update_session``.
    """

    id: str
    guild_id: int | None
    channel_id: int
    thread_id: int
    owner_id: int
    theme: str
    bpm: int | None
    key: str | None
    time_signature: str | None
    model: str | None
    budget: float | None
    state: str
    header_message_id: int | None
    extra: dict[str, Any]
    created_at: datetime
    ended_at: datetime | None

    @property
    def is_open(self) -> bool:
        """Whether takes made in its thread still join it."""
        return self.state == "open"
