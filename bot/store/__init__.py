"""Jobs, the quota ledger, server settings and jam sessions in SQLite (the only package that speaks SQL).

See docs/STORE.md for the schema, the job state machine, the quota rules and backups.
"""

from bot.errors import format_seconds
from bot.store.errors import (
    BackupExistsError,
    BlockedError,
    DatabaseMissingError,
    DatabaseTooNewError,
    IllegalTransitionError,
    JobNotFoundError,
    MigrationFailedError,
    NotADatabaseError,
    QuotaExceededError,
    SecretRefusedError,
    SessionBudgetExceededError,
    SessionNotFoundError,
    StoreBusyError,
    StoreError,
    TooManyPendingError,
    WalUnavailableError,
)
from bot.store.eta import ETA_WEIGHT
from bot.store.models import (
    ALLOWED_FROM,
    FINAL_STATES,
    PENDING_STATES,
    BlockEntry,
    GuildSettings,
    Job,
    JobState,
    LedgerEntry,
    NewJob,
    QuotaStatus,
    Recovery,
    Session,
    Submission,
)
from bot.store.polls import PollAlreadyOpenError, SessionPoll
from bot.store.quota import format_wait, next_reset, utc_day
from bot.store.retention import delete_files, run_retention, sweep_outputs
from bot.store.schema import (
    BackupReport,
    CheckReport,
    MigrationResult,
    backup_database,
    check_database,
    latest_version,
    migrate_database,
)
from bot.store.states import DEFAULT_MAX_ATTEMPTS
from bot.store.stems import Stem
from bot.store.store import DEFAULT_DAILY_BUDGET, JobStore

__all__ = [
    "ALLOWED_FROM",
    "DEFAULT_DAILY_BUDGET",
    "DEFAULT_MAX_ATTEMPTS",
    "ETA_WEIGHT",
    "FINAL_STATES",
    "PENDING_STATES",
    "BackupExistsError",
    "BackupReport",
    "BlockEntry",
    "BlockedError",
    "CheckReport",
    "DatabaseMissingError",
    "DatabaseTooNewError",
    "GuildSettings",
    "IllegalTransitionError",
    "Job",
    "JobNotFoundError",
    "JobState",
    "JobStore",
    "LedgerEntry",
    "MigrationFailedError",
    "MigrationResult",
    "NewJob",
    "NotADatabaseError",
    "PollAlreadyOpenError",
    "QuotaExceededError",
    "QuotaStatus",
    "Recovery",
    "SecretRefusedError",
    "Session",
    "SessionBudgetExceededError",
    "SessionNotFoundError",
    "SessionPoll",
    "Stem",
    "StoreBusyError",
    "StoreError",
    "Submission",
    "TooManyPendingError",
    "WalUnavailableError",
    "backup_database",
    "check_database",
    "delete_files",
    "format_seconds",
    "format_wait",
    "latest_version",
    "migrate_database",
    "next_reset",
    "run_retention",
    "sweep_outputs",
    "utc_day",
]
