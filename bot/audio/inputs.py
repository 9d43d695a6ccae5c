"""Users' files in: saving an attachment into its job folder, decoding it for a model, checking it.

Call :func:`save_attachment` when a member attaches a file (it refuses
everything bad before the job is queued), then :func:`load_input` or
:func:`decode` when the engine needs the samples.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.audio.errors import AudioTooLongError, format_mib
from bot.audio.limits import AudioLimits
from bot.audio.probe import (
    ProbeInfo,
    check_size,
    damaged_error,
    decoder_options,
    input_timeout_error,
    input_url,
    probe,
    safe_input_options,
    too_long_error,
)
from bot.audio.tools import FFMPEG, ToolTimeoutError, run_tool
from bot.errors import format_seconds

log = logging.getLogger(__name__)

JOB_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
SILENCE_PEAK_DBFS = -60.0
SILENT_WARNING = "This audio is silent (nothing louder than -60 dBFS), so it gives the model nothing to follow."
# How much shorter than its header says a file may decode before the difference needs explaining.
_SHORTFALL_S = 0.5
_SHORTFALL_FRACTION = 0.05
# A file holding less than this share of the bytes its stated bit rate needs for its stated length is cut off.
_CUT_OFF_BYTES_FRACTION = 0.9
_VERIFY_RATE = 16000
_PADDING_TRIM_S = 0.1


@dataclass(frozen=True)
class SavedInput:
    """An attachment accepted and stored in its job's folder.

    Args:
        path: ``<job_dir>/<job_id>.<extension detected from the bytes>``.
        info: what probing found (``info.path`` is ``path``).
        warnings: sentences to show the member without refusing the file (silent audio).
    """

    path: Path
    info: ProbeInfo
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class InputAudio:
    """A user's file decoded for a model.

    Args:
        audio: float32 samples, shape [channels, samples], values in [-1, 1].
        sample_rate: samples per second of ``audio``.
        info: what probing found about the file.
        warnings: sentences to show the member (silent audio).
    """

    audio: np.ndarray
    sample_rate: int
    info: ProbeInfo
    warnings: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float:
        """Length of ``audio`` in seconds."""
        return self.audio.shape[-1] / self.sample_rate

    @property
    def silent(self) -> bool:
        """True when the audio is silent."""
        return SILENT_WARNING in self.warnings


def is_silent(audio: np.ndarray, threshold_dbfs: float = SILENCE_PEAK_DBFS) -> bool:
    """Whether no sample reaches ``threshold_dbfs``.

    Args:
        audio: samples of any shape.
        threshold_dbfs: the peak level below which audio counts as silence.
    """
    if audio.size == 0:
        return True
    return float(np.max(np.abs(audio))) < 10 ** (threshold_dbfs / 20)


def silence_warnings(audio: np.ndarray) -> tuple[str, ...]:
    """The warnings to show for decoded input (empty, or the silence sentence).

    Args:
        audio: samples.
    """
    return (SILENT_WARNING,) if is_silent(audio) else ()


def _samples_from_pcm(raw: bytes, channels: int) -> np.ndarray:
    frames = len(raw) // (4 * channels)
    interleaved = np.frombuffer(raw, dtype="<f4", count=frames * channels).reshape(frames, channels)
    audio = np.array(interleaved.T, dtype=np.float32, order="C", copy=True)  # writable, [channels, samples]
    # A float WAV may carry NaN/inf or wild values; a model must never see them.
    np.nan_to_num(audio, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    np.clip(audio, -1.0, 1.0, out=audio)
    return audio


async def decode(
    path: Path, sample_rate: int, channels: int, limits: AudioLimits, *, info: ProbeInfo | None = None
) -> np.ndarray:
    """Decode a user's file to float32 [channels, samples] at the model's rate and layout.

    Probes first (unless ``info`` is given), so everything :func:`probe` refuses is refused here too;
    then decodes under the wall clock and the decoded-size cap, and refuses a file that decodes to
    clearly less than its header claims (cut off) or to more than the duration limit.

    Args:
        sample_rate: the rate to resample to.
        channels: 1 (mixed down) or 2 (mono is duplicated); up to 8.
        limits: the limits in force.
        info: the result of an earlier :func:`probe` of the same file.

    Raises:
        AudioInputError: a subclass per reason (see :func:`probe`), DamagedAudioError for a cut-off file.
    """
    if not 1 <= channels <= 8 or sample_rate <= 0:
        raise ValueError(f"cannot decode to {channels} channels at {sample_rate} Hz")
    if info is None:
        info = await probe(path, limits)
    bytes_per_second = sample_rate * channels * 4
    hard_cap = int((limits.max_duration_s + 1) * bytes_per_second) + 4096
    cap = min(limits.max_decoded_bytes, hard_cap)
    argv = [
        FFMPEG,
        "-nostdin",
        "-hide_banner",
        "-v",
        "error",
        *safe_input_options(info.demuxer),
        *decoder_options(info.decoder),
        "-i",
        input_url(path),
        "-map",
        f"0:{info.stream_index}",
        "-vn",
        "-sn",
        "-dn",
        "-t",
        f"{limits.max_duration_s + 0.5:.3f}",
        "-ac",
        str(channels),
        "-ar",
        str(sample_rate),
        "-c:a",
        "pcm_f32le",
        "-f",
        "f32le",
        "pipe:1",
    ]
    try:
        result = await run_tool(argv, timeout_s=limits.timeout_s, max_stdout_bytes=cap)
    except ToolTimeoutError:
        raise input_timeout_error(limits) from None
    if result.stdout_capped:
        if cap < hard_cap:
            raise AudioTooLongError(
                f"This audio decodes to more than {format_mib(limits.max_decoded_bytes)} of samples, which is over "
                "the limit. Trim it and attach it again."
            )
        raise too_long_error(limits.max_duration_s + 0.5, limits)
    if result.stderr.strip():
        log.info("ffmpeg reported while decoding %s: %s", Path(path).name, result.stderr.strip()[-500:])
    decoded_s = len(result.stdout) / bytes_per_second
    if decoded_s <= 0:
        raise damaged_error(info.label, "no sound could be decoded from it")
    if decoded_s > limits.max_duration_s:
        raise too_long_error(decoded_s, limits)
    shortfall = info.duration_s - decoded_s
    if shortfall > max(_SHORTFALL_S, _SHORTFALL_FRACTION * info.duration_s) and _cut_off(info, result.stderr):
        raise damaged_error(
            info.label,
            f"it stops after {format_seconds(decoded_s, floor=True)} although its header says "
            f"{format_seconds(info.duration_s, floor=True)}",
        )
    raw = result.stdout
    if 0 < decoded_s - info.duration_s <= _PADDING_TRIM_S:
        # Encoder padding the container's own duration already excludes (AAC in MP4 keeps ~1024 samples).
        keep_frames = round(info.duration_s * sample_rate)
        raw = raw[: keep_frames * channels * 4]
    return await asyncio.to_thread(_samples_from_pcm, raw, channels)


def _cut_off(info: ProbeInfo, decoder_errors: str) -> bool:
    """Whether a file that decodes shorter than its header says is really cut off or corrupt.

    What decodes is the truth: a header may count audio the decoder is told to skip (an Opus pre-skip, an MP4
    edit list) and such a file plays fully. It is cut off only when decoding hit errors, or when the file holds
    clearly fewer bytes than its own stream's bit rate needs for the length it claims (a truncated MP3).
    """
    if decoder_errors.strip():
        return True
    if not info.stream_bit_rate:
        return False
    needed_bytes = info.duration_s * info.stream_bit_rate / 8
    return info.size_bytes < _CUT_OFF_BYTES_FRACTION * needed_bytes


async def load_input(path: Path, sample_rate: int, channels: int, limits: AudioLimits) -> InputAudio:
    """Probe, decode and check a user's file in one call (what the engine side usually wants).

    Args:
        sample_rate: the model's sample rate.
        channels: the model's channel count.
        limits: the limits in force.

    Raises:
        AudioInputError: a subclass per reason.
    """
    info = await probe(path, limits)
    audio = await decode(path, sample_rate, channels, limits, info=info)
    warnings = await asyncio.to_thread(silence_warnings, audio)
    return InputAudio(audio=audio, sample_rate=sample_rate, info=info, warnings=warnings)


def check_job_id(job_id: str) -> str:
    """Refuse a job id that could leave the job folder or hide a file (programming error, not the member's).

    Args:
        job_id: letters, digits, ``_`` and ``-``; starts with a letter or digit; at most 64 characters.

    Raises:
        ValueError: for anything else.
    """
    if not isinstance(job_id, str) or JOB_ID_PATTERN.fullmatch(job_id) is None:
        raise ValueError(f"unsafe job id {job_id!r}")
    return job_id


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a leftover of an interrupted earlier try
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _unlink_quietly(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


async def save_attachment(
    data: bytes, job_dir: Path, job_id: str, limits: AudioLimits, *, verify: bool = True
) -> SavedInput:
    """Check an attachment's bytes and store them as ``<job_dir>/<job_id>.<ext>``.

    The member's file name is never used: the extension comes from the bytes. Nothing is written
    outside ``job_dir``; a refused file leaves nothing behind.

    Args:
        data: the attachment's bytes.
        job_dir: the job's own folder (created if missing).
        job_id: the job's id (see :func:`check_job_id`).
        limits: the limits in force.
        verify: also decode the whole file once (cheaply, 16 kHz mono) so a cut-off or lying file is refused now,
            not when the job runs; also finds silent input.

    Raises:
        AudioInputError: a subclass per reason, before the job is queued.
        ValueError: for an unsafe ``job_id``.
    """
    check_job_id(job_id)
    check_size(len(data), limits)
    job_dir = Path(job_dir)
    upload = job_dir / f".{job_id}.upload"
    final: Path | None = None
    try:
        await asyncio.to_thread(_write_private, upload, data)
        info = await probe(upload, limits)
        final = job_dir / f"{job_id}.{info.extension}"
        await asyncio.to_thread(os.replace, upload, final)
        info = dataclasses.replace(info, path=final)
        warnings: tuple[str, ...] = ()
        if verify:
            audio = await decode(final, _VERIFY_RATE, 1, limits, info=info)
            warnings = await asyncio.to_thread(silence_warnings, audio)
    except BaseException:
        await asyncio.to_thread(_unlink_quietly, upload, *([final] if final else []))
        raise
    return SavedInput(path=final, info=info, warnings=warnings)
