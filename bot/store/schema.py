"""Opening the database, numbered SQL migrations, integrity checks and online backups.

Migrations are the files ``bot/store/migrations/NNNN_name.sql``, numbered from 1
without gaps. ``PRAGMA user_version`` holds the number of the last one applied;
each runs in its own ``BEGIN IMMEDIATE`` transaction together with the version
bump, so a database is always at exactly one schema version.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import aiosqlite

from bot.store.errors import (
    BackupExistsError,
    DatabaseMissingError,
    DatabaseTooNewError,
    MigrationFailedError,
    NotADatabaseError,
    StoreError,
    WalUnavailableError,
)

log = logging.getLogger("jamgen.store")

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
DEFAULT_BUSY_TIMEOUT = 10.0


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file.

    Args:
        version: the schema version the database has after it.
        name: the file name.
        sql: the statements.
    """

    version: int
    name: str
    sql: str


def load_migrations() -> tuple[Migration, ...]:
    """Every migration shipped with this code, in order.

    Raises:
        MigrationFailedError: when the files are not numbered 1, 2, 3 … without gaps.
    """
    found = []
    for entry in resources.files("bot.store").joinpath("migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise MigrationFailedError(f"migration files are not numbered 1..n without gaps: {[m.name for m in found]}")
    return tuple(found)


def latest_version() -> int:
    """The schema version this code knows."""
    return len(load_migrations())


def split_statements(sql: str) -> list[str]:
    """Split a migration into complete statements (trigger bodies stay whole).

    Args:
        sql: the file's text.
    """
    statements, buffer = [], ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    rest = "\n".join(line for line in buffer.splitlines() if not line.strip().startswith("--")).strip()
    if rest:
        raise MigrationFailedError(f"a migration ends with an incomplete statement: {rest[:80]!r}")
    return statements


async def connect(
    path: Path, *, create: bool, busy_timeout: float = DEFAULT_BUSY_TIMEOUT, wal: bool = True
) -> aiosqlite.Connection:
    """Open the database with jamgen's settings: WAL, busy timeout, foreign keys, full sync.

    Args:
        path: the database file.
        create: make the file (and its folders) when missing; otherwise a missing file is an error.
        busy_timeout: seconds to wait for another writer's lock.
        wal: switch the file to write-ahead logging (False leaves its journal mode as it is).

    Raises:
        DatabaseMissingError: ``create`` is False and there is no file.
        NotADatabaseError: the file is not SQLite.
        WalUnavailableError: the file system refuses a write-ahead log.
    """
    if create:
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        db = await aiosqlite.connect(str(path), isolation_level=None)
    else:
        if not await asyncio.to_thread(path.is_file):
            raise DatabaseMissingError(path)
        absolute = await asyncio.to_thread(path.resolve)
        db = await aiosqlite.connect(absolute.as_uri() + "?mode=rw", isolation_level=None, uri=True)
    try:
        db.row_factory = aiosqlite.Row
        await db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        await db.execute("PRAGMA foreign_keys = ON")
        # Reading the header first turns a foreign file into a clear error.
        await db.execute_fetchall("PRAGMA user_version")
        if wal:
            mode = await _switch_to_wal(db, busy_timeout)
            if mode != "wal":
                raise WalUnavailableError(path, mode)
        await db.execute("PRAGMA synchronous = FULL")
    except sqlite3.DatabaseError as exc:
        await db.close()
        if "not a database" in str(exc) or "file is encrypted" in str(exc):
            raise NotADatabaseError(path) from exc
        raise StoreError() from exc
    except BaseException:
        await db.close()
        raise
    return db


async def _switch_to_wal(db: aiosqlite.Connection, busy_timeout: float) -> str:
    """Set WAL mode, retrying while other connections hold the file.

    Switching a new file to WAL needs an exclusive lock. When several connections try at
    the same moment SQLite answers "locked" at once instead of waiting (it would deadlock),
    so the wait is done here.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + busy_timeout
    while True:
        try:
            rows = list(await db.execute_fetchall("PRAGMA journal_mode = WAL"))
            return str(rows[0][0]).lower() if rows else "unknown"
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or loop.time() > deadline:
                raise
            await asyncio.sleep(0.01)


async def schema_version(db: aiosqlite.Connection) -> int:
    """The database's ``PRAGMA user_version`` (0 for a new file).

    Args:
        db: an open connection.
    """
    rows = list(await db.execute_fetchall("PRAGMA user_version"))
    return int(rows[0][0]) if rows else 0


@dataclass(frozen=True)
class MigrationResult:
    """Schema versions before and after ``migrate``."""

    before: int
    after: int


async def migrate(
    db: aiosqlite.Connection,
    path: Path,
    *,
    migrations: Sequence[Migration] | None = None,
    target: int | None = None,
) -> MigrationResult:
    """Bring the database up to ``target`` (default: the newest schema), one transaction per file.

    Safe when several processes start at once: each migration re-reads the version
    after taking the write lock and skips what another process already applied.

    Args:
        db: a connection from :func:`connect`.
        path: the file, for messages.
        migrations: the migrations to apply (default: the shipped ones).
        target: stop at this version (tests build every earlier schema this way).

    Raises:
        DatabaseTooNewError: the database is newer than every migration known here.
        MigrationFailedError: a file failed; its transaction was rolled back.
    """
    known = tuple(migrations) if migrations is not None else load_migrations()
    latest = known[-1].version if known else 0
    try:
        before = await schema_version(db)
    except sqlite3.DatabaseError as exc:
        raise NotADatabaseError(path) from exc
    if before > latest:
        raise DatabaseTooNewError(path, before, latest)
    goal = latest if target is None else min(target, latest)
    for migration in known:
        if migration.version > goal:
            break
        await _apply(db, path, migration)
    after = await schema_version(db)
    if after > latest:
        raise DatabaseTooNewError(path, after, latest)
    if after != before:
        log.info("database %s migrated from schema %d to %d", path, before, after)
    return MigrationResult(before, after)


async def migrate_database(path: Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> MigrationResult:
    """Create the database if needed and bring it to the newest schema (``jamgen db migrate``).

    Args:
        path: the database file.
        busy_timeout: seconds to wait for a writer's lock.

    Raises:
        DatabaseTooNewError: the file was written by a newer jamgen.
    """
    db = await connect(path, create=True, busy_timeout=busy_timeout)
    try:
        return await migrate(db, path)
    finally:
        await db.close()


async def _apply(db: aiosqlite.Connection, path: Path, migration: Migration) -> None:
    await db.execute("BEGIN IMMEDIATE")
    try:
        current = await schema_version(db)
        if current >= migration.version:
            await db.execute("ROLLBACK")
            return
        for statement in split_statements(migration.sql):
            await db.execute(statement)
        if list(await db.execute_fetchall("PRAGMA foreign_key_check")):
            raise MigrationFailedError(f"migration {migration.name} left rows pointing at missing rows in {path}")
        await db.execute(f"PRAGMA user_version = {migration.version}")
        await db.execute("COMMIT")
    except BaseException as exc:
        await rollback_quietly(db)
        if isinstance(exc, sqlite3.Error):
            raise MigrationFailedError(
                f"migration {migration.name} failed on {path} ({exc}); "
                f"the database stays at schema {migration.version - 1}"
            ) from exc
        raise


async def rollback_quietly(db: aiosqlite.Connection) -> None:
    """Roll back whatever transaction may be open; none open is fine.

    Args:
        db: the connection.
    """
    with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back already
        await db.execute("ROLLBACK")


@dataclass(frozen=True)
class CheckReport:
    """What ``jamgen db check`` found.

    Args:
        problems: one sentence per problem; empty when the database is healthy.
        schema: the database's schema version.
        latest: the version this code knows.
    """

    problems: list[str]
    schema: int
    latest: int

    @property
    def ok(self) -> bool:
        """No problems."""
        return not self.problems


async def check_database(path: Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> CheckReport:
    """Run ``PRAGMA integrity_check`` and ``PRAGMA foreign_key_check``; changes nothing.

    Args:
        path: the database file (must exist).
        busy_timeout: seconds to wait for a writer's lock.

    Raises:
        DatabaseMissingError: no file at ``path``.
        NotADatabaseError: the file is not SQLite.
    """
    db = await connect(path, create=False, busy_timeout=busy_timeout, wal=False)
    try:
        return await _inspect(db)
    finally:
        await db.close()


async def _inspect(db: aiosqlite.Connection) -> CheckReport:
    latest = latest_version()
    try:
        version = await schema_version(db)
        rows = await db.execute_fetchall("PRAGMA integrity_check")
        fk_rows = await db.execute_fetchall("PRAGMA foreign_key_check")
    except sqlite3.DatabaseError as exc:
        return CheckReport([f"the database cannot be read: {exc}"], 0, latest)
    problems: list[str] = []
    messages = [str(row[0]) for row in rows]
    if messages != ["ok"]:
        problems.extend(f"integrity: {message}" for message in messages)
    problems.extend(f"foreign key: {row[0]} row {row[1]} points at a missing {row[2]} row" for row in fk_rows)
    if version > latest:
        problems.append(f"schema {version} is newer than this jamgen knows ({latest}): upgrade jamgen")
    return CheckReport(problems, version, latest)


@dataclass(frozen=True)
class BackupReport:
    """A finished backup.

    Args:
        path: the backup file.
        schema: its schema version.
        jobs: how many jobs it holds.
        size_bytes: its size.
    """

    path: Path
    schema: int
    jobs: int
    size_bytes: int


async def backup_database(source: Path, dest: Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> BackupReport:
    """Copy a consistent snapshot of a live database with ``VACUUM INTO`` (writers keep going).

    The copy is written next to ``dest`` under a ``.partial`` name, synced, checked and
    only then renamed, so ``dest`` is either a whole, healthy backup or absent.

    Args:
        source: the live database.
        dest: the new backup file (must not exist).
        busy_timeout: seconds to wait for a writer's lock.

    Raises:
        BackupExistsError: ``dest`` already exists.
        DatabaseMissingError: no database at ``source``.
        StoreError: the copy failed its integrity check.
    """
    if await asyncio.to_thread(dest.exists):
        raise BackupExistsError(dest)
    await asyncio.to_thread(dest.parent.mkdir, parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    await asyncio.to_thread(partial.unlink, missing_ok=True)
    try:
        db = await connect(source, create=False, busy_timeout=busy_timeout, wal=False)
        try:
            await db.execute("VACUUM INTO ?", (str(partial),))
        finally:
            await db.close()
        await asyncio.to_thread(_fsync, partial)
        # The copy stays in rollback-journal mode: one self-contained file.
        copy = await connect(partial, create=False, busy_timeout=busy_timeout, wal=False)
        try:
            report = await _inspect(copy)
            jobs = 0
            if report.ok and report.schema >= 1:
                rows = list(await copy.execute_fetchall("SELECT count(*) FROM jobs"))
                jobs = int(rows[0][0])
        finally:
            await copy.close()
        if not report.ok:
            raise StoreError(f"the backup of {source} failed its check: {'; '.join(report.problems)}")
        await asyncio.to_thread(os.replace, partial, dest)
    except BaseException:
        await asyncio.to_thread(partial.unlink, missing_ok=True)
        raise
    await asyncio.to_thread(_fsync_dir, dest.parent)
    size = (await asyncio.to_thread(dest.stat)).st_size
    return BackupReport(dest, report.schema, jobs, size)


def _fsync(path: Path) -> None:
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
