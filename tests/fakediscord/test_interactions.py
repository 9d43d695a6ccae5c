"""Round trips of a real discord.py bot through the fake: commands, files, buttons, modals, menus."""

from __future__ import annotations

import io

import discord
import pytest
from discord import app_commands

from tests.fakediscord import CommandHiddenError, FakeDiscord
from tests.fakediscord.minibot import MiniBot


async def test_slash_command_defer_then_followup_with_a_file_round_trips(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot()

    @bot.tree.command(name="reverse", description="Reverse an uploaded file")
    async def reverse(interaction: discord.Interaction, title: str, audio: discord.Attachment) -> None:
        await interaction.response.defer(thinking=True)
        data = await audio.read()
        file = discord.File(io.BytesIO(data[::-1]), filename=f"{title}.mp3")
        await interaction.followup.send(f"Here is **{title}**", file=file)

    await start_bot(bot)
    upload = fake_discord.attachment("riff.wav", b"RIFF-0123456789")
    interaction = await fake_discord.slash("reverse", {"title": "jam", "audio": upload})

    [message] = await interaction.wait_for_followups()
    assert interaction.responses[0].type == 5
    assert interaction.ack_latency is not None
    assert interaction.ack_latency < 3.0
    assert message.content == "Here is **jam**"
    assert message.file("jam.mp3").data == b"9876543210-FFIR"
    assert message.file().content_type == "audio/mpeg"
    # The first followup after a "thinking" deferral becomes the deferred message.
    assert interaction.original is message
    assert not message.loading
    assert not interaction.ephemeral
    assert fake_discord.requests_to("GET", "/cdn/attachments/*")[0].status == 200


async def test_the_bot_can_download_what_it_uploaded(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot()
    downloaded: list[bytes] = []

    @bot.tree.command(name="upload", description="Upload and read back")
    async def upload(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("file", file=discord.File(io.BytesIO(b"ID3-bytes"), "a.mp3"))
        original = await interaction.original_response()
        downloaded.append(await original.attachments[0].read())

    await start_bot(bot)
    interaction = await fake_discord.slash("upload")
    await interaction.wait_until(lambda _: downloaded)
    assert downloaded == [b"ID3-bytes"]
    assert interaction.original is not None
    assert interaction.original.attachments[0].data == b"ID3-bytes"
    assert interaction.response is not None
    assert interaction.response.files[0].filename == "a.mp3"


async def test_subcommand_groups_and_typed_options_reach_the_handler(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot()
    seen: list[tuple[str, int, float, bool, int]] = []
    jam = app_commands.Group(name="jam", description="Jams")
    admin = app_commands.Group(name="admin", description="Admin", parent=jam)

    @admin.command(name="set", description="Set things")
    async def set_(
        interaction: discord.Interaction, name: str, count: int, ratio: float, loud: bool, who: discord.Member
    ) -> None:
        seen.append((name, count, ratio, loud, who.id))
        await interaction.response.send_message("ok", ephemeral=True)

    bot.tree.add_command(jam)
    await start_bot(bot)
    interaction = await fake_discord.slash(
        "jam admin set", {"name": "x", "count": 3, "ratio": 2, "loud": True, "who": fake_discord.admin}
    )
    original = await interaction.wait_for_original()
    assert seen == [("x", 3, 2.0, True, fake_discord.admin.id)]
    assert original.ephemeral
    assert interaction.ephemeral
    with pytest.raises(ValueError, match="has no options"):
        await fake_discord.slash("jam admin set", {"nmae": "typo"})
    with pytest.raises(ValueError, match="type 4"):
        await fake_discord.slash(
            "jam admin set", {"name": "x", "count": "3", "ratio": 1.0, "loud": True, "who": fake_discord.admin}
        )


async def test_default_member_permissions_hide_admin_commands_from_members(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot()
    permissions: list[bool] = []

    @bot.tree.command(name="purge", description="Admins only")
    @app_commands.default_permissions(manage_guild=True)
    async def purge(interaction: discord.Interaction) -> None:
        permissions.append(interaction.permissions.administrator)
        await interaction.response.send_message("purged")

    await start_bot(bot)
    with pytest.raises(CommandHiddenError):
        await fake_discord.slash("purge", user=fake_discord.member)
    interaction = await fake_discord.slash("purge", user=fake_discord.admin)
    await interaction.wait_for_original()
    forced = await fake_discord.slash("purge", user=fake_discord.member, force=True)
    await forced.wait_for_original()
    assert permissions == [True, False]


async def test_buttons_on_a_message_can_be_clicked_and_the_update_is_read_back(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot()

    class Confirm(discord.ui.View):
        @discord.ui.button(label="Again", custom_id="jam:again:42")
        async def again(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
            await interaction.response.edit_message(content=f"again by {interaction.user.name}", view=None)

    @bot.tree.command(name="make", description="Make something")
    async def make(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("made", view=Confirm())

    await start_bot(bot)
    command = await fake_discord.slash("make")
    message = await command.wait_for_original()
    assert message.custom_ids == ["jam:again:42"]
    assert message.button("Again")["custom_id"] == "jam:again:42"

    click = await fake_discord.click(message, "jam:again:42", user=fake_discord.admin)
    await click.wait_for_response()
    assert click.responses[0].type == 7
    assert click.original is message
    assert message.content == "again by alice"
    assert message.components == []
    assert [version.content for version in message.versions] == ["made", "again by alice"]
    with pytest.raises(KeyError):
        await fake_discord.click(message, "jam:again:42")


async def test_modal_opened_from_a_command_is_submitted(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot()

    class Describe(discord.ui.Modal, title="Describe the jam"):
        prompt = discord.ui.TextInput(label="Prompt", custom_id="prompt", max_length=200)

        async def on_submit(self, interaction: discord.Interaction) -> None:
            await interaction.response.send_message(f"prompt={self.prompt.value}", ephemeral=True)

    @bot.tree.command(name="describe", description="Open a modal")
    async def describe(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(Describe())

    await start_bot(bot)
    command = await fake_discord.slash("describe")
    await command.wait_for_response()
    assert command.modal is not None
    assert command.modal["title"] == "Describe the jam"
    submit = await fake_discord.submit_modal(command, {"prompt": "lofi drums"})
    answer = await submit.wait_for_original()
    assert answer.content == "prompt=lofi drums"
    assert answer.ephemeral


async def test_autocomplete_choices_are_read_back(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot()

    async def styles(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=s, value=s) for s in ("jazz", "jungle", "metal") if s.startswith(current)]

    @bot.tree.command(name="style", description="Pick a style")
    @app_commands.autocomplete(name=styles)
    async def style(interaction: discord.Interaction, name: str) -> None:
        await interaction.response.send_message(name)

    await start_bot(bot)
    interaction = await fake_discord.autocomplete("style", {"name": "j"}, focused="name")
    await interaction.wait_for_response()
    assert [choice.value for choice in interaction.choices or []] == ["jazz", "jungle"]


async def test_message_context_menu_gets_the_resolved_target(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot()

    @bot.tree.context_menu(name="Remix this")
    async def remix(interaction: discord.Interaction, message: discord.Message) -> None:
        names = [attachment.filename for attachment in message.attachments]
        await interaction.response.send_message(f"remixing {message.content} {names} by {message.author.name}")

    await start_bot(bot)
    clip = fake_discord.attachment("clip.ogg", b"OggS")
    posted = await fake_discord.post_message("my riff", attachments=[clip])
    interaction = await fake_discord.message_command("Remix this", posted)
    answer = await interaction.wait_for_original()
    assert answer.content == "remixing my riff ['clip.ogg'] by bob"


async def test_mentions_replies_and_reactions_reach_the_bot(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot()
    await start_bot(bot)
    sent = await bot.get_channel(fake_discord.channel.id).send("first")
    first = fake_discord.messages[sent.id]

    def from_members() -> list[discord.Message]:
        return [message for message in bot.seen_messages if message.author != bot.user]

    await fake_discord.post_message(f"{fake_discord.bot_user.mention} hello", reply_to=first)
    [received] = await fake_discord.wait_for(from_members)
    assert received.content == f"{fake_discord.bot_user.mention} hello"
    assert bot.user in received.mentions
    assert received.reference is not None
    assert received.reference.message_id == first.id
    assert isinstance(received.reference.resolved, discord.Message)
    assert received.reference.resolved.content == "first"

    # Without the message content intent, content is blanked unless the bot is mentioned.
    await fake_discord.post_message("no ping here")
    await fake_discord.wait_for(lambda: len(from_members()) == 2)
    assert from_members()[-1].content == ""
    assert [message.content for message in bot.seen_messages if message.author == bot.user] == ["first"]

    reply = await received.reply("pong", file=discord.File(io.BytesIO(b"x"), "x.txt"))
    stored = fake_discord.messages[reply.id]
    assert stored.reference is not None
    assert stored.reference["message_id"] == str(received.id)
    assert stored.type == 19
    assert reply.reference is not None

    await fake_discord.react(first, "🔥", user=fake_discord.admin)
    await fake_discord.wait_for(lambda: bot.seen_reactions)
    assert str(bot.seen_reactions[0].emoji) == "🔥"
    assert bot.seen_reactions[0].user_id == fake_discord.admin.id
    await sent.add_reaction("👍")
    assert first.reactions["👍"] == [fake_discord.bot_user.id]


async def test_threads_pins_and_channel_message_edits(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot()
    # Locking a thread needs MANAGE_THREADS, which the default invite does not grant.
    fake_discord.channel.set_overwrite(fake_discord.bot_member, allow=discord.Permissions(manage_threads=True))
    await start_bot(bot)
    channel = bot.get_channel(fake_discord.channel.id)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("jam session")
    thread = await sent.create_thread(name="session 1")
    assert thread.id == sent.id
    in_thread = await thread.send("inside", file=discord.File(io.BytesIO(b"abc"), "take.mp3"))
    await sent.pin()
    await sent.edit(content="jam session (ended)")
    await thread.edit(archived=True, locked=True)

    fake_thread = fake_discord.find_channel(thread.id)
    assert fake_thread is not None
    assert fake_thread.archived
    assert fake_thread.locked
    assert fake_discord.messages[in_thread.id].channel_id == thread.id
    stored = fake_discord.messages[sent.id]
    assert stored.pinned
    assert stored.content == "jam session (ended)"
    assert stored.edited
    fetched = await channel.fetch_message(sent.id)
    assert fetched.pinned
    with pytest.raises(discord.HTTPException) as refused:
        await thread.send("too late")
    assert refused.value.code == 50083


async def test_a_tree_registered_without_sync_still_types_and_checks_options(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot(sync=False)
    durations: list[int] = []

    @bot.tree.command(name="generate", description="Make music")
    @app_commands.describe(seconds="How long")
    async def generate(
        interaction: discord.Interaction, prompt: str, seconds: app_commands.Range[int, 1, 30] = 8
    ) -> None:
        durations.append(seconds)
        await interaction.response.send_message(f"{prompt} for {seconds}s")

    await start_bot(bot)
    fake_discord.register_commands(bot.tree)
    with pytest.raises(ValueError, match="above max_value"):
        await fake_discord.slash("generate", {"prompt": "rain", "seconds": 31})
    with pytest.raises(ValueError, match="needs options"):
        await fake_discord.slash("generate", {"seconds": 3})
    interaction = await fake_discord.slash("generate", {"prompt": "rain", "seconds": 30})
    assert (await interaction.wait_for_original()).content == "rain for 30s"
    assert durations == [30]
