"""Unusual but real files: judged by what decodes, named when refused, never described in ffmpeg's words.

Every file is built here (ffmpeg for what it can write, a few bytes by hand for the rest) and goes through
both entries, ``load_input`` (the CLI) and ``save_attachment`` (Discord).
"""

from __future__ import annotations

import struct
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest

from bot.audio import (
    AudioInputError,
    AudioLimits,
    AudioTooShortError,
    DamagedAudioError,
    UnsupportedAudioFormatError,
    load_input,
    save_attachment,
    style_excerpt,
)

from .conftest import ffmpeg

LIMITS = AudioLimits(timeout_s=20)
SINE_HZ = 440.0


def _encoders() -> str:
    return subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True, check=True).stdout


def _ogg_crc(page: bytes) -> int:
    """The CRC-32 an Ogg page carries (polynomial 0x04C11DB7, not reflected, computed with the field zeroed)."""
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def long_pre_skip_opus(path: Path, pre_skip: int = 60000) -> None:
    """An 11.4 s Ogg Opus whose OpusHead asks the decoder to skip ``pre_skip`` samples (1.25 s) at the start.

    Players honour the pre-skip, so the file plays 10.16 s; its granule positions still add up to 11.4 s,
    which is what the container's header says.
    """
    ffmpeg("-f", "lavfi", "-i", f"sine=frequency={SINE_HZ}:duration=11.4:sample_rate=48000", "-c:a", "libopus", path)
    data = bytearray(path.read_bytes())
    head = data.find(b"OpusHead")
    assert 0 < head < 64, "OpusHead is in the first page"
    struct.pack_into("<H", data, head + 10, pre_skip)
    segments = data[26]
    end = 27 + segments + sum(data[27 : 27 + segments])
    data[22:26] = bytes(4)
    struct.pack_into("<I", data, 22, _ogg_crc(bytes(data[:end])))
    path.write_bytes(bytes(data))


