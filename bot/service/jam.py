"""The jam service: submit, fair batching into the engine, rendering, delivery, recovery.

No Discord and no torch here. The Discord layer builds a :class:`JamRequest`,
calls :meth:`JamService.submit`, subscribes to progress and provides a
:class:`Deliverer`; the service does the rest and keeps every job in the
store from acceptance until delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bot import audio
from bot.audio.probe import check_size
from bot.config import Settings
from bot.engine.pool import EngineClaim, MemberHealth, as_pool
from bot.engine.registry import MODELS, ModelSpec, get_model_spec
from bot.engine.types import (
    Engine,
    EngineError,
    EngineHealth,
    GenerationCancelled,
    GenerationRequest,
    GenerationResult,
    Mode,
    ModelUnavailableError,
    Progress,
    SamplingParams,
)
from bot.engine.validation import (
    DISCORD_OPTIONS,
    MESSAGE_OPTIONS,
    continuation_cut_note,
    continuation_prompt_seconds,
    fit_style_to_clip,
)
from bot.errors import InternalError, JamgenError, UserInputError
from bot.service.progress import ProgressHub, UpdateCallback
from bot.service.queue import FairQueue, QueuedJob
from bot.service.requests import (
    AudioInput,
    JamRequest,
    JobNotFoundError,
    JobUpdate,
    NotYourJobError,
    Phase,
    QueueFullError,
    Receipt,
    ServiceClosingError,
)
from bot.service.sessions import join_session
from bot.store import GuildSettings, Job, JobState, JobStore, NewJob, QuotaStatus

log = logging.getLogger("jamgen.service")

NEEDS_AUDIO = {Mode.MELODY, Mode.STYLE, Mode.CONTINUATION}
# Renders (MP3, waveform, tempo) at once: one core stays free for the event loop and the engine's feeding.
RENDER_SLOTS = max(1, min(2, (os.cpu_count() or 1) - 1))
NO_ENGINE_MESSAGE = "No generation engine is reachable right now, so this take could not be made."


@dataclass(frozen=True)
class ServiceConfig:
    """The service's knobs (see bot/config.py for what each means)."""

    data_dir: Path
    max_batch: int = 4
    progress_interval: float = 5.0
    max_attempts: int = 2
    max_duration: int = 120
    default_duration: int = 10
    max_takes: int = 4
    max_prompt_length: int = 500
    daily_budget_seconds: int = 600
    max_pending_per_user: int = 3
    max_pending_per_guild: int = 20
    max_queue: int = 500
    shutdown_grace: float = 60.0
    delivery_retry_s: float = 900.0
    delivery_backoff_s: float = 1.0
    default_model: str = "small"
    enabled_models: tuple[str, ...] = ()
    debug_models: bool = False
    upload_limit_bytes: int = 10 * 1024 * 1024
    normalization: str = "loudness"
    loudness_target: float = -14.0
    admin_user_ids: tuple[int, ...] = ()
    audio_limits: audio.AudioLimits = field(default_factory=audio.AudioLimits)

    @classmethod
    def from_settings(cls, settings: Settings, *, on_gpu: bool = False) -> ServiceConfig:
        """Build from validated settings.

        Args:
            settings: the settings.
            on_gpu: whether the engine runs on a GPU (max_batch 0 means 8 there, 4 on CPU).
        """
        return cls(
            data_dir=settings.data_dir,
            max_batch=settings.max_batch or (8 if on_gpu else 4),
            progress_interval=settings.progress_interval,
            max_attempts=settings.max_attempts,
            max_duration=settings.max_duration,
            default_duration=settings.default_duration,
            max_takes=settings.max_takes,
            max_prompt_length=settings.max_prompt_length,
            daily_budget_seconds=settings.daily_budget_seconds,
            max_pending_per_user=settings.max_pending_per_user,
            max_pending_per_guild=settings.max_pending_per_guild,
            max_queue=settings.max_queue,
            shutdown_grace=settings.shutdown_grace,
            delivery_retry_s=settings.delivery_retry_minutes * 60,
            default_model=settings.default_model,
            enabled_models=settings.enabled_models,
            debug_models=settings.debug_models,
            upload_limit_bytes=int(settings.upload_limit_mb * 1024 * 1024),
            normalization=settings.normalization,
            loudness_target=settings.loudness_target,
            admin_user_ids=settings.admin_user_ids,
            audio_limits=audio.AudioLimits.from_settings(settings),
        )


@dataclass(frozen=True)
class RenderedTake:
    """One finished take, ready to post.

    Args:
        index: 0-based take number.
        path: the encoded file (MP3).
        waveform_path: PNG picture of the waveform.
        seed: seed it was made with.
        duration: seconds.
        bpm: estimated tempo.
        key: estimated key, if any.
        bitrate_kbps: MP3 bitrate chosen to fit the upload limit.
    """

    index: int
    path: Path
    waveform_path: Path | None
    seed: int
    duration: float
    bpm: float | None
    key: str | None
    bitrate_kbps: int | None


@dataclass(frozen=True)
class Delivery:
    """What the Discord layer posts for a finished job.

    Args:
        job: the job as stored.
        takes: its rendered takes.
        recipe: every parameter, for the embed and the ℹ️ Recipe button.
        generation_s: seconds the engine spent on it.
        retry: an earlier try may already have posted it (a retry, or a redelivery after a restart):
            the deliverer looks for that post before posting again, so a track is never posted twice.
    """

    job: Job
    takes: list[RenderedTake]
    recipe: dict[str, Any]
    generation_s: float
    retry: bool = False


@dataclass(frozen=True)
class ServiceStatus:
    """The service at a glance (for /jam status and doctor).

    Args:
        engine: the engine's health.
        queued: jobs waiting.
        running: jobs in the running batch.
        uptime_s: seconds since start.
        recent_failures: (job id, message) of the last failures.
        engines: every engine of the pool (where, device, models, busy, restarts); one for a single engine.
    """

    engine: EngineHealth
    queued: int
    running: int
    uptime_s: float
    recent_failures: list[tuple[str, str]]
    engines: list[MemberHealth] = field(default_factory=list)


