"""Loops: a take cut into a seamless loop of whole bars at its detected tempo (the 🔁 Loop button)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from bot import audio
from bot.service.bounce import take_path
from bot.service.config import Paths, ServiceConfig
from bot.service.recipes import job_recipe, take_seed
from bot.service.requests import find_job
from bot.service.session_rules import DEFAULT_TIME_SIGNATURE, beats_per_bar, clip_text, strip_decoration
from bot.store import JobStore

log = logging.getLogger("jamgen.sessions")


@dataclass(frozen=True)
class LoopResult:
    """A loop cut from a take.

    Args:
        job_id: the take's job.
        take: 0-based take index.
        path: the loop MP3.
        bars: whole bars.
        bpm: detected tempo.
        time_signature: the meter it was cut in.
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


async def cut_loop(
    store: JobStore, config: ServiceConfig, paths: Paths, job_id: str, take: int = 0, *, byte_limit: int | None = None
) -> LoopResult:
    """Cut take ``take`` of a job into a loop of whole bars at its detected tempo (in its jam's meter, else 4/4).

    Args:
        config: the upload limit and audio limits.
        paths: where the loop is written.
        take: 0-based take.
        byte_limit: the upload limit (default: the configured one).

    Raises:
        UserInputError: no such take, not finished, no beat, too short.
    """
    job = await find_job(store, job_id)
    path = take_path(job, take)
    session = await store.get_session(job.session_id) if job.session_id else None
    meter = (session.time_signature if session else None) or DEFAULT_TIME_SIGNATURE
    title = f"{clip_text(strip_decoration(job.prompt, session) if session else job.prompt, 100)} (loop)"
    track = await audio.make_loop(
        path,
        paths.loop(job.id, take),
        beats_per_bar=beats_per_bar(meter),
        title=title,
        recipe={**job_recipe(job, seed=take_seed(job, take), take=take), "time_signature": meter},
        byte_limit=byte_limit or config.upload_limit_bytes,
        limits=config.audio_limits,
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
