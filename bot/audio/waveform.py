"""A waveform picture for the reply embed, drawn with numpy and written as PNG with zlib (no imaging library).

Each column shows the peak range of its slice of audio (light) and its RMS
range (solid), mixed down to mono, on a transparent background.
"""

from __future__ import annotations

import asyncio
import os
import struct
import uuid
import zlib
from pathlib import Path

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEFAULT_COLOR = (88, 101, 242)  # Discord blurple
# One colour per stem (drums, bass, other, vocals), drawn one above the other.
STEM_COLORS = ((237, 66, 69), (254, 231, 92), (87, 242, 135), (235, 69, 158))


def png_bytes(rgba: np.ndarray) -> bytes:
    """Encode an RGBA image as PNG (8-bit, no interlace).

    Args:
        rgba: uint8 array [height, width, 4].
    """
    if rgba.dtype != np.uint8 or rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError("expected a uint8 [height, width, 4] image")
    height, width, _ = rgba.shape
    rows = np.zeros((height, 1 + width * 4), dtype=np.uint8)  # filter byte 0 (none) per row
    rows[:, 1:] = rgba.reshape(height, width * 4)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + chunk(b"IEND", b"")
    )


def draw_waveform(
    audio: np.ndarray, width: int, height: int, color: tuple[int, int, int] = DEFAULT_COLOR
) -> np.ndarray:
    """The waveform as an RGBA image [height, width, 4].

    Args:
        audio: [channels, samples] or [samples].
        width: pixels.
        height: pixels.
        color: RGB of the drawing.
    """
    if width < 1 or height < 2:
        raise ValueError("waveform needs at least 1x2 pixels")
    mono = np.atleast_2d(np.asarray(audio, dtype=np.float32)).mean(axis=0)
    image = np.zeros((height, width, 4), dtype=np.uint8)
    image[..., :3] = color
    center = (height - 1) / 2
    if mono.size == 0:
        image[int(np.rint(center)), :, 3] = 255
        return image
    # Column c starts at sample c*n/width. With fewer samples than columns the starts repeat, and reduceat
    # then returns the single sample at that start, which is what the column should show.
    starts = (np.arange(width, dtype=np.int64) * mono.size) // width
    highs = np.maximum.reduceat(mono, starts)
    lows = np.minimum.reduceat(mono, starts)
    counts = np.maximum(np.diff(np.append(starts, mono.size)), 1)
    rms = np.sqrt(np.add.reduceat(np.square(mono, dtype=np.float64), starts) / counts)
    rows = np.arange(height, dtype=np.float64)[:, np.newaxis]

    def band(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
        top_row = center - np.clip(top, -1, 1) * center
        bottom_row = center - np.clip(bottom, -1, 1) * center
        return (rows >= np.rint(top_row)) & (rows <= np.rint(bottom_row))

    peak_mask = band(highs, lows)
    rms_mask = band(np.minimum(rms, highs), -np.minimum(rms, -lows))
    image[..., 3] = np.where(rms_mask, 255, np.where(peak_mask, 140, 0)).astype(np.uint8)
    image[int(np.rint(center)), :, 3] = 255  # the zero line, so silence still shows
    return image


async def waveform_png(
    audio: np.ndarray,
    sample_rate: int,
    path: Path,
    *,
    width: int = 800,
    height: int = 160,
    color: tuple[int, int, int] = DEFAULT_COLOR,
) -> Path:
    """Draw the waveform of ``audio`` into a PNG at ``path`` (written beside it, then renamed).

    Stems ([stems, channels, samples]) are drawn one above the other, each ``height`` pixels high in its
    own colour, on one scale, so the picture shows how loud each stem is.

    Args:
        audio: [channels, samples] or [samples], or stems [stems, channels, samples].
        sample_rate: Hz (kept for symmetry with the other writers; the picture spans the whole audio).
        path: the PNG file to write.
        width: pixels.
        height: pixels.
        color: RGB of the drawing.
    """
    del sample_rate
    path = Path(path)

    def render() -> None:
        if audio.ndim == 3:
            rows = [
                draw_waveform(stem, width, height, STEM_COLORS[i % len(STEM_COLORS)]) for i, stem in enumerate(audio)
            ]
            image = np.concatenate(rows, axis=0)
        else:
            image = draw_waveform(audio, width, height, color)
        data = png_bytes(image)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
        partial.write_bytes(data)
        os.replace(partial, path)

    await asyncio.to_thread(render)
    return path
