"""Rate-limit buckets, headers and 429s (topics/rate-limits.mdx)."""

from __future__ import annotations

import math
from typing import Any

import aiohttp
import discord
import pytest

from tests.fakediscord import FakeDiscord, FakeLimits
from tests.fakediscord.minibot import MiniBot

BUCKET_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Reset-After")


@pytest.fixture
def fake_discord_options() -> dict[str, Any]:
    # Two requests per bucket per second: small enough to meet, large enough for the bot's login.
    return {"limits": FakeLimits(rate_limit_per_route=2, rate_limit_window=1.0)}


async def _post(session: aiohttp.ClientSession, fake: FakeDiscord, channel_id: int) -> tuple[int, Any, Any]:
    url = f"{fake.api_base}/channels/{channel_id}/messages"
    async with session.post(url, json={"content": "hi"}, headers={"Authorization": f"Bot {fake.token}"}) as answer:
        return answer.status, answer.headers, await answer.json()


async def test_every_answer_carries_bucket_headers_and_an_empty_bucket_answers_429(fake_discord: FakeDiscord):
    music = fake_discord.guild.channel_named("music")
    async with aiohttp.ClientSession() as session:
        first = await _post(session, fake_discord, fake_discord.channel.id)
        second = await _post(session, fake_discord, fake_discord.channel.id)
        third = await _post(session, fake_discord, fake_discord.channel.id)
        elsewhere = await _post(session, fake_discord, music.id)  # another top-level resource, another bucket
        async with session.get(f"{fake_discord.api_base}/channels/1/messages", headers={"Authorization": "nope"}) as x:
            unauthorized = x.status, x.headers
    assert [first[0], second[0], third[0], elsewhere[0]] == [200, 200, 429, 200]
    for _status, headers, _body in (first, second, third, elsewhere):
        assert all(name in headers for name in (*BUCKET_HEADERS, "X-RateLimit-Bucket"))
    assert (first[1]["X-RateLimit-Remaining"], second[1]["X-RateLimit-Remaining"]) == ("1", "0")
    assert first[1]["X-RateLimit-Bucket"] == elsewhere[1]["X-RateLimit-Bucket"]  # the bucket excludes the channel id
    _status, headers, body = third
    assert set(body) == {"message", "retry_after", "global"}
    assert body["global"] is False
    assert 0 < body["retry_after"] <= 1.0
    assert int(headers["Retry-After"]) == math.ceil(body["retry_after"])
    assert headers["X-RateLimit-Scope"] == "user"
    assert "Via" in headers
    assert unauthorized[0] == 401
    assert fake_discord.client_errors(status=429)


async def test_discord_py_waits_for_the_bucket_and_injected_429s_share_the_shape(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot(sync=False)
    await start_bot(bot)
    channel = bot.get_channel(fake_discord.channel.id)
    assert isinstance(channel, discord.TextChannel)
    for index in range(4):
        await channel.send(f"message {index}")  # discord.py reads the headers and waits for the reset
    assert len(fake_discord.bot_messages()) == 4
    fake_discord.faults.rate_limit("/channels/*/typing", retry_after=0.2, scope="shared")
    async with aiohttp.ClientSession() as session:
        url = f"{fake_discord.api_base}/channels/{fake_discord.channel.id}/typing"
        async with session.post(url, headers={"Authorization": f"Bot {fake_discord.token}"}) as answer:
            body, headers = await answer.json(), answer.headers
    assert answer.status == 429
    assert body == {"message": "The resource is being rate limited.", "retry_after": 0.2, "global": False}
    assert (headers["Retry-After"], headers["X-RateLimit-Scope"]) == ("1", "shared")
    assert all(name in headers for name in (*BUCKET_HEADERS, "X-RateLimit-Bucket", "Via"))