class DeliveryError(InternalError):
    """Posting to Discord failed. ``retriable``: a later try may work (5xx, 429, a dropped connection).

    Args:
        message: what went wrong, for the member (e.g. "jamgen may not attach files in #music").
        retriable: whether to try again with backoff.
    """

    def __init__(self, message: str, *, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable


def _reason(exc: BaseException) -> str:
    return exc.message if isinstance(exc, DeliveryError) else "an unexpected error."


class Deliverer(Protocol):
    """Posts results to Discord (implemented by the Discord layer)."""

    async def deliver(self, delivery: Delivery) -> list[int]:
        """Post the takes; return the ids of the messages posted.

        Raise :class:`DeliveryError` (retriable or not); OSError/TimeoutError count as retriable.
        """
        ...

    async def notify_failure(self, job: Job, message: str) -> None:
        """Tell the member a job failed after the interaction ended (restart, delivery given up)."""
        ...


class JamService:
    """Ties store, engine and audio together: the heart of jamgen.

    Args:
        config: knobs.
        store: the open job store.
        engine: the engine (worker client, or a fake in tests).
        deliverer: posts results.
        clock: monotonic clock for throttling and ETAs.
    """

    def __init__(
        self,
        config: ServiceConfig,
        store: JobStore,
        engine: Engine,
        deliverer: Deliverer,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.store = store
        self.engine = engine
        # The scheduler hands batches to engines through a pool (a plain engine is a pool of one).
        self._pool = as_pool(engine)
        self._batches: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self.deliverer = deliverer
        self._clock = clock
        self.queue = FairQueue(config.max_batch)
        self.progress = ProgressHub(config.progress_interval, clock)
        self._wakeup = asyncio.Event()
        self._accepting = False
        self._scheduler: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._running: dict[str, QueuedJob] = {}
        self._running_since = 0.0
        self._running_total_steps = 0
        self._running_done_steps = 0
        self._cancel_requested: set[str] = set()
        self._step_times: dict[tuple[str, int], float | None] = {}
        self._render_slots = asyncio.Semaphore(RENDER_SLOTS)
        self._stopping = False
        self._started_at = clock()
        self.generate_calls = 0
        self.recent_failures: list[tuple[str, str]] = []

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Recover jobs from the store and start scheduling."""
        for folder in (self.jobs_dir, self.outputs_dir, self.staging_dir):
            folder.mkdir(parents=True, exist_ok=True)
        # librosa compiles its kernels on first use while holding the GIL; do it before the loop is busy.
        noise = np.random.default_rng(0).standard_normal((1, 16000)).astype(np.float32) * 0.1
        await audio.analyse(noise, 16000)
        recovery = await self.store.recover(self.config.max_attempts)
        for job in recovery.requeued:
            self.queue.push(self._queued(job))
            log.info("job %s re-queued after restart (attempt %d)", job.id, job.attempts + 1)
        for job in recovery.failed:
            log.warning("job %s failed after %d attempts; refunded", job.id, job.attempts)
            self._spawn(self._notify_failure(job, "jamgen restarted too many times while making this take; refunded."))
        for job in recovery.redeliver:
            self._spawn(self._redeliver(job))
        self._accepting = True
        self._scheduler = asyncio.create_task(self._schedule_forever(), name="jamgen-scheduler")
        self._wakeup.set()

    async def close(self) -> None:
        """Stop taking jobs, let the running batch finish within the grace period, keep the rest queued."""
        self._accepting = False
        if self._scheduler is not None:
            self._stopping = True
            self._stop.set()
            self._wakeup.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._scheduler), self.config.shutdown_grace)
            except TimeoutError:
                log.warning("running batch did not finish within %.0f s; it stays queued", self.config.shutdown_grace)
                running = [(job_id, queued.takes) for job_id, queued in self._running.items()]
                # The scheduler stops first, so the engine's "cancelled" answers cannot mark the jobs
                # cancelled: they stay running in the store and the next start queues them again.
                self._scheduler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._scheduler
                for job_id, takes in running:
                    for take in range(takes):
                        await self.engine.cancel(f"{job_id}:{take}")
            self._scheduler = None
        if self._background:
            await asyncio.wait(list(self._background), timeout=self.config.shutdown_grace)
        for task in list(self._background):
            task.cancel()
        await self.progress.drain()

    @property
    def jobs_dir(self) -> Path:
        """Inputs of each job."""
        return self.config.data_dir / "jobs"

    @property
    def outputs_dir(self) -> Path:
        """Rendered tracks of each job."""
        return self.config.data_dir / "outputs"

    @property
    def staging_dir(self) -> Path:
        """Attachments being checked before their job exists."""
        return self.config.data_dir / "staging"

    # ------------------------------------------------------------------ submit
    def resolve_model(self, requested: str | None, guild_default: str | None, enabled: Sequence[str]) -> ModelSpec:
        """The model a request gets, or a friendly refusal.

        Args:
            requested: the member's choice.
            guild_default: the guild's default model.
            enabled: models the guild allows (empty = all the admin allows).
        """
        name = requested or guild_default or self.config.default_model
        spec = get_model_spec(name)
        if name not in self.available_models(enabled):
            raise ModelUnavailableError(f"The model '{name}' is not enabled on this server.")
        return spec

    def available_models(self, guild_enabled: Sequence[str] = ()) -> list[str]:
        """Models members may pick here, in registry order."""
        names = [n for n, s in MODELS.items() if not s.debug or self.config.debug_models]
        if self.config.enabled_models:
            names = [n for n in names if n in self.config.enabled_models]
        if guild_enabled:
            names = [n for n in names if n in guild_enabled]
        return names

    async def submit(self, request: JamRequest) -> Receipt:
        """Validate, decode the attachment, reserve quota, persist and enqueue a job.

        Answers at once: nothing here waits on the GPU.

        Args:
            request: what the member asked for.

        Raises:
            UserInputError: a subclass saying what is wrong (quota, caps, model, input).
        """
        if not self._accepting:
            raise ServiceClosingError("jamgen is restarting and takes no new jobs right now; try again in a minute.")
        # Inside a jam's thread the take joins the jam: its tempo/key/meter and default model (bot/service/sessions.py).
        request, home_channel_id = await join_session(
            self.store, request, max_prompt_length=self.config.max_prompt_length
        )
        guild = await self.store.get_guild_settings(request.guild_id) if request.guild_id else None
        if guild and guild.allowed_channel_ids and home_channel_id not in guild.allowed_channel_ids:
            where = ", ".join(f"<#{c}>" for c in guild.allowed_channel_ids[:5])
            raise UserInputError(f"jamgen doesn't play in this channel. Try {where}.")
        spec = self.resolve_model(
            request.model, guild.default_model if guild else None, guild.enabled_models if guild else ()
        )
        mode = Mode.UNCONDITIONAL if request.mode == Mode.TEXT and not request.prompt.strip() else request.mode
        if not spec.supports(mode):
            able = ", ".join(n for n in self.available_models() if get_model_spec(n).supports(mode)) or "none here"
            raise ModelUnavailableError(f"The model '{spec.name}' cannot do {mode.value}. Models that can: {able}.")
        max_duration = (
            min(self.config.max_duration, guild.max_duration or self.config.max_duration)
            if guild
            else self.config.max_duration
        )
        duration = float(request.duration or min(self.config.default_duration, max_duration))
        if not 1 <= duration <= max_duration:
            raise UserInputError(f"Duration must be between 1 and {max_duration} seconds; you asked for {duration:g}.")
        max_takes = (
            min(self.config.max_takes, guild.max_takes or self.config.max_takes) if guild else self.config.max_takes
        )
        if not 1 <= request.takes <= max_takes:
            raise UserInputError(f"You can ask for 1 to {max_takes} takes at once.")
        if len(request.prompt) > self.config.max_prompt_length:
            raise UserInputError(
                f"Your prompt is {len(request.prompt)} characters long; the limit is {self.config.max_prompt_length}. "
                "Shorter prompts work better anyway: genre, instruments, mood, tempo."
            )
        if mode in NEEDS_AUDIO and request.audio is None:
            raise UserInputError(f"{mode.value.capitalize()} needs an audio file or a take to work from.")
        if len(self.queue) + len(self._running) >= self.config.max_queue:
            raise QueueFullError("The queue is full right now. Please try again in a few minutes.")

        staged, warnings, excerpt_s = await self._stage_input(request, mode, spec, duration)
        if mode == Mode.STYLE:
            # A clip shorter than the excerpt length gives all it has (the one rule, bot/engine/validation.py).
            names = DISCORD_OPTIONS if request.interaction_id is not None else MESSAGE_OPTIONS  # a reply has none
            fitted = fit_style_to_clip(request.sampling, excerpt_s, names)
            request = replace(request, sampling=fitted.sampling)
            warnings += [fitted.note] if fitted.note else []
        cost = round(duration * spec.cost_weight * request.takes, 3)
        params = self._params(request, mode, spec, duration)
        if mode == Mode.CONTINUATION:
            # The prompt is kept at the start of the output; ``duration`` counts the new music only.
            params["prompt_seconds"] = round(excerpt_s, 3)
            if duration + excerpt_s > self.config.max_duration:
                if staged is not None:
                    shutil.rmtree(staged.parent, ignore_errors=True)
                raise UserInputError(
                    f"With the {excerpt_s:.0f} s it continues from, the track would be {duration + excerpt_s:.0f} s "
                    f"long; the limit is {self.config.max_duration} s. Ask for at most "
                    f"{max(1, int(self.config.max_duration - excerpt_s))} s ({DISCORD_OPTIONS.duration})."
                )
        try:
            job = await self.store.submit_job(
                NewJob(
                    user_id=request.user_id,
                    guild_id=request.guild_id,
                    channel_id=request.channel_id,
                    interaction_id=request.interaction_id,
                    reply_to_message_id=request.reply_to_message_id,
                    mode=mode.value,
                    model=spec.name,
                    prompt=request.prompt,
                    params=params,
                    takes=request.takes,
                    seed=request.seed,
                    parent_id=request.parent_id or (request.audio.from_job if request.audio else None),
                    session_id=request.session_id,
                    priority=1 if self._is_admin(request) else 0,
                ),
                cost=cost,
                default_budget=self.config.daily_budget_seconds,
                max_pending_user=self.config.max_pending_per_user,
                max_pending_guild=self.config.max_pending_per_guild,
                max_queue=self.config.max_queue,
                role_ids=request.role_ids,
                is_admin=self._is_admin(request),
            )
        except BaseException:
            if staged is not None:
                shutil.rmtree(staged.parent, ignore_errors=True)
            raise
        if staged is not None:
            job = await self._adopt_input(job, staged)
        self.queue.push(self._queued(job))
        self._log_state(job, "queued", cost=cost)
        self._wakeup.set()
        position = self.position(job.id) or 1
        status = await self.store.quota_status(request.user_id, request.guild_id, request.role_ids)
        return Receipt(
            job_id=job.id,
            position=position,
            eta_s=await self.eta_for_position(position, spec.name, duration),
            cost=cost,
            remaining=None if status.unlimited else status.remaining,
            model=spec.name,
            duration=duration,
            warnings=tuple(warnings),
        )

    def _is_admin(self, request: JamRequest) -> bool:
        return request.user_id in self.config.admin_user_ids

    def _params(self, request: JamRequest, mode: Mode, spec: ModelSpec, duration: float) -> dict[str, Any]:
        s = request.sampling
        params: dict[str, Any] = {
            "duration": duration,
            "top_k": s.top_k,
            "top_p": s.top_p,
            "temperature": s.temperature,
            "cfg_coef": s.cfg_coef,
            "use_sampling": s.use_sampling,
        }
        if mode == Mode.STYLE:
            params |= {"cfg_coef_beta": s.cfg_coef_beta, "eval_q": s.eval_q, "excerpt_length": s.excerpt_length}
        if request.audio is not None:
            params |= {
                "audio_start": request.audio.start,
                "audio_end": request.audio.end,
                "audio_from_job": request.audio.from_job,
                "audio_take": request.audio.take,
                "audio_filename": request.audio.filename[:100],
            }
        params["upload_limit_bytes"] = request.upload_limit_bytes or self.config.upload_limit_bytes
        return params

    async def _stage_input(
        self, request: JamRequest, mode: Mode, spec: ModelSpec, duration: float
    ) -> tuple[Path | None, list[str], float]:
        """Check the conditioning audio before anything is charged.

        Returns:
            the staged attachment (None for a take jamgen made), warnings, and the excerpt's seconds.
        """
        if request.audio is None or mode not in NEEDS_AUDIO:
            return None, [], 0.0
        source = request.audio
        token = uuid.uuid4().hex[:12]
        folder = self.staging_dir / token
        folder.mkdir(parents=True, exist_ok=True)
        try:
            warnings: list[str] = []
            if source.data is not None:
                saved = await audio.save_attachment(source.data, folder, token, self.config.audio_limits)
                path = saved.path
                warnings += saved.warnings
            else:
                path = await self._parent_output(source.from_job, source.take)
            clip, available_s = await self._load_excerpt(path, mode, spec, duration, request.sampling, source)
            clip_s = clip.shape[-1] / spec.sample_rate
            if mode == Mode.CONTINUATION:
                note = continuation_cut_note(spec, available_s, clip_s)
                warnings += [note] if note else []
            return (path if source.data is not None else None), warnings, clip_s
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    async def _parent_output(self, job_id: str | None, take: int) -> Path:
        parent = await self.store.get_job(job_id) if job_id else None
        if parent is None:
            raise JobNotFoundError(f"There is no take with id {job_id}.")
        if parent.state not in (JobState.RENDERED, JobState.DELIVERED) or take >= len(parent.outputs):
            raise UserInputError(f"Take {job_id} has no audio to work from yet.")
        path = Path(parent.outputs[take])
        if not path.exists():
            raise UserInputError(f"The audio of take {job_id} has been cleaned up; attach the file instead.")
        return path

    async def _adopt_input(self, job: Job, staged: Path) -> Job:
        folder = self.jobs_dir / job.id
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{job.id}{staged.suffix}"
        staged.replace(final)
        shutil.rmtree(staged.parent, ignore_errors=True)
        return await self.store.update_job(job.id, params={**job.params, "input_path": str(final)})

    async def _load_excerpt(
        self,
        path: Path,
        mode: Mode,
        spec: ModelSpec,
        duration: float,
        sampling: SamplingParams,
        source: AudioInput,
    ) -> tuple[np.ndarray, float]:
        """Decode a file and cut the part the mode conditions on; also the seconds it was cut from."""
        wav = await audio.decode(path, spec.sample_rate, spec.channels, self.config.audio_limits)
        sr = spec.sample_rate
        if mode == Mode.MELODY:
            return audio.melody_excerpt(wav, sr, duration, start_s=source.start or 0.0).audio, wav.shape[-1] / sr
        if mode == Mode.STYLE:
            clip = audio.style_excerpt(wav, sr, start_s=source.start, length_s=sampling.excerpt_length)
            return clip.audio, wav.shape[-1] / sr
        # Continuation: the chosen window of the file (default all of it), then the last seconds that fit the model.
        first = round((source.start or 0.0) * sr)
        last = wav.shape[-1] if source.end is None else round(source.end * sr)
        if last - first < sr:
            raise UserInputError("Continuation needs at least 1 s of audio between start and end.")
        window = wav[:, first:last]
        prompt = audio.continuation_prompt(window, sr, seconds=continuation_prompt_seconds(spec))
        return prompt.audio, window.shape[-1] / sr

    def _queued(self, job: Job) -> QueuedJob:
        sampling = self._sampling(job)
        shape = (job.model, job.mode, round(job.params["duration"], 3), job.params.get("prompt_seconds"), sampling)
        # A job that is being retried runs alone: if it is what broke its batch (a crash, a hang, out of
        # memory), it cannot take the members it was batched with down with it a second time.
        key = None if job.seed is not None or job.attempts > 0 else shape
        return QueuedJob(job.id, job.user_id, job.takes, key, job.priority)

    @staticmethod
    def _sampling(job: Job) -> SamplingParams:
        p = job.params
        return SamplingParams(
            top_k=p["top_k"],
            top_p=p["top_p"],
            temperature=p["temperature"],
            cfg_coef=p["cfg_coef"],
            use_sampling=p["use_sampling"],
            cfg_coef_beta=p.get("cfg_coef_beta"),
            eval_q=p.get("eval_q", 3),
            excerpt_length=p.get("excerpt_length", 3.0),
        )

    # ------------------------------------------------------------------ queries
    def position(self, job_id: str) -> int | None:
        """1-based queue place; running jobs count as 0."""
        if job_id in self._running:
            return 0
        return self.queue.position(job_id)

    async def eta_for_position(self, position: int, model: str, duration: float) -> float | None:
        """Rough seconds until a job at ``position`` is ready (None until a first measurement exists)."""
        per_batch = await self._batch_seconds(model, duration, self.config.max_batch)
        if per_batch is None:
            return None
        batches_ahead = (max(position, 1) - 1) // self.config.max_batch + 1
        running_left = self._running_left_s()
        return running_left + batches_ahead * per_batch

    async def _batch_seconds(self, model: str, duration: float, batch: int) -> float | None:
        step = await self._step_time(model, batch)
        if step is None:
            # A bigger batch costs about as much per step as a batch of one (memory-bound decoding).
            step = await self._step_time(model, 1)
        if step is None:
            return None
        return step * duration * get_model_spec(model).frame_rate

    async def _step_time(self, model: str, batch: int) -> float | None:
        """Seconds per decoding step, cached in memory: submits should not queue behind store writes."""
        key = (model, batch)
        if key not in self._step_times:
            self._step_times[key] = await self.store.step_time(model, batch)
        return self._step_times[key]

    def _running_left_s(self) -> float:
        if not self._running or self._running_done_steps <= 0:
            return 0.0
        elapsed = self._clock() - self._running_since
        rate = elapsed / self._running_done_steps
        return max(0.0, (self._running_total_steps - self._running_done_steps) * rate)

    async def job(self, job_id: str) -> Job:
        """A job by id, or a friendly JobNotFoundError."""
        job = await self.store.get_job(job_id)
        if job is None:
            raise JobNotFoundError(f"There is no job with id {job_id}.")
        return job

    def subscribe(self, job_id: str, callback: UpdateCallback) -> Callable[[], None]:
        """Receive a job's updates (queue place, progress, done/failed); returns an unsubscribe function.

        Args:
            job_id: the job.
            callback: sync or async function taking a :class:`JobUpdate`.
        """
        return self.progress.subscribe(job_id, callback)

    def uptime_s(self) -> float:
        """Seconds since the service was built."""
        return self._clock() - self._started_at

    # ------------------------------------------------------------------ cancel
    async def cancel(self, job_id: str, user_id: int, *, is_admin: bool = False) -> Job:
        """Cancel a queued or running job; queued ones are refunded at once.

        Args:
            job_id: the job.
            user_id: who asks (must own the job unless ``is_admin``).
            is_admin: guild admins may cancel anyone's job.
        """
        job = await self.job(job_id)
        if job.user_id != user_id and not is_admin:
            raise NotYourJobError("You can only cancel your own jobs.")
        if self.queue.remove(job_id):
            job = await self.store.mark_cancelled(job_id)
            self._log_state(job, "cancelled while queued")
            self.progress.publish(JobUpdate(job_id, Phase.CANCELLED, message="Cancelled; your quota was refunded."))
            self._publish_positions()
            return job
        if job_id in self._running:
            self._cancel_requested.add(job_id)
            for take in range(job.takes):
                await self.engine.cancel(f"{job_id}:{take}")
            return job
        raise UserInputError(f"Job {job_id} is already {job.state.value}; there is nothing to cancel.")

    # ------------------------------------------------------------------ scheduling
    async def _schedule_forever(self) -> None:
        try:
            while not self._stopping:
                if not self.queue:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                # An engine is promised before a batch leaves the queue: with N engines N batches run,
                # and the fair order alone decides which batch goes next, across the whole pool.
                claim = await self._claim_engine_or_stop()
                if claim is None:
                    continue
                if self._stopping or not self.queue:
                    claim.release()
                    continue
                batch = self.queue.next_batch()
                # Counted as running from here, so a cancel in the next instants reaches the engine path.
                self._running.update((queued.job_id, queued) for queued in batch)
                self._publish_positions()
                task = asyncio.create_task(self._run_batch_logged(batch, claim), name="jamgen-batch")
                self._batches.add(task)
                task.add_done_callback(self._batches.discard)
            # Stopping: the running batches finish (close() limits how long).
            while self._batches:
                await asyncio.wait(set(self._batches))
        except asyncio.CancelledError:
            # close() gave up waiting: the batches stop too and their jobs stay running in the store.
            for task in list(self._batches):
                task.cancel()
            await asyncio.gather(*self._batches, return_exceptions=True)
            raise

    async def _claim_engine_or_stop(self) -> EngineClaim | None:
        """A claim on a free engine, or None when the service stops first."""
        claiming = asyncio.ensure_future(self._pool.claim())
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({claiming, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not claiming.done():
                claiming.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await claiming
        if claiming.cancelled():
            return None
        return claiming.result()

    async def _run_batch_logged(self, batch: list[QueuedJob], claim: EngineClaim) -> None:
        try:
            await self._run_batch(batch, claim)  # releases the claim itself, before settling
        except Exception:
            log.exception("batch failed unexpectedly")
        finally:
            self._wakeup.set()  # settling may have put jobs back in the queue

    async def _run_batch(self, batch: list[QueuedJob], claim: EngineClaim) -> None:
        jobs: list[Job] = []
        requests: list[GenerationRequest] = []
        try:
            for job in await self.store.mark_batch_running([queued.job_id for queued in batch]):
                try:
                    job_requests = await self._requests_for(job)
                except JamgenError as exc:
                    self._running.pop(job.id, None)
                    await self._fail(job, exc.message, refund=True)
                    continue
                self._log_state(job, "running", attempt=job.attempts, batch=len(batch))
                self.progress.publish(JobUpdate(job.id, Phase.RUNNING, position=0))
                jobs.append(job)
                requests.extend(job_requests)
            if not requests:
                return
            if not claim.available:
                # No engine came within the pool's wait (a Ray cluster out of reach): a clear failure,
                # refunded, rather than members waiting without end; the bot keeps serving meanwhile.
                for job in jobs:
                    await self._fail(job, NO_ENGINE_MESSAGE, refund=True)
                return
            self._running_since = self._clock()
            self._running_done_steps = 0
            self._running_total_steps = 0
            calls = await self._generate(jobs, requests, claim)
        finally:
            # The engine takes the next batch while this one is settled.
            claim.release()
            for queued in batch:
                self._running.pop(queued.job_id, None)
        # One measurement per engine call, stored off the scheduling path (a batch shares one model).
        self._spawn(self._record_step_times(jobs[0].model, calls))
        results = [result for call in calls for result in call]
        by_job: dict[str, list[GenerationResult | EngineError]] = {}
        for request, result in zip(requests, results, strict=True):
            by_job.setdefault(request.request_id.split(":")[0], []).append(result)
        for job in jobs:
            await self._settle(job, by_job.get(job.id, []), shared=len(jobs) > 1)

    async def _generate(
        self, jobs: list[Job], requests: list[GenerationRequest], claim: EngineClaim
    ) -> list[list[GenerationResult | EngineError]]:
        """Run the requests on the claimed engine: one call for a batch, one per take for seeded jobs."""
        progress_of: dict[str, Progress] = {}

        def on_progress(p: Progress) -> None:
            progress_of[p.request_id] = p
            self._running_total_steps = sum(x.total_steps for x in progress_of.values())
            self._running_done_steps = sum(x.done_steps for x in progress_of.values())
            job_id = p.request_id.split(":")[0]
            takes = [x for rid, x in progress_of.items() if rid.startswith(job_id + ":")]
            fraction = sum(x.fraction for x in takes) / max(1, len(takes))
            self.progress.publish(
                JobUpdate(job_id, Phase.RUNNING, position=0, fraction=fraction, eta_s=self._running_left_s())
            )

        calls: list[list[GenerationResult | EngineError]] = []
        for call in [[r] for r in requests] if any(job.seed is not None for job in jobs) else [requests]:
            self.generate_calls += 1
            calls.append(list(await claim.generate(call, on_progress)))
        return calls

    async def _requests_for(self, job: Job) -> list[GenerationRequest]:
        mode = Mode(job.mode)
        spec = get_model_spec(job.model)
        wav = None
        if mode in NEEDS_AUDIO:
            p = job.params
            path = (
                Path(p["input_path"])
                if p.get("input_path")
                else await self._parent_output(p.get("audio_from_job"), p.get("audio_take", 0))
            )
            source = AudioInput(start=p.get("audio_start"), end=p.get("audio_end"))
            wav, _ = await self._load_excerpt(path, mode, spec, p["duration"], self._sampling(job), source)
        return [
            GenerationRequest(
                request_id=f"{job.id}:{take}",
                model=job.model,
                mode=mode,
                prompt=job.prompt,
                duration=job.params["duration"]
                + (wav.shape[-1] / spec.sample_rate if mode == Mode.CONTINUATION else 0),
                sampling=self._sampling(job),
                seed=None if job.seed is None else job.seed + take,
                audio=wav,
                audio_sample_rate=spec.sample_rate if wav is not None else None,
            )
            for take in range(job.takes)
        ]

    async def _record_step_times(self, model: str, calls: list[list[GenerationResult | EngineError]]) -> None:
        for call in calls:
            # The results of one call share its batch size, wall time and step count.
            made = next((r for r in call if isinstance(r, GenerationResult)), None)
            if made is not None:
                self._step_times[(model, made.batch_size)] = await self.store.record_step_time(
                    model, made.batch_size, made.elapsed_s / max(1, made.steps)
                )

    async def _settle(self, job: Job, results: list[GenerationResult | EngineError], *, shared: bool = False) -> None:
        cancelled = job.id in self._cancel_requested
        self._cancel_requested.discard(job.id)
        errors = [r for r in results if isinstance(r, EngineError)]
        if cancelled or any(isinstance(e, GenerationCancelled) for e in errors):
            job = await self.store.mark_cancelled(job.id)
            self._log_state(job, "cancelled while running")
            self.progress.publish(JobUpdate(job.id, Phase.CANCELLED, message="Cancelled; nothing was charged."))
            return
        if errors:
            error = errors[0]
            # A call shared with other jobs that failed cannot say whose request broke it: each gets
            # another try, alone (see _queued), so one poisoned request does not sink the others.
            retry = error.retriable or (shared and not error.user_error)
            if retry and job.attempts < self.config.max_attempts:
                job = await self.store.requeue(job.id)
                self.queue.push(self._queued(job))
                self._log_state(job, "re-queued", reason=error.message)
                self.progress.publish(JobUpdate(job.id, Phase.QUEUED, position=self.position(job.id)))
                return
            await self._fail(job, error.message, refund=True)
            return
        good = [r for r in results if isinstance(r, GenerationResult)]
        self.progress.publish(JobUpdate(job.id, Phase.RENDERING, position=0, fraction=1.0))
        self._spawn(self._render_and_deliver(job, good))

    async def _fail(self, job: Job, message: str, *, refund: bool, notice: str | None = None) -> None:
        """Mark ``job`` failed and tell its member: through their progress message when someone here
        watches it, else (a job recovered after a restart) in the channel; ``notice`` is always posted."""
        job = await self.store.mark_failed(job.id, message, refund=refund)
        self.recent_failures = [*self.recent_failures[-19:], (job.id, message)]
        self._log_state(job, "failed", reason=message)
        watched = job.id in self.progress.watched()
        told = f"{message} Your quota was refunded." if refund else message
        self.progress.publish(JobUpdate(job.id, Phase.FAILED, message=told))
        if notice is not None:
            await self._notify_failure(job, notice)
        elif not watched:
            self._spawn(self._notify_failure(job, told))

    # ------------------------------------------------------------------ render + deliver
    async def _render_and_deliver(self, job: Job, results: list[GenerationResult]) -> None:
        try:
            # Encoding and analysis are CPU work: a few at a time keeps the loop and the machine responsive.
            async with self._render_slots:
                takes = await self._render(job, results)
        except JamgenError as exc:
            await self._fail(job, exc.message, refund=True)
            return
        except Exception:
            log.exception("rendering job %s failed", job.id)
            await self._fail(job, "Something went wrong while encoding your track.", refund=True)
            return
        job = await self.store.mark_rendered(
            job.id,
            [str(t.path) for t in takes],
            {"takes": [self._take_record(t) for t in takes], "generation_s": max(r.elapsed_s for r in results)},
        )
        self._log_state(job, "rendered")
        await self._deliver(job, takes)

    @staticmethod
    def _take_record(take: RenderedTake) -> dict[str, Any]:
        return {
            "index": take.index,
            "path": str(take.path),
            "waveform": str(take.waveform_path) if take.waveform_path else None,
            "seed": take.seed,
            "duration": take.duration,
            "bpm": take.bpm,
            "key": take.key,
            "bitrate_kbps": take.bitrate_kbps,
        }

    async def _render(self, job: Job, results: list[GenerationResult]) -> list[RenderedTake]:
        folder = self.outputs_dir / job.id
        folder.mkdir(parents=True, exist_ok=True)
        limit = int(job.params.get("upload_limit_bytes") or self.config.upload_limit_bytes)
        # Every take must fit in one message, so each gets its share of the limit.
        per_take = limit // max(1, len(results)) if len(results) > 1 else limit
        takes = []
        for index, result in enumerate(results):
            recipe = self.recipe(job, seed=result.seed, take=index)
            encoded = await audio.encode(
                result.audio,
                result.sample_rate,
                folder / f"{job.id}-take{index + 1}.mp3",
                fmt="mp3",
                tags=audio.TrackTags(title=job.prompt or f"{job.mode} take", recipe=recipe),
                byte_limit=per_take,
                normalization=self.config.normalization,
                loudness_target=self.config.loudness_target,
            )
            picture = folder / f"{job.id}-take{index + 1}.png"
            await audio.waveform_png(result.audio, result.sample_rate, picture)
            analysis = await audio.analyse(result.audio, result.sample_rate)
            takes.append(
                RenderedTake(
                    index=index,
                    path=encoded.path,
                    waveform_path=picture,
                    seed=result.seed,
                    duration=result.duration,
                    bpm=analysis.bpm,
                    key=analysis.key,
                    bitrate_kbps=encoded.bitrate_kbps,
                )
            )
        return takes

    def recipe(self, job: Job, *, seed: int | None = None, take: int | None = None) -> dict[str, Any]:
        """Everything needed to make the take again."""
        params = {
            k: v for k, v in job.params.items() if k not in ("input_path", "upload_limit_bytes") and v is not None
        }
        recipe: dict[str, Any] = {
            "job_id": job.id,
            "parent_id": job.parent_id,
            "model": job.model,
            "mode": job.mode,
            "prompt": job.prompt,
            "takes": job.takes,
            **params,
        }
        if seed is not None:
            recipe["seed"] = seed
        if take is not None:
            recipe["take"] = take + 1
        return recipe

    def _delivery_from_store(self, job: Job) -> Delivery:
        records = (job.extra or {}).get("takes", [])
        takes = [
            RenderedTake(
                index=r["index"],
                path=Path(r["path"]),
                waveform_path=Path(r["waveform"]) if r.get("waveform") else None,
                seed=r["seed"],
                duration=r["duration"],
                bpm=r.get("bpm"),
                key=r.get("key"),
                bitrate_kbps=r.get("bitrate_kbps"),
            )
            for r in records
        ]
        return Delivery(job, takes, self.recipe(job), (job.extra or {}).get("generation_s", 0.0))

    async def _redeliver(self, job: Job) -> None:
        delivery = self._delivery_from_store(job)
        if not delivery.takes or not all(t.path.exists() for t in delivery.takes):
            await self._fail(job, "The finished track was lost before it could be posted.", refund=True)
            return
        # The previous process may have posted it and died before recording that: look first.
        await self._deliver(job, delivery.takes, resumed=True)

    async def _deliver(self, job: Job, takes: list[RenderedTake], *, resumed: bool = False) -> None:
        """Post with retries and backoff for ``delivery_retry_s``; then give up loudly, refunded."""
        job = await self.store.get_job(job.id) or job
        delivery = Delivery(job, takes, self.recipe(job), (job.extra or {}).get("generation_s", 0.0))
        deadline = self._clock() + self.config.delivery_retry_s
        delay = self.config.delivery_backoff_s
        attempt = 0
        while True:
            attempt += 1
            try:
                # A failed try (a timeout, a dropped connection) may still have posted: retries look first.
                message_ids = await self.deliverer.deliver(replace(delivery, retry=resumed or attempt > 1))
                break
            except Exception as exc:
                retriable = exc.retriable if isinstance(exc, DeliveryError) else isinstance(exc, OSError | TimeoutError)
                if not retriable:
                    log.error("job %s: delivery failed and cannot succeed by retrying", job.id, exc_info=exc)
                    await self._fail(
                        job,
                        "jamgen could not post your track here.",
                        refund=True,
                        notice=f"jamgen could not post your track: {_reason(exc)} Refunded.",
                    )
                    return
                if self._clock() + delay > deadline:
                    log.error("job %s: delivery failed for good after %d tries: %s", job.id, attempt, exc)
                    await self._fail(
                        job,
                        "jamgen could not post your track to Discord.",
                        refund=True,
                        notice="jamgen could not post your track; your quota was refunded.",
                    )
                    return
                log.warning("job %s: delivery try %d failed (%s); retrying in %.0f s", job.id, attempt, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
        job = await self.store.mark_delivered(job.id, message_ids)
        self._log_state(job, "delivered", messages=len(message_ids))
        self.progress.publish(JobUpdate(job.id, Phase.DONE, fraction=1.0))

    async def _notify_failure(self, job: Job, message: str) -> None:
        try:
            await self.deliverer.notify_failure(job, message)
        except Exception:
            log.exception("could not tell the member about job %s", job.id)

    # ------------------------------------------------------------------ facade for the Discord layer
    async def models_for_guild(self, guild_id: int | None, mode: Mode | None = None) -> list[str]:
        """Models members of a guild may pick (optionally only those able to do ``mode``)."""
        guild = await self.store.get_guild_settings(guild_id) if guild_id else None
        names = self.available_models(guild.enabled_models if guild else ())
        return [n for n in names if mode is None or get_model_spec(n).supports(mode)]

    async def default_model_for(self, guild_id: int | None, mode: Mode) -> str | None:
        """The guild's default model when it can do ``mode``, else the first enabled model that can."""
        guild = await self.store.get_guild_settings(guild_id) if guild_id else None
        preferred = (guild.default_model if guild else None) or self.config.default_model
        able = await self.models_for_guild(guild_id, mode)
        if preferred in able:
            return preferred
        real = [n for n in able if not get_model_spec(n).debug]
        return (real or able or [None])[0]

    def check_attachment_size(self, size: int) -> None:
        """Refuse an attachment by its declared size before downloading it."""
        check_size(size, self.config.audio_limits)

    async def remember_progress_message(self, job_id: str, message_id: int) -> None:
        """Record the message that shows a job's progress (deliveries after a restart reply to it)."""
        await self.store.update_job(job_id, progress_message_id=message_id)

    async def reroll_request(self, job_id: str, **member: Any) -> JamRequest:
        """Same recipe as ``job_id``, new seed, charged to whoever clicked."""
        job = await self.job(job_id)
        data = (
            await asyncio.to_thread(Path(job.params["input_path"]).read_bytes) if job.params.get("input_path") else None
        )
        p = job.params
        source = None
        if data is not None or p.get("audio_from_job"):
            source = AudioInput(
                data=data,
                from_job=None if data is not None else p.get("audio_from_job"),
                take=p.get("audio_take", 0),
                start=p.get("audio_start"),
                end=p.get("audio_end"),
            )
        return JamRequest(
            **member,
            mode=Mode(job.mode) if job.mode != Mode.UNCONDITIONAL else Mode.TEXT,
            prompt=job.prompt,
            model=job.model,
            duration=p["duration"],
            takes=job.takes,
            sampling=self._sampling(job),
            audio=source,
            parent_id=job.id,
            session_id=job.session_id,
        )

    async def extend_request(self, job_id: str, take: int, **member: Any) -> JamRequest:
        """Continue take ``take`` of ``job_id`` from its end, with the same prompt and model."""
        job = await self.job(job_id)
        model = job.model if get_model_spec(job.model).supports(Mode.CONTINUATION) else None
        return JamRequest(
            **member,
            mode=Mode.CONTINUATION,
            prompt=job.prompt,
            model=model,
            duration=job.params["duration"],
            sampling=self._sampling(job),
            audio=AudioInput(from_job=job.id, take=take),
            parent_id=job.id,
            session_id=job.session_id,
        )

    async def delete_take(self, job_id: str, user_id: int, *, is_admin: bool = False) -> Job:
        """Check that the member may delete a job's message (its owner or an admin)."""
        job = await self.job(job_id)
        if job.user_id != user_id and not is_admin:
            raise NotYourJobError("Only the member who made this take, or an admin, can delete it.")
        log.info("job %s message deleted by %s", job_id, user_id)
        return job

    def queue_overview(self) -> list[tuple[int, str, int]]:
        """(place, job id, user id) for running (place 0) and queued jobs, in the order they will run."""
        rows = [(0, job_id, queued.user_id) for job_id, queued in self._running.items()]
        rows += [(place, q.job_id, q.user_id) for place, q in enumerate(self.queue.fair_order(), start=1)]
        return rows

    async def user_jobs(self, user_id: int, guild_id: int | None, limit: int = 15) -> list[Job]:
        """A member's most recent jobs."""
        return await self.store.list_user_jobs(user_id, guild_id, limit=limit)

    async def lineage(self, job_id: str) -> list[Job]:
        """Root … job."""
        return await self.store.lineage(job_id)

    async def children(self, job_id: str) -> list[Job]:
        """Jobs made from this one."""
        return await self.store.children(job_id)

    async def quota(self, user_id: int, guild_id: int | None, role_ids: Sequence[int] = ()) -> QuotaStatus:
        """A member's quota today."""
        return await self.store.quota_status(
            user_id,
            guild_id,
            role_ids=tuple(role_ids),
            default_budget=self.config.daily_budget_seconds,
            is_admin=user_id in self.config.admin_user_ids,
        )

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        """A guild's own settings."""
        return await self.store.get_guild_settings(guild_id)

    async def update_guild_settings(self, guild_id: int, **changes: Any) -> GuildSettings:
        """Change a guild's settings (model names are checked first)."""
        for name in (changes.get("enabled_models") or ()) + (
            (changes["default_model"],) if changes.get("default_model") else ()
        ):
            get_model_spec(name)
        if changes.get("remix_mode") and changes["remix_mode"] not in ("melody", "style", "continuation"):
            raise UserInputError("The remix mode must be melody, style or continuation.")
        return await self.store.update_guild_settings(guild_id, **changes)

    async def set_channel_allowed(self, guild_id: int, channel_id: int, allowed: bool) -> GuildSettings:
        """Add a channel to, or remove it from, the guild's allowed channels."""
        current = set((await self.store.get_guild_settings(guild_id)).allowed_channel_ids)
        current = current | {channel_id} if allowed else current - {channel_id}
        return await self.store.update_guild_settings(guild_id, allowed_channel_ids=tuple(sorted(current)))

    async def set_role_tier(self, guild_id: int, role_id: int, seconds: float | None) -> None:
        """Give a role its own daily budget (None removes the tier)."""
        await self.store.set_role_tier(guild_id, role_id, seconds)

    async def set_user_budget(
        self, guild_id: int, user_id: int, seconds: float | None, *, unlimited: bool | None = None
    ) -> None:
        """Override a member's daily budget and/or unlimited flag."""
        if seconds is not None or unlimited is None:
            await self.store.set_user_budget(user_id, guild_id, seconds)
        if unlimited is not None:
            await self.store.set_unlimited(user_id, guild_id, unlimited)

    async def grant(self, guild_id: int, user_id: int, seconds: float, *, by: int) -> None:
        """One-off extra seconds for today."""
        await self.store.grant(user_id, guild_id, seconds, by=by)

    async def reset_quota(self, guild_id: int, user_id: int) -> None:
        """Give back today's usage."""
        await self.store.reset_quota(user_id, guild_id)

    async def block_user(self, user_id: int, reason: str = "") -> None:
        """Stop a member from submitting."""
        await self.store.block("user", user_id, reason)

    async def unblock_user(self, user_id: int) -> None:
        """Lift a block."""
        await self.store.unblock("user", user_id)

    async def status(self) -> ServiceStatus:
        """What /jam status shows."""
        engines = await self._pool.members_health()
        return ServiceStatus(
            engine=await self.engine.health() if len(engines) != 1 else engines[0].health,
            queued=len(self.queue),
            running=len(self._running),
            uptime_s=self.uptime_s(),
            recent_failures=list(self.recent_failures),
            engines=engines,
        )

    # ------------------------------------------------------------------ helpers
    def _publish_positions(self) -> None:
        watched = set(self.progress.watched())
        if not watched:
            return
        for place, queued in enumerate(self.queue.fair_order(), start=1):
            if queued.job_id in watched:
                self.progress.publish(JobUpdate(queued.job_id, Phase.QUEUED, position=place))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _log_state(self, job: Job, state: str, **details: Any) -> None:
        elapsed = (self._now_utc_ts() - job.created_at.timestamp()) if job.created_at else 0.0
        extra = " ".join(f"{k}={v}" for k, v in details.items())
        log.info("job %s %s after %.2f s %s", job.id, state, elapsed, extra)

    @staticmethod
    def _now_utc_ts() -> float:
        return time.time()
