"""The BS.1770 meter agrees with the recommendation and with ffmpeg's ebur128 filter."""

from __future__ import annotations

import math
import re
import subprocess

import numpy as np
import pytest

from bot.audio import integrated_loudness, level

from .conftest import music


def _ffmpeg_loudness(audio: np.ndarray, rate: int) -> float:
    pcm = np.ascontiguousarray(audio.T, dtype="<f4").tobytes()
    out = subprocess.run(
        [
            *("ffmpeg", "-nostdin", "-hide_banner", "-f", "f32le", "-ar", str(rate), "-ac", str(audio.shape[0])),
            *("-i", "pipe:0", "-af", "ebur128", "-f", "null", "-"),
        ],
        input=pcm,
        capture_output=True,
        check=True,
    )
    return float(re.findall(r"I:\s+(-?[\d.]+) LUFS", out.stderr.decode())[-1])


@pytest.mark.parametrize("rate", [32000, 44100, 48000])
def test_a_997_hz_sine_reads_as_the_recommendation_says(rate):
    t = np.arange(5 * rate) / rate
    sine = 0.1 * np.sin(2 * np.pi * 997 * t)
    # BS.1770: a full-scale 1 kHz sine in one channel reads -3.01 LUFS; two such channels read 0.
    assert integrated_loudness(np.stack([sine, sine]), rate) == pytest.approx(-20.0, abs=0.03)
    assert integrated_loudness(sine, rate) == pytest.approx(-23.01, abs=0.03)


def test_the_meter_matches_ffmpeg_ebur128_and_gates_silence():
    rate = 32000
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal((2, 6 * rate)) * 0.05).astype(np.float32)
    noise[:, : 2 * rate] *= 0.001  # a near-silent third that gating must ignore
    for audio in (music(6.0, rate), noise):
        assert integrated_loudness(audio, rate) == pytest.approx(_ffmpeg_loudness(audio, rate), abs=0.1)
    assert integrated_loudness(noise, rate) == pytest.approx(integrated_loudness(noise[:, 2 * rate :], rate), abs=0.2)
    assert integrated_loudness(np.zeros((2, rate)), rate) == -math.inf
    assert math.isfinite(integrated_loudness(noise[:, -1000:], rate))  # shorter than one block


def test_levelling_hits_the_target_and_clips_only_when_it_must():
    quiet = music(4.0, level=0.02)
    levelled = level(quiet, 32000, "loudness", -14.0)
    assert levelled.loudness_lufs == pytest.approx(-14.0, abs=0.01)
    assert integrated_loudness(levelled.audio, 32000) == pytest.approx(-14.0, abs=0.01)
    assert not levelled.clipped
    hot = level(quiet, 32000, "loudness", -1.0)
    assert hot.clipped
    assert float(np.max(np.abs(hot.audio))) <= 1.0
    with pytest.raises(ValueError, match="unknown normalization"):
        level(quiet, 32000, "rms")  # type: ignore[arg-type]
