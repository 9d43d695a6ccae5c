"""Fixtures shared by the whole suite."""

from tests.fakediscord.fixtures import fake_discord, fake_discord_options, start_bot  # noqa: F401
