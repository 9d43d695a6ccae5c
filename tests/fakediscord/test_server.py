"""The fake's HTTP surface without a bot, and the runner's guarantees (errors fail the test)."""

from __future__ import annotations

import aiohttp
import discord
import discord.gateway
import discord.http
import pytest

from tests.fakediscord import FakeDiscord, start_bot_against
from tests.fakediscord.minibot import MiniBot


def _auth(fake: FakeDiscord) -> dict[str, str]:
    return {"Authorization": f"Bot {fake.token}"}


async def test_json_answers_have_exactly_application_json(fake_discord: FakeDiscord):
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{fake_discord.api_base}/users/@me", headers=_auth(fake_discord)) as answer:
            assert answer.headers["Content-Type"] == "application/json"
            assert (await answer.json())["id"] == str(fake_discord.bot_user.id)
        async with session.get(f"{fake_discord.api_base}/users/@me") as refused:
            assert refused.status == 401
        async with session.get(f"{fake_discord.api_base}/gateway/bot", headers=_auth(fake_discord)) as gateway:
            assert (await gateway.json())["url"] == fake_discord.gateway_url
    assert [(e.path, e.status) for e in fake_discord.client_errors()] == [("/users/@me", 401)]


async def test_the_cdn_serves_registered_bytes_and_unknown_routes_are_flagged(fake_discord: FakeDiscord):
    clip = fake_discord.attachment("loop.mp3", b"ID3\x04loop")
    async with aiohttp.ClientSession() as session:
        async with session.get(clip.url) as answer:
            assert (answer.status, answer.headers["Content-Type"]) == (200, "audio/mpeg")
            assert await answer.read() == b"ID3\x04loop"
        async with session.get(f"{fake_discord.api_base}/stickers/1", headers=_auth(fake_discord)) as missing:
            assert missing.status == 404
    assert [r.path for r in fake_discord.unhandled_requests] == ["/stickers/1"]


async def test_command_sync_echoes_ids_and_rejects_bad_names(fake_discord: FakeDiscord):
    url = f"{fake_discord.api_base}/applications/{fake_discord.application_id}/guilds/{fake_discord.guild.id}/commands"
    command = {"name": "generate", "description": "Make music", "options": []}
    async with aiohttp.ClientSession(headers=_auth(fake_discord)) as session:
        async with session.put(url, json=[command]) as first:
            [echoed] = await first.json()
        async with session.put(url, json=[command]) as again:
            [echoed_again] = await again.json()
        async with session.put(url, json=[{"name": "Bad Name", "description": "x"}]) as refused:
            body = await refused.json()
    assert echoed["guild_id"] == str(fake_discord.guild.id)
    assert echoed_again["id"] == echoed["id"]
    assert (refused.status, body["code"]) == (400, 50035)
    assert "0" in body["errors"]
    assert fake_discord.find_command("generate", 1, fake_discord.guild.id)[1] == fake_discord.guild.id


async def test_an_unhandled_command_error_fails_the_run_and_urls_are_restored(fake_discord: FakeDiscord):
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    bot = MiniBot()

    @bot.tree.command(name="boom", description="Raises")
    async def boom(interaction: discord.Interaction) -> None:
        raise RuntimeError("kaboom")

    run = await start_bot_against(fake_discord, bot)
    assert fake_discord.api_base == discord.http.Route.BASE
    interaction = await fake_discord.slash("boom")
    await fake_discord.wait_for(lambda: run.logged_errors)
    with pytest.raises(AssertionError, match="kaboom"):
        await run.stop()
    assert not interaction.acked
    assert (base, gateway) == (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
