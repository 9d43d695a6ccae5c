"""Probing a user's file: what it is, how long, how many channels, and whether jamgen accepts it.

Order of checks (cheapest and safest first): size on disk, then the first
bytes (``sniff``), then ffprobe with the demuxer forced from those bytes, the
protocol list cut down to ``file,pipe`` and the demuxer list cut down to the
allowed containers, then the stream's codec, channels and duration. Nothing is
decoded before the container has passed the allow-list.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.audio.errors import (
    ACCEPTED_FORMATS_TEXT,
    AudioFileTooLargeError,
    AudioTooLongError,
    DamagedAudioError,
    EmptyAudioFileError,
    InputFileNotFoundError,
    InputTimeoutError,
    NoAudioStreamError,
    TooManyChannelsError,
    UnsupportedAudioFormatError,
    format_mib,
    format_seconds_against,
)
from bot.audio.limits import AudioLimits
from bot.audio.sniff import ALLOWED_DEMUXERS, Sniffed, sniff_file
from bot.audio.tools import FFMPEG, FFPROBE, ToolTimeoutError, run_tool
from bot.errors import format_seconds

log = logging.getLogger(__name__)

# Audio codecs jamgen decodes. Everything else, even inside an allowed container, is refused.
ALLOWED_CODECS = frozenset(
    {"mp3", "mp2", "mp1", "aac", "alac", "flac", "vorbis", "opus", "ac3", "eac3", "dts", "amr_nb", "amr_wb"}
)
ALLOWED_CODEC_PREFIXES = ("pcm_", "adpcm_")
MAX_SAMPLE_RATE = 384_000
MAX_ALLOC_BYTES = 64 * 1024 * 1024

FAMILY_LABELS = {
    "mp3": "MP3",
    "wav": "WAV",
    "flac": "FLAC",
    "ogg": "OGG",
    "aac": "AAC",
    "aiff": "AIFF",
    "mp4": "MP4/M4A",
    "matroska": "WebM/MKV",
    "ac3": "AC-3",
    "eac3": "E-AC-3",
    "dts": "DTS",
}
_PROBE_OUTPUT_CAP = 4 * 1024 * 1024


@dataclass(frozen=True)
class ProbeInfo:
    """What ffprobe found in an accepted file.

    Args:
        path: the file probed.
        family: jamgen's container name (mp3, wav, flac, ogg, aac, aiff, mp4, matroska).
        extension: the extension the file is saved under (mp3, wav, flac, ogg, opus, aac, aiff, m4a, mp4, mov,
            webm, mkv).
        container: ffprobe's ``format_name``.
        demuxer: the ffmpeg demuxer forced for every later read.
        codec: the audio stream's codec name.
        duration_s: length of the audio stream in seconds (measured by decoding when the headers do not say
            or claim more than the limit).
        channels: channel count of the audio stream.
        sample_rate: its sample rate.
        size_bytes: file size.
        stream_index: index of the audio stream used.
        bit_rate: bits per second when known.
        has_video: True when the file also holds a real video stream (cover pictures do not count).
        stream_bit_rate: the bit rate the audio stream itself states (not one worked out from the file size).
        decoder: the ffmpeg decoder to force when the stream's own codec name would read it wrongly (the
            big-endian PCM of a RIFX WAV, which ffmpeg's wav demuxer reports as little-endian).
    """

    path: Path
    family: str
    extension: str
    container: str
    demuxer: str
    codec: str
    duration_s: float
    channels: int
    sample_rate: int
    size_bytes: int
    stream_index: int
    bit_rate: int | None = None
    has_video: bool = False
    stream_bit_rate: int | None = None
    decoder: str | None = None

    @property
    def label(self) -> str:
        """Container name for messages ("MP3", "WebM/MKV")."""
        return FAMILY_LABELS.get(self.family, self.family.upper())


def input_url(path: Path) -> str:
    """``file:<absolute path>``: never an option, never another protocol."""
    return "file:" + os.path.abspath(path)


def safe_input_options(demuxer: str | None) -> list[str]:
    """Options placed before the input of every command that reads a user's file.

    ``-protocol_whitelist file,pipe`` keeps every byte local; ``-format_whitelist`` refuses any demuxer
    outside the allow-list (so HLS, concat, SDP, image2... can never run, even if forcing were skipped);
    ``-f`` forces the demuxer the bytes were sniffed as, so nothing is guessed; ``-max_alloc`` caps any single
    allocation at 64 MiB, so a crafted header (an 8K video frame, a huge index) cannot claim gigabytes.

    Args:
        demuxer: a key of ``ALLOWED_DEMUXERS``; None only in tests of the second line of defence.

    Raises:
        ValueError: for a demuxer outside the allow-list (a programming error).
    """
    options = [
        "-max_alloc",
        str(MAX_ALLOC_BYTES),
        "-protocol_whitelist",
        "file,pipe",
        "-format_whitelist",
        ",".join(ALLOWED_DEMUXERS),
    ]
    if demuxer is not None:
        if demuxer not in ALLOWED_DEMUXERS:
            raise ValueError(f"demuxer {demuxer!r} is not allowed")
        options += ["-f", demuxer]
    return options


def decoder_options(decoder: str | None) -> list[str]:
    """``-c:a <decoder>`` before the input when a decoder must be forced, else nothing.

    Args:
        decoder: ``ProbeInfo.decoder``.
    """
    return ["-c:a", decoder] if decoder else []


def input_timeout_error(limits: AudioLimits) -> InputTimeoutError:
    """The refusal for a file that took too long to read.

    Args:
        limits: the limits in force.
    """
    return InputTimeoutError(
        f"Reading this file took longer than {limits.timeout_s:g} s, so jamgen stopped. It may be damaged; "
        "export it again as MP3 or WAV and re-attach it."
    )


def damaged_error(label: str, detail: str = "") -> DamagedAudioError:
    """The refusal for a file that claims a format but cannot be read as it.

    Args:
        label: the format's name ("MP3").
        detail: what exactly is wrong, for the member.
    """
    reason = f" ({detail})" if detail else ""
    return DamagedAudioError(
        f"This {label} file is damaged or cut off{reason}, so it cannot be used. Export it again and re-attach it."
    )


def too_long_error(duration_s: float, limits: AudioLimits) -> AudioTooLongError:
    """The refusal for audio over the duration limit.

    Args:
        duration_s: the file's length (a lower bound is fine).
        limits: the limits in force.
    """
    return AudioTooLongError(
        f"This audio is {format_seconds_against(duration_s, limits.max_duration_s)} long; the limit is "
        f"{format_seconds(limits.max_duration_s, floor=True)}. Trim it and attach it again."
    )


async def file_size(path: Path) -> int:
    """Size of a user's file, with a member-friendly error when it is missing.

    Raises:
        InputFileNotFoundError: when there is no regular file there.
    """
    try:
        stat = await asyncio.to_thread(os.stat, path)
    except OSError:
        raise InputFileNotFoundError(f"Cannot open {Path(path).name!r}: there is no such file.") from None
    if not os.path.isfile(path):
        raise InputFileNotFoundError(f"Cannot open {Path(path).name!r}: it is not a regular file.")
    return stat.st_size


def check_size(size: int, limits: AudioLimits) -> None:
    """Refuse empty and over-large files before anything reads them.

    Args:
        size: bytes.
        limits: the limits in force.
    """
    if size == 0:
        raise EmptyAudioFileError(f"This file is empty (0 bytes). Attach a sound file: {ACCEPTED_FORMATS_TEXT}.")
    if size > limits.max_bytes:
        raise AudioFileTooLargeError(
            f"This file is {format_mib(size)}; the limit is {format_mib(limits.max_bytes)}. "
            "Attach a shorter clip, or a compressed format such as MP3."
        )


async def run_ffprobe(path: Path, demuxer: str | None, limits: AudioLimits) -> dict[str, Any] | None:
    """ffprobe's JSON about ``path`` read under the safe input options, or None when it cannot read it.

    Args:
        demuxer: the demuxer to force (None only to test the format whitelist on its own).
        limits: the limits in force (``timeout_s``).

    Raises:
        InputTimeoutError: when ffprobe ran past the timeout.
    """
    argv = [
        FFPROBE,
        "-hide_banner",
        "-v",
        "error",
        *safe_input_options(demuxer),
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        input_url(path),
    ]
    try:
        result = await run_tool(argv, timeout_s=limits.timeout_s, max_stdout_bytes=_PROBE_OUTPUT_CAP)
    except ToolTimeoutError:
        raise input_timeout_error(limits) from None
    if result.returncode != 0 or result.stdout_capped:
        log.info("ffprobe refused %s (exit %s): %s", path.name, result.returncode, result.stderr.strip()[-500:])
        return None
    try:
        data = json.loads(result.stdout)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _codec_allowed(codec: str) -> bool:
    return codec in ALLOWED_CODECS or codec.startswith(ALLOWED_CODEC_PREFIXES)


def _extension(sniffed: Sniffed, codec: str, has_video: bool) -> str:
    if sniffed.family == "ogg":
        return "opus" if codec == "opus" else "ogg"
    if sniffed.family == "mp4":
        if sniffed.extension == "mov":
            return "mov"
        return "mp4" if has_video else "m4a"
    return sniffed.extension


async def measure_duration(
    path: Path, demuxer: str, stream_index: int, limits: AudioLimits, *, decoder: str | None = None
) -> float:
    """Length of an audio stream found by decoding it (8 kHz mono, cheap), when its headers do not say or lie.

    Args:
        demuxer: the forced demuxer.
        stream_index: the audio stream.
        limits: the limits in force; decoding stops just past ``max_duration_s``.
        decoder: a decoder to force (``ProbeInfo.decoder``).
    """
    rate = 8000
    argv = [
        FFMPEG,
        "-nostdin",
        "-hide_banner",
        "-v",
        "error",
        *safe_input_options(demuxer),
        *decoder_options(decoder),
        "-i",
        input_url(path),
        "-map",
        f"0:{stream_index}",
        "-vn",
        "-sn",
        "-dn",
        "-t",
        f"{limits.max_duration_s + 1:.3f}",
        "-ac",
        "1",
        "-ar",
        str(rate),
        "-f",
        "s16le",
        "pipe:1",
    ]
    cap = int((limits.max_duration_s + 2) * rate * 2)
    try:
        result = await run_tool(argv, timeout_s=limits.timeout_s, max_stdout_bytes=cap)
    except ToolTimeoutError:
        raise input_timeout_error(limits) from None
    if result.stdout_capped:
        return cap / (2 * rate)  # it went on past the cap: longer than the limit, however long exactly
    return len(result.stdout) / (2 * rate)


async def probe(path: Path, limits: AudioLimits) -> ProbeInfo:
    """Identify a user's audio file and check it against the limits, without decoding it.

    Args:
        path: the file (any name; only its bytes count).
        limits: the limits in force.

    Raises:
        InputFileNotFoundError, EmptyAudioFileError, AudioFileTooLargeError, NotAudioError,
        PlaylistNotAllowedError, UnsupportedAudioFormatError, NoAudioStreamError, TooManyChannelsError,
        AudioTooLongError, DamagedAudioError, InputTimeoutError: each with a sentence for the member.
    """
    path = Path(path)
    size = await file_size(path)
    check_size(size, limits)
    sniffed = await asyncio.to_thread(sniff_file, path, size)
    label = FAMILY_LABELS[sniffed.family]
    data = await run_ffprobe(path, sniffed.demuxer, limits)
    if data is None or not isinstance(data.get("format"), dict):
        raise damaged_error(label)
    container = str(data["format"].get("format_name", ""))
    if container != ALLOWED_DEMUXERS[sniffed.demuxer]:
        raise UnsupportedAudioFormatError(
            f"This file is a {container or 'unknown'} container, which jamgen does not accept. "
            f"Convert it to {ACCEPTED_FORMATS_TEXT}."
        )
    streams = [s for s in data.get("streams", []) if isinstance(s, dict)]
    has_video = any(
        s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic") for s in streams
    )
    audio_streams = [s for s in streams if s.get("codec_type") == "audio"]
    if not audio_streams:
        if has_video:
            raise NoAudioStreamError(
                "This video has no sound track, so there is no audio to use. Attach a file with sound."
            )
        raise NoAudioStreamError(f"This {label} file holds no sound. Attach a file with sound.")
    stream = audio_streams[0]
    codec = str(stream.get("codec_name") or "")
    if not codec or codec == "none":
        raise _unknown_encoding_error(label, stream)
    if not _codec_allowed(codec):
        raise UnsupportedAudioFormatError(
            f"This file's sound is encoded as {_codec_title(stream)}, which jamgen does not read. "
            "Convert it to MP3, WAV or FLAC."
        )
    decoder = None
    if sniffed.big_endian:
        decoder = _big_endian_decoder(codec)
        if decoder is None:
            raise UnsupportedAudioFormatError(
                f"This file is a big-endian WAV (RIFX) encoded as {_codec_title(stream)}, which jamgen does not "
                "read. Convert it to an ordinary WAV, MP3 or FLAC."
            )
    channels = int(_number(stream.get("channels")) or 0)
    if channels > limits.max_channels:
        raise TooManyChannelsError(
            f"This file has {channels} channels; at most {limits.max_channels} are accepted. "
            "Mix it down to stereo and attach it again."
        )
    sample_rate = int(_number(stream.get("sample_rate")) or 0)
    if channels < 1 or not 0 < sample_rate <= MAX_SAMPLE_RATE:
        raise damaged_error(label, "its header gives no usable channel count or sample rate")
    duration = _number(stream.get("duration")) or _number(data["format"].get("duration"))
    stream_index = int(stream.get("index", 0))
    if not duration or duration > limits.max_duration_s:
        # No length in the headers, or one over the limit: what decodes decides. A header can claim days for a
        # file with no playable sound (damaged, not long), or too much for a short recording streamed to disk.
        claimed = duration
        duration = await measure_duration(path, sniffed.demuxer, stream_index, limits, decoder=decoder)
        if duration <= 0:
            raise damaged_error(label, "no sound could be decoded from it")
        if duration > limits.max_duration_s:
            raise too_long_error(max(duration, claimed or 0.0), limits)
    stream_bit_rate = _number(stream.get("bit_rate"))
    bit_rate = stream_bit_rate or _number(data["format"].get("bit_rate"))
    return ProbeInfo(
        path=path,
        family=sniffed.family,
        extension=_extension(sniffed, codec, has_video),
        container=container,
        demuxer=sniffed.demuxer,
        codec=codec,
        duration_s=duration,
        channels=channels,
        sample_rate=sample_rate,
        size_bytes=size,
        stream_index=stream_index,
        bit_rate=int(bit_rate) if bit_rate else None,
        has_video=has_video,
        stream_bit_rate=int(stream_bit_rate) if stream_bit_rate else None,
        decoder=decoder,
    )


def _codec_title(stream: dict[str, Any]) -> str:
    """The codec's name as people know it ("WavPack", "DSP Group TrueSpeech"), else ffmpeg's short name."""
    return str(stream.get("codec_long_name") or stream.get("codec_name") or "an unknown codec")


def _unknown_encoding_error(label: str, stream: dict[str, Any]) -> UnsupportedAudioFormatError:
    # The member never needs to know which tool jamgen reads files with: name the file's own format tag.
    tag = str(stream.get("codec_tag_string") or "")
    tag_number = str(stream.get("codec_tag") or "")
    shown = f" (format tag {tag_number})" if tag_number not in ("", "0x0000") else ""
    if not shown and tag and tag.isprintable() and "[" not in tag:
        shown = f" (format {tag})"
    return UnsupportedAudioFormatError(
        f"This {label} file stores its sound in an encoding jamgen does not recognise{shown}. "
        "Export it again as an ordinary (PCM) WAV, MP3 or FLAC and attach that."
    )


def _big_endian_decoder(codec: str) -> str | None:
    """The big-endian PCM decoder for what ffmpeg's wav demuxer calls a RIFX file's (little-endian) codec."""
    if codec in ("pcm_u8", "pcm_s8", "pcm_alaw", "pcm_mulaw"):
        return codec  # one byte per sample: no byte order
    if codec.startswith("pcm_") and codec.endswith("le"):
        return codec[:-2] + "be"
    return None
