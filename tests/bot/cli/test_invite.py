"""`jamgen invite`: the OAuth2 URL with jamgen's least permissions."""

import base64
import os
from urllib.parse import parse_qs, urlsplit

import discord
import pytest

from bot.cli import main
from bot.cli.invite import PERMISSIONS, permission_integer

# Discord's own flags (discord.py), so the expected integer does not come from the code under test.
LISTED = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    attach_files=True,
    embed_links=True,
    read_message_history=True,
    create_public_threads=True,
    pin_messages=True,
    connect=True,
    speak=True,
    send_polls=True,
)


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith(("JAMGEN_", "DISCORD_")):
            monkeypatch.delenv(key)
    return ["--env-file", str(tmp_path / "none.env")]


def _invite(capsys, argv):
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def _urls(out):
    return [line for line in out.splitlines() if line.startswith("https://")]


def _query(url):
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "discord.com", "/oauth2/authorize")
    return {key: values[0] for key, values in parse_qs(parts.query).items()}


def test_the_url_asks_for_exactly_the_listed_permissions_and_both_scopes(capsys, clean_env):
    status, out, _ = _invite(capsys, [*clean_env, "invite", "--app-id", "123"])
    assert status == 0
    query = _query(_urls(out)[0])
    assert query["client_id"] == "123"
    listed = 1024 + 2048 + 16384 + 32768 + 65536 + 2**38 + 2**35 + 2**51 + 2**20 + 2**21 + 2**49
    assert int(query["permissions"]) == LISTED.value == listed
    assert query["scope"].split() == ["bot", "applications.commands"]
    assert query["integration_type"] == "0"
    assert "guild_id" not in query
    for permission in PERMISSIONS:
        assert permission.name in out
    assert not (discord.Permissions(permission_integer()) > LISTED)  # nothing more than the list


def test_the_app_id_comes_from_the_setting_then_the_token(capsys, clean_env, monkeypatch):
    monkeypatch.setenv("DISCORD_APP_ID", "456")
    status, out, _ = _invite(capsys, [*clean_env, "invite", "--url-only"])
    assert status == 0
    assert out.count("\n") == 2
    assert [_query(line)["client_id"] for line in out.splitlines()] == ["456", "456"]
    monkeypatch.delenv("DISCORD_APP_ID")
    bot_id = "1234567890123456789"
    token = base64.urlsafe_b64encode(bot_id.encode()).decode().rstrip("=") + ".GaBcDe." + "x" * 38
    monkeypatch.setenv("DISCORD_TOKEN", token)
    status, out, err = _invite(capsys, [*clean_env, "invite", "--guild", "99"])
    assert status == 0
    query = _query(_urls(out)[0])
    assert query["client_id"] == bot_id
    assert (query["guild_id"], query["disable_guild_select"]) == ("99", "true")
    assert token not in out + err


def test_it_also_prints_the_user_install_link(capsys, clean_env):
    status, out, _ = _invite(capsys, [*clean_env, "invite", "--app-id", "123", "--guild", "99"])
    assert status == 0
    guild, user = (_query(url) for url in _urls(out))
    assert (guild["integration_type"], user["integration_type"]) == ("0", "1")
    # A user install adds only the commands: no bot user, no permissions, no server to pick.
    assert user == {"client_id": "123", "integration_type": "1", "scope": "applications.commands"}
    assert "guild_id" in guild
    assert out.index(_urls(out)[0]) < out.index("your own account") < out.index(_urls(out)[1])


def test_without_any_app_id_it_says_where_to_find_one(capsys, clean_env):
    status, out, err = _invite(capsys, [*clean_env, "invite"])
    assert status == 2
    assert out == ""
    assert err.startswith("error: No application id: pass --app-id, or set DISCORD_APP_ID")


def test_an_app_id_must_be_a_number(capsys, clean_env):
    with pytest.raises(SystemExit) as info:
        main([*clean_env, "invite", "--app-id", "my-bot"])
    assert info.value.code == 2
    assert "must be a numeric Discord id" in capsys.readouterr().err
