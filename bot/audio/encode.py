"""Tracks out: levelling, encoding to MP3/WAV/FLAC under a byte limit, tags and the recipe.

MP3 is written by libmp3lame at the highest of 192/160/128/96/64 kbps whose
predicted size fits the byte limit; the size is checked again after encoding
and the next bitrate is tried if it is still too big. The recipe (everything
needed to make the track again) goes into the file as JSON: an ID3v2.3 TXXX
frame ``jamgen_recipe`` in MP3, a ``JAMGEN_RECIPE`` Vorbis comment in FLAC, and
the RIFF comment (ICMT) in WAV. Audio reaches ffmpeg as float32 on stdin.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from bot.audio.errors import (
    AudioEncodeError,
    OutputTooLargeError,
    RecipeNotFoundError,
    format_mib,
)
from bot.audio.limits import MIB, AudioLimits
from bot.audio.loudness import Normalization, level
from bot.audio.probe import file_size, run_ffprobe
from bot.audio.sniff import sniff_file
from bot.audio.tools import FFMPEG, ToolTimeoutError, run_tool
from bot.errors import format_seconds

OutputFormat = Literal["mp3", "wav", "flac"]
OUTPUT_FORMATS: tuple[str, ...] = ("mp3", "wav", "flac")
MP3_BITRATES_KBPS: tuple[int, ...] = (192, 160, 128, 96, 64)
MP3_SAMPLE_RATES = (32000, 44100, 48000)
DEFAULT_BYTE_LIMIT = 10 * MIB
RECIPE_KEY = "jamgen_recipe"
MAX_TITLE_CHARS = 120
MAX_RECIPE_BYTES = 64 * 1024
DEFAULT_ENCODE_TIMEOUT_S = 60.0
# Room kept under the limit for ID3 frames, the Xing/LAME frame and frame-size rounding.
_MP3_OVERHEAD_BYTES = 8 * 1024


@dataclass(frozen=True)
class TrackTags:
    """What is written into the file's tags.

    Args:
        title: the prompt (truncated to 120 characters).
        artist: always "jamgen" unless told otherwise.
        album: optional album name.
        recipe: everything needed to make the track again (job id, parent id, model, mode, parameters, seed);
            must be JSON-serialisable.
    """

    title: str = ""
    artist: str = "jamgen"
    album: str | None = None
    recipe: Mapping[str, Any] | None = field(default=None)


@dataclass(frozen=True)
class EncodedTrack:
    """A track written to disk.

    Args:
        path: where it is.
        format: mp3, wav or flac.
        bitrate_kbps: the MP3 bitrate (None for WAV/FLAC).
        size_bytes: its size.
        duration_s: its length.
        loudness_lufs: integrated loudness of what was written (None for silence).
        channels: channel count (as given).
        sample_rate: the file's sample rate.
    """

    path: Path
    format: str
    bitrate_kbps: int | None
    size_bytes: int
    duration_s: float
    loudness_lufs: float | None
    channels: int
    sample_rate: int


def clean_title(title: str, limit: int = MAX_TITLE_CHARS) -> str:
    """One line of at most ``limit`` characters (an ellipsis marks a cut).

    Args:
        title: usually the prompt.
        limit: the most characters kept.
    """
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in title).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def recipe_json(recipe: Mapping[str, Any]) -> str:
    """The recipe as compact JSON (sorted keys, UTF-8 kept).

    Args:
        recipe: JSON-serialisable mapping.

    Raises:
        ValueError: when it cannot be serialised or is over 64 KiB.
    """
    text = json.dumps(recipe, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
    if len(text.encode()) > MAX_RECIPE_BYTES:
        raise ValueError("recipe is larger than 64 KiB")
    return text


def _metadata_args(fmt: str, tags: TrackTags) -> list[str]:
    values: dict[str, str] = {"artist": clean_title(tags.artist, 64)}
    if tags.title:
        values["title"] = clean_title(tags.title)
    if tags.album:
        values["album"] = clean_title(tags.album, 64)
    if tags.recipe is not None:
        # RIFF INFO has no free-form keys, so a WAV keeps the recipe in its comment.
        values["comment" if fmt == "wav" else RECIPE_KEY] = recipe_json(tags.recipe)
    args: list[str] = []
    for key, value in values.items():
        args += ["-metadata", f"{key}={value}"]
    return args


def predicted_mp3_bytes(duration_s: float, bitrate_kbps: int, tag_bytes: int = 0) -> int:
    """Expected size of a CBR MP3: the bitrate's bytes per second, plus tags and headroom.

    Args:
        duration_s: length of the audio.
        bitrate_kbps: CBR bitrate.
        tag_bytes: size of the text going into the tags.
    """
    return math.ceil(duration_s * bitrate_kbps * 1000 / 8) + 2 * tag_bytes + _MP3_OVERHEAD_BYTES


def mp3_quality_for(bitrate_kbps: int) -> int:
    """LAME's -q for a bitrate: 7 (fast, no noise shaping) where bits are plentiful, LAME's default 3 below.

    At 160-192 kbps there are bits to spare and noise shaping is inaudible while it nearly doubles the encode
    time; at the lower bitrates that squeeze long tracks under the limit it is worth its cost.

    Args:
        bitrate_kbps: the CBR bitrate.
    """
    return 7 if bitrate_kbps >= 160 else 3


def _prepare(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim == 1:
        audio = audio[np.newaxis, :]
    if audio.ndim != 2 or not 1 <= audio.shape[0] <= 8 or audio.shape[1] == 0:
        raise AudioEncodeError(f"Cannot write audio of shape {tuple(audio.shape)}; expected [channels, samples].")
    if not np.all(np.isfinite(audio)):
        raise AudioEncodeError("The generated audio contains invalid values (NaN or infinity); it was not saved.")
    return audio


def _interleave(audio: np.ndarray) -> bytes:
    return np.ascontiguousarray(audio.T, dtype="<f4").tobytes()


async def _run_encoder(
    pcm: bytes, sample_rate: int, channels: int, codec_args: list[str], muxer: str, target: Path, timeout_s: float
) -> int:
    argv = [
        FFMPEG,
        "-nostdin",
        "-hide_banner",
        "-v",
        "error",
        "-protocol_whitelist",
        "pipe",
        "-f",
        "f32le",
        "-ar",
        str(sample_rate),
        "-ac",
        str(channels),
        "-i",
        "pipe:0",
        *codec_args,
        "-f",
        muxer,
        "-y",
        "file:" + os.path.abspath(target),
    ]
    try:
        result = await run_tool(argv, timeout_s=timeout_s, stdin_data=pcm, max_stdout_bytes=64 * 1024)
    except ToolTimeoutError:
        raise AudioEncodeError(f"Writing the track took longer than {timeout_s:g} s and was stopped.") from None
    if result.returncode != 0:
        raise AudioEncodeError(f"ffmpeg could not write the track: {result.stderr.strip()[-300:]}")
    return (await asyncio.to_thread(os.stat, target)).st_size


async def encode(
    audio: np.ndarray,
    sample_rate: int,
    path: Path,
    *,
    fmt: OutputFormat = "mp3",
    tags: TrackTags | None = None,
    byte_limit: int = DEFAULT_BYTE_LIMIT,
    normalization: Normalization = "loudness",
    loudness_target: float = -14.0,
    timeout_s: float = DEFAULT_ENCODE_TIMEOUT_S,
    mp3_quality: int | None = None,
) -> EncodedTrack:
    """Level ``audio`` and write it to ``path`` so that the file fits ``byte_limit``.

    The file appears at ``path`` only when complete (written beside it, then renamed).

    Args:
        audio: float32 [channels, samples] or [samples]; channels are kept (MP3: 1 or 2).
        sample_rate: Hz. MP3 is written at this rate when it is 32, 44.1 or 48 kHz, else at 44.1 kHz.
        path: the output file.
        fmt: mp3, wav (16-bit PCM) or flac (16-bit).
        tags: title/artist/album and the recipe.
        byte_limit: largest file allowed (the upload limit).
        normalization: loudness (to ``loudness_target`` LUFS), peak (-1 dBFS), clip (at -1 dBFS) or none.
        loudness_target: LUFS for ``loudness``.
        timeout_s: wall clock for one ffmpeg run.
        mp3_quality: LAME's -q (0 best/slowest ... 9 fastest); None picks by bitrate (see ``mp3_quality_for``).

    Raises:
        OutputTooLargeError: when even the smallest choice cannot fit ``byte_limit``.
        AudioEncodeError: when ffmpeg fails or the audio is invalid.
    """
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"unknown output format {fmt!r}; use one of {', '.join(OUTPUT_FORMATS)}")
    audio = _prepare(audio)
    channels, samples = audio.shape
    if fmt == "mp3" and channels > 2:
        raise AudioEncodeError(f"MP3 holds at most 2 channels; this audio has {channels}.")
    tags = tags or TrackTags()
    metadata = _metadata_args(fmt, tags)
    tag_bytes = sum(len(arg.encode()) for arg in metadata)
    duration_s = samples / sample_rate
    path = Path(path)

    if fmt == "mp3":
        candidates = [br for br in MP3_BITRATES_KBPS if predicted_mp3_bytes(duration_s, br, tag_bytes) <= byte_limit]
        if not candidates:
            longest = max(0.0, (byte_limit - 2 * tag_bytes - _MP3_OVERHEAD_BYTES) / (MP3_BITRATES_KBPS[-1] * 125))
            raise OutputTooLargeError(
                f"A {format_seconds(duration_s, floor=True)} track does not fit the {format_mib(byte_limit)} upload "
                "limit even "
                f"as {MP3_BITRATES_KBPS[-1]} kbps MP3; ask for at most {format_seconds(longest, floor=True)}."
            )
    else:
        bytes_per_second = sample_rate * channels * 2
        if fmt == "wav" and samples * channels * 2 + tag_bytes + 1024 > byte_limit:
            raise OutputTooLargeError(
                f"This {format_seconds(duration_s, floor=True)} track would be {format_mib(samples * channels * 2)} "
                "as WAV, over "
                f"the {format_mib(byte_limit)} upload limit; choose MP3 or ask for at most "
                f"{format_seconds(max(0.0, byte_limit - tag_bytes - 1024) / bytes_per_second, floor=True)}."
            )
        candidates = [0]

    levelled = await asyncio.to_thread(level, audio, sample_rate, normalization, loudness_target)
    pcm = await asyncio.to_thread(_interleave, levelled.audio)
    out_rate = sample_rate
    if fmt == "mp3" and sample_rate not in MP3_SAMPLE_RATES:
        out_rate = 44100
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    try:
        size = 0
        chosen: int | None = None
        for bitrate in candidates:
            if fmt == "mp3":
                quality = mp3_quality if mp3_quality is not None else mp3_quality_for(bitrate)
                codec_args = ["-c:a", "libmp3lame", "-b:a", f"{bitrate}k", "-compression_level", str(quality)]
                codec_args += ["-id3v2_version", "3", "-write_id3v1", "0"]
                codec_args += ["-ar", str(out_rate)] if out_rate != sample_rate else []
                muxer = "mp3"
            elif fmt == "wav":
                codec_args, muxer = ["-c:a", "pcm_s16le"], "wav"
            else:
                codec_args, muxer = ["-c:a", "flac", "-sample_fmt", "s16"], "flac"
            size = await _run_encoder(pcm, sample_rate, channels, [*codec_args, *metadata], muxer, partial, timeout_s)
            if size <= byte_limit:
                chosen = bitrate
                break
        if chosen is None:
            what = "as 64 kbps MP3" if fmt == "mp3" else f"as {fmt.upper()}"
            raise OutputTooLargeError(
                f"This {format_seconds(duration_s, floor=True)} track is {format_mib(size)} {what}, over the "
                f"{format_mib(byte_limit)} upload limit; ask for a shorter track"
                + (" or choose MP3." if fmt != "mp3" else ".")
            )
        await asyncio.to_thread(os.replace, partial, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(partial.unlink)
    return EncodedTrack(
        path=path,
        format=fmt,
        bitrate_kbps=chosen if fmt == "mp3" else None,
        size_bytes=size,
        duration_s=duration_s,
        loudness_lufs=levelled.loudness_lufs,
        channels=channels,
        sample_rate=out_rate,
    )


async def read_tags(path: Path, limits: AudioLimits | None = None) -> dict[str, str]:
    """The container-level tags of an audio file (keys lower-cased), read with the same safety as any input.

    Args:
        limits: limits for the read (defaults: ``AudioLimits()``).

    Raises:
        AudioInputError: when the file is not an accepted audio file.
    """
    limits = limits or AudioLimits()
    path = Path(path)
    size = await file_size(path)
    sniffed = await asyncio.to_thread(sniff_file, path, size)
    data = await run_ffprobe(path, sniffed.demuxer, limits)
    tags = ((data or {}).get("format") or {}).get("tags") or {}
    return {str(key).lower(): str(value) for key, value in tags.items()}


async def read_recipe(path: Path, limits: AudioLimits | None = None) -> dict[str, Any]:
    """The recipe jamgen wrote into one of its tracks.

    Args:
        path: an MP3, FLAC or WAV written by :func:`encode`.
        limits: limits for the read.

    Raises:
        RecipeNotFoundError: when the file has no (readable) recipe.
        AudioInputError: when the file is not an accepted audio file.
    """
    tags = await read_tags(path, limits)
    for key in (RECIPE_KEY, "comment"):
        text = tags.get(key)
        if not text:
            continue
        try:
            recipe = json.loads(text)
        except ValueError:
            continue
        if isinstance(recipe, dict):
            return recipe
    raise RecipeNotFoundError(
        f"{Path(path).name!r} carries no jamgen recipe: it was not made by jamgen, or its tags were removed."
    )


__all__ = [
    "DEFAULT_BYTE_LIMIT",
    "MP3_BITRATES_KBPS",
    "OUTPUT_FORMATS",
    "EncodedTrack",
    "OutputFormat",
    "TrackTags",
    "encode",
    "read_recipe",
    "read_tags",
]
