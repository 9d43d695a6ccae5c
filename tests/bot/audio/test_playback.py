"""Decoding takes for a voice channel: 48 kHz stereo s16 in 20-ms frames, the level untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.audio import DamagedAudioError, InputFileNotFoundError
from bot.audio.playback import FRAME_BYTES, VOICE_RATE, decode_for_voice
from tests.bot.audio.conftest import ffmpeg


@pytest.fixture(scope="module")
def tone_mp3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("playback") / "tone.mp3"
    # 1.5 s of 440 Hz at -12 dBFS, mono at 32 kHz: the decoder must resample and duplicate the channel.
    ffmpeg(
        "-f", "lavfi", "-i", "aevalsrc=0.25*sin(2*PI*440*t):s=32000:d=1.5", "-c:a", "libmp3lame", "-b:a", "128k", path
    )  # fmt: skip
    return path


async def test_a_take_decodes_to_voice_frames_at_its_own_level(tone_mp3: Path) -> None:
    pcm = await decode_for_voice(tone_mp3)

    assert abs(pcm.seconds - 1.5) < 0.075  # within 5 % (MP3 padding)
    samples = np.frombuffer(pcm.pcm, dtype="<i2").reshape(-1, 2).astype(np.float32) / 32768
    middle = samples[VOICE_RATE // 4 : VOICE_RATE]
    assert np.allclose(middle[:, 0], middle[:, 1])  # mono duplicated to both channels
    peak = float(np.abs(middle).max())
    assert 0.22 < peak < 0.28  # the level is the file's (0.25), not normalised
    spectrum = np.abs(np.fft.rfft(middle[:, 0]))
    assert abs(np.argmax(spectrum) * VOICE_RATE / len(middle) - 440) < 5  # resampled, not sped up


async def test_frames_are_20_ms_with_the_last_padded(tone_mp3: Path) -> None:
    pcm = await decode_for_voice(tone_mp3)
    count = -(-len(pcm.pcm) // FRAME_BYTES)

    assert FRAME_BYTES == 3840
    assert all(len(pcm.frame(i)) == FRAME_BYTES for i in range(count))
    assert pcm.frame(count) == b""


async def test_a_cut_limit_and_missing_or_broken_files(tone_mp3: Path, tmp_path: Path) -> None:
    assert abs((await decode_for_voice(tone_mp3, max_seconds=0.5)).seconds - 0.5) < 0.03
    with pytest.raises(InputFileNotFoundError):
        await decode_for_voice(tmp_path / "gone.mp3")
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"not audio at all" * 100)
    with pytest.raises(DamagedAudioError):
        await decode_for_voice(broken)


async def test_a_stereo_take_keeps_its_sides(tmp_path: Path) -> None:
    path = tmp_path / "wide.mp3"
    ffmpeg(
        "-f", "lavfi", "-i", "aevalsrc=0.25*sin(2*PI*440*t)|0.1*sin(2*PI*440*t):s=48000:d=1", "-c:a", "libmp3lame", path
    )  # fmt: skip
    samples = np.frombuffer((await decode_for_voice(path)).pcm, dtype="<i2").reshape(-1, 2) / 32768
    left, right = np.abs(samples[VOICE_RATE // 4 : VOICE_RATE // 2]).max(axis=0)
    assert 0.22 < left < 0.28
    assert 0.08 < right < 0.12