def riff_wav(fmt_tag: int, *, bits: int = 16, data: bytes = b"\x00\x10" * 8000, extension: bytes = b"") -> bytes:
    """A little-endian WAV at 8 kHz mono with any format tag (and WAVE_FORMAT_EXTENSIBLE bytes if given)."""
    fmt = struct.pack("<HHIIHH", fmt_tag, 1, 8000, 8000 * bits // 8, max(1, bits // 8), bits)
    if extension:
        fmt += struct.pack("<H", len(extension)) + extension
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def rifx_wav(seconds: float = 2.0, rate: int = 44100) -> bytes:
    """A big-endian WAV (RIFX) of a 440 Hz sine at 0.3: every size, field and sample big-endian."""
    t = np.arange(round(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * SINE_HZ * t) * 32767).astype(">i2").tobytes()
    fmt = struct.pack(">HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack(">I", len(fmt)) + fmt + b"data" + struct.pack(">I", len(samples)) + samples
    return b"RIFX" + struct.pack(">I", len(body)) + body


def id3_tag(size: int = 64) -> bytes:
    return b"ID3\x03\x00\x00" + bytes([0, 0, size >> 7, size & 0x7F]) + bytes(size)


def mp3_claiming_days_with_no_sound() -> bytes:
    """A Xing header that claims 46 h 57 min of frames, then two frames that do not decode."""
    header = b"\xff\xfb\x90\xc0"  # MPEG-1 layer III, 128 kbps, 44.1 kHz, mono: 417-byte frames
    frames = int(169_050 * 44100 / 1152)
    info = header + bytes(17) + b"Xing" + struct.pack(">II", 1, frames)
    info += bytes(417 - len(info))
    broken = header + b"\xff" * 413
    return info + broken + broken


@pytest.fixture(scope="module")
def odd(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("odd-formats")
    files: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        files[name] = root / name
        files[name].write_bytes(data)

    sine = ["-f", "lavfi", "-i", f"sine=frequency={SINE_HZ}:duration=3:sample_rate=48000"]
    files["pre-skip.opus"] = root / "pre-skip.opus"
    long_pre_skip_opus(files["pre-skip.opus"])
    put("big-endian.wav", rifx_wav())
    for name, args in {
        "raw.ac3": ["-c:a", "ac3", "-f", "ac3"],
        "raw.eac3": ["-c:a", "eac3", "-f", "eac3"],
        "true-audio.tta": ["-c:a", "tta", "-f", "tta"],
        "wave64.w64": ["-c:a", "pcm_s16le", "-f", "w64"],
    }.items():
        files[name] = root / name
        ffmpeg(*sine, *args, files[name])
    if " dca " in _encoders():
        files["raw.dts"] = root / "raw.dts"
        ffmpeg(*sine, "-ac", "2", "-strict", "-2", "-c:a", "dca", "-f", "dts", files["raw.dts"])
    tta = files["true-audio.tta"].read_bytes()
    put("tagged.tta", id3_tag() + tta)
    # No Musepack or TAK encoder in ffmpeg: their stream headers, as the first bytes of such files hold them.
    noise = np.random.default_rng(1).bytes(20_000)
    put("tagged-sv8.mpc", id3_tag() + b"MPCKSH\x0b" + noise)
    put("sv7.mpc", b"MP+\x17" + noise)
    put("lossless.tak", b"tBaK\x00\x00\x00\x00" + noise)
    put("no-sound.mp3", mp3_claiming_days_with_no_sound())
    put("unknown-tag.wav", riff_wav(0x1234))
    put("tag-zero.wav", riff_wav(0x0000))
    guid = uuid.UUID("12345678-1234-5678-9abc-123456789abc").bytes_le
    put("extensible-unknown.wav", riff_wav(0xFFFE, extension=struct.pack("<HI", 16, 4) + guid))
    rate = 8000  # 1.4995 s is a whole number of samples at 8 kHz
    ffmpeg("-f", "lavfi", "-i", f"sine=frequency={SINE_HZ}:sample_rate={rate}", "-t", "1.4995", root / "short.wav")
    files["short.wav"] = root / "short.wav"
    return files


async def _both_entries(path: Path, tmp_path: Path) -> list[object]:
    """What ``load_input`` and ``save_attachment`` make of a file: InputAudio/SavedInput or the error raised."""
    outcomes: list[object] = []
    for entry in ("load_input", "save_attachment"):
        try:
            if entry == "load_input":
                outcomes.append(await load_input(path, 32000, 1, LIMITS))
            else:
                outcomes.append(await save_attachment(path.read_bytes(), tmp_path / "job", "job-1", LIMITS))
        except AudioInputError as error:
            outcomes.append(error)
    return outcomes


def _peak_hz(audio: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio[0]))
    return float(np.argmax(spectrum) * rate / audio.shape[-1])


async def test_an_opus_file_with_a_long_pre_skip_is_judged_by_what_decodes(odd, tmp_path):
    loaded, saved = await _both_entries(odd["pre-skip.opus"], tmp_path)
    assert not isinstance(loaded, Exception), loaded
    assert not isinstance(saved, Exception), saved
    # The header says 11.4 s; the decoder honours the 1.25 s pre-skip and plays the rest, all of it.
    assert loaded.info.duration_s == pytest.approx(11.4, abs=0.05)
    assert loaded.duration_s == pytest.approx(11.4 - 60000 / 48000, abs=0.05)
    assert abs(_peak_hz(loaded.audio, 32000) - SINE_HZ) < 1.0


async def test_a_cut_off_mp3_and_flac_are_still_refused(corpus):
    for name in ("truncated.mp3", "truncated.flac"):
        with pytest.raises(DamagedAudioError, match="damaged or cut off .it stops after"):
            await load_input(corpus.files[name], 32000, 1, LIMITS)


async def test_a_big_endian_wav_is_read_with_its_own_byte_order(odd, tmp_path):
    loaded, saved = await _both_entries(odd["big-endian.wav"], tmp_path)
    assert not isinstance(loaded, Exception), loaded
    assert not isinstance(saved, Exception), saved
    assert saved.path.name == "job-1.wav"
    assert loaded.duration_s == pytest.approx(2.0, abs=0.01)
    # Read with the wrong byte order the sine would be loud noise; read right it is a clean 440 Hz at 0.3.
    assert float(np.max(np.abs(loaded.audio))) == pytest.approx(0.3, abs=0.02)
    assert abs(_peak_hz(loaded.audio, 32000) - SINE_HZ) < 1.0


@pytest.mark.parametrize(("name", "family"), [("raw.ac3", "ac3"), ("raw.eac3", "eac3"), ("raw.dts", "dts")])
async def test_raw_dolby_and_dts_streams_are_ordinary_codecs_and_accepted(odd, tmp_path, name, family):
    if name not in odd:
        pytest.skip("this ffmpeg has no DTS encoder")
    loaded, saved = await _both_entries(odd[name], tmp_path)
    assert not isinstance(loaded, Exception), loaded
    assert not isinstance(saved, Exception), saved
    assert loaded.info.family == family
    assert saved.path.name == f"job-1.{family}"
    assert loaded.duration_s == pytest.approx(3.0, abs=0.1)
    assert abs(_peak_hz(loaded.audio, 32000) - SINE_HZ) < 2.0


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("true-audio.tta", "This file is a TTA (True Audio) file"),
        ("tagged.tta", "This file is a TTA (True Audio) file"),
        ("tagged-sv8.mpc", "This file is a Musepack file"),
        ("sv7.mpc", "This file is a Musepack file"),
        ("lossless.tak", "This file is a TAK file"),
        ("wave64.w64", "This file is a Sony Wave64 (W64) file"),
    ],
)
async def test_audio_formats_jamgen_does_not_read_are_named_with_what_to_convert_to(odd, tmp_path, name, named):
    for outcome in await _both_entries(odd[name], tmp_path):
        assert type(outcome) is UnsupportedAudioFormatError, outcome
        message = str(outcome)
        assert message.startswith(named)
        assert "Convert it to MP3, WAV, FLAC" in message
        assert "does not look like audio" not in message
        assert "MP3 file" not in message
    assert not (tmp_path / "job").exists() or not any((tmp_path / "job").iterdir())


