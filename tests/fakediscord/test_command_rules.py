"""Command registration (interactions/application-commands.mdx) and component rules (components/reference.mdx)."""

from __future__ import annotations

from typing import Any

import discord
import pytest
from discord.http import Route

from tests.fakediscord import FakeDiscord
from tests.fakediscord.minibot import MiniBot


def _slash(name: str = "jam", **extra: Any) -> dict[str, Any]:
    return {"type": 1, "name": name, "description": "Make music", **extra}


def _option(name: str, *, required: bool = False, **extra: Any) -> dict[str, Any]:
    return {"type": 3, "name": name, "description": "An option", "required": required, **extra}


REFUSED_COMMANDS = {
    "required-after-optional": [_slash(options=[_option("a"), _option("b", required=True)])],
    "duplicate-option-names": [_slash(options=[_option("a"), _option("a")])],
    "autocomplete-with-choices": [
        _slash(options=[_option("a", autocomplete=True, choices=[{"name": "x", "value": "x"}])])
    ],
    "user-command-description": [{"type": 2, "name": "Profile", "description": "not allowed"}],
    "message-command-options": [{"type": 3, "name": "Remix", "options": [_option("a")]}],
    "over-8000-characters": [
        _slash(
            options=[
                _option(
                    f"o{i}", description="d" * 100, choices=[{"name": "n" * 100, "value": f"{i}-{j}"} for j in range(3)]
                )
                for i in range(25)
            ]
        )
    ],
    "101-chat-input-commands": [_slash(f"c{i}") for i in range(101)],
    "16-user-commands": [{"type": 2, "name": f"User {i}"} for i in range(16)],
    "uppercase-name": [_slash("Jam")],
    "space-in-name": [_slash("jam session")],
    "duplicate-command-names": [_slash(), _slash()],
}


@pytest.mark.parametrize("commands", list(REFUSED_COMMANDS.values()), ids=list(REFUSED_COMMANDS))
async def test_invalid_command_registrations_are_refused(fake_discord: FakeDiscord, start_bot, commands: list[Any]):
    bot = MiniBot(sync=False)
    await start_bot(bot)
    route = Route("PUT", "/applications/{application_id}/commands", application_id=fake_discord.application_id)
    with pytest.raises(discord.HTTPException) as refused:
        await bot.http.request(route, json=commands)
    assert (refused.value.status, refused.value.code) == (400, 50035)
    assert fake_discord.global_commands == {}


async def test_valid_registrations_pass_and_upserts_stop_at_the_maximum(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot(sync=False)
    await start_bot(bot)
    route = Route("PUT", "/applications/{application_id}/commands", application_id=fake_discord.application_id)
    valid = [_slash(f"c{i}", options=[_option("a", required=True), _option("b")]) for i in range(100)]
    valid += [{"type": 2, "name": f"User {i}"} for i in range(15)] + [{"type": 3, "name": "Remix Take"}]
    await bot.http.request(route, json=valid)
    upsert = Route("POST", "/applications/{application_id}/commands", application_id=fake_discord.application_id)
    with pytest.raises(discord.HTTPException) as refused:
        await bot.http.request(upsert, json=_slash("one-more"))
    assert (refused.value.status, refused.value.code) == (400, 30032)
    await bot.http.request(upsert, json=_slash("c0"))  # same name: an update, not a new command


def _row(*components: dict[str, Any]) -> dict[str, Any]:
    return {"type": 1, "components": list(components)}


REFUSED_COMPONENTS = {
    "button-without-style": (_row({"type": 2, "label": "x", "custom_id": "a"}), "components.0.components.0.style"),
    "button-style-7": (
        _row({"type": 2, "style": 7, "label": "x", "custom_id": "a"}),
        "components.0.components.0.style",
    ),
    "link-without-url": (_row({"type": 2, "style": 5, "label": "x"}), "components.0.components.0.url"),
    "primary-with-url": (
        _row({"type": 2, "style": 1, "label": "x", "custom_id": "a", "url": "https://a.example"}),
        "components.0.components.0.url",
    ),
    "premium-without-sku": (_row({"type": 2, "style": 6}), "components.0.components.0.sku_id"),
    "label-81": (_row({"type": 2, "style": 1, "label": "x" * 81, "custom_id": "a"}), "components.0.components.0.label"),
    "select-without-options": (_row({"type": 3, "custom_id": "s", "options": []}), "components.0.components.0.options"),
    "select-max-values-26": (
        _row({"type": 3, "custom_id": "s", "max_values": 26, "options": [{"label": "a", "value": "a"}]}),
        "components.0.components.0.max_values",
    ),
    "text-input-in-a-message": (
        _row({"type": 4, "custom_id": "t", "style": 1, "label": "x"}),
        "components.0.components.0.type",
    ),
}


@pytest.mark.parametrize(("row", "error_path"), list(REFUSED_COMPONENTS.values()), ids=list(REFUSED_COMPONENTS))
async def test_invalid_components_are_refused(
    fake_discord: FakeDiscord, start_bot, row: dict[str, Any], error_path: str
):
    bot = MiniBot(sync=False)
    await start_bot(bot)
    route = Route("POST", "/channels/{channel_id}/messages", channel_id=fake_discord.channel.id)
    with pytest.raises(discord.HTTPException) as refused:
        await bot.http.request(route, json={"content": "x", "components": [row]})
    assert (refused.value.status, refused.value.code) == (400, 50035)
    assert f"In {error_path}:" in refused.value.text
