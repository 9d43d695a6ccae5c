"""Channel permissions (topics/permissions.mdx) enforced on the REST routes the bot uses."""

from __future__ import annotations

import io

import discord
import pytest

from tests.fakediscord import FakeDiscord, FakeRole
from tests.fakediscord.minibot import MiniBot
from tests.fakediscord.permissions import BOT_INVITE_PERMISSIONS, channel_permissions

P = discord.Permissions


async def _refused(call: object) -> tuple[int, int]:
    with pytest.raises(discord.HTTPException) as refused:
        await call  # type: ignore[misc]
    return refused.value.status, refused.value.code


def _bot_role(fake: FakeDiscord) -> FakeRole:
    return next(role for role in fake.guild.roles.values() if role.managed)


async def test_the_default_world_grants_the_invite_and_overwrites_reach_the_bot(fake_discord: FakeDiscord, start_bot):
    guild_bits = fake_discord.bot_member.permissions
    assert guild_bits & BOT_INVITE_PERMISSIONS == BOT_INVITE_PERMISSIONS
    # The invite asks for no MANAGE_MESSAGES / MANAGE_THREADS / CREATE_PRIVATE_THREADS (README).
    assert not guild_bits & (P(manage_messages=True, manage_threads=True, create_private_threads=True).value)
    fake_discord.channel.set_overwrite(fake_discord.guild.everyone, deny=P(add_reactions=True))
    bot = MiniBot(sync=False)
    await start_bot(bot)
    channel = bot.get_channel(fake_discord.channel.id)
    assert isinstance(channel, discord.TextChannel)
    assert channel.overwrites_for(channel.guild.default_role).add_reactions is False  # from GUILD_CREATE
    fake_discord.channel.set_overwrite(fake_discord.bot_member, deny=P(send_messages=True))
    await fake_discord.wait_for(
        lambda: channel.overwrites_for(channel.guild.me).send_messages is False
    )  # CHANNEL_UPDATE
    assert await _refused(channel.send("hi")) == (403, 50013)


async def test_overwrites_apply_in_discords_order(fake_discord: FakeDiscord):
    guild, channel, bot = fake_discord.guild, fake_discord.channel, fake_discord.bot_member
    role = _bot_role(fake_discord)
    channel.set_overwrite(guild.everyone, deny=P(send_messages=True))
    assert not channel_permissions(guild, bot, channel) & P(send_messages=True).value
    channel.set_overwrite(role, allow=P(send_messages=True))  # a role allow beats the @everyone deny
    assert channel_permissions(guild, bot, channel) & P(send_messages=True).value
    channel.set_overwrite(bot, deny=P(send_messages=True))  # the member overwrite comes last
    bits = channel_permissions(guild, bot, channel)
    assert not bits & P(send_messages=True).value
    # Implicit: without SEND_MESSAGES, ATTACH_FILES and EMBED_LINKS are ignored; without VIEW_CHANNEL, everything.
    assert not bits & P(attach_files=True, embed_links=True).value
    channel.set_overwrite(guild.everyone, deny=P(view_channel=True))
    channel.clear_overwrite(bot)
    assert channel_permissions(guild, bot, channel) == 0
    # Owners and ADMINISTRATOR bypass overwrites.
    assert channel_permissions(guild, fake_discord.admin, channel) == P.all().value


async def test_missing_view_channel_is_missing_access_and_app_permissions_follow(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot()
    seen: list[discord.Permissions] = []

    @bot.tree.command(name="perms", description="Shows app permissions")
    async def perms(interaction: discord.Interaction) -> None:
        seen.append(interaction.app_permissions)
        await interaction.response.send_message("ok", file=discord.File(io.BytesIO(b"x"), "x.txt"))

    await start_bot(bot)
    music = fake_discord.guild.channel_named("music")
    music.set_overwrite(_bot_role(fake_discord), deny=P(attach_files=True))
    interaction = await fake_discord.slash("perms", channel=music)
    await interaction.wait_for_response()
    assert seen[0].attach_files is False
    assert seen[0].send_messages is True
    # Interaction responses are not bound by the app's channel permissions.
    assert interaction.response is not None
    assert interaction.response.status == 200
    channel = bot.get_channel(music.id)
    assert isinstance(channel, discord.TextChannel)
    assert await _refused(channel.send(file=discord.File(io.BytesIO(b"x"), "x.txt"))) == (403, 50013)
    music.set_overwrite(fake_discord.bot_member, deny=P(view_channel=True))
    await fake_discord.wait_for(lambda: not channel.permissions_for(channel.guild.me).view_channel)
    assert await _refused(channel.send("hi")) == (403, 50001)
    assert await _refused(channel.fetch_message(interaction.original.id)) == (403, 50001)  # type: ignore[union-attr]


async def test_threads_inherit_overwrites_but_need_send_messages_in_threads(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot(sync=False)
    await start_bot(bot)
    channel = bot.get_channel(fake_discord.channel.id)
    assert isinstance(channel, discord.TextChannel)
    thread = await (await channel.send("start")).create_thread(name="t")
    fake_discord.channel.set_overwrite(fake_discord.guild.everyone, deny=P(send_messages=True))
    await thread.send("SEND_MESSAGES has no effect in threads")
    fake_discord.channel.set_overwrite(fake_discord.guild.everyone, deny=P(send_messages_in_threads=True))
    assert await _refused(thread.send("refused")) == (403, 50013)
    assert await _refused(channel.create_thread(name="private", type=discord.ChannelType.private_thread)) == (
        403,
        50013,
    )


async def test_message_routes_check_their_documented_permissions(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot(sync=False)
    await start_bot(bot)
    channel = bot.get_channel(fake_discord.channel.id)
    assert isinstance(channel, discord.TextChannel)
    mine = await channel.send("mine")
    theirs = await fake_discord.post_message("theirs")
    their_message = await channel.fetch_message(theirs.id)
    assert await _refused(their_message.delete()) == (403, 50013)  # MANAGE_MESSAGES
    await mine.pin()  # PIN_MESSAGES is in the invite
    role = _bot_role(fake_discord)
    fake_discord.channel.set_overwrite(role, deny=P(pin_messages=True), allow=P(manage_messages=True))
    assert await _refused(mine.unpin()) == (403, 50013)  # MANAGE_MESSAGES alone no longer pins
    fake_discord.channel.set_overwrite(role, deny=P(add_reactions=True, embed_links=True, mention_everyone=True))
    assert await _refused(mine.add_reaction("🔥")) == (403, 50013)
    await fake_discord.react(fake_discord.messages[mine.id], "👍")
    await mine.add_reaction("👍")  # an existing reaction needs no ADD_REACTIONS
    embedded = await channel.send("@everyone look", embed=discord.Embed(title="card"))
    assert fake_discord.messages[embedded.id].embeds == []  # dropped without EMBED_LINKS
    assert not fake_discord.messages[embedded.id].mention_everyone
    fake_discord.channel.set_overwrite(role, deny=P(read_message_history=True))
    assert await _refused(mine.reply("needs history")) == (403, 160002)
    assert await _refused(channel.fetch_message(mine.id)) == (403, 50013)
    assert [message async for message in channel.history(limit=10)] == []
