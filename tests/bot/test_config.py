import dataclasses
from pathlib import Path

import pytest

from bot.config import Secret, Settings, render_example_env
from bot.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_valid_without_any_environment():
    settings = Settings.from_env({})
    assert settings.max_duration == 120
    assert settings.daily_budget_seconds == 600
    assert settings.enabled_models == ()
    assert not settings.discord_token


def test_values_are_parsed_to_their_types():
    settings = Settings.from_env(
        {
            "JAMGEN_MAX_DURATION": "60",
            "JAMGEN_LOUDNESS_TARGET": "-16.5",
            "JAMGEN_DEBUG_MODELS": "yes",
            "JAMGEN_ENABLED_MODELS": "small, melody ,",
            "JAMGEN_ADMIN_USER_IDS": "1,2",
            "JAMGEN_LOG_LEVEL": "debug",
            "JAMGEN_DB_PATH": "/tmp/x.db",
        }
    )
    assert settings.max_duration == 60
    assert settings.loudness_target == -16.5
    assert settings.debug_models is True
    assert settings.enabled_models == ("small", "melody")
    assert settings.admin_user_ids == (1, 2)
    assert settings.log_level == "DEBUG"
    assert settings.db_path == Path("/tmp/x.db")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("JAMGEN_MAX_DURATION", "abc", "JAMGEN_MAX_DURATION must be an integer 1-300, got 'abc'"),
        ("JAMGEN_MAX_DURATION", "301", "JAMGEN_MAX_DURATION must be an integer 1-300, got '301'"),
        ("JAMGEN_MAX_DURATION", "2.5", "JAMGEN_MAX_DURATION must be an integer 1-300, got '2.5'"),
        ("JAMGEN_DEBUG_MODELS", "maybe", "JAMGEN_DEBUG_MODELS must be true or false, got 'maybe'"),
        ("JAMGEN_DEVICE", "tpu", "JAMGEN_DEVICE must be one of auto, cuda, cpu, got 'tpu'"),
        ("JAMGEN_ADMIN_USER_IDS", "1,x", "JAMGEN_ADMIN_USER_IDS must be comma-separated integers, got '1,x'"),
        ("JAMGEN_LOUDNESS_TARGET", "nan", "JAMGEN_LOUDNESS_TARGET must be a number -70-0, got 'nan'"),
    ],
)
def test_invalid_values_name_key_value_and_allowed(key, value, message):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({key: value})
    assert str(info.value) == message


def test_relations_between_values_are_checked():
    with pytest.raises(ConfigError, match="JAMGEN_DEFAULT_DURATION must not exceed JAMGEN_MAX_DURATION"):
        Settings.from_env({"JAMGEN_MAX_DURATION": "5", "JAMGEN_DEFAULT_DURATION": "10"})


def test_dotenv_file_is_read_and_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("JAMGEN_MAX_TAKES=2\nJAMGEN_MAX_DURATION=30\n")
    settings = Settings.from_env({"JAMGEN_MAX_DURATION": "40"}, dotenv=env_file)
    assert settings.max_takes == 2
    assert settings.max_duration == 40


def test_token_never_shows_in_repr_or_str():
    token = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789"
    settings = Settings.from_env({"DISCORD_TOKEN": token})
    assert token not in repr(settings)
    assert token not in str(settings.discord_token)
    assert settings.require_token() == token


def test_missing_token_says_how_to_get_one():
    with pytest.raises(ConfigError, match="DISCORD_TOKEN is not set.*jamgen generate"):
        Settings.from_env({}).require_token()


def test_example_env_lists_every_setting_and_matches_the_definition():
    example = (ROOT / "config.example.env").read_text()
    assert example == render_example_env() + "\n", (
        "config.example.env drifted: run .venv/bin/python scripts/render_docs.py"
    )
    keys = {line.split("=", 1)[0] for line in example.splitlines() if line and not line.startswith("#")}
    assert keys == {f.metadata["key"] for f in dataclasses.fields(Settings)}


def test_example_env_defaults_parse_to_the_defaults():
    values = {}
    for line in (ROOT / "config.example.env").read_text().splitlines():
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values[key] = value
    assert Settings.from_env(values) == Settings.from_env({})


def test_secret_equality_and_truthiness():
    assert Secret("a") == Secret("a")
    assert not Secret("")
