"""`jamgen run`: start the Discord bot."""

from __future__ import annotations

import argparse
import asyncio

from bot.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this subcommand's options (none: everything comes from .env)."""


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Start the bot; without a token, explain how to get one."""
    settings.require_token()
    from bot.discord import run_bot  # discord is imported only when the bot really starts

    asyncio.run(run_bot(settings))
    return 0