async def test_a_file_whose_header_claims_days_but_holds_no_sound_is_damaged_not_long(odd, tmp_path):
    for outcome in await _both_entries(odd["no-sound.mp3"], tmp_path):
        assert type(outcome) is DamagedAudioError, outcome
        assert "no sound could be decoded" in str(outcome)
        assert " h " not in str(outcome)


@pytest.mark.parametrize("name", ["unknown-tag.wav", "tag-zero.wav", "extensible-unknown.wav"])
async def test_unusual_wav_encodings_are_refused_without_talking_about_ffmpeg(odd, tmp_path, name):
    for outcome in await _both_entries(odd[name], tmp_path):
        assert type(outcome) is UnsupportedAudioFormatError, outcome
        message = str(outcome)
        assert message.startswith("This WAV file stores its sound in an encoding jamgen does not recognise")
        assert "ffmpeg" not in message.lower()
        assert "ffprobe" not in message.lower()
        assert "codec" not in message.lower()


async def test_a_length_just_under_the_style_minimum_is_reported_exactly(odd):
    loaded = await load_input(odd["short.wav"], 8000, 1, LIMITS)
    assert loaded.duration_s == pytest.approx(1.4995, abs=1e-6)
    with pytest.raises(AudioTooShortError) as caught:
        style_excerpt(loaded.audio, loaded.sample_rate)
    assert str(caught.value) == "Style needs at least 1.5 s of audio; this file has 1.4995 s."
