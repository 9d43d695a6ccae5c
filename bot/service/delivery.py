"""Rendering and delivery: generated audio becomes tagged MP3s, then a post by the :class:`Deliverer`.

Rendering runs a few jobs at a time (it is CPU work); delivery retries with backoff for
``delivery_retry_s`` and then gives up loudly, refunded. A job that fails anywhere after it
was accepted is failed here too (:meth:`Deliveries.fail`), so its member always hears of it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from bot import audio
from bot.engine.types import GenerationResult, Mode
from bot.errors import InternalError, JamgenError
from bot.service.config import Paths, ServiceConfig
from bot.service.progress import ProgressHub
from bot.service.recipes import AudioReference, Recipe, job_recipe
from bot.service.requests import JobUpdate, Phase
from bot.service.tasks import Background, log_state
from bot.store import Job, JobStore

log = logging.getLogger("jamgen.service")

# Renders (MP3, waveform, tempo) at once: one core stays free for the event loop and the engine's feeding.
RENDER_SLOTS = max(1, min(2, (os.cpu_count() or 1) - 1))
MAX_RECENT_FAILURES = 20
# Pixels per stem in the stems picture, and room kept in a message for its text, embed and form data.
STEM_PICTURE_HEIGHT = 60
MESSAGE_OVERHEAD_BYTES = 16 * 1024


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
        stem: the stem it is (``drums`` …) when the job split a track into stems.
        message: which of the delivery's messages carries it (stems that do not fit one message are spread).
    """

    index: int
    path: Path
    waveform_path: Path | None
    seed: int
    duration: float
    bpm: float | None
    key: str | None
    bitrate_kbps: int | None
    stem: str | None = None
    message: int = 0

    def record(self) -> dict[str, Any]:
        """How the store keeps it (in the job's ``extra``)."""
        return {
            "index": self.index,
            "path": str(self.path),
            "waveform": str(self.waveform_path) if self.waveform_path else None,
            "seed": self.seed,
            "duration": self.duration,
            "bpm": self.bpm,
            "key": self.key,
            "bitrate_kbps": self.bitrate_kbps,
            "stem": self.stem,
            "message": self.message,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RenderedTake:
        """The inverse of :meth:`record`."""
        return cls(
            index=record["index"],
            path=Path(record["path"]),
            waveform_path=Path(record["waveform"]) if record.get("waveform") else None,
            seed=record["seed"],
            duration=record["duration"],
            bpm=record.get("bpm"),
            key=record.get("key"),
            bitrate_kbps=record.get("bitrate_kbps"),
            stem=record.get("stem"),
            message=record.get("message", 0),
        )


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

    @classmethod
    def of(cls, job: Job, takes: list[RenderedTake] | None = None) -> Delivery:
        """The delivery of a rendered job (its takes as the store recorded them, unless given)."""
        extra = job.extra or {}
        if takes is None:
            takes = [RenderedTake.from_record(r) for r in extra.get("takes", [])]
        return cls(job, takes, job_recipe(job), extra.get("generation_s", 0.0))


class DeliveryError(InternalError):
    """Posting to Discord failed. ``retriable``: a later try may work (5xx, 429, a dropped connection).

    Args:
        message: what went wrong, for the member (e.g. "jamgen may not attach files in #music").
        retriable: whether to try again with backoff.
    """

    def __init__(self, message: str, *, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable


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


class Deliveries:
    """Renders finished jobs, posts them through the deliverer, and fails jobs loudly.

    Args:
        deliverer: posts results (the Discord layer gives it before the service starts).
        clock: monotonic clock for the retry deadline.
    """

    def __init__(
        self,
        config: ServiceConfig,
        store: JobStore,
        paths: Paths,
        progress: ProgressHub,
        background: Background,
        deliverer: Deliverer | None,
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.store = store
        self.paths = paths
        self.progress = progress
        self.background = background
        self.deliverer = deliverer
        self._clock = clock
        self._render_slots = asyncio.Semaphore(RENDER_SLOTS)
        # Called with each delivered job (the stem remixes waiting for a stems job start then).
        self.after_delivery: Callable[[Job], Awaitable[None]] | None = None
        self.recent_failures: list[tuple[str, str]] = []

    # ------------------------------------------------------------------ render
    async def render_and_deliver(self, job: Job, results: list[GenerationResult]) -> None:
        """Encode the takes, record them, then post them."""
        try:
            # Encoding and analysis are CPU work: a few at a time keeps the loop and the machine responsive.
            async with self._render_slots:
                takes = await self.render(job, results)
        except JamgenError as exc:
            await self.fail(job, exc.message, refund=True)
            return
        except Exception:
            log.exception("rendering job %s failed", job.id)
            await self.fail(job, "Something went wrong while encoding your track.", refund=True)
            return
        if job.mode == Mode.STEMS:
            source = Recipe.from_job(job).audio or AudioReference()
            await self.store.record_stems(
                job.id,
                [(t.stem or "", str(t.path)) for t in takes],
                source_job_id=source.from_job,
                source_take=source.take,
            )
        job = await self.store.mark_rendered(
            job.id,
            [str(t.path) for t in takes],
            {"takes": [t.record() for t in takes], "generation_s": max(r.elapsed_s for r in results)},
        )
        log_state(job, "rendered")
        await self.deliver(job, takes)

    async def render(self, job: Job, results: list[GenerationResult]) -> list[RenderedTake]:
        """MP3 (tagged with the take's recipe), waveform picture and tempo/key of each take."""
        self.paths.output_folder(job.id).mkdir(parents=True, exist_ok=True)
        limit = int(Recipe.from_job(job).upload_limit_bytes or self.config.upload_limit_bytes)
        if job.mode == Mode.STEMS:
            return await self._render_stems(job, results[0], limit)
        # Every take must fit in one message, so each gets its share of the limit.
        per_take = limit // max(1, len(results)) if len(results) > 1 else limit
        takes = []
        for index, result in enumerate(results):
            encoded = await audio.encode(
                result.audio,
                result.sample_rate,
                self.paths.take(job.id, index),
                fmt="mp3",
                tags=audio.TrackTags(
                    title=job.prompt or f"{job.mode} take", recipe=job_recipe(job, seed=result.seed, take=index)
                ),
                byte_limit=per_take,
                normalization=self.config.level,
                loudness_target=self.config.loudness_target,
            )
            picture = self.paths.waveform(job.id, index)
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

    async def _render_stems(self, job: Job, result: GenerationResult, limit: int) -> list[RenderedTake]:
        """One MP3 per stem, levelled like takes, and one picture of all of them.

        The stems share their message's upload limit; when even the lowest bitrate does not fit four in
        one message, they are spread over two messages, then one each, rather than refused.
        """
        source = (Recipe.from_job(job).audio or AudioReference()).from_job
        picture = self.paths.waveform(job.id, 0)
        await audio.waveform_png(result.audio, result.sample_rate, picture, height=STEM_PICTURE_HEIGHT)
        room = limit - picture.stat().st_size - MESSAGE_OVERHEAD_BYTES
        count = len(result.stems)
        too_large: audio.OutputTooLargeError | None = None
        for per_message in (n for n in (4, 2, 1) if n <= count):
            try:
                stems = []
                for index, name in enumerate(result.stems):
                    encoded = await audio.encode(
                        result.audio[index],
                        result.sample_rate,
                        self.paths.stem(job.id, name),
                        fmt="mp3",
                        tags=audio.TrackTags(
                            title=f"{name} of {source}" if source else name, recipe=job_recipe(job, take=index)
                        ),
                        byte_limit=room // per_message,
                        normalization=self.config.level,
                        loudness_target=self.config.loudness_target,
                    )
                    stems.append(
                        RenderedTake(
                            index=index,
                            path=encoded.path,
                            waveform_path=picture if index == 0 else None,
                            seed=result.seed,
                            duration=result.duration,
                            bpm=None,
                            key=None,
                            bitrate_kbps=encoded.bitrate_kbps,
                            stem=name,
                            message=index // per_message,
                        )
                    )
                return stems
            except audio.OutputTooLargeError as exc:
                too_large = exc
        assert too_large is not None
        raise too_large

    # ------------------------------------------------------------------ deliver
    async def redeliver(self, job: Job) -> None:
        """Post a job rendered before a restart (the previous process may have posted it: look first)."""
        delivery = Delivery.of(job)
        if not delivery.takes or not all(t.path.exists() for t in delivery.takes):
            await self.fail(job, "The finished track was lost before it could be posted.", refund=True)
            return
        await self.deliver(job, delivery.takes, resumed=True)

    async def deliver(self, job: Job, takes: list[RenderedTake], *, resumed: bool = False) -> None:
        """Post with retries and backoff for ``delivery_retry_s``; then give up loudly, refunded.

        Args:
            job: the job as the store returned it when it was rendered.
            resumed: a redelivery after a restart.
        """
        delivery = Delivery.of(job, takes)
        deadline = self._clock() + self.config.delivery_retry_s
        delay = self.config.delivery_backoff_s
        attempt = 0
        while True:
            attempt += 1
            try:
                if self.deliverer is None:
                    raise DeliveryError("jamgen has no way to post tracks yet.", retriable=False)
                # A failed try (a timeout, a dropped connection) may still have posted: retries look first.
                message_ids = await self.deliverer.deliver(replace(delivery, retry=resumed or attempt > 1))
                break
            except Exception as exc:
                retriable = exc.retriable if isinstance(exc, DeliveryError) else isinstance(exc, OSError | TimeoutError)
                if not retriable:
                    log.error("job %s: delivery failed and cannot succeed by retrying", job.id, exc_info=exc)
                    reason = exc.message if isinstance(exc, DeliveryError) else "an unexpected error."
                    await self.fail(
                        job,
                        "jamgen could not post your track here.",
                        refund=True,
                        notice=f"jamgen could not post your track: {reason} Refunded.",
                    )
                    return
                if self._clock() + delay > deadline:
                    log.error("job %s: delivery failed for good after %d tries: %s", job.id, attempt, exc)
                    await self.fail(
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
        log_state(job, "delivered", messages=len(message_ids))
        self.progress.publish(JobUpdate(job.id, Phase.DONE, fraction=1.0))
        if self.after_delivery is not None:
            await self.after_delivery(job)

    # ------------------------------------------------------------------ failures
    async def fail(self, job: Job, message: str, *, refund: bool, notice: str | None = None) -> None:
        """Mark ``job`` failed and tell its member: through their progress message when someone here
        watches it, else (a job recovered after a restart) in the channel; ``notice`` is always posted."""
        job = await self.store.mark_failed(job.id, message, refund=refund)
        self.recent_failures = [*self.recent_failures[1 - MAX_RECENT_FAILURES :], (job.id, message)]
        log_state(job, "failed", reason=message)
        watched = job.id in self.progress.watched()
        told = f"{message} Your quota was refunded." if refund else message
        self.progress.publish(JobUpdate(job.id, Phase.FAILED, message=told))
        if notice is not None:
            await self.notify_failure(job, notice)
        elif not watched:
            self.background.spawn(self.notify_failure(job, told))

    async def notify_failure(self, job: Job, message: str) -> None:
        """Tell the member a job failed, through the deliverer (a failure to tell is only logged)."""
        try:
            if self.deliverer is not None:
                await self.deliverer.notify_failure(job, message)
        except Exception:
            log.exception("could not tell the member about job %s", job.id)
