"""`jamgen run`: start the Discord bot."""

from __future__ import annotations

import argparse

from bot.config import Settings
from bot.errors import NotImplementedYetError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this subcommand's options."""


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Start the bot; without a token, explain how to get one."""
    settings.require_token()
    raise NotImplementedYetError("`jamgen run` is not implemented yet: the Discord client lands with the cogs.")
