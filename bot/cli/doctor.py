"""`jamgen doctor`."""

from __future__ import annotations

import argparse

from bot.config import Settings
from bot.errors import NotImplementedYetError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this subcommand's options."""


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Not implemented yet."""
    raise NotImplementedYetError("`jamgen doctor` is not implemented yet.")
