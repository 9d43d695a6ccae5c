"""Good files in: every allowed format is detected from its bytes, saved safely and decoded to the right length."""

from __future__ import annotations

import numpy as np
import pytest

from bot.audio import (
    AudioLimits,
    AudioTooLongError,
    InputFileNotFoundError,
    InputTimeoutError,
    decode,
    load_input,
    probe,
    save_attachment,
)
from bot.audio.inputs import SILENT_WARNING
from bot.config import Settings

from .conftest import SECONDS, VALID_FORMATS, ffmpeg

LIMITS = AudioLimits(timeout_s=15)


@pytest.mark.parametrize("name", sorted(VALID_FORMATS))
async def test_every_allowed_format_decodes_to_the_right_length(corpus, tmp_path, name):
    expected_extension = VALID_FORMATS[name][2]
    loaded = await load_input(corpus.valid[name], 32000, 2, LIMITS)
    assert loaded.info.extension == expected_extension
    assert loaded.audio.dtype == np.float32
    assert loaded.audio.shape[0] == 2
    assert abs(loaded.duration_s - SECONDS) < 0.05
    assert loaded.warnings == ()
    assert loaded.info.has_video == (name in {"mp4", "mov", "mkv"})

    saved = await save_attachment(corpus.valid[name].read_bytes(), tmp_path / "job", "job-1", LIMITS)
    assert saved.path == tmp_path / "job" / f"job-1.{expected_extension}"
    assert sorted(p.name for p in (tmp_path / "job").iterdir()) == [saved.path.name]
    assert saved.info.path == saved.path


async def test_decoding_resamples_and_keeps_the_pitch(corpus):
    audio = await decode(corpus.valid["wav"], 32000, 1, LIMITS)
    assert audio.shape == (1, 64000)
    spectrum = np.abs(np.fft.rfft(audio[0]))
    peak_hz = np.argmax(spectrum) * 32000 / audio.shape[1]
    assert abs(peak_hz - 330) < 1.0
    assert audio.flags.writeable
    assert audio.flags.c_contiguous


async def test_probe_reports_what_the_file_holds(corpus):
    info = await probe(corpus.valid["flac"], LIMITS)
    assert (info.family, info.codec, info.channels, info.sample_rate) == ("flac", "flac", 1, 44100)
    assert info.demuxer == "flac"
    assert abs(info.duration_s - SECONDS) < 0.01
    assert info.size_bytes == corpus.valid["flac"].stat().st_size


async def test_silent_input_is_a_warning_not_an_error(tmp_path):
    path = tmp_path / "quiet.wav"
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo", "-t", "2", "-c:a", "pcm_s16le", path)
    loaded = await load_input(path, 32000, 2, LIMITS)
    assert loaded.silent
    assert loaded.warnings == (SILENT_WARNING,)
    saved = await save_attachment(path.read_bytes(), tmp_path / "job", "quiet", LIMITS)
    assert saved.warnings == (SILENT_WARNING,)


async def test_a_stuck_tool_ends_in_a_timeout_error(corpus):
    with pytest.raises(InputTimeoutError, match="took longer than 0.001 s"):
        await load_input(corpus.valid["wav"], 32000, 2, AudioLimits(timeout_s=0.001))


async def test_the_decoded_size_cap_stops_a_decode(corpus):
    with pytest.raises(AudioTooLongError, match="decodes to more than"):
        await decode(corpus.valid["wav"], 32000, 2, AudioLimits(max_decoded_bytes=100_000))


async def test_a_duration_limit_refuses_longer_files(corpus):
    with pytest.raises(AudioTooLongError, match=r"This audio is 2.0 s long; the limit is 1.0 s\."):
        await probe(corpus.valid["ogg"], AudioLimits(max_duration_s=1.0))


async def test_a_missing_file_says_so_without_the_folder(tmp_path):
    with pytest.raises(InputFileNotFoundError) as caught:
        await probe(tmp_path / "nope.mp3", LIMITS)
    assert "'nope.mp3'" in str(caught.value)
    assert str(tmp_path) not in str(caught.value)


def test_limits_come_from_the_settings():
    limits = AudioLimits.from_settings(Settings(max_attachment_mb=8, max_input_minutes=2.5, ffmpeg_timeout=7))
    assert limits == AudioLimits(max_bytes=8 * 1024 * 1024, max_duration_s=150.0, timeout_s=7.0)
    defaults = AudioLimits.from_settings(Settings())
    assert (defaults.max_bytes, defaults.max_duration_s, defaults.max_channels) == (25 * 1024 * 1024, 600.0, 8)
    with pytest.raises(ValueError, match="positive"):
        AudioLimits(timeout_s=0)
