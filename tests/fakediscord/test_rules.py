"""Discord's rules as the fake enforces them, seen through a real discord.py bot."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import aiohttp
import discord
import pytest
from discord.http import Route

from tests.fakediscord import FakeDiscord, FakeLimits
from tests.fakediscord.minibot import MiniBot


@pytest.fixture
def fake_discord_options() -> dict[str, Any]:
    # A 1 KiB upload limit keeps the "file too large" payloads tiny.
    return {"limits": FakeLimits(attachment_size_limit=1024)}


async def test_interaction_token_expires_after_15_minutes_on_the_fake_clock(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot()
    edit_now = asyncio.Event()
    followup_now = asyncio.Event()

    @bot.tree.command(name="slow", description="Finishes much later")
    async def slow(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        await edit_now.wait()
        await interaction.edit_original_response(content="still working")
        await followup_now.wait()
        try:
            await interaction.followup.send("done")
        except discord.HTTPException as error:
            bot.http_errors.append(error)

    await start_bot(bot)
    interaction = await fake_discord.slash("slow")
    await interaction.wait_for_response()
    fake_discord.advance(14 * 60)
    edit_now.set()
    await interaction.wait_for_original(lambda message: message.content == "still working")
    fake_discord.advance(61)
    followup_now.set()
    await fake_discord.wait_for(lambda: bot.http_errors)

    [error] = bot.http_errors
    assert (error.status, error.code) == (401, 50027)
    assert [(e.status, e.code) for e in interaction.errors] == [(401, 50027)]
    assert interaction.followups == []
    assert interaction.webhook_calls[-1].status == 401


async def test_files_over_the_attachment_size_limit_are_refused(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot()
    limits: list[int] = []

    @bot.tree.command(name="big", description="Send a big file")
    async def big(interaction: discord.Interaction) -> None:
        limits.append(interaction.filesize_limit)
        try:
            await interaction.response.send_message(file=discord.File(io.BytesIO(b"x" * 2048), "big.mp3"))
        except discord.HTTPException as error:
            bot.http_errors.append(error)
            await interaction.response.send_message("too big", ephemeral=True)

    await start_bot(bot)
    interaction = await fake_discord.slash("big")
    answer = await interaction.wait_for_original()
    assert limits == [1024]
    assert [(e.status, e.code) for e in bot.http_errors] == [(413, 40005)]
    assert answer.content == "too big"
    assert [c.status for c in interaction.callbacks] == [413, 200]

    channel = bot.get_channel(fake_discord.channel.id)
    assert isinstance(channel, discord.TextChannel)
    with pytest.raises(discord.HTTPException) as refused:
        await channel.send(file=discord.File(io.BytesIO(b"x" * 1025), "big.wav"))
    assert (refused.value.status, refused.value.code) == (413, 40005)
    sent = await channel.send(file=discord.File(io.BytesIO(b"x" * 1024), "fits.wav"))
    assert fake_discord.messages[sent.id].file("fits.wav").size == 1024


def _buttons(count: int, row_prefix: str = "b") -> dict[str, Any]:
    return {
        "type": 1,
        "components": [{"type": 2, "style": 1, "label": str(i), "custom_id": f"{row_prefix}{i}"} for i in range(count)],
    }


@pytest.mark.parametrize(
    ("payload", "error_path"),
    [
        ({"content": "x" * 2001}, "content"),
        ({"content": "six buttons", "components": [_buttons(6)]}, "components.0.components"),
        ({"content": "six rows", "components": [_buttons(1, f"r{i}-") for i in range(6)]}, "components"),
        (
            {
                "content": "long id",
                "components": [
                    {"type": 1, "components": [{"type": 2, "style": 1, "label": "x", "custom_id": "c" * 101}]}
                ],
            },
            "components.0.components.0.custom_id",
        ),
        ({"embeds": [{"description": str(i)} for i in range(11)]}, "embeds"),
    ],
    ids=["content-2001", "six-buttons-in-a-row", "six-rows", "custom-id-101", "eleven-embeds"],
)
async def test_invalid_message_bodies_get_discords_form_error(
    fake_discord: FakeDiscord, start_bot, payload: dict[str, Any], error_path: str
):
    bot = MiniBot(sync=False)
    await start_bot(bot)
    route = Route("POST", "/channels/{channel_id}/messages", channel_id=fake_discord.channel.id)
    with pytest.raises(discord.HTTPException) as refused:
        await bot.http.request(route, json=payload)
    assert (refused.value.status, refused.value.code) == (400, 50035)
    assert f"In {error_path}:" in refused.value.text
    assert fake_discord.client_errors(code=50035)
    assert fake_discord.bot_messages() == []


async def test_content_over_2000_characters_is_refused_in_an_interaction_followup(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot()

    @bot.tree.command(name="long", description="Too long")
    async def long(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        try:
            await interaction.followup.send("x" * 2001)
        except discord.HTTPException as error:
            bot.http_errors.append(error)
            await interaction.followup.send("x" * 2000)

    await start_bot(bot)
    interaction = await fake_discord.slash("long")
    [message] = await interaction.wait_for_followups()
    assert len(message.content) == 2000
    assert [(e.status, e.code) for e in bot.http_errors] == [(400, 50035)]
    assert "In content: Must be 2000 or fewer in length." in bot.http_errors[0].text


async def test_a_second_callback_is_refused_as_already_acknowledged(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot()

    @bot.tree.command(name="once", description="Answer once")
    async def once(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("first")

    await start_bot(bot)
    interaction = await fake_discord.slash("once")
    await interaction.wait_for_original()
    url = f"{fake_discord.api_base}/interactions/{interaction.id}/{interaction.token}/callback"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json={"type": 4, "data": {"content": "again"}}) as answer,
    ):
        body = await answer.json()
    assert (answer.status, body["code"]) == (400, 40060)
    assert [c.status for c in interaction.callbacks] == [200, 400]
    assert interaction.original is not None
    assert interaction.original.content == "first"


async def test_followups_before_any_callback_are_unknown_webhooks(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot()

    @bot.tree.command(name="rude", description="Follow up without answering")
    async def rude(interaction: discord.Interaction) -> None:
        try:
            await interaction.followup.send("hi")
        except discord.NotFound as error:
            bot.http_errors.append(error)
        await interaction.response.send_message("sorry")

    await start_bot(bot)
    interaction = await fake_discord.slash("rude")
    await interaction.wait_for_original()
    assert [(e.status, e.code) for e in bot.http_errors] == [(404, 10015)]


@pytest.mark.slow
async def test_a_callback_more_than_3_seconds_late_is_an_unknown_interaction(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot()

    @bot.tree.command(name="late", description="Answers too late")
    async def late(interaction: discord.Interaction) -> None:
        await asyncio.sleep(3.1)
        try:
            await interaction.response.defer()
        except discord.NotFound as error:
            bot.http_errors.append(error)

    await start_bot(bot)
    interaction = await fake_discord.slash("late")
    callback = await interaction.wait_for_response(timeout=6.0)
    assert (callback.status, callback.error_code) == (404, 10062)
    assert interaction.ack_latency is not None
    assert interaction.ack_latency > 3.0
    assert not interaction.acked
    assert [(e.status, e.code) for e in bot.http_errors] == [(404, 10062)]
