"""Tempo, beats and key on material whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from bot.audio import AudioLimits, analyse, analyse_file, estimate_key, estimate_tempo, warm_up

RATE = 22050


def _note(midi: int, seconds: float) -> np.ndarray:
    frequency = 440 * 2 ** ((midi - 69) / 12)
    t = np.arange(int(seconds * RATE)) / RATE
    return sum(np.sin(2 * np.pi * frequency * h * t) / h for h in (1, 2, 3)) * np.exp(-3 * t)


def _melody(notes: list[int]) -> np.ndarray:
    return (np.tile(np.concatenate([_note(n, 0.25) for n in notes]), 4) * 0.3).astype(np.float32)


def _clicks(bpm: float, seconds: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    audio = np.zeros(int(seconds * RATE), dtype=np.float32)
    burst = (rng.standard_normal(300) * np.exp(-np.arange(300) / 50)).astype(np.float32)
    for start in np.arange(0, seconds - 0.1, 60 / bpm):
        audio[int(start * RATE) : int(start * RATE) + 300] += burst
    return audio * 0.3


@pytest.mark.slow  # the first beat tracking in a process loads librosa's numba cache (a few seconds)
async def test_a_click_track_gives_its_tempo_and_beats():
    await warm_up()
    analysis = await analyse(np.stack([_clicks(120, 20.0)] * 2), RATE)
    assert analysis.bpm == pytest.approx(120, abs=1.0)
    spacing = np.diff(analysis.beats)
    assert np.median(spacing) == pytest.approx(0.5, abs=0.03)
    assert len(analysis.beats) >= 30
    assert analysis.key is None  # clicks have no key
    assert await estimate_tempo(_clicks(90, 20.0), RATE) == pytest.approx(90, abs=1.0)


async def test_keys_of_simple_melodies():
    a_minor = _melody([57, 60, 64, 69, 68, 64, 60, 57, 57, 64, 62, 60, 59, 57, 56, 57])
    c_major = _melody([60, 64, 67, 72, 71, 67, 65, 64, 62, 60, 55, 59, 62, 67, 65, 64])
    assert await estimate_key(a_minor, RATE) == "A minor"
    assert await estimate_key(c_major, RATE) == "C major"


async def test_silence_has_no_tempo_and_no_key():
    analysis = await analyse(np.zeros((1, 3 * RATE), dtype=np.float32), RATE)
    assert (analysis.bpm, analysis.beats, analysis.key) == (None, (), None)
    assert analysis.duration_s == pytest.approx(3.0)


async def test_any_attachment_can_be_analysed(corpus):
    analysis = await analyse_file(corpus.valid["ogg"], AudioLimits(timeout_s=15))
    assert analysis.duration_s == pytest.approx(2.0, abs=0.05)
