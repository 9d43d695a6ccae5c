"""A corpus of good and hostile files, made once per session with real ffmpeg (nothing binary is committed)."""

from __future__ import annotations

import io
import struct
import subprocess
import wave
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

SECONDS = 2.0
SINE = ["-f", "lavfi", "-i", f"sine=frequency=330:duration={SECONDS}:sample_rate=44100"]
VIDEO = ["-f", "lavfi", "-i", f"color=size=32x32:duration={SECONDS}:rate=5"]

# name -> (ffmpeg arguments after the inputs, extension jamgen must save it under, has a picture track)
VALID_FORMATS: dict[str, tuple[list[str], list[str], str]] = {
    "mp3": (SINE, ["-ac", "2", "-c:a", "libmp3lame", "-f", "mp3"], "mp3"),
    "wav": (SINE, ["-c:a", "pcm_s16le", "-f", "wav"], "wav"),
    "flac": (SINE, ["-c:a", "flac", "-f", "flac"], "flac"),
    "ogg": (SINE, ["-c:a", "libvorbis", "-f", "ogg"], "ogg"),
    "opus": (SINE, ["-c:a", "libopus", "-f", "ogg"], "opus"),
    "m4a": (SINE, ["-c:a", "aac", "-f", "ipod"], "m4a"),
    "aac": (SINE, ["-c:a", "aac", "-f", "adts"], "aac"),
    "aiff": (SINE, ["-c:a", "pcm_s16be", "-f", "aiff"], "aiff"),
    "mp4": (VIDEO + SINE, ["-c:v", "mpeg4", "-c:a", "aac", "-f", "mp4"], "mp4"),
    "mov": (VIDEO + SINE, ["-c:v", "mpeg4", "-c:a", "aac", "-f", "mov"], "mov"),
    "webm": (SINE, ["-c:a", "libopus", "-f", "webm"], "webm"),
    "mkv": (VIDEO + SINE, ["-c:v", "mpeg4", "-c:a", "libmp3lame", "-f", "matroska"], "mkv"),
}


def ffmpeg(*args: str | Path) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *map(str, args)], check=True, timeout=60)


@dataclass
class Corpus:
    root: Path
    valid: dict[str, Path] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)


def _wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """16-bit PCM WAV of [channels, samples] written with the standard library."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(samples.shape[0])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(samples.T, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def _build(root: Path) -> Corpus:
    corpus = Corpus(root)
    valid_dir = root / "valid"
    valid_dir.mkdir()
    for name, (inputs, outputs, _) in VALID_FORMATS.items():
        # Misleading names on purpose: detection must come from the bytes.
        path = valid_dir / f"{name}-file.bin"
        ffmpeg(*inputs, "-shortest", *outputs, path)
        corpus.valid[name] = path

    bad = root / "bad"
    bad.mkdir()
    files = corpus.files

    def put(name: str, data: bytes) -> Path:
        path = bad / name
        path.write_bytes(data)
        files[name] = path
        return path

    put("empty.mp3", b"")
    put("random.mp3", np.random.default_rng(7).bytes(20_000))
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=size=16x16:duration=1",
        "-frames:v",
        "1",
        "-f",
        "image2",
        "-c:v",
        "png",
        bad / "image.png",
    )
    files["png.wav"] = (bad / "image.png").rename(bad / "png.wav")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("song.wav", b"RIFF not really")
    put("zip.flac", archive.getvalue())
    mp3 = corpus.valid["mp3"].read_bytes()
    put("truncated.mp3", mp3[: len(mp3) // 2])
    flac = corpus.valid["flac"].read_bytes()
    put("truncated.flac", flac[: len(flac) // 3])
    lying = bytearray(_wav_bytes(np.zeros((1, 44100)), 44100))
    data_at = lying.find(b"data")
    lying[data_at + 4 : data_at + 8] = struct.pack("<I", 44100 * 2 * 10)  # claims 10 s, holds 1 s
    put("lying.wav", bytes(lying))
    # Real attacks on a bare ffmpeg: both read a neighbouring file (see the control test).
    ffmpeg(*SINE, "-c:a", "pcm_s16le", "-f", "wav", bad / "secret.wav")
    ffmpeg(*SINE, "-c:a", "mp2", "-f", "mpegts", bad / "secret.ts")
    put("hls_local.mp3", b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nsecret.ts\n#EXT-X-ENDLIST\n")
    put("concat.mp3", b"ffconcat version 1.0\nfile secret.wav\n")
    put("stream.sdp", b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nm=audio 9 RTP/AVP 0\r\n")
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "anullsrc=r=48000:cl=mono",
        "-t",
        "10",
        "-c:a",
        "libopus",
        "-b:a",
        "6k",
        "-frame_duration",
        "120",
        "-f",
        "ogg",
        bad / "ten.opus",
    )
    ffmpeg("-stream_loop", "1085", "-i", bad / "ten.opus", "-c", "copy", "-f", "ogg", bad / "three-hours.opus")
    files["three-hours.opus"] = bad / "three-hours.opus"
    (bad / "ten.opus").unlink()
    put("twelve-channels.wav", _wav_bytes(np.zeros((12, 4410)), 44100))
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=0.5",
        "-c:a",
        "pcm_s16le",
        "-f",
        "wav",
        bad / "half-second.wav",
    )
    files["half-second.wav"] = bad / "half-second.wav"
    ffmpeg(*VIDEO, "-c:v", "mpeg4", "-f", "mp4", bad / "silent-video.mp4")
    files["silent-video.mp4"] = bad / "silent-video.mp4"
    ffmpeg(*SINE, "-c:a", "wmav2", "-f", "asf", bad / "song.wma")
    files["song.wma"] = bad / "song.wma"
    ffmpeg(*SINE, "-c:a", "wavpack", "-f", "matroska", bad / "wavpack.mka")
    files["wavpack.mka"] = bad / "wavpack.mka"
    put("song.mid", b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x00\x60MTrk\x00\x00\x00\x04\x00\xff\x2f\x00")
    put("tags-only.mp3", b"ID3\x03\x00\x00\x00\x00\x00\x20" + b"\x00" * 32)
    hostile_dir = bad / "sub"
    hostile_dir.mkdir()
    # A "../" path whose name holds shell metacharacters; if anything ran it through a shell, PWNED would appear.
    put("$(touch PWNED); rm -rf ~ `id` | x.mp3", b"#!/bin/sh\ntouch PWNED\n")
    files["hostile-path"] = hostile_dir / ".." / "$(touch PWNED); rm -rf ~ `id` | x.mp3"
    good_hostile = bad / "-i ; $(touch PWNED) & echo.flac"
    good_hostile.write_bytes(corpus.valid["flac"].read_bytes())
    files["hostile-good"] = good_hostile
    return corpus


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return _build(tmp_path_factory.mktemp("audio-corpus"))


def music(seconds: float, rate: int = 32000, channels: int = 2, level: float = 0.05, seed: int = 0) -> np.ndarray:
    """A few seconds of something music-like: chords with a pulse, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    tone = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 440.0))
    pulse = 0.6 + 0.4 * (np.sin(2 * np.pi * 2.0 * t) > 0)
    mono = (tone * pulse / 4 + 0.1 * rng.standard_normal(t.size)) * level
    spread = [mono * (1.0 - 0.2 * c) for c in range(channels)]
    return np.asarray(spread, dtype=np.float32)
