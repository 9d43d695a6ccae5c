"""Message, upload and listing limits (resources/message.mdx, reference.mdx "Uploading Files")."""

from __future__ import annotations

import io
from typing import Any

import discord
import pytest
from discord.http import Route

from tests.fakediscord import MIB, DiscordError, FakeDiscord, FakeLimits, FakeMessage
from tests.fakediscord.limits import check_upload
from tests.fakediscord.minibot import MiniBot


@pytest.fixture
def fake_discord_options() -> dict[str, Any]:
    # A 1 KiB upload limit keeps the "file too large" payloads tiny.
    return {"limits": FakeLimits(attachment_size_limit=1024)}


async def _refused(call: object) -> tuple[int, int, str]:
    with pytest.raises(discord.HTTPException) as refused:
        await call  # type: ignore[misc]
    return refused.value.status, refused.value.code, refused.value.text


def _post(fake: FakeDiscord) -> Route:
    return Route("POST", "/channels/{channel_id}/messages", channel_id=fake.channel.id)


async def test_embed_text_is_summed_across_embeds_and_fields_need_name_and_value(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot(sync=False)
    await start_bot(bot)
    two_halves = {"embeds": [{"description": "x" * 3001}, {"description": "y" * 3000}]}
    status, code, text = await _refused(bot.http.request(_post(fake_discord), json=two_halves))
    assert (status, code) == (400, 50035)
    assert "In embeds:" in text
    # Leading/trailing whitespace is not counted.
    await bot.http.request(_post(fake_discord), json={"embeds": [{"description": "x" * 3000 + "   "}] * 2})
    empty_field = {"embeds": [{"title": "t", "fields": [{"name": "", "value": "v"}]}]}
    status, code, text = await _refused(bot.http.request(_post(fake_discord), json=empty_field))
    assert (status, code) == (400, 50035)
    assert "In embeds.0.fields.0.name:" in text


async def test_attachments_per_message_and_request_size(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot(sync=False)
    await start_bot(bot)
    channel = bot.get_channel(fake_discord.channel.id)
    assert isinstance(channel, discord.TextChannel)
    files = [discord.File(io.BytesIO(b"x"), f"{i}.txt") for i in range(11)]
    status, code, _ = await _refused(channel.send(files=files))
    assert (status, code) == (400, 50035)
    await channel.send(files=[discord.File(io.BytesIO(b"x"), f"{i}.txt") for i in range(10)])
    nine = b"x" * (9 * MIB)
    with pytest.raises(DiscordError) as too_large:
        check_upload({0: ("a", nine), 1: ("b", nine), 2: ("c", nine)}, 10 * MIB)
    assert (too_large.value.status, too_large.value.code) == (413, 40005)


async def test_the_boost_tier_raises_the_upload_limit(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot()
    limits: list[int] = []

    @bot.tree.command(name="limit", description="Shows the upload limit")
    async def limit(interaction: discord.Interaction) -> None:
        limits.append(interaction.filesize_limit)
        await interaction.response.send_message("ok")

    await start_bot(bot)
    channel = bot.get_channel(fake_discord.channel.id)
    assert isinstance(channel, discord.TextChannel)
    status, code, _ = await _refused(channel.send(file=discord.File(io.BytesIO(b"x" * 2048), "big.wav")))
    assert (status, code) == (413, 40005)
    fake_discord.guild.premium_tier = 2
    await channel.send(file=discord.File(io.BytesIO(b"x" * 2048), "big.wav"))
    await (await fake_discord.slash("limit")).wait_for_response()
    fake_discord.guild.premium_tier = 3
    await (await fake_discord.slash("limit")).wait_for_response()
    assert limits == [50 * MIB, 100 * MIB]


async def test_message_listing_limit_and_the_pin_maximum(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot(sync=False)
    await start_bot(bot)
    history = Route("GET", "/channels/{channel_id}/messages", channel_id=fake_discord.channel.id)
    for bad in (0, 101):
        status, code, _ = await _refused(bot.http.request(history, params={"limit": bad}))
        assert (status, code) == (400, 50035)
    await bot.http.request(history, params={"limit": 100})
    for _ in range(250):
        pinned = FakeMessage(
            id=fake_discord.ids.next(),
            channel_id=fake_discord.channel.id,
            guild_id=fake_discord.guild.id,
            author=fake_discord.member.user,
            source="test",
            pinned=True,
        )
        fake_discord.messages[pinned.id] = pinned
    channel = bot.get_channel(fake_discord.channel.id)
    assert isinstance(channel, discord.TextChannel)
    status, code, _ = await _refused((await channel.send("one too many")).pin())
    assert (status, code) == (400, 30003)
