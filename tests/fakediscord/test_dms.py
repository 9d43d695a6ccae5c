"""Direct messages from the bot (resources/user.mdx "Create DM"; 50007 for closed DMs)."""

from __future__ import annotations

import discord
import pytest

from tests.fakediscord import FakeDiscord
from tests.fakediscord.minibot import MiniBot


async def test_the_bot_can_dm_a_member_unless_they_closed_their_dms(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot(sync=False)
    await start_bot(bot)
    bob = await bot.fetch_user(fake_discord.member.id)
    await bob.send("hello bob")
    assert [m.content for m in fake_discord.dm_messages(fake_discord.member)] == ["hello bob"]
    fake_discord.close_dms(fake_discord.member)
    with pytest.raises(discord.Forbidden) as refused:
        await bob.send("again")
    assert refused.value.code == 50007
    assert len(fake_discord.dm_messages(fake_discord.member)) == 1
