"""The service's knobs (:class:`ServiceConfig`) and where its files live (:class:`Paths`)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from bot import audio
from bot.config import Settings


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
    stems_cost: float = 0.25
    stems_model: str = "htdemucs"
    audio_limits: audio.AudioLimits = field(default_factory=audio.AudioLimits)

    @classmethod
    def from_settings(cls, settings: Settings, *, on_gpu: bool = False) -> ServiceConfig:
        """Build from validated settings.

        Args:
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
            stems_cost=settings.stems_cost,
            stems_model=settings.stems_model,
            audio_limits=audio.AudioLimits.from_settings(settings),
        )

    @property
    def level(self) -> audio.Normalization:
        """How rendered tracks are levelled (checked against :data:`bot.audio.NORMALIZATIONS` by the settings)."""
        return cast(audio.Normalization, self.normalization)


@dataclass(frozen=True)
class Paths:
    """Every folder and file name the service uses, under ``data_dir``.

    ``jobs/<id>/`` holds a job's inputs (the attachment, the excerpt it conditions on);
    ``outputs/<id>/`` its rendered takes, waveforms, loops and bounces; ``staging/<token>/``
    an attachment being checked before its job exists.
    """

    data_dir: Path

    @property
    def jobs_dir(self) -> Path:
        """Inputs of each job."""
        return self.data_dir / "jobs"

    @property
    def outputs_dir(self) -> Path:
        """Rendered tracks of each job."""
        return self.data_dir / "outputs"

    @property
    def staging_dir(self) -> Path:
        """Attachments being checked before their job exists."""
        return self.data_dir / "staging"

    def make_dirs(self) -> None:
        """Create the three folders."""
        for folder in (self.jobs_dir, self.outputs_dir, self.staging_dir):
            folder.mkdir(parents=True, exist_ok=True)

    # ---------------------------------------------------------------- inputs
    def staging(self, token: str) -> Path:
        """The folder an attachment is checked in before its job exists."""
        return self.staging_dir / token

    def job_folder(self, job_id: str) -> Path:
        """A job's inputs."""
        return self.jobs_dir / job_id

    def input_file(self, job_id: str, suffix: str) -> Path:
        """A job's attachment (``suffix`` from its bytes, never the member's file name)."""
        return self.job_folder(job_id) / f"{job_id}{suffix}"

    def excerpt(self, job_id: str) -> Path:
        """The audio a job conditions on, cut and decoded at the model's rate when it was submitted."""
        return self.job_folder(job_id) / f"{job_id}-excerpt.npy"

    # ---------------------------------------------------------------- outputs
    def output_folder(self, job_id: str) -> Path:
        """A job's rendered files."""
        return self.outputs_dir / job_id

    def take(self, job_id: str, take: int) -> Path:
        """The MP3 of take ``take`` (0-based)."""
        return self.output_folder(job_id) / f"{job_id}-take{take + 1}.mp3"

    def stem(self, job_id: str, stem: str) -> Path:
        """The MP3 of one stem of a stems job."""
        return self.output_folder(job_id) / f"{job_id}-{stem}.mp3"

    def waveform(self, job_id: str, take: int) -> Path:
        """The waveform picture of take ``take`` (0-based)."""
        return self.output_folder(job_id) / f"{job_id}-take{take + 1}.png"

    def loop(self, job_id: str, take: int) -> Path:
        """A loop cut from take ``take`` (0-based)."""
        return self.output_folder(job_id) / f"{job_id}-take{take + 1}-loop.mp3"

    def bounce(self, job_id: str, take: int, stems: Sequence[str] = ()) -> Path:
        """A bounce leading to take ``take`` (0-based), of only some ``stems`` if given."""
        only = "".join(f"-{stem}" for stem in stems)
        return self.output_folder(job_id) / f"{job_id}-take{take + 1}-bounce{only}.mp3"


def remove_folder(folder: Path) -> None:
    """Delete a folder and what it holds; a folder already gone is fine."""
    shutil.rmtree(folder, ignore_errors=True)
