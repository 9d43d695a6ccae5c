"""Tempo, beats and key of a track (librosa, run in a worker thread).

The tempo is the slope of the tracked beat times, not librosa's tempogram
estimate, which is quantised to a few BPM. The key is a Krumhansl-Kessler
template match on the mean chroma: cheap, right for clear tonal material, a
hint rather than a transcription. librosa is imported on first use (its first
beat tracking also loads numba's cache: a few seconds once per process).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.audio.inputs import load_input
from bot.audio.limits import AudioLimits

ANALYSIS_RATE = 22050
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
_SILENT_RMS = 1e-4
_MIN_KEY_CORRELATION = 0.5


@dataclass(frozen=True)
class Analysis:
    """What analysis found.

    Args:
        bpm: tempo in beats per minute (None when no beat was found).
        beats: beat times in seconds.
        key: e.g. "A minor" (None for silence or when no key template fits).
        key_confidence: correlation margin of the best key over the runner-up (0-2; above ~0.1 is clear).
        duration_s: length analysed.
    """

    bpm: float | None
    beats: tuple[float, ...]
    key: str | None
    key_confidence: float
    duration_s: float


def _mono(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    import librosa

    mono = np.atleast_2d(np.asarray(audio, dtype=np.float32)).mean(axis=0)
    if sample_rate != ANALYSIS_RATE:
        mono = librosa.resample(mono, orig_sr=sample_rate, target_sr=ANALYSIS_RATE, res_type="soxr_hq")
    return np.ascontiguousarray(mono, dtype=np.float32)


def _tempo_and_beats(mono: np.ndarray) -> tuple[float | None, tuple[float, ...]]:
    import librosa

    if mono.size < ANALYSIS_RATE or float(np.sqrt(np.mean(np.square(mono)))) < _SILENT_RMS:
        return None, ()
    tempo, beats = librosa.beat.beat_track(y=mono, sr=ANALYSIS_RATE, units="time")
    times = tuple(round(float(t), 4) for t in np.asarray(beats).ravel())
    if len(times) >= 4:
        # Least-squares slope of beat time against beat number: sub-frame precise.
        slope = float(np.polyfit(np.arange(len(times)), np.asarray(times), 1)[0])
        return (round(60.0 / slope, 1) if slope > 0 else None), times
    estimate = float(np.atleast_1d(tempo)[0])
    return (round(estimate, 1) if estimate > 0 else None), times


def _key(mono: np.ndarray) -> tuple[str | None, float]:
    import librosa

    if mono.size < ANALYSIS_RATE // 2 or float(np.sqrt(np.mean(np.square(mono)))) < _SILENT_RMS:
        return None, 0.0
    chroma = librosa.feature.chroma_stft(y=mono, sr=ANALYSIS_RATE, n_fft=4096, hop_length=2048)
    profile = chroma.mean(axis=1)
    if not np.all(np.isfinite(profile)) or float(profile.std()) == 0.0:
        return None, 0.0
    scores: list[tuple[float, str]] = []
    for tonic in range(12):
        for name, template in (("major", _MAJOR_PROFILE), ("minor", _MINOR_PROFILE)):
            score = float(np.corrcoef(profile, np.roll(template, tonic))[0, 1])
            scores.append((score, f"{PITCH_NAMES[tonic]} {name}"))
    scores.sort(reverse=True)
    if scores[0][0] < _MIN_KEY_CORRELATION:
        return None, 0.0  # no template fits: noise, drums, speech
    return scores[0][1], round(scores[0][0] - scores[1][0], 3)


def analyse_sync(audio: np.ndarray, sample_rate: int) -> Analysis:
    """Blocking analysis; prefer :func:`analyse` from async code.

    Args:
        audio: [channels, samples] or [samples].
        sample_rate: Hz.
    """
    mono = _mono(audio, sample_rate)
    bpm, beats = _tempo_and_beats(mono)
    key, confidence = _key(mono)
    return Analysis(bpm=bpm, beats=beats, key=key, key_confidence=confidence, duration_s=mono.size / ANALYSIS_RATE)


async def analyse(audio: np.ndarray, sample_rate: int) -> Analysis:
    """Tempo, beat times and key of ``audio``, computed in a worker thread.

    Args:
        audio: [channels, samples] or [samples].
        sample_rate: Hz.
    """
    return await asyncio.to_thread(analyse_sync, audio, sample_rate)


async def estimate_tempo(audio: np.ndarray, sample_rate: int) -> float | None:
    """Tempo in BPM (None when no beat is found).

    Args:
        audio: [channels, samples] or [samples].
        sample_rate: Hz.
    """

    def run() -> float | None:
        return _tempo_and_beats(_mono(audio, sample_rate))[0]

    return await asyncio.to_thread(run)


async def estimate_key(audio: np.ndarray, sample_rate: int) -> str | None:
    """The most likely key, e.g. "A minor" (None for silence).

    Args:
        audio: [channels, samples] or [samples].
        sample_rate: Hz.
    """

    def run() -> str | None:
        return _key(_mono(audio, sample_rate))[0]

    return await asyncio.to_thread(run)


async def warm_up() -> None:
    """Import librosa's beat tracker in a worker thread (loads numba's cache: seconds, once per process).

    Call it at bot start so the first member to ask for a tempo does not wait for it.
    """

    def load() -> None:
        import librosa.beat
        import librosa.feature

        del librosa

    await asyncio.to_thread(load)


async def analyse_file(path: Path, limits: AudioLimits) -> Analysis:
    """Analyse any attachment: decode it (with every input check) at 22.05 kHz mono, then :func:`analyse`.

    Args:
        limits: the limits in force.

    Raises:
        AudioInputError: when the file is refused.
    """
    loaded = await load_input(path, ANALYSIS_RATE, 1, limits)
    return await analyse(loaded.audio, ANALYSIS_RATE)
