"""User installs: integration_types and contexts, where a user-installed command may run, and what Discord refuses.

docs: interactions/application-commands.mdx "Contexts"; interactions/receiving-and-responding.mdx "Interaction
Structure" and "Create Followup Message"; resources/application.mdx "Installation Context".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.http import Route

from tests.fakediscord import FakeDiscord
from tests.fakediscord.installs import BOT_DM_APP_PERMISSIONS, DM_APP_PERMISSIONS, CommandNotAvailableError
from tests.fakediscord.minibot import MiniBot
from tests.fakediscord.model import FakeChannel


def _bot(
    *, guilds: bool = True, users: bool = True, contexts: tuple[bool, bool, bool] = (True, True, True)
) -> tuple[MiniBot, list[discord.Interaction]]:
    """A bot with one /ping (installs and contexts as given) that defers and keeps each interaction."""
    bot = MiniBot()
    seen: list[discord.Interaction] = []

    @bot.tree.command(name="ping", description="Ping")
    @app_commands.allowed_installs(guilds=guilds, users=users)
    @app_commands.allowed_contexts(guilds=contexts[0], dms=contexts[1], private_channels=contexts[2])
    async def ping(interaction: discord.Interaction) -> None:
        seen.append(interaction)
        await interaction.response.defer(thinking=True)

    return bot, seen


async def _ping(fake: FakeDiscord, channel: FakeChannel, seen: list[discord.Interaction]) -> discord.Interaction:
    handle = await fake.slash("ping", channel=channel, user=fake.member)
    await handle.wait_for_response()
    return seen[-1]


def _put(fake: FakeDiscord) -> Route:
    return Route("PUT", "/applications/{application_id}/commands", application_id=fake.application_id)


BAD_FIELDS: dict[str, dict[str, Any]] = {
    "integration-type-2": {"integration_types": [2]},
    "integration-types-not-a-list": {"integration_types": 1},
    "context-3": {"contexts": [0, 3]},
    "context-true": {"contexts": [True]},
}


@pytest.mark.parametrize("fields", list(BAD_FIELDS.values()), ids=list(BAD_FIELDS))
async def test_unknown_integration_types_and_contexts_are_refused(
    fake_discord: FakeDiscord, start_bot, fields: dict[str, Any]
):
    bot = MiniBot(sync=False)
    await start_bot(bot)
    command = {"type": 1, "name": "ping", "description": "Ping", **fields}
    with pytest.raises(discord.HTTPException) as refused:
        await bot.http.request(_put(fake_discord), json=[command])
    assert (refused.value.status, refused.value.code) == (400, 50035)
    ok = {"type": 1, "name": "ping", "description": "Ping", "integration_types": [0, 1], "contexts": [0, 1, 2]}
    [echoed] = await bot.http.request(_put(fake_discord), json=[ok])
    assert (echoed["integration_types"], echoed["contexts"]) == ([0, 1], [0, 1, 2])


async def test_a_user_install_runs_in_a_server_without_the_bot(fake_discord: FakeDiscord, start_bot):
    bot, seen = _bot()
    await start_bot(bot)
    outside = fake_discord.add_outside_guild("Elsewhere", members=[fake_discord.member])
    channel = outside.text_channels()[0]
    with pytest.raises(CommandNotAvailableError):  # not installed: Discord does not offer it there
        await fake_discord.slash("ping", channel=channel, user=fake_discord.member)
    fake_discord.install_for_user(fake_discord.member)
    interaction = await _ping(fake_discord, channel, seen)
    assert interaction.guild_id == outside.id
    assert bot.get_guild(outside.id) is None
    assert interaction.context.guild
    assert not interaction.context.private_channel
    assert interaction.is_user_integration()
    assert not interaction.is_guild_integration()
    assert interaction.app_permissions.value == DM_APP_PERMISSIONS
    assert isinstance(interaction.user, discord.Member)
    # The bot hears nothing from a server it is not in, not even its own response there.
    await interaction.followup.send("pong")
    assert bot.seen_messages == []
    assert [g.id for g in bot.guilds] == [fake_discord.guild.id]


async def test_in_the_bots_server_the_user_install_adds_its_owner(fake_discord: FakeDiscord, start_bot):
    bot, seen = _bot()
    await start_bot(bot)
    assert (await _ping(fake_discord, fake_discord.channel, seen))._integration_owners == {0: fake_discord.guild.id}
    fake_discord.install_for_user(fake_discord.member)
    owners = (await _ping(fake_discord, fake_discord.channel, seen))._integration_owners
    assert owners == {0: fake_discord.guild.id, 1: fake_discord.member.id}


async def test_dms_carry_their_context_a_user_and_the_documented_app_permissions(fake_discord: FakeDiscord, start_bot):
    bot, seen = _bot()
    await start_bot(bot)
    fake_discord.install_for_user(fake_discord.member)
    bot_dm = fake_discord.bot_dm_channel(fake_discord.member)
    interaction = await _ping(fake_discord, bot_dm, seen)
    assert interaction.context.dm_channel
    assert interaction.guild_id is None
    assert interaction._integration_owners == {0: 0, 1: fake_discord.member.id}
    assert interaction.app_permissions.value == BOT_DM_APP_PERMISSIONS
    assert isinstance(interaction.user, discord.User)
    assert interaction.user.id == fake_discord.member.id
    # The bot DM context is the channel Create DM answers.
    assert (await bot.create_dm(interaction.user)).id == interaction.channel_id == bot_dm.id
    friend = fake_discord.add_member("carol")
    private = fake_discord.private_channel(fake_discord.member, friend)
    interaction = await _ping(fake_discord, private, seen)
    assert interaction.context.private_channel
    assert interaction.guild_id is None
    assert interaction._integration_owners == {1: fake_discord.member.id}
    assert interaction.app_permissions.value == DM_APP_PERMISSIONS
    assert isinstance(interaction.channel, discord.DMChannel)


PLACES: dict[str, Callable[[FakeDiscord], FakeChannel]] = {
    "outside-server": lambda fake: fake.add_outside_guild("Elsewhere", members=[fake.member]).text_channels()[0],
    "private-channel": lambda fake: fake.private_channel(fake.member, fake.add_member("carol")),
}


@pytest.mark.parametrize("place", list(PLACES.values()), ids=list(PLACES))
async def test_a_guild_install_only_command_is_not_offered_outside(fake_discord: FakeDiscord, start_bot, place):
    bot, _ = _bot(users=False)
    await start_bot(bot)
    fake_discord.install_for_user(fake_discord.member)
    with pytest.raises(CommandNotAvailableError):
        await fake_discord.slash("ping", channel=place(fake_discord), user=fake_discord.member)


async def test_contexts_decide_where_a_command_is_offered(fake_discord: FakeDiscord, start_bot):
    bot, seen = _bot(contexts=(True, False, False))
    await start_bot(bot)
    fake_discord.install_for_user(fake_discord.member)
    for channel in (fake_discord.bot_dm_channel(fake_discord.member), PLACES["private-channel"](fake_discord)):
        with pytest.raises(CommandNotAvailableError):
            await fake_discord.slash("ping", channel=channel, user=fake_discord.member)
    await _ping(fake_discord, fake_discord.channel, seen)  # a server context is fine


@pytest.mark.parametrize("place", list(PLACES.values()), ids=list(PLACES))
async def test_the_bots_own_calls_to_a_place_it_is_not_in_get_missing_access(
    fake_discord: FakeDiscord, start_bot, place
):
    bot = MiniBot(sync=False)
    await start_bot(bot)
    channel = place(fake_discord)
    for call in (lambda: bot.http.send_message(channel.id, params=_text("hi")), lambda: bot.fetch_channel(channel.id)):
        with pytest.raises(discord.Forbidden) as refused:
            await call()
        assert refused.value.code == 50001
    await bot.http.send_message(fake_discord.channel.id, params=_text("hi"))  # its own server answers


def _text(content: str) -> Any:
    return discord.http.handle_message_parameters(content=content)


async def test_a_user_install_only_interaction_gets_five_followups(fake_discord: FakeDiscord, start_bot):
    bot, seen = _bot()
    await start_bot(bot)
    fake_discord.install_for_user(fake_discord.member)
    outside = PLACES["outside-server"](fake_discord)
    interaction = await _ping(fake_discord, outside, seen)
    for n in range(5):
        await interaction.followup.send(f"take {n}")
    with pytest.raises(discord.HTTPException) as refused:
        await interaction.followup.send("one too many")
    assert (refused.value.status, refused.value.code) == (400, 40094)
    # Where the app is installed to the server as well, followups are not limited.
    in_server = await _ping(fake_discord, fake_discord.channel, seen)
    for n in range(6):
        await in_server.followup.send(f"take {n}")


async def test_a_user_install_token_expires_after_15_minutes(fake_discord: FakeDiscord, start_bot):
    bot, seen = _bot()
    await start_bot(bot)
    fake_discord.install_for_user(fake_discord.member)
    interaction = await _ping(fake_discord, fake_discord.bot_dm_channel(fake_discord.member), seen)
    fake_discord.advance(15 * 60)
    with pytest.raises(discord.HTTPException) as refused:
        await interaction.followup.send("too late")
    assert (refused.value.status, refused.value.code) == (401, 50027)
