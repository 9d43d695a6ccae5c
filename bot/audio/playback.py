"""A take's audio as Discord's voice wants it: 48 kHz stereo 16-bit PCM in 20-ms frames.

The MP3 is decoded whole, before it plays, by a niced ffmpeg off the event loop; the voice thread then
only slices bytes in memory, so nothing it does can wait on ffmpeg, the engine or the event loop.
Takes are jamgen's own (already levelled) files: nothing is changed in their loudness here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.audio.errors import DamagedAudioError, InputFileNotFoundError
from bot.audio.tools import FFMPEG, ToolTimeoutError, run_tool

VOICE_RATE = 48_000
VOICE_CHANNELS = 2
FRAME_MS = 20
# One Opus packet's worth: 960 samples per channel, 2 bytes each.
FRAME_BYTES = VOICE_RATE * FRAME_MS // 1000 * VOICE_CHANNELS * 2
BYTES_PER_SECOND = VOICE_RATE * VOICE_CHANNELS * 2
# Bounces of long jams are the longest things played; past this a track is cut (memory: ~11.5 MB a minute).
MAX_PLAY_S = 20 * 60
DECODE_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class VoicePcm:
    """A decoded track ready to play.

    Args:
        pcm: interleaved s16le samples at 48 kHz stereo.
    """

    pcm: bytes

    @property
    def seconds(self) -> float:
        return len(self.pcm) / BYTES_PER_SECOND

    def frame(self, index: int) -> bytes:
        """Frame ``index`` (20 ms); the last is padded with silence; past the end: ``b""``."""
        chunk = self.pcm[index * FRAME_BYTES : (index + 1) * FRAME_BYTES]
        if chunk and len(chunk) < FRAME_BYTES:
            chunk += bytes(FRAME_BYTES - len(chunk))
        return chunk


async def decode_for_voice(path: Path, *, max_seconds: float = MAX_PLAY_S) -> VoicePcm:
    """Decode one of jamgen's MP3s (or any file ffmpeg reads) for playing in a voice channel.

    Raises:
        InputFileNotFoundError: the file is gone (retention removed it).
        DamagedAudioError: ffmpeg could not decode it, or took too long.
    """
    if not path.is_file():
        raise InputFileNotFoundError(f"The audio of {path.name} is no longer kept.")
    argv = [
        FFMPEG,
        "-nostdin",
        "-hide_banner",
        "-v",
        "error",
        "-i",
        str(path),
        "-vn",
        "-t",
        f"{max_seconds:.3f}",
        # A mono take plays at its own level on both sides (ffmpeg's default upmix would lower it by 3 dB).
        "-af",
        "pan=stereo|FL=FL+FC|FR=FR+FC",
        "-ar",
        str(VOICE_RATE),
        "-f",
        "s16le",
        "pipe:1",
    ]
    cap = int((max_seconds + 1) * BYTES_PER_SECOND)
    try:
        result = await run_tool(argv, timeout_s=DECODE_TIMEOUT_S, max_stdout_bytes=cap)
    except ToolTimeoutError:
        raise DamagedAudioError(f"{path.name} took too long to decode for playing.") from None
    if result.returncode != 0 or not result.stdout:
        raise DamagedAudioError(f"{path.name} could not be decoded for playing.")
    return VoicePcm(result.stdout)
