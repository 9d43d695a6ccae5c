"""Reading what the fake voice server heard: PCM arrays, arrival gaps, alignment against a reference.

Frames are :class:`~tests.fakediscord.voice_udp.HeardFrame` s (48 kHz stereo int16, 20 ms each).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from tests.fakediscord.voice_udp import HeardFrame

SAMPLE_RATE = 48_000
FRAME_SECONDS = 0.02


def pcm(frames: Sequence[HeardFrame]) -> np.ndarray:
    """The frames joined: int16 samples shaped (n, 2).

    Args:
        frames: received frames, in order.
    """
    if not frames:
        return np.zeros((0, 2), dtype=np.int16)
    return np.frombuffer(b"".join(f.pcm for f in frames), dtype="<i2").reshape(-1, 2)


def mono(frames: Sequence[HeardFrame]) -> np.ndarray:
    """The frames joined as float mono in [-1, 1].

    Args:
        frames: received frames, in order.
    """
    return pcm(frames).astype(np.float64).mean(axis=1) / 32768.0


def gaps(frames: Sequence[HeardFrame], *, longer_than: float = 0.2) -> list[tuple[float, float]]:
    """Pauses in arrival: (arrival time of the frame after the pause, seconds since the one before).

    Args:
        frames: received frames, in arrival order.
        longer_than: report only pauses longer than this (seconds).
    """
    found = []
    for before, after in itertools.pairwise(frames):
        pause = after.at - before.at
        if pause > longer_than:
            found.append((after.at, pause))
    return found


def audible(frames: Sequence[HeardFrame], *, floor: int = 64) -> list[HeardFrame]:
    """The frames with sound in them (drops the Opus silence frames a sender ends with).

    Args:
        frames: received frames.
        floor: the peak amplitude below which a frame counts as silent.
    """
    return [f for f in frames if np.abs(np.frombuffer(f.pcm, dtype="<i2")).max(initial=0) > floor]


def aligned_correlation(received: np.ndarray, reference: np.ndarray) -> tuple[float, int]:
    """The Pearson correlation of ``received`` with the part of ``reference`` it lines up with best.

    Opus delays the signal by a few milliseconds, and a piece of audio (one SSRC's, or what came after a
    lost packet) starts somewhere inside the reference; the offset is found by FFT cross-correlation.

    Args:
        received: mono float samples.
        reference: mono float samples of the signal that was sent.

    Returns:
        (correlation over the overlap, offset: ``received[i]`` matches ``reference[i + offset]``).
    """
    n_rec, n_ref = len(received), len(reference)
    size = 1 << int(np.ceil(np.log2(n_rec + n_ref)))
    cross = np.fft.irfft(np.fft.rfft(reference, size) * np.conj(np.fft.rfft(received, size)), size)
    offsets = np.arange(-(n_rec - 1), n_ref)
    offset = int(offsets[np.argmax(cross[offsets % size])])
    start_rec, start_ref = max(0, -offset), max(0, offset)
    overlap = min(n_rec - start_rec, n_ref - start_ref)
    if overlap <= 1:
        return 0.0, offset
    a = received[start_rec : start_rec + overlap]
    b = reference[start_ref : start_ref + overlap]
    return float(np.corrcoef(a, b)[0, 1]), offset
