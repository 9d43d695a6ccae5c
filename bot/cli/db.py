"""`jamgen db`: migrate, back up or check the database.

- ``jamgen db migrate`` creates the database if needed and applies every migration.
- ``jamgen db backup PATH`` writes a consistent copy of the live database (the bot may keep running).
- ``jamgen db check`` runs SQLite's integrity and foreign-key checks; exit status 0 = ok, 1 = problems.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from bot.config import Settings
from bot.store import backup_database, check_database, migrate_database


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``migrate``, ``backup`` and ``check``.

    Args:
        parser: the ``db`` subcommand's parser.
    """
    parser.add_argument("--db", type=Path, default=None, help="database file (default: JAMGEN_DB_PATH)")
    actions = parser.add_subparsers(dest="db_action", metavar="ACTION")
    actions.required = True
    actions.add_parser(
        "migrate",
        help="Create the database if needed and bring it to the newest schema.",
        description="Create the database if needed and bring it to the newest schema.",
    )
    backup = actions.add_parser(
        "backup",
        help="Write a consistent copy of the database while the bot keeps running.",
        description="Write a consistent copy of the database (VACUUM INTO) while the bot keeps running.",
    )
    backup.add_argument("path", type=Path, help="the new backup file (must not exist)")
    actions.add_parser(
        "check",
        help="Run SQLite's integrity and foreign-key checks.",
        description="Run SQLite's integrity and foreign-key checks. Exit status 0 when ok, 1 when not.",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``jamgen db`` action.

    Args:
        args: parsed arguments.
        settings: loaded settings (``db_path``).

    Returns:
        the exit status.
    """
    path: Path = args.db if args.db is not None else settings.db_path
    if args.db_action == "migrate":
        return asyncio.run(_migrate(path))
    if args.db_action == "backup":
        return asyncio.run(_backup(path, args.path))
    return asyncio.run(_check(path))


async def _migrate(path: Path) -> int:
    result = await migrate_database(path)
    if result.before == result.after:
        print(f"{path}: schema {result.after}, up to date")
    else:
        print(f"{path}: migrated from schema {result.before} to {result.after}")
    return 0


async def _backup(source: Path, dest: Path) -> int:
    report = await backup_database(source, dest)
    print(
        f"backed up {source} to {report.path} (schema {report.schema}, {report.jobs} jobs, {report.size_bytes} bytes)"
    )
    return 0


async def _check(path: Path) -> int:
    report = await check_database(path)
    if report.ok:
        note = f", run `jamgen db migrate` to reach schema {report.latest}" if report.schema < report.latest else ""
        print(f"ok: {path} (schema {report.schema}{note})")
        return 0
    print(f"{path}: {len(report.problems)} problem(s)")
    for problem in report.problems:
        print(f"- {problem}")
    return 1
