"""Fixtures shared by the whole suite, and the Discord conformance summary."""

import pytest

from tests.fakediscord.fixtures import fake_discord, fake_discord_options, start_bot  # noqa: F401


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line: how many HTTP exchanges with the fake Discord were held against openapi.json."""
    from tests.fakediscord.conformance import SESSION_TOTALS, SPEC_PATH, spec_available

    if not spec_available():
        terminalreporter.write_line(f"discord conformance: {SPEC_PATH} not found, nothing checked")
    elif SESSION_TOTALS.requests or SESSION_TOTALS.answers:
        terminalreporter.write_line(SESSION_TOTALS.summary())
