"""Loops cut at bar boundaries and bounces of chains of takes, on signals made here (real librosa, real ffmpeg)."""

from __future__ import annotations

import io
import json
import math
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from bot.audio import AudioLimits, TrackTags, analyse, encode, integrated_loudness, read_recipe
from bot.audio.arrange import (
    LOOP_CROSSFADE_S,
    REMIX_CROSSFADE_S,
    BouncePart,
    BounceTooLongError,
    NoSteadyBeatError,
    Segment,
    TooShortToLoopError,
    bounce,
    bounce_tags,
    join_segments,
    loop_cut,
    make_loop,
)
from bot.audio.encode import MAX_RECIPE_BYTES

RATE = 32000


def click_track(bpm: float = 120.0, seconds: float = 10.0, rate: int = RATE, offset_s: float = 0.25) -> np.ndarray:
    """Decaying 1 kHz clicks on every beat (accented downbeats) over a quiet hum: [1, samples]."""
    t = np.arange(int(seconds * rate)) / rate
    audio = 0.02 * np.sin(2 * np.pi * 110 * t)
    click_len = int(0.04 * rate)
    envelope = np.exp(-np.arange(click_len) / (0.006 * rate))
    burst = np.sin(2 * np.pi * 1000 * np.arange(click_len) / rate) * envelope
    for beat, start in enumerate(np.arange(offset_s, seconds - 0.05, 60.0 / bpm)):
        first = round(start * rate)
        gain = 0.8 if beat % 4 == 0 else 0.5
        audio[first : first + click_len] += gain * burst[: len(audio[first : first + click_len])]
    return audio[np.newaxis, :].astype(np.float32)


def largest_step(audio: np.ndarray) -> float:
    return float(np.max(np.abs(np.diff(audio, axis=-1))))


def wav_file(path: Path, audio: np.ndarray, rate: int = RATE) -> Path:
    audio = np.atleast_2d(audio)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(audio.shape[0])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(audio.T, -1, 1) * 32767).astype("<i2").tobytes())
    path.write_bytes(buffer.getvalue())
    return path


def ffprobe_duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip())


# ---------------------------------------------------------------------- loops
async def test_a_loop_of_a_120_bpm_click_track_is_whole_bars_and_repeats_without_a_step():
    signal = click_track(120.0, seconds=10.0)
    analysis = await analyse(signal, RATE)
    assert analysis.bpm == pytest.approx(120.0, rel=0.01)
    cut = loop_cut(signal, RATE, bpm=analysis.bpm, beats=analysis.beats, beats_per_bar=4)
    bars = cut.length_s / 2.0  # a 4/4 bar at 120 bpm is 2 s
    assert cut.bars >= 2
    assert bars == pytest.approx(round(bars), rel=0.01)
    assert round(bars) == cut.bars
    assert cut.audio.shape[-1] == round(cut.length_s * RATE)
    own = largest_step(signal)
    join = float(np.max(np.abs(cut.audio[:, 0] - cut.audio[:, -1])))
    assert join <= own
    # Played twice in a row: no step anywhere that the take itself does not have.
    assert largest_step(np.concatenate([cut.audio, cut.audio], axis=-1)) <= own * 1.001


def test_without_audio_after_the_end_the_loop_fades_into_what_precedes_its_start():
    rng = np.random.default_rng(3)
    signal = np.cumsum(rng.standard_normal((1, RATE * 3)), axis=-1).astype(np.float32) * 1e-3
    start_s, bar_s = 0.5, 1.25  # 4 beats at 192 bpm; the take ends exactly 2 bars after the first beat
    signal = signal[:, : round((start_s + 2 * bar_s) * RATE)]
    cut = loop_cut(signal, RATE, bpm=192.0, beats=[start_s], beats_per_bar=4, max_bars=2)
    start = round(start_s * RATE)
    assert cut.bars == 2
    assert cut.audio[0, 0] == signal[0, start]
    assert cut.audio[0, -1] == pytest.approx(signal[0, start - 1])  # the sample the take had before the start
    assert cut.crossfade_s == pytest.approx(LOOP_CROSSFADE_S)


