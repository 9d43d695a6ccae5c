"""Integrated loudness (ITU-R BS.1770-4, LUFS) and the levelling strategies of audiocraft's ``audio_write``.

The K-weighting filters are computed for any sample rate the way libebur128
(and so ffmpeg's ebur128 filter) does; at 48 kHz they equal the coefficients
printed in the recommendation. Gating: 400 ms blocks every 100 ms, absolute
gate -70 LUFS, relative gate -10 LU. All channels weigh 1 (mono and stereo are
what jamgen writes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

Normalization = Literal["loudness", "peak", "clip", "none"]
NORMALIZATIONS: tuple[str, ...] = ("loudness", "peak", "clip", "none")

# audiocraft.data.audio_utils.normalize_audio defaults.
PEAK_CLIP_HEADROOM_DB = 1.0
ENERGY_FLOOR = 2e-3


def k_weighting(sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(b, a) of the K-weighting filter (high shelf then high pass) at ``sample_rate``.

    Args:
        sample_rate: Hz.
    """
    # Pre-filter: high shelf. Constants from libebur128, derived from the recommendation's 48 kHz coefficients.
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / sample_rate)
    vh = 10.0 ** (gain_db / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf_b = np.array([(vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0])
    shelf_a = np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0])
    # RLB high pass.
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / sample_rate)
    a0 = 1.0 + k / q + k * k
    pass_b = np.array([1.0, -2.0, 1.0])
    pass_a = np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0])
    return np.convolve(shelf_b, pass_b), np.convolve(shelf_a, pass_a)


def integrated_loudness(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS; ``-inf`` for silence.

    Audio shorter than one 400 ms block is measured as a single block.

    Args:
        audio: [channels, samples] or [samples], float.
        sample_rate: Hz.
    """
    from scipy.signal import sosfilt, tf2sos  # imported on first use: scipy costs about a second to import

    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    samples = audio.shape[-1]
    if samples == 0:
        return float("-inf")
    # float32 second-order sections are 5x faster than float64 and agree to 0.001 LU.
    sos = tf2sos(*k_weighting(sample_rate)).astype(np.float32)
    weighted = sosfilt(sos, audio, axis=-1).astype(np.float32, copy=False)
    step = round(0.1 * sample_rate)
    if samples < 4 * step:
        energies = np.array([float(np.square(weighted, dtype=np.float64).sum()) / samples])
    else:
        # 400 ms blocks every 100 ms = sums of 4 consecutive 100 ms segments (channels summed, weight 1).
        segments = samples // step
        squared = np.square(weighted[:, : segments * step]).reshape(weighted.shape[0], segments, step)
        segment_energy = squared.sum(axis=2, dtype=np.float64).sum(axis=0)
        cumulative = np.concatenate(([0.0], np.cumsum(segment_energy)))
        energies = (cumulative[4:] - cumulative[:-4]) / (4 * step)
    with np.errstate(divide="ignore"):
        block_loudness = -0.691 + 10.0 * np.log10(energies)
    above_absolute = energies[block_loudness > -70.0]
    if above_absolute.size == 0:
        return float("-inf")
    relative_gate = -0.691 + 10.0 * math.log10(float(above_absolute.mean())) - 10.0
    gated = energies[(block_loudness > -70.0) & (block_loudness > relative_gate)]
    if gated.size == 0:
        return float("-inf")
    return -0.691 + 10.0 * math.log10(float(gated.mean()))


@dataclass(frozen=True)
class Levelled:
    """Audio after levelling.

    Args:
        audio: float32 [channels, samples] within [-1, 1].
        loudness_lufs: its integrated loudness (None for silence).
        gain_db: the gain applied (0 when none).
        clipped: True when samples had to be clipped to [-1, 1].
    """

    audio: np.ndarray
    loudness_lufs: float | None
    gain_db: float
    clipped: bool


def level(
    audio: np.ndarray, sample_rate: int, strategy: Normalization = "loudness", loudness_target: float = -14.0
) -> Levelled:
    """Level audio the way audiocraft's ``audio_write`` does, then keep it within [-1, 1].

    - ``loudness``: gain to ``loudness_target`` LUFS (skipped below an RMS of 2e-3, like audiocraft), then clip;
    - ``peak``: scale so the peak sits at -1 dBFS;
    - ``clip``: clip at -1 dBFS;
    - ``none``: untouched except clipping to [-1, 1].

    CPU work: call it through ``asyncio.to_thread`` from async code.

    Args:
        audio: [channels, samples] or [samples], float.
        sample_rate: Hz.
        strategy: one of ``NORMALIZATIONS``.
        loudness_target: LUFS for ``loudness``.
    """
    if strategy not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {strategy!r}; use one of {', '.join(NORMALIZATIONS)}")
    work = np.array(np.atleast_2d(audio), dtype=np.float32, copy=True)
    peak_limit = 10 ** (-PEAK_CLIP_HEADROOM_DB / 20)
    gain = 1.0
    loudness: float | None = None
    if strategy == "loudness":
        rms = float(np.sqrt(np.mean(np.square(work, dtype=np.float64)))) if work.size else 0.0
        measured = integrated_loudness(work, sample_rate)
        if rms >= ENERGY_FLOOR and math.isfinite(measured):
            gain = 10 ** ((loudness_target - measured) / 20)
            work *= np.float32(gain)
            loudness = measured + 20 * math.log10(gain)
        elif math.isfinite(measured):
            loudness = measured
    elif strategy == "peak":
        peak = float(np.max(np.abs(work))) if work.size else 0.0
        if peak > 0:
            gain = peak_limit / peak
            work *= np.float32(gain)
    elif strategy == "clip":
        np.clip(work, -peak_limit, peak_limit, out=work)
    clipped = bool(work.size) and float(np.max(np.abs(work))) > 1.0
    if clipped:
        np.clip(work, -1.0, 1.0, out=work)
    if loudness is None or clipped:
        measured = integrated_loudness(work, sample_rate)
        loudness = measured if math.isfinite(measured) else None
    return Levelled(audio=work, loudness_lufs=loudness, gain_db=20 * math.log10(gain), clipped=clipped)
