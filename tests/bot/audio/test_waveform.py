"""The waveform picture is a valid PNG that shows the audio."""

from __future__ import annotations

import struct
import subprocess
import zlib

import numpy as np

from bot.audio import waveform_png
from bot.audio.waveform import PNG_SIGNATURE


def _decode_png(data: bytes) -> tuple[int, int, np.ndarray]:
    """Width, height and RGBA pixels of a PNG written by waveform_png (filter 0 on every row)."""
    assert data.startswith(PNG_SIGNATURE)
    offset, idat, width, height = 8, b"", 0, 0
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body)
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    rows = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, 1 + width * 4)
    assert not rows[:, 0].any()
    return width, height, rows[:, 1:].reshape(height, width, 4)


async def test_a_loud_sine_fills_the_picture_and_silence_draws_a_line(tmp_path):
    rate = 32000
    t = np.arange(2 * rate) / rate
    loud = np.stack([0.9 * np.sin(2 * np.pi * 220 * t)] * 2).astype(np.float32)
    path = await waveform_png(loud, rate, tmp_path / "wave.png", width=200, height=50)
    width, height, pixels = _decode_png(path.read_bytes())
    assert (width, height) == (200, 50)
    drawn_rows = (pixels[..., 3] > 0).sum(axis=0)
    assert drawn_rows.min() >= 40  # ~90 % of the height in every column

    await waveform_png(np.zeros((1, rate), dtype=np.float32), rate, tmp_path / "flat.png", width=64, height=20)
    _, _, flat = _decode_png((tmp_path / "flat.png").read_bytes())
    assert (flat[..., 3] > 0).sum(axis=0).max() == 1  # just the centre line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flat.png", "wave.png"]


async def test_ffmpeg_reads_the_png(tmp_path):
    audio = np.random.default_rng(1).uniform(-0.5, 0.5, 100).astype(np.float32)  # fewer samples than columns
    path = await waveform_png(audio, 32000, tmp_path / "short.png", width=300, height=40)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "png,300,40"
