"""One family of errors whose messages are written for the people who read them.

Every error jamgen raises on purpose is a :class:`JamgenError`. Its ``str()`` is
the sentence a Discord member or a CLI user sees; details that only an admin
needs go to the log. ``user_error`` says whose fault it was: user errors are
never charged against a quota and exit the CLI with status 2, internal ones
exit with 1 and are refunded.
"""

from __future__ import annotations

import math


class JamgenError(Exception):
    """Base of every error jamgen raises on purpose.

    Args:
        message: the user-facing sentence.
    """

    user_error: bool = True

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def exit_code(self) -> int:
        """CLI exit status: 2 for the user's mistakes, 1 for ours."""
        return 2 if self.user_error else 1


class ConfigError(JamgenError):
    """A configuration value is missing or invalid."""


class UserInputError(JamgenError):
    """Something the user asked for cannot be done as asked."""


class ChannelNotAllowedError(UserInputError):
    """jamgen may not play in this channel; the Discord layer names the channels where it may.

    Args:
        allowed_channel_ids: the server's allowed channels (the first few are named).
        hint: what precedes their names, e.g. "Try".
    """

    def __init__(self, allowed_channel_ids: tuple[int, ...], *, hint: str = "Try") -> None:
        super().__init__("jamgen doesn't play in this channel.")
        self.allowed_channel_ids = allowed_channel_ids
        self.hint = hint


class InternalError(JamgenError):
    """Something went wrong on our side; the user is not to blame."""

    user_error = False


class NotImplementedYetError(InternalError):
    """A command exists but its feature has not landed yet."""


def format_seconds(seconds: float, *, floor: bool = False) -> str:
    """A duration the way a person says it, in every message: "4.5 s", "42 s", "7 min 5 s", "1 h 5 min".

    Args:
        seconds: the duration (``math.inf`` reads "unlimited").
        floor: for measured audio, round down and keep one decimal under 10 s ("1.0 s"), so that
            "needs 1.5 s, has 1.5 s" can never be printed for 1.46 s; otherwise round to the nearest.
    """
    if math.isinf(seconds):
        return "unlimited"
    if floor and seconds < 10:
        return f"{int(seconds * 10) / 10:.1f} s"
    whole = int(seconds) if floor else round(seconds)
    if whole < 60:
        return f"{whole} s" if floor else f"{round(seconds, 1):g} s"
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, rest = divmod(whole, 3600)
    return f"{hours} h {rest // 60} min"