def test_no_beat_or_too_short_takes_are_refused_with_a_sentence():
    signal = click_track(120.0, seconds=1.0)
    with pytest.raises(NoSteadyBeatError, match="steady beat"):
        loop_cut(signal, RATE, bpm=None, beats=(), beats_per_bar=4)
    with pytest.raises(TooShortToLoopError, match="shorter than one bar"):
        loop_cut(signal, RATE, bpm=120.0, beats=(0.25,), beats_per_bar=4)


async def test_make_loop_writes_a_tagged_mp3_of_whole_bars(tmp_path):
    source = wav_file(tmp_path / "take.wav", click_track(120.0, seconds=9.0))
    loop = await make_loop(
        source,
        tmp_path / "loop.mp3",
        beats_per_bar=4,
        title="clicks (loop)",
        recipe={"job_id": "abcd2345"},
        byte_limit=10 * 1024 * 1024,
        limits=AudioLimits(),
    )
    assert loop.bars == 4
    assert loop.bpm == pytest.approx(120.0, rel=0.01)
    assert ffprobe_duration(loop.path) == pytest.approx(loop.bars * 4 * 60 / loop.bpm, rel=0.01)
    recipe = await read_recipe(loop.path)
    assert recipe["job_id"] == "abcd2345"
    assert recipe["loop"]["bars"] == 4


# ---------------------------------------------------------------------- joins
def test_a_continuation_joined_over_its_copied_prompt_is_seamless():
    rng = np.random.default_rng(7)
    whole = rng.standard_normal((2, RATE * 5)).astype(np.float32) * 0.1
    parent = whole[:, : RATE * 3]
    prompt_s = 2.0
    child = whole[:, RATE * 1 :]  # begins with the parent's last 2 s, then 2 s of new music
    joined = join_segments(
        [Segment(parent), Segment(child, "continuation", prompt_s=prompt_s)], RATE, continuation_crossfade_s=0.1
    )
    assert joined.shape == whole.shape  # 3 s + 4 s - the 2 s prompt... with its crossfade inside it
    np.testing.assert_allclose(joined, whole, atol=1e-6)


def test_join_lengths_follow_the_documented_rule():
    rng = np.random.default_rng(1)
    lengths = [2.0, 4.0, 6.0, 2.0, 4.0]
    joins = ["start", "continuation", "continuation", "crossfade", "continuation"]
    prompts = [0.0, 2.0, 4.0, 0.0, 2.0]
    segments = [
        Segment(rng.standard_normal((1, round(n * RATE))).astype(np.float32), join, prompt_s=p)  # type: ignore[arg-type]
        for n, join, p in zip(lengths, joins, prompts, strict=True)
    ]
    joined = join_segments(segments, RATE)
    # A continuation's whole prompt overlaps its parent (its crossfade lies inside the prompt).
    expected = sum(lengths) - sum(prompts) - joins.count("crossfade") * REMIX_CROSSFADE_S
    assert expected == pytest.approx(9.0)
    assert joined.shape[-1] / RATE == pytest.approx(expected, abs=1 / RATE)


def test_a_continuation_from_the_middle_cuts_the_parent_where_it_continued():
    parent = np.linspace(0, 1, RATE * 4, dtype=np.float32)[np.newaxis, :]
    child = np.concatenate([parent[:, RATE : RATE * 2], np.ones((1, RATE), np.float32)], axis=-1)
    joined = join_segments(
        [Segment(parent), Segment(child, "continuation", prompt_s=1.0, cut_previous_at_s=2.0)],
        RATE,
        continuation_crossfade_s=0.05,
    )
    assert joined.shape[-1] == RATE * 3  # parent up to 2 s, then the child's new second
    np.testing.assert_allclose(joined[:, : RATE * 2], parent[:, : RATE * 2], atol=1e-6)
    assert np.all(joined[:, RATE * 2 :] == 1)


def test_parts_of_different_channels_are_refused():
    with pytest.raises(ValueError, match="same channels"):
        join_segments([Segment(np.zeros((1, 10))), Segment(np.zeros((2, 10)), "crossfade")], RATE)


