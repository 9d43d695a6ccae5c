"""Errors of the audio room, one class per reason a file is refused.

Every message is a sentence for the Discord member (or CLI user) who attached
the file: it says what is wrong and what to do instead. None of them contains a
server path; at most the name the user gave.
"""

from __future__ import annotations

from bot.errors import ConfigError, InternalError, UserInputError, format_seconds

ACCEPTED_FORMATS_TEXT = "MP3, WAV, FLAC, OGG/Opus, M4A/AAC or AIFF (or the sound of an MP4, MOV, WebM or MKV video)"


class AudioInputError(UserInputError):
    """Base of every refusal of a user's audio file."""


class InputFileNotFoundError(AudioInputError):
    """The path given (CLI) names no readable file."""


class EmptyAudioFileError(AudioInputError):
    """The file has zero bytes."""


class NotAudioError(AudioInputError):
    """The contents are something other than audio (an image, an archive, text...).

    Args:
        message: the user-facing sentence.
        detected: what the file looks like instead ("a PNG image"), or "" when unknown.
    """

    def __init__(self, message: str, detected: str = "") -> None:
        super().__init__(message)
        self.detected = detected


class PlaylistNotAllowedError(NotAudioError):
    """A playlist or script that points to other files or to the network (HLS, M3U, ffconcat, SDP)."""


class UnsupportedAudioFormatError(AudioInputError):
    """Real media, but in a container or codec outside the allow-list."""


class NoAudioStreamError(AudioInputError):
    """A media file (usually a video) without any sound track."""


class DamagedAudioError(AudioInputError):
    """The file claims to be audio but is cut off, corrupt or lies about itself."""


class InputTimeoutError(DamagedAudioError):
    """Reading the file took longer than the wall-clock limit."""


class AudioFileTooLargeError(AudioInputError):
    """More bytes than the attachment limit."""


class AudioTooLongError(AudioInputError):
    """Longer than the duration limit."""


class AudioTooShortError(AudioInputError):
    """Too short for what it is used for (style reference, melody, continuation)."""


class TooManyChannelsError(AudioInputError):
    """More channels than accepted."""


class RecipeNotFoundError(UserInputError):
    """The file carries no jamgen recipe tag."""


class OutputTooLargeError(UserInputError):
    """The rendered track cannot fit the upload limit in the asked format."""


class AudioEncodeError(InternalError):
    """ffmpeg failed to write a track (our fault: the audio came from the engine)."""


class AudioToolMissingError(ConfigError):
    """ffmpeg or ffprobe is not installed or not on PATH."""


def format_seconds_against(seconds: float, limit: float) -> str:
    """A duration set against a limit, as precise as it takes to read on the right side of it.

    ``format_seconds`` rounds down, which would print 1.4995 s as "1.4 s" next to a 1.5 s minimum, and
    600.4 s as "10 min" next to a 10 min maximum; here 1.4995 s reads "1.499 s" and 600.4 s "600.4 s".

    Args:
        seconds: the duration measured.
        limit: the minimum or maximum it is compared with.
    """
    shown = format_seconds(seconds, floor=True)
    if seconds >= 10 and shown != format_seconds(limit, floor=True):
        return shown
    for digits in range(1, 5):
        rounded = round(seconds, digits)
        if rounded != limit and (rounded < limit) == (seconds < limit):
            return f"{rounded:.{digits}f} s"
    return f"{seconds:.6g} s"


def format_mib(size_bytes: float) -> str:
    """A size in MiB with at most one decimal ("25 MiB", "30.2 MiB")."""
    mib = size_bytes / (1024 * 1024)
    return f"{mib:.0f} MiB" if float(round(mib, 1)).is_integer() else f"{mib:.1f} MiB"
