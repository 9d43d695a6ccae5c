"""Tracks out: MP3/WAV/FLAC round trips, loudness, tags and recipe, fitting the upload limit."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from bot.audio import (
    AudioEncodeError,
    AudioLimits,
    OutputTooLargeError,
    RecipeNotFoundError,
    TrackTags,
    encode,
    integrated_loudness,
    load_input,
    read_recipe,
    read_tags,
)
from bot.audio.encode import predicted_mp3_bytes

from .conftest import music

MIB = 1024 * 1024
LIMITS = AudioLimits(timeout_s=30)
RECIPE = {
    "job_id": "j-123",
    "parent_id": None,
    "model": "melody",
    "mode": "melody",
    "params": {"prompt": "lofi piano, 80 bpm — rainy «night»", "duration": 6, "top_k": 250, "cfg_coef": 3.0},
    "seed": 1234567,
}


def _ffprobe_json(path, *entries: str) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", *entries, str(path)], capture_output=True, check=True, text=True
    )
    return json.loads(out.stdout)


async def test_mp3_round_trip_keeps_length_loudness_and_recipe(tmp_path):
    audio = music(6.0, level=0.05)
    assert integrated_loudness(audio, 32000) < -25  # far from the target, so levelling is exercised
    track = await encode(audio, 32000, tmp_path / "take.mp3", tags=TrackTags(title="lofi piano", recipe=RECIPE))
    assert (track.format, track.bitrate_kbps, track.channels, track.sample_rate) == ("mp3", 192, 2, 32000)
    assert track.size_bytes == (tmp_path / "take.mp3").stat().st_size
    assert abs(track.loudness_lufs - (-14.0)) < 0.1

    back = await load_input(tmp_path / "take.mp3", 32000, 2, LIMITS)
    assert back.info.codec == "mp3"
    assert back.info.channels == 2
    assert abs(back.duration_s - 6.0) < 0.05
    assert abs(integrated_loudness(back.audio, 32000) - (-14.0)) < 1.0
    assert await read_recipe(tmp_path / "take.mp3") == RECIPE

    stream = _ffprobe_json(tmp_path / "take.mp3", "-show_streams", "-show_format")
    assert stream["streams"][0]["codec_name"] == "mp3"
    assert stream["format"]["tags"]["title"] == "lofi piano"
    assert stream["format"]["tags"]["artist"] == "jamgen"
    assert (tmp_path / "take.mp3").read_bytes()[:4] == b"ID3\x03"  # ID3v2.3
    assert b"TXXX" in (tmp_path / "take.mp3").read_bytes()[:4096]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.mp3"]  # no partial file left


async def test_mono_stays_mono_and_long_titles_are_cut(tmp_path):
    prompt = "a very long prompt " * 20 + "\nwith a newline"
    track = await encode(music(2.0, channels=1), 32000, tmp_path / "mono.mp3", tags=TrackTags(title=prompt))
    assert track.channels == 1
    tags = await read_tags(tmp_path / "mono.mp3")
    assert len(tags["title"]) == 120
    assert tags["title"].endswith("…")
    assert "\n" not in tags["title"]
    info = (await load_input(tmp_path / "mono.mp3", 32000, 1, LIMITS)).info
    assert info.channels == 1
    with pytest.raises(RecipeNotFoundError, match="carries no jamgen recipe"):
        await read_recipe(tmp_path / "mono.mp3")


@pytest.mark.slow
async def test_a_seven_minute_track_fits_a_5_mib_limit_at_a_lower_bitrate(tmp_path):
    seconds = 7 * 60
    rng = np.random.default_rng(3)
    audio = (rng.standard_normal((2, seconds * 32000), dtype=np.float32) * 0.1).astype(np.float32)
    track = await encode(audio, 32000, tmp_path / "long.mp3", byte_limit=5 * MIB, normalization="none")
    assert track.size_bytes < 5 * MIB
    assert track.bitrate_kbps is not None
    assert track.bitrate_kbps < 192
    assert track.bitrate_kbps == max(b for b in (192, 160, 128, 96, 64) if predicted_mp3_bytes(seconds, b) < 5 * MIB)
    probed = _ffprobe_json(tmp_path / "long.mp3", "-show_format")
    assert abs(float(probed["format"]["duration"]) - seconds) < 0.1
    assert int(probed["format"]["bit_rate"]) < 192_000


async def test_nothing_fits_gives_a_clear_error_and_no_file(tmp_path):
    with pytest.raises(OutputTooLargeError, match=r"does not fit the 0\.1 MiB upload limit even as 64 kbps MP3"):
        await encode(music(30.0), 32000, tmp_path / "big.mp3", byte_limit=100 * 1024)
    with pytest.raises(OutputTooLargeError, match="as WAV, over the 0.1 MiB upload limit; choose MP3"):
        await encode(music(30.0), 32000, tmp_path / "big.wav", fmt="wav", byte_limit=100 * 1024)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["wav", "flac"])
async def test_lossless_formats_round_trip_with_the_recipe(tmp_path, fmt):
    audio = music(3.0)
    path = tmp_path / f"take.{fmt}"
    track = await encode(audio, 32000, path, fmt=fmt, tags=TrackTags(title="t", recipe=RECIPE), normalization="peak")
    assert track.bitrate_kbps is None
    back = await load_input(path, 32000, 2, LIMITS)
    assert back.info.family == fmt
    assert back.audio.shape == audio.shape
    assert abs(float(np.max(np.abs(back.audio))) - 10 ** (-1 / 20)) < 1e-3  # peak at -1 dBFS
    assert await read_recipe(path) == RECIPE


async def test_clip_and_none_strategies(tmp_path):
    loud = np.full((1, 32000), 0.0, dtype=np.float32)
    loud[0, ::2], loud[0, 1::2] = 2.0, -2.0
    await encode(loud, 32000, tmp_path / "clip.wav", fmt="wav", normalization="clip")
    clipped = (await load_input(tmp_path / "clip.wav", 32000, 1, LIMITS)).audio
    assert abs(float(np.max(np.abs(clipped))) - 10 ** (-1 / 20)) < 1e-3

    quiet = music(2.0, channels=1, level=0.01)
    track = await encode(quiet, 32000, tmp_path / "none.wav", fmt="wav", normalization="none")
    kept = (await load_input(tmp_path / "none.wav", 32000, 1, LIMITS)).audio
    assert np.allclose(kept, quiet, atol=1e-4)
    assert abs(track.loudness_lufs - integrated_loudness(quiet, 32000)) < 0.01


async def test_silence_is_written_without_gain(tmp_path):
    track = await encode(np.zeros((2, 32000), dtype=np.float32), 32000, tmp_path / "s.mp3")
    assert track.loudness_lufs is None
    back = await load_input(tmp_path / "s.mp3", 32000, 2, LIMITS)
    assert back.silent


async def test_invalid_audio_is_an_internal_error(tmp_path):
    broken = music(1.0)
    broken[0, 10] = np.nan
    with pytest.raises(AudioEncodeError):
        await encode(broken, 32000, tmp_path / "x.mp3")
    with pytest.raises(AudioEncodeError, match="at most 2 channels"):
        await encode(np.zeros((4, 3200), dtype=np.float32), 32000, tmp_path / "x.mp3")
    assert list(tmp_path.iterdir()) == []
