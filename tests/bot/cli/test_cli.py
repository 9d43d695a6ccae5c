import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import SUBCOMMANDS, main

ROOT = Path(__file__).resolve().parents[3]


def _jamgen(*args, env=None, cwd=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("JAMGEN_", "DISCORD_"))}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or ROOT,
        timeout=120,
    )


def test_top_level_help_lists_every_subcommand():
    result = _jamgen("--help")
    assert result.returncode == 0
    for name in SUBCOMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("name", list(SUBCOMMANDS))
def test_each_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as info:
        main([name, "--help"])
    assert info.value.code == 0
    assert "usage: jamgen " + name in capsys.readouterr().out


def test_bad_env_value_gives_one_line_error_and_exit_2(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("JAMGEN_MAX_DURATION=abc\n")
    result = _jamgen("--env-file", str(env_file), "models", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: JAMGEN_MAX_DURATION must be an integer 1-300, got 'abc'"
    assert "Traceback" not in result.stderr


def test_run_without_token_explains_and_exits_2(tmp_path):
    result = _jamgen("--env-file", str(tmp_path / "none.env"), "run", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: DISCORD_TOKEN is not set.")
    assert "jamgen generate" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_subcommand_is_a_usage_error():
    result = _jamgen("dance")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
