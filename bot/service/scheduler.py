"""The scheduler: fair batches from the queue into the engines, then each job settled.

An engine is promised before a batch leaves the queue, so with N engines N batches run and
the fair order alone decides which batch goes next. A settled job is handed to rendering and
delivery (``delivery.py``), put back in the queue to run again alone, cancelled or failed.
Also here: queue places, ETAs and the queue overview.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from bot.engine.pool import EngineClaim, as_pool
from bot.engine.registry import get_model_spec
from bot.engine.types import (
    Engine,
    EngineError,
    GenerationCancelledError,
    GenerationRequest,
    GenerationResult,
    Mode,
    Progress,
    wire_id,
)
from bot.errors import JamgenError, UserInputError
from bot.service.config import ServiceConfig
from bot.service.delivery import Deliveries
from bot.service.intake import JobInputs
from bot.service.progress import ProgressHub
from bot.service.queue import FairQueue, QueuedJob
from bot.service.recipes import Recipe
from bot.service.requests import JobUpdate, Phase, QueueFullError
from bot.service.tasks import Background, log_state
from bot.store import ETA_WEIGHT, Job, JobStore

log = logging.getLogger("jamgen.service")

# Seconds a measured step time may wait before it is written (the ETAs use it at once).
STEP_TIMES_SAVE_S = 1.0
NO_ENGINE_MESSAGE = "No generation engine is reachable right now, so this take could not be made."
Outcome = GenerationResult | EngineError


class Scheduler:
    """Runs queued jobs on the engine(s) (see the module's docstring).

    Args:
        engine: one engine or a pool of them.
        inputs: where a job's conditioning audio is kept.
        deliveries: renders, posts and fails jobs.
        clock: monotonic clock for ETAs.
    """

    def __init__(
        self,
        config: ServiceConfig,
        store: JobStore,
        engine: Engine,
        inputs: JobInputs,
        deliveries: Deliveries,
        progress: ProgressHub,
        background: Background,
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.store = store
        self.engine = engine
        self.inputs = inputs
        self.deliveries = deliveries
        self.progress = progress
        self.background = background
        self._clock = clock
        # Batches go to engines through a pool (a plain engine is a pool of one).
        self.pool = as_pool(engine)
        self.queue = FairQueue(config.max_batch)
        self.generate_calls = 0
        self._task: asyncio.Task[None] | None = None
        self._batches: set[asyncio.Task[None]] = set()
        self._wakeup = asyncio.Event()
        self._stop = asyncio.Event()
        self._stopping = False
        self.running: dict[str, QueuedJob] = {}
        # The queued jobs as the store gave them, so a batch's requests are built without a read.
        self._queued_jobs: dict[str, Job] = {}
        self._running_since = 0.0
        self._running_total_steps = 0
        self._running_done_steps = 0
        self._cancel_requested: set[str] = set()
        self._step_times: dict[tuple[str, int], float | None] = {}
        self._unsaved_step_times: list[tuple[str, int, float]] = []
        self._saving_step_times = False

    # ------------------------------------------------------------------ the queue
    def check_room(self) -> None:
        """Refuse a new job when as many jobs as the admin allows are queued or running (the one queue check)."""
        if len(self.queue) + len(self.running) >= self.config.max_queue:
            raise QueueFullError("The queue is full right now. Please try again in a few minutes.")

    def enqueue(self, job: Job) -> None:
        """Queue a job (new, recovered, or to run again)."""
        # A job that is being retried runs alone: if it is what broke its batch (a crash, a hang, out of
        # memory), it cannot take the members it was batched with down with it a second time.
        key = None if job.attempts > 0 else Recipe.from_job(job).batch_key(seed=job.seed)
        self.queue.push(QueuedJob(job.id, job.user_id, job.takes, key, job.priority))
        self._queued_jobs[job.id] = job
        self._wakeup.set()

    def position(self, job_id: str) -> int | None:
        """1-based queue place; running jobs count as 0."""
        if job_id in self.running:
            return 0
        return self.queue.position(job_id)

    def overview(self) -> list[tuple[int, str, int]]:
        """(place, job id, user id) for running (place 0) and queued jobs, in the order they will run."""
        rows = [(0, job_id, queued.user_id) for job_id, queued in self.running.items()]
        rows += [(place, q.job_id, q.user_id) for place, q in enumerate(self.queue.fair_order(), start=1)]
        return rows

    def publish_positions(self) -> None:
        """Tell watched queued jobs their place."""
        watched = set(self.progress.watched())
        if not watched:
            return
        for place, queued in enumerate(self.queue.fair_order(), start=1):
            if queued.job_id in watched:
                self.progress.publish(JobUpdate(queued.job_id, Phase.QUEUED, position=place))

    async def cancel(self, job: Job) -> Job:
        """Cancel a queued (refunded at once) or running job."""
        if self.queue.remove(job.id):
            self._queued_jobs.pop(job.id, None)
            self.inputs.forget_excerpt(job.id)
            job = await self.store.mark_cancelled(job.id)
            log_state(job, "cancelled while queued")
            self.progress.publish(JobUpdate(job.id, Phase.CANCELLED, message="Cancelled; your quota was refunded."))
            self.publish_positions()
            return job
        if job.id in self.running:
            self._cancel_requested.add(job.id)
            for take in range(job.takes):
                await self.engine.cancel(wire_id(job.id, take))
            return job
        raise UserInputError(f"Job {job.id} is already {job.state.value}; there is nothing to cancel.")

    # ------------------------------------------------------------------ ETAs
    async def eta_for_position(self, position: int, model: str, duration: float) -> float | None:
        """Rough seconds until a job at ``position`` is ready (None until a first measurement exists).

        The batches up to and including the job's run on the pool's engines side by side, so with N
        engines they take about a N-th of the time (in waves of N batches).
        """
        per_batch = await self._batch_seconds(model, duration)
        if per_batch is None:
            return None
        batches_ahead = (max(position, 1) - 1) // self.config.max_batch + 1
        waves = -(-batches_ahead // max(1, self.pool.capacity))
        return self._running_left_s() + waves * per_batch

    async def _batch_seconds(self, model: str, duration: float) -> float | None:
        step = await self._step_time(model, self.config.max_batch)
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
        if not self.running or self._running_done_steps <= 0:
            return 0.0
        rate = (self._clock() - self._running_since) / self._running_done_steps
        return max(0.0, (self._running_total_steps - self._running_done_steps) * rate)

    def _learn_step_times(self, model: str, calls: list[list[Outcome]]) -> None:
        """One measurement per engine call: the ETAs learn it at once, the store within a second."""
        for call in calls:
            # The results of one call share its batch size, wall time and step count.
            made = next((r for r in call if isinstance(r, GenerationResult)), None)
            if made is not None:
                seconds = made.elapsed_s / max(1, made.steps)
                self._unsaved_step_times.append((model, made.batch_size, seconds))
                known = self._step_times.get((model, made.batch_size))
                # The store's average (the same formula) replaces this one once it is saved.
                learned = seconds if known is None else known * (1 - ETA_WEIGHT) + seconds * ETA_WEIGHT
                self._step_times[(model, made.batch_size)] = learned
        if self._unsaved_step_times and not self._saving_step_times:
            self._saving_step_times = True
            self.background.spawn(self._save_step_times())

    async def _save_step_times(self) -> None:
        # One write a second at most (sooner when stopping): a write per batch would hold the store
        # just when the next batch's start needs it.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), STEP_TIMES_SAVE_S)
        samples, self._unsaved_step_times = self._unsaved_step_times, []
        self._saving_step_times = False
        self._step_times.update(await self.store.record_step_times(samples))

    # ------------------------------------------------------------------ the loop
    def start(self) -> None:
        """Start scheduling."""
        self._task = asyncio.create_task(self._schedule_forever(), name="jamgen-scheduler")
        self._wakeup.set()

    async def stop(self, grace: float) -> None:
        """Let the running batches finish within ``grace`` seconds; else leave their jobs to run after a restart."""
        if self._task is None:
            return
        self._stopping = True
        self._stop.set()
        self._wakeup.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace)
        except TimeoutError:
            log.warning("running batch did not finish within %.0f s; it stays queued", grace)
            running = [(job_id, queued.takes) for job_id, queued in self.running.items()]
            # The scheduler stops first, so the engine's "cancelled" answers cannot mark the jobs
            # cancelled: they stay running in the store and the next start queues them again.
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            for job_id, takes in running:
                for take in range(takes):
                    await self.engine.cancel(wire_id(job_id, take))
        self._task = None

    async def _schedule_forever(self) -> None:
        try:
            while not self._stopping:
                if not self.queue:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                # A free engine is taken at once; waiting for one needs a task racing the stop.
                claim = self.pool.claim_now() or await self._claim_engine_or_stop()
                if claim is None:
                    continue
                if self._stopping or not self.queue:
                    claim.release()
                    continue
                batch = self.queue.next_batch()
                # Counted as running from here, so a cancel in the next instants reaches the engine path.
                self.running.update((queued.job_id, queued) for queued in batch)
                self.publish_positions()
                task = asyncio.create_task(self._run_batch_logged(batch, claim), name="jamgen-batch")
                self._batches.add(task)
                task.add_done_callback(self._batches.discard)
            # Stopping: the running batches finish (stop() limits how long).
            while self._batches:
                await asyncio.wait(set(self._batches))
        except asyncio.CancelledError:
            # stop() gave up waiting: the batches stop too and their jobs stay running in the store.
            for task in list(self._batches):
                task.cancel()
            await asyncio.gather(*self._batches, return_exceptions=True)
            raise

    async def _claim_engine_or_stop(self) -> EngineClaim | None:
        """A claim on a free engine, or None when the service stops first."""
        claiming = asyncio.ensure_future(self.pool.claim())
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
        queued_jobs = [self._queued_jobs.pop(queued.job_id) for queued in batch]
        starting = asyncio.ensure_future(self.store.mark_batch_running([job.id for job in queued_jobs]))
        jobs: list[Job] = []
        requests: list[GenerationRequest] = []
        calls: list[list[Outcome]] = []
        try:
            refused: dict[str, str] = {}
            for job in queued_jobs:
                try:
                    requests.extend(await self._requests_for(job))
                except JamgenError as exc:
                    refused[job.id] = exc.message
            if refused or not claim.available:
                # Failures are written after the batch's start, never before it.
                jobs = await self._started(starting, refused)
                if jobs and not claim.available:
                    # No engine came within the pool's wait (a Ray cluster out of reach): a clear failure,
                    # refunded, rather than members waiting without end; the bot keeps serving meanwhile.
                    for job in jobs:
                        self.inputs.forget_excerpt(job.id)
                        await self.deliveries.fail(job, NO_ENGINE_MESSAGE, refund=True)
                    return
                requests = [r for r in requests if r.job_id not in refused]
                if not requests:
                    return
                calls = await self._generate(jobs, requests, claim)
            else:
                # The engine does not wait for the disk: the batch's start commits while it runs, and
                # nothing else is written about these jobs before it has (they settle after it).
                self._announce_running(queued_jobs, marked=False)
                calls = await self._generate(queued_jobs, requests, claim)
                jobs = await starting
        finally:
            # The engine takes the next batch while this one is settled.
            claim.release()
            for queued in batch:
                self.running.pop(queued.job_id, None)
        self._learn_step_times(jobs[0].model, calls)  # a batch shares one model
        by_job: dict[str, list[Outcome]] = {}
        for request, result in zip(requests, [r for call in calls for r in call], strict=True):
            by_job.setdefault(request.job_id, []).append(result)
        for job in jobs:
            await self._settle(job, by_job.get(job.id, []), shared=len(jobs) > 1)

    async def _started(self, starting: asyncio.Future[list[Job]], refused: dict[str, str]) -> list[Job]:
        """The batch's jobs once started in the store; those whose inputs failed fail refunded."""
        jobs = []
        for job in await starting:
            if job.id in refused:
                self.running.pop(job.id, None)
                self.inputs.forget_excerpt(job.id)
                await self.deliveries.fail(job, refused[job.id], refund=True)
            else:
                jobs.append(job)
        self._announce_running(jobs, marked=True)
        return jobs

    def _announce_running(self, jobs: list[Job], *, marked: bool) -> None:
        for job in jobs:
            # A job not yet marked in the store counts its attempt a moment later.
            log_state(job, "running", attempt=job.attempts if marked else job.attempts + 1, batch=len(jobs))
            self.progress.publish(JobUpdate(job.id, Phase.RUNNING, position=0))

    async def _generate(
        self, jobs: list[Job], requests: list[GenerationRequest], claim: EngineClaim
    ) -> list[list[Outcome]]:
        """Run the requests on the claimed engine: one call for a batch, one per take for seeded jobs."""
        owner = {r.request_id: r.job_id for r in requests}
        progress_of: dict[str, Progress] = {}

        def on_progress(p: Progress) -> None:
            progress_of[p.request_id] = p
            self._running_total_steps = sum(x.total_steps for x in progress_of.values())
            self._running_done_steps = sum(x.done_steps for x in progress_of.values())
            job_id = owner.get(p.request_id)
            takes = [x for rid, x in progress_of.items() if owner.get(rid) == job_id]
            fraction = sum(x.fraction for x in takes) / max(1, len(takes))
            if job_id is not None:
                self.progress.publish(
                    JobUpdate(job_id, Phase.RUNNING, position=0, fraction=fraction, eta_s=self._running_left_s())
                )

        self._running_since = self._clock()
        self._running_done_steps = 0
        self._running_total_steps = 0
        calls: list[list[Outcome]] = []
        for call in [[r] for r in requests] if any(job.seed is not None for job in jobs) else [requests]:
            self.generate_calls += 1
            calls.append(list(await claim.generate(call, on_progress)))
        return calls

    async def _requests_for(self, job: Job) -> list[GenerationRequest]:
        recipe = Recipe.from_job(job)
        spec = get_model_spec(job.model)
        wav = await self.inputs.excerpt_for(job, recipe)
        prompt_s = wav.shape[-1] / spec.sample_rate if wav is not None and recipe.mode == Mode.CONTINUATION else 0.0
        return [
            GenerationRequest(
                job_id=job.id,
                take=take,
                model=job.model,
                mode=recipe.mode,
                prompt=job.prompt,
                duration=recipe.duration + prompt_s,
                sampling=recipe.sampling,
                seed=None if job.seed is None else job.seed + take,
                audio=wav,
                audio_sample_rate=spec.sample_rate if wav is not None else None,
            )
            for take in range(job.takes)
        ]

    async def _settle(self, job: Job, results: list[Outcome], *, shared: bool = False) -> None:
        cancelled = job.id in self._cancel_requested
        self._cancel_requested.discard(job.id)
        errors = [r for r in results if isinstance(r, EngineError)]
        if errors and not cancelled and not any(isinstance(e, GenerationCancelledError) for e in errors):
            error = errors[0]
            # A call shared with other jobs that failed cannot say whose request broke it: each gets
            # another try, alone (see enqueue), so one poisoned request does not sink the others.
            retry = error.retriable or (shared and not error.user_error)
            if retry and job.attempts < self.config.max_attempts:
                job = await self.store.requeue(job.id)
                self.enqueue(job)
                log_state(job, "re-queued", reason=error.message)
                self.progress.publish(JobUpdate(job.id, Phase.QUEUED, position=self.position(job.id)))
                return
        self.inputs.forget_excerpt(job.id)  # it will not run again
        if cancelled or any(isinstance(e, GenerationCancelledError) for e in errors):
            job = await self.store.mark_cancelled(job.id)
            log_state(job, "cancelled while running")
            self.progress.publish(JobUpdate(job.id, Phase.CANCELLED, message="Cancelled; nothing was charged."))
            return
        if errors:
            await self.deliveries.fail(job, errors[0].message, refund=True)
            return
        good = [r for r in results if isinstance(r, GenerationResult)]
        self.progress.publish(JobUpdate(job.id, Phase.RENDERING, position=0, fraction=1.0))
        self.background.spawn(self.deliveries.render_and_deliver(job, good))
