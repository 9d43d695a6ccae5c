"""One family of errors whose messages are written for the people who read them.

Every error jamgen raises on purpose is a :class:`JamgenError`. Its ``str()`` is
the sentence a Discord member or a CLI user sees; details that only an admin
needs go to the log. ``user_error`` says whose fault it was: user errors are
never charged against a quota and exit the CLI with status 2, internal ones
exit with 1 and are refunded.
"""

from __future__ import annotations


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


class InternalError(JamgenError):
    """Something went wrong on our side; the user is not to blame."""

    user_error = False


class NotImplementedYetError(InternalError):
    """A command exists but its feature has not landed yet."""
