"""The slices each mode conditions on."""

from __future__ import annotations

import numpy as np
import pytest

from bot.audio import (
    AudioTooShortError,
    continuation_prompt,
    loudest_window_start,
    melody_excerpt,
    style_excerpt,
)

RATE = 1000  # a low rate keeps these arrays tiny; the functions do not care


def _ramp(seconds: float, channels: int = 2) -> np.ndarray:
    """Samples whose value is their own time in seconds, so slices can be read off."""
    t = np.arange(round(seconds * RATE), dtype=np.float32) / RATE
    return np.stack([t] * channels)


def test_style_defaults_to_three_seconds_of_the_loudest_window():
    audio = np.full((2, 10 * RATE), 0.01, dtype=np.float32)
    audio[:, 6 * RATE : 9 * RATE] = 0.5  # the loud part: 6-9 s
    excerpt = style_excerpt(audio, RATE)
    assert excerpt.start_s == pytest.approx(6.0, abs=0.05)
    assert excerpt.duration_s == pytest.approx(3.0)
    assert excerpt.audio.shape == (2, 3 * RATE)
    assert float(excerpt.audio.min()) == pytest.approx(0.5)


def test_style_from_a_given_start_and_length_clamped_to_4_5_s():
    excerpt = style_excerpt(_ramp(10.0), RATE, start_s=2.0, length_s=9.0)
    assert excerpt.start_s == pytest.approx(2.0)
    assert excerpt.duration_s == pytest.approx(4.5)
    assert excerpt.audio[0, 0] == pytest.approx(2.0)
    assert style_excerpt(_ramp(10.0), RATE, length_s=0.2).duration_s == pytest.approx(1.5)


def test_style_uses_all_of_a_short_file_and_refuses_a_too_short_one():
    assert style_excerpt(_ramp(2.0), RATE).duration_s == pytest.approx(2.0)
    with pytest.raises(AudioTooShortError) as caught:
        style_excerpt(_ramp(0.8), RATE)
    assert str(caught.value) == "Style needs at least 1.5 s of audio; this file has 0.8 s."
    with pytest.raises(AudioTooShortError, match=r"Style needs at least 1\.5 s of audio; from 9\.0 s .* 1\.0 s left"):
        style_excerpt(_ramp(10.0), RATE, start_s=9.0)
    # Just short of the minimum reads as precisely as it takes: never "1.5 s" (contradictory), never "1.4 s" (wrong).
    with pytest.raises(AudioTooShortError, match=r"this file has 1\.46 s\."):
        style_excerpt(_ramp(1.46), RATE)


@pytest.mark.parametrize(
    ("seconds", "shown"), [(1.4995, "1.4995 s"), (1.49, "1.49 s"), (1.4, "1.4 s"), (0.96, "1.0 s")]
)
def test_a_length_just_under_the_minimum_is_reported_as_it_is(seconds, shown):
    rate = 40000  # 1.4995 s is a whole number of samples
    with pytest.raises(AudioTooShortError) as caught:
        style_excerpt(np.zeros((1, round(seconds * rate)), dtype=np.float32), rate)
    assert str(caught.value) == f"Style needs at least 1.5 s of audio; this file has {shown}."


def test_a_clip_of_exactly_the_minimum_is_not_refused_for_a_sample_lost_in_resampling():
    model_rate = 32000
    clip = np.zeros((1, round(1.5 * model_rate) - 1), dtype=np.float32)
    assert style_excerpt(clip, model_rate).duration_s == pytest.approx(1.5, abs=1e-4)


def test_melody_takes_the_first_duration_or_from_a_start():
    excerpt = melody_excerpt(_ramp(30.0, channels=1), RATE, 8.0)
    assert (excerpt.start_s, excerpt.duration_s) == (0.0, 8.0)
    later = melody_excerpt(_ramp(30.0, channels=1), RATE, 8.0, start_s=25.0)
    assert later.start_s == pytest.approx(25.0)
    assert later.duration_s == pytest.approx(5.0)  # the file ends first
    assert later.audio[0, 0] == pytest.approx(25.0)
    with pytest.raises(AudioTooShortError, match=r"The melody start \(31 s\) is past the end of this file \(30 s\)"):
        melody_excerpt(_ramp(30.0), RATE, 8.0, start_s=31.0)
    with pytest.raises(AudioTooShortError, match=r"Melody needs at least 1 s of audio; this file has 0\.5 s"):
        melody_excerpt(_ramp(0.5), RATE, 8.0)


def test_continuation_uses_the_last_seconds():
    excerpt = continuation_prompt(_ramp(25.0), RATE)
    assert excerpt.start_s == pytest.approx(15.0)
    assert excerpt.duration_s == pytest.approx(10.0)
    assert excerpt.audio[0, -1] == pytest.approx(25.0 - 1 / RATE)
    short = continuation_prompt(_ramp(4.0), RATE, seconds=10.0)
    assert (short.start_s, short.duration_s) == (0.0, 4.0)
    with pytest.raises(AudioTooShortError, match="Continuing needs at least 1 s of audio; this file has 0.3 s"):
        continuation_prompt(_ramp(0.3), RATE)


def test_excerpts_are_copies_and_accept_mono_vectors():
    audio = _ramp(5.0, channels=1)[0]
    excerpt = continuation_prompt(audio, RATE, seconds=2.0)
    excerpt.audio[...] = 0
    assert audio[-1] > 4.9
    assert loudest_window_start(np.zeros(10), RATE, 3.0) == 0.0
