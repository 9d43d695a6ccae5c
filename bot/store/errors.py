"""Errors raised by the job store, written for the member or admin who reads them."""

from __future__ import annotations

from datetime import datetime

from bot.errors import ConfigError, InternalError, UserInputError, format_seconds
from bot.store.quota import format_wait


class StoreError(InternalError):
    """The database failed in a way the member cannot fix (details go to the log)."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message or "jamgen could not read or write its job records; an admin has been told.")


class StoreBusyError(StoreError):
    """Another process held the database lock for longer than the busy timeout."""

    def __init__(self) -> None:
        super().__init__("jamgen's job records are busy right now; please try again in a moment.")


class DatabaseMissingError(ConfigError):
    """A command that must not create a database found none."""

    def __init__(self, path: object) -> None:
        super().__init__(f"there is no database at {path} (run `jamgen db migrate` to create one)")


class NotADatabaseError(ConfigError):
    """The file at the database path is not an SQLite database."""

    def __init__(self, path: object) -> None:
        super().__init__(f"the file at {path} is not an SQLite database; point JAMGEN_DB_PATH at jamgen's database")


class DatabaseTooNewError(ConfigError):
    """The database was written by a newer jamgen whose schema this code does not know."""

    def __init__(self, path: object, found: int, known: int) -> None:
        super().__init__(
            f"the database at {path} is from a newer jamgen (schema {found}, this code knows {known}): "
            "upgrade jamgen or restore a backup"
        )
        self.found = found
        self.known = known


class MigrationFailedError(InternalError):
    """A migration file could not be applied; its transaction was rolled back."""


class WalUnavailableError(ConfigError):
    """The database's file system cannot hold a write-ahead log."""

    def __init__(self, path: object, mode: str) -> None:
        super().__init__(
            f"the database at {path} cannot use write-ahead logging (journal mode stayed {mode!r}); "
            "keep it on a local disk"
        )


class BackupExistsError(UserInputError):
    """A backup would overwrite an existing file."""

    def __init__(self, path: object) -> None:
        super().__init__(f"{path} already exists; give the backup a new file name")


class JobNotFoundError(UserInputError):
    """No job has the given id."""

    def __init__(self, job_id: str, message: str | None = None) -> None:
        super().__init__(
            message or f"There is no job `{job_id}`. Check the id in the message that delivered the track."
        )
        self.job_id = job_id


class IllegalTransitionError(InternalError):
    """A job was asked to move to a state its state machine does not allow."""

    def __init__(self, job_id: str, current: str, wanted: str) -> None:
        super().__init__(f"Job `{job_id}` is {current} and cannot become {wanted}.")
        self.job_id = job_id
        self.current = current
        self.wanted = wanted


class SecretRefusedError(InternalError):
    """Something that looks like a Discord token was about to be written to disk."""


class QuotaExceededError(UserInputError):
    """The member's daily budget cannot pay for the job.

    Args:
        remaining: seconds the member has left today.
        cost: seconds the job would cost.
        budget: the member's daily budget in seconds.
        resets_at: when the budget resets (next 00:00 UTC).
        now: the current time, to say how long until the reset.
    """

    def __init__(self, *, remaining: float, cost: float, budget: float, resets_at: datetime, now: datetime) -> None:
        wait = format_wait(resets_at - now)
        if remaining <= 0:
            head = f"You have used all {format_seconds(budget)} of today's quota."
        else:
            head = (
                f"This needs {format_seconds(cost)} of quota but you have {format_seconds(remaining)} left today "
                f"(of {format_seconds(budget)}). Try a shorter track, fewer takes or a lighter model."
            )
        super().__init__(f"{head} Your quota resets at 00:00 UTC, {wait}.")
        self.remaining = remaining
        self.cost = cost
        self.budget = budget
        self.resets_at = resets_at


class TooManyPendingError(UserInputError):
    """Too many jobs are already waiting or running.

    Args:
        scope: ``user``, ``guild`` or ``queue``.
        pending: how many are waiting or running in that scope.
        limit: the most allowed.
    """

    def __init__(self, scope: str, pending: int, limit: int) -> None:
        if scope == "user":
            text = (
                f"You already have {pending} tracks waiting or being made (the most is {limit}). "
                "Wait for one to finish, then try again."
            )
        elif scope == "guild":
            text = (
                f"This server already has {pending} tracks waiting or being made (the most is {limit}). "
                "Try again in a few minutes."
            )
        else:
            text = f"The queue is full ({pending} tracks waiting). Try again in a few minutes."
        super().__init__(text)
        self.scope = scope
        self.pending = pending
        self.limit = limit


class BlockedError(UserInputError):
    """The member or the whole server may not use jamgen.

    Args:
        kind: ``user`` or ``guild``.
        reason: the admin's note (kept for the log, not shown to the member).
    """

    def __init__(self, kind: str, reason: str = "") -> None:
        if kind == "user":
            text = "You can't make tracks with jamgen right now. Ask the bot's admin if you think this is a mistake."
        else:
            text = "jamgen is switched off in this server. Ask the bot's admin if you think this is a mistake."
        super().__init__(text)
        self.kind = kind
        self.reason = reason


class SessionNotFoundError(StoreError):
    """No session has that id (a bug: sessions are looked up by ids the store handed out)."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"jamgen lost track of the jam session `{session_id}`.")
        self.session_id = session_id


class SessionBudgetExceededError(UserInputError):
    """The jam's own budget cannot pay for another take.

    Args:
        budget: the jam's budget in seconds.
        used: seconds its takes have used (refunds deducted).
        cost: seconds the new take would cost.
    """

    def __init__(self, *, budget: float, used: float, cost: float) -> None:
        left = max(0.0, budget - used)
        super().__init__(
            f"This jam has {format_seconds(left)} of its {format_seconds(budget)} budget left and this take needs "
            f"{format_seconds(cost)}. The member who started the jam, or an admin, can raise it with `/session budget`."
        )
        self.budget = budget
        self.used = used
        self.cost = cost
