"""The jam service: the one object the Discord layer talks to.

No Discord and no torch here. The Discord layer builds a :class:`JamRequest`, calls
:meth:`JamService.submit`, subscribes to progress and provides a :class:`Deliverer`; the
service keeps every job in the store from acceptance until delivery. :class:`JamService`
composes the parts, one per stage of a job's life:

- ``intake.py``: checks, model policy, staging, the excerpt (everything before the store);
- ``scheduler.py``: fair batches into the engines, settling, ETAs, the queue overview;
- ``delivery.py``: rendering, posting with retries, failing loudly;
- ``admin.py``: status, quotas and server settings; ``sessions.py``: jam sessions;
- ``recipes.py``: the one typed :class:`Recipe` a job stores; ``config.py``: knobs and paths.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bot import audio
from bot.engine.registry import ModelSpec, get_model_spec
from bot.engine.types import Engine, Mode
from bot.errors import InternalError
from bot.service.admin import Admin, ServiceStatus
from bot.service.config import Paths, ServiceConfig
from bot.service.delivery import Deliverer, Deliveries, Delivery, DeliveryError, RenderedTake
from bot.service.intake import Intake, JobInputs, ModelPolicy, refuse_a_stem
from bot.service.progress import ProgressHub, UpdateCallback
from bot.service.queue import FairQueue
from bot.service.recipes import Recipe, job_recipe
from bot.service.requests import (
    AudioInput,
    JamRequest,
    NotYourJobError,
    Receipt,
    ServiceClosingError,
    find_job,
)
from bot.service.scheduler import Scheduler
from bot.service.sessions import SessionService
from bot.service.stem_remixes import StemRemixAnswer, StemRemixes
from bot.service.tasks import Background, log_state
from bot.store import GuildSettings, Job, JobStore, QuotaStatus

log = logging.getLogger("jamgen.service")

__all__ = [
    "Deliverer",
    "Delivery",
    "DeliveryError",
    "JamService",
    "RenderedTake",
    "ServiceConfig",
    "ServiceStatus",
]


class JamService:
    """Ties store, engine and audio together: the heart of jamgen.

    Args:
        store: the open job store.
        engine: the engine (worker client, a pool, or a fake in tests).
        deliverer: posts results (or give it to :meth:`start`).
        clock: monotonic clock for throttling and ETAs.
    """

    def __init__(
        self,
        config: ServiceConfig,
        store: JobStore,
        engine: Engine,
        deliverer: Deliverer | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.engine = engine
        self.paths = Paths(config.data_dir)
        self.progress = ProgressHub(config.progress_interval, clock)
        self.background = Background()
        self.models = ModelPolicy(config, store)
        self.inputs = JobInputs(config, store, self.paths)
        self.deliveries = Deliveries(config, store, self.paths, self.progress, self.background, deliverer, clock)
        self.scheduler = Scheduler(
            config, store, engine, self.inputs, self.deliveries, self.progress, self.background, clock
        )
        self.intake = Intake(config, store, self.paths, self.models, self.inputs, self.scheduler.check_room)
        self.admin = Admin(config, store, engine, self.scheduler, self.deliveries, clock)
        self.sessions = SessionService(store, config, self.paths, self.models)
        self.stem_remixes = StemRemixes(store, self.submit, self.deliveries.notify_failure)
        self.deliveries.after_delivery = self._after_delivery
        # Called with every delivered job (the Discord side queues a voice jam's takes).
        self.delivered_listeners: list[Callable[[Job], Awaitable[None]]] = []
        self._config = config
        self._accepting = False

    @property
    def config(self) -> ServiceConfig:
        """The knobs (replacing them reaches every part)."""
        return self._config

    @config.setter
    def config(self, config: ServiceConfig) -> None:
        self._config = config
        for part in (self.models, self.inputs, self.deliveries, self.scheduler, self.intake, self.admin):
            part.config = config
        self.sessions.config = config

    @property
    def deliverer(self) -> Deliverer | None:
        """What posts results to Discord."""
        return self.deliveries.deliverer

    @deliverer.setter
    def deliverer(self, deliverer: Deliverer | None) -> None:
        self.deliveries.deliverer = deliverer

    @property
    def queue(self) -> FairQueue:
        """The fair queue of waiting jobs."""
        return self.scheduler.queue

    @property
    def recent_failures(self) -> list[tuple[str, str]]:
        """(job id, message) of the last failures."""
        return self.deliveries.recent_failures

    # ------------------------------------------------------------------ lifecycle
    async def start(self, deliverer: Deliverer | None = None) -> None:
        """Recover jobs from the store and start scheduling.

        Args:
            deliverer: posts results (needed here unless it was given to the constructor).
        """
        if deliverer is not None:
            self.deliverer = deliverer
        if self.deliverer is None:
            raise InternalError("The jam service needs a deliverer before it starts.")
        self.paths.make_dirs()
        # librosa compiles its kernels on first use while holding the GIL; do it before the loop is busy.
        noise = np.random.default_rng(0).standard_normal((1, 16000)).astype(np.float32) * 0.1
        await audio.analyse(noise, 16000)
        recovery = await self.store.recover(self.config.max_attempts)
        for job in recovery.requeued:
            self.scheduler.enqueue(job)
            log.info("job %s re-queued after restart (attempt %d)", job.id, job.attempts + 1)
        for job in recovery.failed:
            log.warning("job %s failed after %d attempts; refunded", job.id, job.attempts)
            self.inputs.forget_excerpt(job.id)
            message = "jamgen restarted too many times while making this take; refunded."
            self.background.spawn(self.deliveries.notify_failure(job, message))
        for job in recovery.redeliver:
            self.background.spawn(self.deliveries.redeliver(job))
        self._accepting = True
        self.scheduler.start()
        self.background.spawn(self.stem_remixes.resume())

    async def close(self) -> None:
        """Stop taking jobs, let the running batch finish within the grace period, keep the rest queued."""
        self._accepting = False
        await self.scheduler.stop(self.config.shutdown_grace)
        await self.background.finish(self.config.shutdown_grace)
        await self.progress.drain()

    # ------------------------------------------------------------------ submit
    async def submit(self, request: JamRequest) -> Receipt:
        """Validate, decode the attachment, reserve quota, persist and enqueue a job.

        Answers at once: nothing here waits on the GPU.

        Raises:
            UserInputError: a subclass saying what is wrong (quota, caps, model, input).
        """
        if not self._accepting:
            raise ServiceClosingError("jamgen is restarting and takes no new jobs right now; try again in a minute.")
        admission = await self.intake.admit(request)
        submission = await self.intake.commit(admission)
        job = submission.job
        self.scheduler.enqueue(job)
        log_state(job, "queued", cost=admission.cost)
        position = self.scheduler.position(job.id) or 1
        duration = admission.recipe.duration
        return Receipt(
            job_id=job.id,
            position=position,
            eta_s=await self.scheduler.eta_for_position(position, admission.spec.name, duration),
            cost=admission.cost,
            remaining=submission.remaining,
            model=admission.spec.name,
            duration=duration,
            warnings=admission.warnings,
        )

    def resolve_model(self, requested: str | None, guild_default: str | None, enabled: Sequence[str]) -> ModelSpec:
        """The model a request gets, or a friendly refusal (see :meth:`ModelPolicy.resolve`)."""
        return self.models.resolve(requested, guild_default, enabled)

    def available_models(self, guild_enabled: Sequence[str] = ()) -> list[str]:
        """Models members may pick here, in registry order."""
        return self.models.available(guild_enabled)

    async def models_for_guild(self, guild_id: int | None, mode: Mode | None = None) -> list[str]:
        """Models members of a server may pick (optionally only those able to do ``mode``)."""
        return await self.models.models_for_guild(guild_id, mode)

    async def default_model_for(self, guild_id: int | None, mode: Mode) -> str | None:
        """The server's default model when it can do ``mode``, else the first enabled model that can."""
        return await self.models.default_model_for(guild_id, mode)

    def check_attachment_size(self, size: int) -> None:
        """Refuse an attachment by its declared size before downloading it."""
        self.intake.check_attachment_size(size)

    async def reroll_request(self, job_id: str, **member: Any) -> JamRequest:
        """Same recipe as ``job_id``, new seed, charged to whoever clicked."""
        job = await self.job(job_id)
        recipe = Recipe.from_job(job)
        kept = recipe.audio.input_path if recipe.audio else None
        data = await asyncio.to_thread(Path(kept).read_bytes) if kept else None
        return JamRequest(
            **member,
            mode=recipe.request_mode,
            prompt=job.prompt,
            model=job.model,
            duration=recipe.duration,
            takes=job.takes,
            sampling=recipe.sampling,
            audio=recipe.audio_input(data),
            parent_id=job.id,
            session_id=job.session_id,
        )

    async def extend_request(self, job_id: str, take: int, **member: Any) -> JamRequest:
        """Continue take ``take`` of ``job_id`` from its end, with the same prompt and model."""
        job = await self.job(job_id)
        recipe = Recipe.from_job(job)
        return JamRequest(
            **member,
            mode=Mode.CONTINUATION,
            prompt=job.prompt,
            model=job.model if get_model_spec(job.model).supports(Mode.CONTINUATION) else None,
            duration=recipe.duration,
            sampling=recipe.sampling,
            audio=AudioInput(from_job=job.id, take=take),
            parent_id=job.id,
            session_id=job.session_id,
        )

    async def stems_request(self, job_id: str, take: int, **member: Any) -> JamRequest:
        """Split take ``take`` of ``job_id`` into stems, charged to whoever asked (see :meth:`find_stems` first)."""
        job = await self.job(job_id)
        refuse_a_stem(job)  # said before anything is downloaded or queued (intake checks it again)
        return JamRequest(**member, mode=Mode.STEMS, audio=AudioInput(from_job=job.id, take=take))

    async def submit_stem_remix(self, request: JamRequest, stem: str) -> StemRemixAnswer:
        """Remix one stem of a take; its stems are made first when they do not exist (see ``stem_remixes.py``)."""
        return await self.stem_remixes.submit(request, stem)

    async def _after_delivery(self, job: Job) -> None:
        if job.mode == Mode.STEMS:
            await self.stem_remixes.start_waiting(job)
        for listener in self.delivered_listeners:
            try:
                await listener(job)
            except Exception:
                log.exception("job %s: a delivery listener failed", job.id)

    async def find_stems(self, job_id: str, take: int) -> Job | None:
        """The stems job of a take that is waiting, running or done with its files (a second request is free)."""
        return await self.store.stems_job_for(job_id, take)

    # ------------------------------------------------------------------ a job and its queue
    async def job(self, job_id: str) -> Job:
        """A job by id, or a friendly :class:`JobNotFoundError`."""
        return await find_job(self.store, job_id)

    def recipe(self, job: Job, *, seed: int | None = None, take: int | None = None) -> dict[str, Any]:
        """Everything needed to make the take again (see :meth:`Recipe.describe`)."""
        return job_recipe(job, seed=seed, take=take)

    def subscribe(self, job_id: str, callback: UpdateCallback) -> Callable[[], None]:
        """Receive a job's updates (queue place, progress, done/failed); returns an unsubscribe function.

        Args:
            callback: sync or async function taking a :class:`JobUpdate`.
        """
        return self.progress.subscribe(job_id, callback)

    async def remember_progress_message(self, job_id: str, message_id: int) -> None:
        """Record the message that shows a job's progress (deliveries after a restart reply to it)."""
        await self.store.update_job(job_id, progress_message_id=message_id)

    def position(self, job_id: str) -> int | None:
        """1-based queue place; running jobs count as 0."""
        return self.scheduler.position(job_id)

    async def eta_for_position(self, position: int, model: str, duration: float) -> float | None:
        """Rough seconds until a job at ``position`` is ready (None until a first measurement exists)."""
        return await self.scheduler.eta_for_position(position, model, duration)

    def queue_overview(self) -> list[tuple[int, str, int]]:
        """(place, job id, user id) for running (place 0) and queued jobs, in the order they will run."""
        return self.scheduler.overview()

    async def cancel(self, job_id: str, user_id: int, *, is_admin: bool = False) -> Job:
        """Cancel a queued or running job; queued ones are refunded at once.

        Args:
            user_id: who asks (must own the job unless ``is_admin``).
            is_admin: guild admins may cancel anyone's job.
        """
        job = await self.job(job_id)
        if job.user_id != user_id and not is_admin:
            raise NotYourJobError("You can only cancel your own jobs.")
        return await self.scheduler.cancel(job)

    async def delete_take(self, job_id: str, user_id: int, *, is_admin: bool = False) -> Job:
        """Check that the member may delete a job's message (its owner or an admin)."""
        job = await self.job(job_id)
        if job.user_id != user_id and not is_admin:
            raise NotYourJobError("Only the member who made this take, or an admin, can delete it.")
        log.info("job %s message deleted by %s", job_id, user_id)
        return job

    async def user_jobs(self, user_id: int, guild_id: int | None, limit: int = 15) -> list[Job]:
        """A member's most recent jobs."""
        return await self.store.list_user_jobs(user_id, guild_id, limit=limit)

    async def lineage(self, job_id: str) -> list[Job]:
        """Root … job."""
        return await self.store.lineage(job_id)

    async def children(self, job_id: str) -> list[Job]:
        """Jobs made from this one."""
        return await self.store.children(job_id)

    # ------------------------------------------------------------------ admin (admin.py)
    def uptime_s(self) -> float:
        """Seconds since the service was built."""
        return self.admin.uptime_s()

    async def status(self) -> ServiceStatus:
        """What /jam status shows."""
        return await self.admin.status()

    async def quota(self, user_id: int, guild_id: int | None, role_ids: Sequence[int] = ()) -> QuotaStatus:
        """A member's quota today."""
        return await self.admin.quota(user_id, guild_id, role_ids)

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        """A server's own settings."""
        return await self.admin.guild_settings(guild_id)

    async def update_guild_settings(self, guild_id: int, **changes: Any) -> GuildSettings:
        """Change a server's settings (model names are checked first)."""
        return await self.admin.update_guild_settings(guild_id, **changes)

    async def set_channel_allowed(self, guild_id: int, channel_id: int, allowed: bool) -> GuildSettings:
        """Add a channel to, or remove it from, the server's allowed channels."""
        return await self.admin.set_channel_allowed(guild_id, channel_id, allowed)

    async def set_role_tier(self, guild_id: int, role_id: int, seconds: float | None) -> None:
        """Give a role its own daily budget (None removes the tier)."""
        await self.admin.set_role_tier(guild_id, role_id, seconds)

    async def set_user_budget(
        self, guild_id: int, user_id: int, seconds: float | None, *, unlimited: bool | None = None
    ) -> None:
        """Override a member's daily budget and/or unlimited flag."""
        await self.admin.set_user_budget(guild_id, user_id, seconds, unlimited=unlimited)

    async def grant(self, guild_id: int, user_id: int, seconds: float, *, by: int) -> None:
        """One-off extra seconds for today."""
        await self.admin.grant(guild_id, user_id, seconds, by=by)

    async def reset_quota(self, guild_id: int, user_id: int) -> None:
        """Give back today's usage."""
        await self.admin.reset_quota(guild_id, user_id)

    async def block_user(self, user_id: int, reason: str = "") -> None:
        """Stop a member from submitting."""
        await self.admin.block_user(user_id, reason)

    async def unblock_user(self, user_id: int) -> None:
        """Lift a block."""
        await self.admin.unblock_user(user_id)
