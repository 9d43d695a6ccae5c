"""The fake Discord's own tests use its fixtures."""

from tests.fakediscord.fixtures import fake_discord, fake_discord_options, start_bot  # noqa: F401