# ---------------------------------------------------------------------- bounces
async def test_bounce_matches_loudness_tags_every_recipe_and_fits_the_limit(tmp_path):
    t = np.arange(RATE * 3) / RATE
    quiet = wav_file(tmp_path / "a.wav", 0.02 * np.sin(2 * np.pi * 220 * t))
    loud = wav_file(tmp_path / "b.wav", 0.5 * np.sin(2 * np.pi * 330 * t))
    recipes = [{"job_id": "aaaa2222", "prompt": "quiet"}, {"job_id": "bbbb3333", "prompt": "loud"}]
    people = [{"user_id": 1, "name": "alice"}, {"user_id": 2, "name": "bob"}]
    tags = bounce_tags("test jam (bounce)", recipes, people, session_id="ssss4444")
    track = await bounce(
        [BouncePart(quiet), BouncePart(loud, "crossfade")],
        tmp_path / "bounce.mp3",
        tags=tags,
        byte_limit=10 * 1024 * 1024,
        loudness_target=-16.0,
    )
    assert ffprobe_duration(track.path) == pytest.approx(6.0 - REMIX_CROSSFADE_S, abs=0.1)
    recipe = await read_recipe(track.path)
    assert [part["job_id"] for part in recipe["parts"]] == ["aaaa2222", "bbbb3333"]
    assert [c["name"] for c in recipe["contributors"]] == ["alice", "bob"]
    assert recipe["bounce"]["session_id"] == "ssss4444"
    decoded = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(track.path), "-f", "f32le", "-ac", "1", "-ar", str(RATE), "-"],
        capture_output=True,
        check=True,
    ).stdout
    mixed = np.frombuffer(decoded, dtype="<f4")[np.newaxis, :]
    first, second = mixed[:, : RATE * 2], mixed[:, RATE * 3 : RATE * 5]
    assert abs(integrated_loudness(first, RATE) - integrated_loudness(second, RATE)) < 1.0  # was 28 dB apart


async def test_a_bounce_too_big_for_the_limit_says_so(tmp_path):
    noise = np.random.default_rng(0).standard_normal((1, RATE * 4)).astype(np.float32) * 0.1
    part = wav_file(tmp_path / "n.wav", noise)
    with pytest.raises(BounceTooLongError, match="upload limit"):
        await bounce([BouncePart(part)], tmp_path / "b.mp3", tags=TrackTags(), byte_limit=20_000)
    with pytest.raises(BounceTooLongError, match="at most"):
        await bounce([BouncePart(part)], tmp_path / "b.mp3", tags=TrackTags(), byte_limit=10**7, max_seconds=2.0)


def test_huge_recipes_are_compacted_to_fit_a_tag():
    recipes = [{"job_id": f"job{i:05d}", "prompt": "x" * 300, "top_k": 250, "notes": "y" * 500} for i in range(150)]
    tags = bounce_tags("big", recipes, [{"user_id": 1, "name": "a"}])
    text = json.dumps(tags.recipe)
    assert len(text.encode()) < MAX_RECIPE_BYTES
    assert len(tags.recipe["parts"]) == 150
    assert "notes" not in tags.recipe["parts"][0]
    assert tags.artist == "a with jamgen"


async def test_the_loop_mp3_repeats_cleanly_after_decoding(tmp_path):
    """The MP3 itself: decoded, its length is whole bars and its end runs into its start like the take."""
    signal = click_track(120.0, seconds=9.0)
    source = tmp_path / "take.mp3"
    await encode(signal, RATE, source, fmt="mp3", normalization="none")
    loop = await make_loop(source, tmp_path / "loop.mp3", beats_per_bar=4, byte_limit=10**7)
    decoded = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(loop.path), "-f", "f32le", "-ac", "1", "-"], capture_output=True, check=True
    ).stdout
    audio = np.frombuffer(decoded, dtype="<f4")
    assert len(audio) / RATE == pytest.approx(loop.bars * 2.0, rel=0.01)
    reference = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(source), "-f", "f32le", "-ac", "1", "-"], capture_output=True, check=True
    ).stdout
    own = largest_step(np.frombuffer(reference, dtype="<f4")[np.newaxis, :])
    assert math.isfinite(own)
    assert abs(float(audio[0]) - float(audio[-1])) <= own
