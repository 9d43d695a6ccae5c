"""Components V2 layout rules (layout_rules.py), each seen refused through a real discord.py client."""

from __future__ import annotations

import io
import json
from typing import Any

import discord
from discord.http import Route

from tests.fakediscord import FakeDiscord
from tests.fakediscord.minibot import MiniBot

V2 = 1 << 15
TEXT = {"type": 10, "content": "hello"}
BUTTON = {"type": 2, "style": 2, "label": "Go", "custom_id": "go"}


def _row(*children: dict[str, Any]) -> dict[str, Any]:
    return {"type": 1, "components": list(children)}


def _file(name: str) -> dict[str, Any]:
    return {"type": 13, "file": {"url": f"attachment://{name}"}}


def _container(*children: dict[str, Any]) -> dict[str, Any]:
    return {"type": 17, "components": list(children)}


def _many_texts(count: int) -> list[dict[str, Any]]:
    return [{"type": 10, "content": f"line {n}"} for n in range(count)]


# name: (payload, flags, where Discord's 50035 points). Every payload uploads take.mp3.
REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "thumbnail-at-top-level": (
        {"flags": V2, "components": [{"type": 11, "media": {"url": "https://x/y.png"}}]},
        "components.0.type",
    ),
    "container-in-a-container": (
        {"flags": V2, "components": [_container(_container(TEXT))]},
        "components.0.components.0.type",
    ),
    "empty-container": ({"flags": V2, "components": [_container()]}, "components.0.components"),
    "button-directly-in-a-container": (
        {"flags": V2, "components": [_container(BUTTON)]},
        "components.0.components.0.type",
    ),
    "section-without-accessory": (
        {"flags": V2, "components": [{"type": 9, "components": [TEXT]}]},
        "components.0.accessory",
    ),
    "section-with-four-texts": (
        {"flags": V2, "components": [{"type": 9, "components": [TEXT] * 4, "accessory": BUTTON}]},
        "components.0.components",
    ),
    "section-with-a-file": (
        {"flags": V2, "components": [{"type": 9, "components": [_file("take.mp3")], "accessory": BUTTON}]},
        "components.0.components.0.type",
    ),
    "empty-gallery": ({"flags": V2, "components": [{"type": 12, "items": []}]}, "components.0.items"),
    "eleven-pictures": (
        {"flags": V2, "components": [{"type": 12, "items": [{"media": {"url": "https://x/y.png"}}] * 11}]},
        "components.0.items",
    ),
    "text-in-an-action-row": ({"flags": V2, "components": [_row(TEXT)]}, "components.0.components.0.type"),
    "forty-one-components": ({"flags": V2, "components": [_container(*_many_texts(40))]}, "components"),
    "over-4000-characters-of-text": (
        {"flags": V2, "components": [{"type": 10, "content": "x" * 2001}, {"type": 10, "content": "y" * 2000}]},
        "components",
    ),
    "duplicate-ids": ({"flags": V2, "components": [{**TEXT, "id": 7}, {**TEXT, "id": 7}]}, "components"),
    "file-by-https": (
        {"flags": V2, "components": [{"type": 13, "file": {"url": "https://x/take.mp3"}}]},
        "components.0.file.url",
    ),
    "file-not-uploaded": ({"flags": V2, "components": [_file("other.mp3")]}, "components.0.file.url"),
    "poll-with-the-flag": (
        {
            "flags": V2,
            "components": [TEXT],
            "poll": {"question": {"text": "?"}, "answers": [{"poll_media": {"text": "a"}}]},
        },
        "poll",
    ),
    "stickers-with-the-flag": ({"flags": V2, "components": [TEXT], "sticker_ids": ["1"]}, "sticker_ids"),
    "content-with-the-flag": ({"flags": V2, "content": "hi", "components": [TEXT]}, "content"),
    "text-display-without-the-flag": ({"components": [TEXT]}, "components.0.type"),
    "file-inside-a-row-without-the-flag": (
        {"content": "x", "components": [_row(_file("take.mp3"))]},
        "components.0.components.0.type",
    ),
    "six-buttons-in-a-card-row": (
        {"flags": V2, "components": [_container(_row(*[{**BUTTON, "custom_id": f"b{n}"} for n in range(6)]))]},
        "components.0.components.0.components",
    ),
    "accent-colour-past-white": (
        {"flags": V2, "components": [{**_container(TEXT), "accent_color": 0x1000000}]},
        "components.0.accent_color",
    ),
    "separator-spacing-3": ({"flags": V2, "components": [TEXT, {"type": 14, "spacing": 3}]}, "components.1.spacing"),
    "picture-without-url": (
        {"flags": V2, "components": [{"type": 12, "items": [{"media": {}}]}]},
        "components.0.items.0.media.url",
    ),
    "empty-text-display": (
        {"flags": V2, "components": [{"type": 10, "content": ""}]},
        "components.text_display.0.content",
    ),
}


async def _post(bot: MiniBot, channel_id: int, payload: dict[str, Any]) -> Any:
    body = {**payload, "attachments": [{"id": 0, "filename": "take.mp3"}]}
    form = [
        {"name": "payload_json", "value": json.dumps(body)},
        {"name": "files[0]", "value": io.BytesIO(b"ID3 fake"), "filename": "take.mp3", "content_type": "audio/mpeg"},
    ]
    route = Route("POST", "/channels/{channel_id}/messages", channel_id=channel_id)
    return await bot.http.request(route, form=form, files=[discord.File(io.BytesIO(b""), filename="unused")])


async def test_each_layout_rule_refuses_what_discord_refuses(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot(sync=False)
    await start_bot(bot)
    wrong = []
    for name, (payload, error_path) in REFUSED.items():
        try:
            await _post(bot, fake_discord.channel.id, payload)
        except discord.HTTPException as refused:
            if (refused.status, refused.code) != (400, 50035) or f"In {error_path}:" not in refused.text:
                wrong.append(f"{name}: {refused.status} {refused.code} {refused.text}")
        else:
            wrong.append(f"{name}: accepted")
    assert not wrong, "\n".join(wrong)


async def test_a_valid_card_passes_its_file_is_answered_and_its_text_pings(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot(sync=False)
    await start_bot(bot)
    member = fake_discord.member
    card = _container(
        {"type": 10, "content": f"<@{member.id}> here"},
        {"type": 12, "items": [{"media": {"url": "https://x/y.png"}}]},
        _file("take.mp3"),
        {"type": 14, "spacing": 2},
        {"type": 9, "components": [TEXT], "accessory": BUTTON},
        _row({**BUTTON, "custom_id": "again"}),
    )
    answer = await _post(bot, fake_discord.channel.id, {"flags": V2, "components": [card]})
    [file] = [c for c in answer["components"][0]["components"] if c["type"] == 13]
    # docs: components/reference.mdx "File": name and size are "provided by the API as part of the response".
    assert (file["name"], file["size"]) == ("take.mp3", len(b"ID3 fake"))
    assert file["file"]["attachment_id"] == answer["attachments"][0]["id"]
    message = fake_discord.messages[int(answer["id"])]
    assert member.id in message.mention_ids
    assert message.button("Go")["custom_id"] == "go", "buttons inside sections and containers are found"
    assert len(message.buttons) == 2
