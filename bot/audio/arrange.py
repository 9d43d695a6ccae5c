"""Arranging finished takes: seamless loops cut at bar boundaries, and one bounce of a chain of takes.

Loops (:func:`loop_cut`, :func:`make_loop`): the take's tempo and beats come from
:func:`bot.audio.analysis.analyse` (librosa); a bar is ``beats_per_bar`` beats. The loop
starts on a detected beat and is the largest power of two of bars (at most
:data:`MAX_LOOP_BARS`) that fits in the take. Its first :data:`LOOP_CROSSFADE_S` are
crossfaded (linear: both sides are the same beat of the bar, so they are correlated) with
the audio that follows the loop's end, so the last sample of the loop runs into the first
exactly as the take ran on: the join has no step the take did not have. When the take
ends too soon for that, the loop's last samples are crossfaded with the audio just
before its start instead (same guarantee).

Bounces (:func:`join_segments`, :func:`bounce`): parts are joined in order. A part that
*continued* the previous one starts with a copy of the previous part's end (its prompt,
``prompt_s`` seconds): all of the prompt but the last :data:`CONTINUATION_CROSSFADE_S`
is dropped and the rest is crossfaded (linear) over the previous part's last samples. A
part that does not continue the previous one (a melody or style remix) follows it with a
plain equal-power crossfade of :data:`REMIX_CROSSFADE_S`. Every crossfade is at most half
of either part. A continuation's whole prompt thus overlaps its parent (the crossfade lies
inside it), and the bounce is ``sum(parts) - sum(continuation prompts) - (number of remix
joins) * REMIX_CROSSFADE_S`` long. Parts are loudness-matched (each to the target, silence
left alone) before the join.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from bot.audio.analysis import analyse
from bot.audio.encode import MAX_RECIPE_BYTES, EncodedTrack, TrackTags, encode
from bot.audio.errors import OutputTooLargeError, format_mib
from bot.audio.inputs import decode
from bot.audio.limits import AudioLimits
from bot.audio.loudness import Normalization, integrated_loudness
from bot.audio.probe import ProbeInfo, probe
from bot.errors import UserInputError, format_seconds

LOOP_CROSSFADE_S = 0.02
CONTINUATION_CROSSFADE_S = 0.1
REMIX_CROSSFADE_S = 1.0
MAX_LOOP_BARS = 16
MAX_BOUNCE_S = 1800.0
# Parts quieter than this RMS are left as they are (like levelling: no gain on near-silence).
_MATCH_ENERGY_FLOOR = 2e-3

Join = Literal["start", "continuation", "crossfade"]


class NoSteadyBeatError(UserInputError):
    """No tempo could be found in a take, so it cannot be cut into bars."""


class TooShortToLoopError(UserInputError):
    """The take is shorter than one bar (plus the crossfade)."""


class BounceTooLongError(UserInputError):
    """The bounce would be longer than jamgen renders, or too big for the upload limit even at the lowest bitrate."""


# ---------------------------------------------------------------------- loops
@dataclass(frozen=True)
class LoopCut:
    """A loop cut from a take.

    Args:
        audio: float32 [channels, samples]; repeats without a click.
        bars: whole bars it holds.
        bpm: the tempo it was cut at.
        beats_per_bar: beats in a bar.
        start_s: where in the take it starts (a detected beat).
        length_s: its length (= bars × beats_per_bar × 60 / bpm, to the sample).
        crossfade_s: the crossfade at the loop point.
    """

    audio: np.ndarray
    bars: int
    bpm: float
    beats_per_bar: int
    start_s: float
    length_s: float
    crossfade_s: float


def loop_cut(
    audio: np.ndarray,
    sample_rate: int,
    *,
    bpm: float | None,
    beats: Sequence[float],
    beats_per_bar: int,
    crossfade_s: float = LOOP_CROSSFADE_S,
    max_bars: int = MAX_LOOP_BARS,
) -> LoopCut:
    """Cut the longest loop of 1, 2, 4, 8 … whole bars that fits, starting on the earliest beat that allows it.

    Args:
        audio: [channels, samples] or [samples].
        sample_rate: Hz.
        bpm: the take's tempo (None when none was found).
        beats: beat times in seconds (where a loop may start; the start of the take when empty).
        beats_per_bar: beats in one bar (from the time signature).
        crossfade_s: length of the crossfade at the loop point.
        max_bars: the most bars a loop holds.

    Raises:
        NoSteadyBeatError: no tempo.
        TooShortToLoopError: not even one bar fits.
    """
    work = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    total = work.shape[-1]
    if bpm is None or not math.isfinite(bpm) or bpm <= 0:
        raise NoSteadyBeatError("jamgen can't hear a steady beat in this take, so it can't cut it into bars.")
    if beats_per_bar < 1:
        raise ValueError(f"beats_per_bar must be at least 1, got {beats_per_bar}")
    bar_s = beats_per_bar * 60.0 / bpm
    fade = max(0, round(crossfade_s * sample_rate))
    starts = sorted({round(float(t) * sample_rate) for t in beats if 0 <= t * sample_rate < total}) or [0]
    counts = [n for n in (16, 8, 4, 2, 1) if n <= max(1, max_bars)]
    for bars in counts:
        length = round(bars * bar_s * sample_rate)
        for start in starts:
            if start + length + fade <= total:
                looped = work[:, start : start + length].copy()
                if fade:
                    # The loop's head fades in while the audio after its end fades out: its first sample
                    # is the sample that followed its last one in the take.
                    ramp = (np.arange(fade, dtype=np.float32) / fade)[np.newaxis, :]
                    tail = work[:, start + length : start + length + fade]
                    looped[:, :fade] = looped[:, :fade] * ramp + tail * (1 - ramp)
            elif fade <= start and start + length <= total:
                looped = work[:, start : start + length].copy()
                if fade:
                    # No audio after the end: the loop's end fades into the audio just before its start.
                    ramp = ((np.arange(fade, dtype=np.float32) + 1) / fade)[np.newaxis, :]
                    head = work[:, start - fade : start]
                    looped[:, -fade:] = looped[:, -fade:] * (1 - ramp) + head * ramp
            else:
                continue
            return LoopCut(
                audio=looped,
                bars=bars,
                bpm=float(bpm),
                beats_per_bar=beats_per_bar,
                start_s=start / sample_rate,
                length_s=length / sample_rate,
                crossfade_s=fade / sample_rate,
            )
    raise TooShortToLoopError(
        f"This take is {format_seconds(total / sample_rate, floor=True)} long, shorter than one bar at {bpm:.0f} BPM "
        f"({format_seconds(bar_s, floor=True)}); there is nothing to loop."
    )


@dataclass(frozen=True)
class LoopTrack:
    """A loop written to disk.

    Args:
        path: the MP3.
        bars: whole bars.
        bpm: tempo.
        beats_per_bar: beats in a bar.
        start_s: where in the take it starts.
        duration_s: its length.
        bitrate_kbps: MP3 bitrate.
    """

    path: Path
    bars: int
    bpm: float
    beats_per_bar: int
    start_s: float
    duration_s: float
    bitrate_kbps: int | None


async def _read(path: Path, limits: AudioLimits) -> tuple[np.ndarray, int, ProbeInfo]:
    info = await probe(path, limits)
    channels = min(2, max(1, info.channels))
    audio = await decode(path, info.sample_rate, channels, limits, info=info)
    return audio, info.sample_rate, info


async def make_loop(
    source: Path,
    target: Path,
    *,
    beats_per_bar: int,
    title: str = "",
    recipe: Mapping[str, Any] | None = None,
    byte_limit: int,
    limits: AudioLimits | None = None,
    crossfade_s: float = LOOP_CROSSFADE_S,
    max_bars: int = MAX_LOOP_BARS,
) -> LoopTrack:
    """Read a take, find its beats, cut a loop of whole bars and write it as MP3 (levels untouched).

    The recipe gets a ``loop`` entry (bars, bpm, beats_per_bar, start_s).

    Args:
        source: the take (any accepted audio file).
        target: the MP3 to write.
        beats_per_bar: beats in a bar.
        title: the title tag.
        recipe: the take's recipe.
        byte_limit: the upload limit.
        limits: limits for reading the take.
        crossfade_s: crossfade at the loop point.
        max_bars: the most bars.

    Raises:
        NoSteadyBeatError, TooShortToLoopError: the take cannot be looped.
        AudioInputError: the file cannot be read.
    """
    limits = limits or AudioLimits()
    audio, rate, _ = await _read(source, limits)
    analysis = await analyse(audio, rate)
    cut = await asyncio.to_thread(
        loop_cut,
        audio,
        rate,
        bpm=analysis.bpm,
        beats=analysis.beats,
        beats_per_bar=beats_per_bar,
        crossfade_s=crossfade_s,
        max_bars=max_bars,
    )
    loop_info = {"bars": cut.bars, "bpm": cut.bpm, "beats_per_bar": beats_per_bar, "start_s": round(cut.start_s, 4)}
    tags = TrackTags(title=title, recipe={**(recipe or {}), "loop": loop_info})
    encoded = await encode(cut.audio, rate, target, fmt="mp3", tags=tags, byte_limit=byte_limit, normalization="none")
    return LoopTrack(
        path=encoded.path,
        bars=cut.bars,
        bpm=cut.bpm,
        beats_per_bar=beats_per_bar,
        start_s=cut.start_s,
        duration_s=encoded.duration_s,
        bitrate_kbps=encoded.bitrate_kbps,
    )


# ---------------------------------------------------------------------- bounces
@dataclass(frozen=True)
class Segment:
    """One part of a bounce, decoded.

    Args:
        audio: float32 [channels, samples]; every segment of a bounce has the same channels and rate.
        join: how it joins the previous segment: ``start`` (the first), ``continuation`` (it continued the
            previous one and begins with a copy of its end) or ``crossfade`` (anything else).
        prompt_s: continuation: seconds at its start that repeat the previous segment.
        cut_previous_at_s: continuation: where in the previous segment the repeated part ends
            (None = the previous segment's end).
    """

    audio: np.ndarray
    join: Join = "start"
    prompt_s: float = 0.0
    cut_previous_at_s: float | None = None


def join_segments(
    segments: Sequence[Segment],
    sample_rate: int,
    *,
    continuation_crossfade_s: float = CONTINUATION_CROSSFADE_S,
    remix_crossfade_s: float = REMIX_CROSSFADE_S,
) -> np.ndarray:
    """Overlap-add the segments as the module docstring describes.

    Args:
        segments: in order, the first with ``join="start"``.
        sample_rate: Hz.
        continuation_crossfade_s: crossfade where a segment continued the previous one.
        remix_crossfade_s: crossfade between unrelated segments.
    """
    if not segments:
        raise ValueError("a bounce needs at least one part")
    channels = {np.atleast_2d(s.audio).shape[0] for s in segments}
    if len(channels) != 1:
        raise ValueError(f"every part must have the same channels, got {sorted(channels)}")
    audios = [np.atleast_2d(np.asarray(s.audio, dtype=np.float32)) for s in segments]
    count = len(segments)
    begins = [0] * count
    ends = [a.shape[-1] for a in audios]
    fades = [0] * count
    kinds: list[Join] = ["start"] * count
    for i in range(1, count):
        segment = segments[i]
        continues = segment.join == "continuation"
        if continues and segment.cut_previous_at_s is not None:
            ends[i - 1] = max(begins[i - 1], min(ends[i - 1], round(segment.cut_previous_at_s * sample_rate)))
        # A crossfade never takes more than half of either side, nor overlaps the previous part's own fade-in.
        room = min((ends[i - 1] - begins[i - 1]) // 2, ends[i - 1] - begins[i - 1] - fades[i - 1], ends[i] // 2)
        if continues:
            prompt = min(round(segment.prompt_s * sample_rate), ends[i])
            fades[i] = max(0, min(round(continuation_crossfade_s * sample_rate), prompt, room))
            begins[i] = prompt - fades[i]
            kinds[i] = "continuation"
        else:
            fades[i] = max(0, min(round(remix_crossfade_s * sample_rate), room))
            kinds[i] = "crossfade"
    kept = [max(0, e - b) for b, e in zip(begins, ends, strict=True)]
    total = sum(kept) - sum(fades)
    out = np.zeros((audios[0].shape[0], max(0, total)), dtype=np.float32)
    offset = 0
    for i in range(count):
        piece = audios[i][:, begins[i] : ends[i]].copy()
        fade_in = fades[i]
        fade_out = fades[i + 1] if i + 1 < count else 0
        if fade_in:
            piece[:, :fade_in] *= _fade(fade_in, kinds[i], rising=True)
        if fade_out:
            piece[:, piece.shape[-1] - fade_out :] *= _fade(fade_out, kinds[i + 1], rising=False)
        start = offset - fade_in
        out[:, start : start + piece.shape[-1]] += piece
        offset = start + piece.shape[-1]
    return out


def _fade(length: int, kind: Join, *, rising: bool) -> np.ndarray:
    position = (np.arange(length, dtype=np.float64) + 0.5) / length
    # Correlated material (a continuation's copy of the previous end): gains add up to 1.
    # Unrelated material: powers add up to 1 (equal-power).
    curve = position if kind == "continuation" else np.sin(position * np.pi / 2)
    if not rising:
        curve = curve[::-1]
    return curve.astype(np.float32)[np.newaxis, :]


def match_loudness(audio: np.ndarray, sample_rate: int, target_lufs: float) -> np.ndarray:
    """Gain ``audio`` to ``target_lufs`` integrated loudness (near-silence is returned unchanged).

    Args:
        audio: [channels, samples].
        sample_rate: Hz.
        target_lufs: the loudness every part is brought to.
    """
    work = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    rms = float(np.sqrt(np.mean(np.square(work, dtype=np.float64)))) if work.size else 0.0
    measured = integrated_loudness(work, sample_rate)
    if rms < _MATCH_ENERGY_FLOOR or not math.isfinite(measured):
        return work
    return work * np.float32(10 ** ((target_lufs - measured) / 20))


@dataclass(frozen=True)
class BouncePart:
    """A take to include in a bounce.

    Args:
        path: its audio file.
        join: how it joins the previous part (see :class:`Segment`).
        prompt_s: continuation: seconds at its start that repeat the previous part.
        cut_previous_at_s: continuation: where in the previous part the repeated part ends (None = its end).
    """

    path: Path
    join: Join = "start"
    prompt_s: float = 0.0
    cut_previous_at_s: float | None = None


@dataclass(frozen=True)
class BounceTrack:
    """A bounce written to disk.

    Args:
        path: the MP3.
        duration_s: its length.
        bitrate_kbps: the MP3 bitrate chosen to fit the limit.
        size_bytes: its size.
        parts: how many parts it joins.
        sample_rate: its rate.
        channels: its channels.
    """

    path: Path
    duration_s: float
    bitrate_kbps: int | None
    size_bytes: int
    parts: int
    sample_rate: int
    channels: int


def bounce_tags(
    title: str, recipes: Sequence[Mapping[str, Any]], contributors: Sequence[Mapping[str, Any]], **extra: Any
) -> TrackTags:
    """Tags for a bounce: the title, the contributors as artist, and every part's recipe.

    The recipe tag is ``{"bounce": {...extra}, "parts": [recipe, …], "contributors": [{"user_id", "name"}, …]}``;
    when that is over 64 KiB, each part keeps only its job id, parent, model, mode, prompt, duration and seed.

    Args:
        title: the title (e.g. the jam's theme).
        recipes: each part's recipe, in order.
        contributors: who made the parts (``user_id`` and ``name``), in order of first appearance.
        **extra: more facts about the bounce (session id, crossfades).
    """
    parts = [dict(r) for r in recipes]
    recipe: dict[str, Any] = {"bounce": extra, "parts": parts, "contributors": [dict(c) for c in contributors]}
    if len(json.dumps(recipe, ensure_ascii=False).encode()) > MAX_RECIPE_BYTES - 1024:
        keep = ("job_id", "parent_id", "model", "mode", "prompt", "duration", "seed", "take")
        recipe["parts"] = [{k: r[k] for k in keep if k in r} for r in parts]
    names = ", ".join(str(c.get("name") or c.get("user_id")) for c in contributors)
    return TrackTags(title=title, artist=f"{names} with jamgen" if names else "jamgen", recipe=recipe)


async def bounce(
    parts: Sequence[BouncePart],
    target: Path,
    *,
    tags: TrackTags,
    byte_limit: int,
    limits: AudioLimits | None = None,
    normalization: Normalization = "loudness",
    loudness_target: float = -14.0,
    max_seconds: float = MAX_BOUNCE_S,
    continuation_crossfade_s: float = CONTINUATION_CROSSFADE_S,
    remix_crossfade_s: float = REMIX_CROSSFADE_S,
) -> BounceTrack:
    """Render one MP3 from a chain of takes: decoded, loudness-matched, joined, levelled, tagged, fitted.

    The bitrate steps down (192 … 64 kbps) until the file fits ``byte_limit``.

    Args:
        parts: the takes in order (root first).
        target: the MP3 to write.
        tags: see :func:`bounce_tags`.
        byte_limit: the upload limit.
        limits: limits for reading the parts.
        normalization: levelling of the whole bounce.
        loudness_target: LUFS every part is matched to (and the bounce levelled to).
        max_seconds: the longest bounce rendered.
        continuation_crossfade_s: crossfade where a part continued the previous one.
        remix_crossfade_s: crossfade between unrelated parts.

    Raises:
        BounceTooLongError: longer than ``max_seconds``, or too big for ``byte_limit`` even at 64 kbps.
        AudioInputError: a part cannot be read.
    """
    if not parts:
        raise ValueError("a bounce needs at least one part")
    limits = limits or AudioLimits()
    infos = [await probe(part.path, limits) for part in parts]
    longest = sum(info.duration_s for info in infos)
    if longest > max_seconds:
        raise BounceTooLongError(
            f"These takes add up to {format_seconds(longest, floor=True)}; jamgen bounces at most "
            f"{format_seconds(max_seconds, floor=True)}. "
            "Bounce a shorter chain (pick an earlier take)."
        )
    rate = max(info.sample_rate for info in infos)
    channels = max(min(2, info.channels) for info in infos)
    decoded = [
        await decode(part.path, rate, channels, limits, info=info) for part, info in zip(parts, infos, strict=True)
    ]

    def arrange() -> np.ndarray:
        segments = [
            Segment(
                audio=match_loudness(audio, rate, loudness_target),
                join="start" if index == 0 else part.join,
                prompt_s=part.prompt_s,
                cut_previous_at_s=part.cut_previous_at_s,
            )
            for index, (part, audio) in enumerate(zip(parts, decoded, strict=True))
        ]
        return join_segments(
            segments,
            rate,
            continuation_crossfade_s=continuation_crossfade_s,
            remix_crossfade_s=remix_crossfade_s,
        )

    mixed = await asyncio.to_thread(arrange)
    try:
        encoded: EncodedTrack = await encode(
            mixed,
            rate,
            target,
            fmt="mp3",
            tags=tags,
            byte_limit=byte_limit,
            normalization=normalization,
            loudness_target=loudness_target,
        )
    except OutputTooLargeError:
        raise BounceTooLongError(
            f"The bounce is {format_seconds(mixed.shape[-1] / rate, floor=True)} long: too big for the "
            f"{format_mib(byte_limit)} upload limit even at 64 kbps. Bounce a shorter chain (pick an earlier take)."
        ) from None
    return BounceTrack(
        path=encoded.path,
        duration_s=encoded.duration_s,
        bitrate_kbps=encoded.bitrate_kbps,
        size_bytes=encoded.size_bytes,
        parts=len(parts),
        sample_rate=encoded.sample_rate,
        channels=int(mixed.shape[0]),
    )


__all__ = [
    "CONTINUATION_CROSSFADE_S",
    "LOOP_CROSSFADE_S",
    "MAX_BOUNCE_S",
    "MAX_LOOP_BARS",
    "REMIX_CROSSFADE_S",
    "BouncePart",
    "BounceTooLongError",
    "BounceTrack",
    "LoopCut",
    "LoopTrack",
    "NoSteadyBeatError",
    "Segment",
    "TooShortToLoopError",
    "bounce",
    "bounce_tags",
    "join_segments",
    "loop_cut",
    "make_loop",
    "match_loudness",
]
