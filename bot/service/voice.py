"""What a voice jam plays: a take's file decoded for Discord's voice (the player itself is Discord-side)."""

from __future__ import annotations

from pathlib import Path

from bot.audio.playback import VoicePcm, decode_for_voice


async def voice_audio(path: Path) -> VoicePcm:
    """A finished take or bounce as 48 kHz stereo PCM frames, decoded off the event loop by a niced ffmpeg.

    Raises:
        AudioInputError: the file is gone or cannot be decoded (a friendly message).
    """
    return await decode_for_voice(path)


__all__ = ["VoicePcm", "voice_audio"]
