"""The ``jamgen`` command line.

Each subcommand lives in its own module of this package with two functions:
``add_arguments(parser)`` and ``run(args, settings) -> int``. Errors that are
the user's print one line ``error: ...`` and exit 2; ours exit 1.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bot import __version__
from bot.config import Settings
from bot.errors import JamgenError
from bot.logs import configure_logging

log = logging.getLogger("jamgen.cli")

SUBCOMMANDS: dict[str, str] = {
    "run": "Start the Discord bot.",
    "generate": "Make a track on this machine, without Discord.",
    "stems": "Split a track into drums, bass, other and vocals on this machine, without Discord.",
    "models": "List the models, their abilities and whether their weights are here.",
    "db": "Migrate, back up or check the database.",
    "doctor": "Check that everything the bot needs is in place.",
    "invite": "Print the URL that adds the bot to a server with the permissions it needs.",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="jamgen",
        description="jamgen: a Discord bot that makes music with MusicGen.",
    )
    parser.add_argument("--version", action="version", version=f"jamgen {__version__}")
    parser.add_argument("--env-file", type=Path, default=Path(".env"), help="settings file (default: .env)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, help_text in SUBCOMMANDS.items():
        module = importlib.import_module(f"bot.cli.{name}")
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(cmd)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jamgen`` script.

    Args:
        argv: arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        the process exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(dotenv=args.env_file)
        configure_logging(settings.log_level, secrets=[settings.discord_token.get_secret_value()])
        module = importlib.import_module(f"bot.cli.{args.command}")
        return int(module.run(args, settings))
    except JamgenError as exc:
        if not exc.user_error:
            log.debug("internal error", exc_info=True)
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
