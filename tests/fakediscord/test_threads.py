"""Thread state rules (topics/threads.mdx, resources/channel.mdx)."""

from __future__ import annotations

import discord
import pytest
from discord.http import Route

from tests.fakediscord import ArchivedThreadError, FakeDiscord
from tests.fakediscord.minibot import MiniBot

P = discord.Permissions


async def _refused(call: object) -> tuple[int, int]:
    with pytest.raises(discord.HTTPException) as refused:
        await call  # type: ignore[misc]
    return refused.value.status, refused.value.code


async def _thread(fake: FakeDiscord, bot: MiniBot) -> tuple[discord.Thread, discord.Message]:
    channel = bot.get_channel(fake.channel.id)
    assert isinstance(channel, discord.TextChannel)
    thread = await (await channel.send("session")).create_thread(name="jam")
    inside = await thread.send("take 1")
    return thread, inside


async def test_archived_threads_are_read_only_until_a_post_unarchives_them(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot(sync=False)
    await start_bot(bot)
    thread, inside = await _thread(fake_discord, bot)
    fake_thread = fake_discord.find_channel(thread.id)
    assert fake_thread is not None
    await fake_discord.set_thread_state(fake_thread, archived=True)
    # discord.py drops archived threads from its cache on THREAD_UPDATE.
    await fake_discord.wait_for(lambda: bot.get_channel(thread.id) is None)
    assert await _refused(inside.edit(content="edited")) == (400, 50083)
    assert await _refused(inside.add_reaction("🔥")) == (400, 50083)
    assert await _refused(inside.pin()) == (400, 50083)
    with pytest.raises(ArchivedThreadError):
        await fake_discord.slash("anything", channel=fake_thread)
    await thread.send("back again")
    assert not fake_thread.archived
    await fake_discord.wait_for(lambda: bot.get_channel(thread.id) is not None)  # THREAD_UPDATE
    await inside.edit(content="edited")


async def test_locked_threads_refuse_members_without_manage_threads(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot(sync=False)
    await start_bot(bot)
    thread, _inside = await _thread(fake_discord, bot)
    fake_thread = fake_discord.find_channel(thread.id)
    assert fake_thread is not None
    assert await _refused(thread.edit(locked=True)) == (403, 50013)
    await fake_discord.set_thread_state(fake_thread, archived=False, locked=True)
    assert await _refused(thread.send("locked out")) == (400, 160005)
    await fake_discord.set_thread_state(fake_thread, archived=True)
    assert await _refused(thread.edit(archived=False)) == (400, 160005)  # only MANAGE_THREADS unarchives
    fake_discord.channel.set_overwrite(fake_discord.bot_member, allow=P(manage_threads=True))
    assert await _refused(thread.send("archived and locked")) == (400, 50083)  # not auto-unarchived
    await thread.edit(archived=False)
    await thread.send("a moderator may post")


async def test_thread_creation_and_edits_follow_the_documented_parameters(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot(sync=False)
    await start_bot(bot)
    threads_route = Route("POST", "/channels/{channel_id}/threads", channel_id=fake_discord.channel.id)
    assert await _refused(bot.http.request(threads_route, json={"name": "no type"})) == (403, 50013)
    fake_discord.channel.set_overwrite(fake_discord.bot_member, allow=P(create_private_threads=True))
    created = await bot.http.request(threads_route, json={"name": "no type"})
    assert created["type"] == 12  # type defaults to PRIVATE_THREAD
    bad = {"name": "odd", "type": 11, "auto_archive_duration": 100}
    assert await _refused(bot.http.request(threads_route, json=bad)) == (400, 50035)
    thread, _inside = await _thread(fake_discord, bot)
    await thread.edit(archived=True)  # the creator may archive its own thread
    assert await _refused(thread.edit(name="renamed")) == (400, 50083)
    await thread.edit(archived=False, auto_archive_duration=60)


async def test_guild_create_lists_active_threads_only(fake_discord: FakeDiscord, start_bot):
    guild, channel = fake_discord.guild, fake_discord.channel
    active = guild.add_thread(channel, "active", owner_id=fake_discord.member.id)
    archived = guild.add_thread(channel, "archived", owner_id=fake_discord.member.id)
    archived.archived = True
    bot = MiniBot(sync=False)
    await start_bot(bot)
    listed = {thread.id for thread in bot.get_guild(guild.id).threads}  # type: ignore[union-attr]
    assert listed == {active.id}


async def test_a_members_post_unarchives_an_unlocked_thread_and_a_locked_one_refuses(
    fake_discord: FakeDiscord, start_bot
):
    bot = MiniBot(sync=False)
    await start_bot(bot)
    thread, _inside = await _thread(fake_discord, bot)
    fake_thread = fake_discord.find_channel(thread.id)
    assert fake_thread is not None
    await fake_discord.set_thread_state(fake_thread, archived=True)
    await fake_discord.post_message("wake up", channel=fake_thread)
    assert not fake_thread.archived
    await fake_discord.wait_for(lambda: bot.get_channel(thread.id) is not None)  # THREAD_UPDATE
    await fake_discord.set_thread_state(fake_thread, archived=True, locked=True)
    with pytest.raises(ArchivedThreadError):
        await fake_discord.post_message("locked out", channel=fake_thread)
    with pytest.raises(ArchivedThreadError):  # not even a moderator's post unarchives a locked thread
        await fake_discord.post_message("still archived", channel=fake_thread, author=fake_discord.admin)
    await fake_discord.set_thread_state(fake_thread, archived=False)
    with pytest.raises(ArchivedThreadError):
        await fake_discord.post_message("locked out", channel=fake_thread)
    await fake_discord.post_message("a moderator may", channel=fake_thread, author=fake_discord.admin)
    fake_discord.channel.set_overwrite(fake_discord.guild.everyone, deny=P(send_messages=True))
    with pytest.raises(PermissionError):
        await fake_discord.post_message("no send permission")
