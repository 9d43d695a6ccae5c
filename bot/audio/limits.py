"""The limits every read of a user's audio file runs under."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

MIB = 1024 * 1024


class _AudioSettings(Protocol):
    """The part of ``bot.config.Settings`` the limits are read from (read-only: Settings is frozen)."""

    @property
    def max_attachment_mb(self) -> float: ...
    @property
    def max_input_minutes(self) -> float: ...
    @property
    def ffmpeg_timeout(self) -> float: ...


@dataclass(frozen=True)
class AudioLimits:
    """What a user's file may be, and how long a tool may work on it.

    Args:
        max_bytes: largest file accepted.
        max_duration_s: longest audio accepted.
        max_channels: most channels accepted.
        timeout_s: wall-clock seconds one ffmpeg/ffprobe run may take before its process group is killed.
        max_decoded_bytes: most bytes of decoded PCM one decode may produce (a file that lies about
            its length cannot fill the memory).
    """

    max_bytes: int = 25 * MIB
    max_duration_s: float = 600.0
    max_channels: int = 8
    timeout_s: float = 20.0
    max_decoded_bytes: int = 256 * MIB

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_duration_s <= 0 or self.max_channels <= 0:
            raise ValueError("audio limits must be positive")
        if self.timeout_s <= 0 or self.max_decoded_bytes <= 0:
            raise ValueError("audio limits must be positive")

    @classmethod
    def from_settings(cls, settings: _AudioSettings) -> AudioLimits:
        """Limits from jamgen's settings (JAMGEN_MAX_ATTACHMENT_MB, JAMGEN_MAX_INPUT_MINUTES, JAMGEN_FFMPEG_TIMEOUT).

        Args:
            settings: a ``bot.config.Settings``.
        """
        return cls(
            max_bytes=int(settings.max_attachment_mb * MIB),
            max_duration_s=float(settings.max_input_minutes) * 60.0,
            timeout_s=float(settings.ffmpeg_timeout),
        )
