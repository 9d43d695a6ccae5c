"""Injected faults: rate limits, server errors, slow answers, resets, and gateway drops."""

from __future__ import annotations

import aiohttp
import discord
import pytest

from tests.fakediscord import FakeDiscord, start_bot_against
from tests.fakediscord.minibot import MiniBot


async def _text_channel(bot: discord.Client, fake: FakeDiscord) -> discord.TextChannel:
    channel = bot.get_channel(fake.channel.id)
    assert isinstance(channel, discord.TextChannel)
    return channel


async def test_a_route_429_is_retried_after_retry_after(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot(sync=False)
    await start_bot(bot)
    rule = fake_discord.faults.rate_limit("/channels/*/messages", method="POST", retry_after=0.3)

    sent = await (await _text_channel(bot, fake_discord)).send("hello")

    attempts = fake_discord.requests_to("POST", "/channels/*/messages")
    assert [attempt.status for attempt in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 0.3
    assert rule.hits == 1
    assert fake_discord.messages[sent.id].content == "hello"
    [limited] = fake_discord.client_errors(status=429)
    assert limited.fault == "429 retry_after=0.3"


async def test_a_global_429_on_the_interaction_webhook_is_retried(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot()

    @bot.tree.command(name="ping", description="Ping")
    async def ping(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        await interaction.followup.send("pong")

    await start_bot(bot)
    fake_discord.faults.rate_limit("/webhooks/*", is_global=True, retry_after=0.2)
    interaction = await fake_discord.slash("ping")
    [message] = await interaction.wait_for_followups()
    assert message.content == "pong"
    assert [call.status for call in interaction.webhook_calls] == [200]
    assert [(e.status, e.interaction_id) for e in fake_discord.client_errors()] == [(429, None)]


async def test_a_500_is_retried_by_discord_py(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot(sync=False)
    await start_bot(bot)
    fake_discord.faults.server_error("/channels/*/messages", status=500, times=1)
    sent = await (await _text_channel(bot, fake_discord)).send("after a 500")
    assert [r.status for r in fake_discord.requests_to("POST", "/channels/*/messages")] == [500, 200]
    assert fake_discord.messages[sent.id].content == "after a 500"
    assert fake_discord.client_errors() == []


async def test_a_slow_callback_answer_delays_what_the_bot_does_next(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot()

    @bot.tree.command(name="ping", description="Ping")
    async def ping(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        await interaction.followup.send("pong")

    await start_bot(bot)
    fake_discord.faults.delay("/interactions/*/callback", seconds=0.3)
    interaction = await fake_discord.slash("ping")
    await interaction.wait_for_followups()
    assert interaction.webhook_calls[0].at >= 0.3 + interaction.callbacks[0].at


async def test_a_connection_reset_reaches_the_bot_and_the_next_request_works(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot(sync=False)
    await start_bot(bot)
    rule = fake_discord.faults.reset_connection("/channels/*/messages", method="POST")
    channel = await _text_channel(bot, fake_discord)
    # discord.py retries resets only for errno 54/10054 (BSD/Windows); on Linux aiohttp's error reaches the caller.
    with pytest.raises(aiohttp.ClientError):
        await channel.send("lost")
    sent = await channel.send("delivered")
    assert rule.hits == 1
    assert [r.status for r in fake_discord.requests_to("POST", "/channels/*/messages")] == [0, 200]
    assert [m.content for m in fake_discord.bot_messages()] == ["delivered"]
    assert sent.content == "delivered"


async def test_a_gateway_drop_is_resumed_and_missed_events_are_replayed(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot()

    @bot.tree.command(name="ping", description="Ping")
    async def ping(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("pong")

    await start_bot(bot)
    await fake_discord.drop_gateway(4000)
    late = fake_discord.guild.add_text_channel("late")  # CHANNEL_CREATE while the bot is away
    await fake_discord.wait_for(lambda: fake_discord.gateway.resumed_count == 1)

    gateway = fake_discord.gateway
    assert (gateway.identify_count, gateway.resume_count) == (1, 1)
    assert [frame.path for frame in gateway.received if frame.op == 6] == ["/gateway-resume"]
    await fake_discord.wait_for(lambda: bot.get_channel(late.id))
    interaction = await fake_discord.slash("ping")
    assert (await interaction.wait_for_original()).content == "pong"


async def test_an_invalid_session_makes_the_bot_identify_again(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot()
    await start_bot(bot)
    await fake_discord.invalidate_session(resumable=False)
    await fake_discord.wait_until_ready()
    await fake_discord.wait_for(lambda: fake_discord.gateway.identify_count == 2)
    assert fake_discord.gateway.resume_count == 0
    posted = await fake_discord.post_message(f"{fake_discord.bot_user.mention} still there?")
    await fake_discord.wait_for(lambda: any(m.id == posted.id for m in bot.seen_messages))


async def test_a_refused_resume_ends_in_a_new_identify(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot()
    await start_bot(bot)
    await fake_discord.drop_gateway(4000, resumable=False)
    await fake_discord.wait_for(lambda: fake_discord.gateway.identify_count == 2)
    assert fake_discord.gateway.resume_count == 1
    assert fake_discord.gateway.resumed_count == 0


async def test_reconnect_opcode_is_followed_by_a_resume(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot()
    await start_bot(bot)
    await fake_discord.request_reconnect()
    await fake_discord.wait_for(lambda: fake_discord.gateway.resumed_count == 1)
    assert fake_discord.gateway.identify_count == 1


async def test_a_fatal_close_code_stops_the_bot_with_its_error(fake_discord: FakeDiscord):
    run = await start_bot_against(fake_discord, MiniBot())
    await fake_discord.drop_gateway(4004)
    with pytest.raises(discord.ConnectionClosed) as closed:
        await run.stop()
    assert closed.value.code == 4004


async def test_a_wrong_token_fails_the_login(fake_discord: FakeDiscord):
    with pytest.raises(discord.LoginFailure):
        await start_bot_against(fake_discord, MiniBot(), token="not-the-token")
    assert [(e.path, e.status) for e in fake_discord.client_errors()] == [("/users/@me", 401)]
