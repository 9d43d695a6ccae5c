"""Cutting the part of a user's audio each mode conditions on.

- melody: the first ``duration`` seconds (or from a given start);
- style: a 1.5-4.5 s excerpt from a given start or, by default, the loudest window;
- continuation: the last seconds (up to 10 s by default) as the prompt.

All functions are cheap numpy slicing (one pass of squared samples at most) and
return a view-free copy with its position, so the recipe can record it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bot.audio.errors import AudioTooShortError, format_seconds_against
from bot.errors import format_seconds

MIN_STYLE_S = 1.5
MAX_STYLE_S = 4.5
DEFAULT_STYLE_S = 3.0
MIN_MELODY_S = 1.0
MIN_CONTINUATION_S = 1.0
DEFAULT_CONTINUATION_S = 10.0
_ENERGY_HOP_S = 0.05
# Resampling may lose a sample: a clip of exactly the minimum length must not be refused for it.
LENGTH_TOLERANCE_S = 1e-4


@dataclass(frozen=True)
class Excerpt:
    """A slice of a user's audio.

    Args:
        audio: float32 [channels, samples] (a copy).
        sample_rate: its rate.
        start_s: where the slice starts in the original.
        duration_s: its length.
    """

    audio: np.ndarray
    sample_rate: int
    start_s: float
    duration_s: float


def _as_2d(audio: np.ndarray) -> np.ndarray:
    if audio.ndim == 1:
        return audio[np.newaxis, :]
    if audio.ndim != 2:
        raise ValueError(f"audio must be [samples] or [channels, samples], got shape {audio.shape}")
    return audio


def _slice(audio: np.ndarray, sample_rate: int, start: int, length: int) -> Excerpt:
    part = np.array(audio[:, start : start + length], dtype=np.float32, copy=True)
    return Excerpt(part, sample_rate, start / sample_rate, part.shape[-1] / sample_rate)


def _check_start(start_s: float, total_s: float, purpose: str) -> None:
    if start_s < 0:
        raise AudioTooShortError(f"The {purpose} start cannot be negative (got {start_s:g} s).")
    if start_s >= total_s:
        raise AudioTooShortError(
            f"The {purpose} start ({format_seconds(start_s, floor=True)}) is past the end of this file "
            f"({format_seconds(total_s, floor=True)})."
        )


def loudest_window_start(audio: np.ndarray, sample_rate: int, window_s: float) -> float:
    """Start (seconds) of the ``window_s`` stretch with the most energy, on a 50 ms grid.

    Args:
        audio: [channels, samples] or [samples].
        sample_rate: its rate.
        window_s: window length; the whole audio when it is shorter.
    """
    audio = _as_2d(audio)
    hop = max(1, round(_ENERGY_HOP_S * sample_rate))
    frames = audio.shape[-1] // hop
    window = max(1, round(window_s * sample_rate / hop))
    if frames <= window:
        return 0.0
    energy = np.square(audio[:, : frames * hop], dtype=np.float64).sum(axis=0).reshape(frames, hop).sum(axis=1)
    cumulative = np.concatenate(([0.0], np.cumsum(energy)))
    sums = cumulative[window:] - cumulative[:-window]
    return int(np.argmax(sums)) * hop / sample_rate


def style_excerpt(
    audio: np.ndarray, sample_rate: int, *, start_s: float | None = None, length_s: float = DEFAULT_STYLE_S
) -> Excerpt:
    """The style reference: ``length_s`` (1.5-4.5 s) from ``start_s``, or from the loudest window.

    A file shorter than ``length_s`` but at least 1.5 s long gives all it has.

    Args:
        audio: [channels, samples] or [samples].
        sample_rate: its rate.
        start_s: where to start; None picks the loudest window.
        length_s: excerpt length, clamped to 1.5-4.5 s.

    Raises:
        AudioTooShortError: "style needs at least 1.5 s of audio; this file has 0.8 s", or a start past the end.
    """
    audio = _as_2d(audio)
    total_s = audio.shape[-1] / sample_rate
    length_s = min(max(length_s, MIN_STYLE_S), MAX_STYLE_S)
    if total_s < MIN_STYLE_S - LENGTH_TOLERANCE_S:
        raise AudioTooShortError(
            f"Style needs at least {MIN_STYLE_S:g} s of audio; this file has "
            f"{format_seconds_against(total_s, MIN_STYLE_S)}."
        )
    if start_s is None:
        start_s = loudest_window_start(audio, sample_rate, min(length_s, total_s))
    else:
        _check_start(start_s, total_s, "style")
        if total_s - start_s < MIN_STYLE_S - LENGTH_TOLERANCE_S:
            raise AudioTooShortError(
                f"Style needs at least {MIN_STYLE_S:g} s of audio; from {format_seconds(start_s, floor=True)} this "
                "file has "
                f"only {format_seconds_against(total_s - start_s, MIN_STYLE_S)} left."
            )
    start = round(start_s * sample_rate)
    return _slice(audio, sample_rate, start, round(min(length_s, total_s - start_s) * sample_rate))


def melody_excerpt(audio: np.ndarray, sample_rate: int, duration_s: float, *, start_s: float = 0.0) -> Excerpt:
    """The melody to follow: ``duration_s`` from ``start_s`` (less if the file ends first).

    Args:
        audio: [channels, samples] or [samples].
        sample_rate: its rate.
        duration_s: the length of the track being generated.
        start_s: where the melody starts in the file.

    Raises:
        AudioTooShortError: when less than 1 s of audio is available from ``start_s``.
    """
    audio = _as_2d(audio)
    total_s = audio.shape[-1] / sample_rate
    if total_s < MIN_MELODY_S - LENGTH_TOLERANCE_S:
        raise AudioTooShortError(
            f"Melody needs at least {MIN_MELODY_S:g} s of audio; this file has "
            f"{format_seconds_against(total_s, MIN_MELODY_S)}."
        )
    _check_start(start_s, total_s, "melody")
    if total_s - start_s < MIN_MELODY_S - LENGTH_TOLERANCE_S:
        raise AudioTooShortError(
            f"Melody needs at least {MIN_MELODY_S:g} s of audio; from {format_seconds(start_s, floor=True)} this "
            "file has only "
            f"{format_seconds_against(total_s - start_s, MIN_MELODY_S)} left."
        )
    start = round(start_s * sample_rate)
    return _slice(audio, sample_rate, start, round(duration_s * sample_rate))


def continuation_prompt(audio: np.ndarray, sample_rate: int, *, seconds: float = DEFAULT_CONTINUATION_S) -> Excerpt:
    """The prompt a continuation starts from: the last ``seconds`` (the whole file when shorter).

    Args:
        audio: [channels, samples] or [samples].
        sample_rate: its rate.
        seconds: how much of the end to keep.

    Raises:
        AudioTooShortError: when the file is shorter than 1 s.
    """
    audio = _as_2d(audio)
    total = audio.shape[-1]
    if total / sample_rate < MIN_CONTINUATION_S - LENGTH_TOLERANCE_S:
        raise AudioTooShortError(
            f"Continuing needs at least {MIN_CONTINUATION_S:g} s of audio; this file has "
            f"{format_seconds_against(total / sample_rate, MIN_CONTINUATION_S)}."
        )
    length = min(total, round(seconds * sample_rate))
    return _slice(audio, sample_rate, total - length, length)
