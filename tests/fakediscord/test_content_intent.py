"""The MESSAGE_CONTENT intent's exceptions (gateway/you-might-not-need-a-privileged-intent.mdx)."""

from __future__ import annotations

import discord
from discord.http import Route

from tests.fakediscord import FakeDiscord
from tests.fakediscord.minibot import MiniBot


class EditWatcher(MiniBot):
    """Remembers raw MESSAGE_UPDATE payloads."""

    def __init__(self, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.raw_edits: list[discord.RawMessageUpdateEvent] = []

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        self.raw_edits.append(payload)


def _from_members(bot: MiniBot) -> list[discord.Message]:
    return [message for message in bot.seen_messages if message.author != bot.user]


async def test_without_the_intent_only_the_documented_exceptions_carry_content(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot()

    @bot.tree.command(name="hello", description="Says hello")
    async def hello(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("slash answer")

    await start_bot(bot)
    channel = bot.get_channel(fake_discord.channel.id)
    assert isinstance(channel, discord.TextChannel)
    regular = fake_discord.messages[(await channel.send("regular bot message")).id]
    interaction = await fake_discord.slash("hello")
    slash_answer = await interaction.wait_for_original()

    cases = [
        ("plain text", {}, ""),
        (f"{fake_discord.bot_user.mention} mention", {}, f"{fake_discord.bot_user.mention} mention"),
        ("pinging reply", {"reply_to": regular}, "pinging reply"),
        ("silent reply", {"reply_to": regular, "mention_author": False}, ""),
        ("reply to a slash answer", {"reply_to": slash_answer}, ""),
    ]
    for index, (text, options, expected) in enumerate(cases, start=1):
        await fake_discord.post_message(text, attachments=[fake_discord.attachment("a.txt", b"a")], **options)
        [*_, received] = await fake_discord.wait_for(
            lambda n=index: len(_from_members(bot)) >= n and _from_members(bot)
        )
        assert received.content == expected, text
        assert bool(received.attachments) == bool(expected), text
    # Messages the app sent always carry their content.
    assert [m.content for m in bot.seen_messages if m.author == bot.user] == ["regular bot message", "slash answer"]


async def test_rest_answers_and_referenced_messages_follow_the_intent(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot(sync=False)
    await start_bot(bot)
    user_message = await fake_discord.post_message("secret", embeds=[{"title": "hidden"}])
    route = Route(
        "GET",
        "/channels/{channel_id}/messages/{message_id}",
        channel_id=fake_discord.channel.id,
        message_id=user_message.id,
    )
    fetched = await bot.http.request(route)
    assert (fetched["content"], fetched["embeds"]) == ("", [])
    channel = bot.get_channel(fake_discord.channel.id)
    assert isinstance(channel, discord.TextChannel)
    reply = await channel.send(
        "answer", reference=discord.MessageReference(message_id=user_message.id, channel_id=channel.id)
    )
    assert reply.reference is not None
    assert isinstance(reply.reference.resolved, discord.Message)
    assert reply.reference.resolved.content == ""


async def test_message_updates_are_blanked_too(fake_discord: FakeDiscord, start_bot):
    bot = EditWatcher()
    await start_bot(bot)
    posted = await fake_discord.post_message("before")
    await fake_discord.edit_message(posted, {"content": "after"}, None)
    [edit] = await fake_discord.wait_for(lambda: bot.raw_edits)
    assert edit.data["content"] == ""


async def test_with_the_intent_every_message_carries_content(fake_discord: FakeDiscord, start_bot):
    intents = discord.Intents.default()
    intents.message_content = True
    bot = MiniBot(intents=intents, sync=False)
    await start_bot(bot)
    await fake_discord.post_message("plain text")
    [received] = await fake_discord.wait_for(lambda: _from_members(bot))
    assert received.content == "plain text"
