"""Interaction response rules (interactions/receiving-and-responding.mdx) and reply/flag rules of messages."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import discord
import pytest
from discord.http import Route

from tests.fakediscord import FakeDiscord, FakeInteraction
from tests.fakediscord.minibot import MiniBot

V2_TEXT = {"flags": 1 << 15, "components": [{"type": 10, "content": "components v2"}]}


async def _silent_command(fake: FakeDiscord, start_bot: Any) -> MiniBot:
    bot = MiniBot()

    @bot.tree.command(name="silent", description="The test answers for the bot")
    async def silent(interaction: discord.Interaction) -> None:
        return None

    await start_bot(bot)
    return bot


async def _call(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.request(method, url, json=body) as answer:
        return answer.status, await answer.json() if answer.status != 204 else None


async def _callback(fake: FakeDiscord, interaction: FakeInteraction, body: dict[str, Any]) -> tuple[int, Any]:
    url = f"{fake.api_base}/interactions/{interaction.id}/{interaction.token}/callback?with_response=true"
    return await _call("POST", url, body)


async def test_callback_resources_and_followups_follow_the_docs(fake_discord: FakeDiscord, start_bot):
    await _silent_command(fake_discord, start_bot)
    deferred = await fake_discord.slash("silent")
    status, body = await _callback(fake_discord, deferred, {"type": 5, "data": {"flags": 4}})
    assert (status, body["code"]) == (400, 50035)  # a deferral takes only EPHEMERAL
    status, body = await _callback(fake_discord, deferred, {"type": 5})
    assert status == 200
    assert "message" not in body["resource"]  # only for types 4 and 7
    assert body["interaction"]["response_message_loading"] is True
    webhook = f"{fake_discord.api_base}/webhooks/{fake_discord.application_id}/{deferred.token}"
    status, body = await _call("POST", f"{webhook}?thread_id={fake_discord.channel.id}", {"content": "x"})
    assert (status, body["code"]) == (400, 50035)
    status, body = await _call("POST", webhook, {"content": "done"})
    assert status == 200  # wait is always true: the message comes back
    assert body["content"] == "done"
    answered = await fake_discord.slash("silent")
    status, body = await _callback(fake_discord, answered, {"type": 4, "data": {"content": "hi"}})
    assert status == 200
    assert body["resource"]["message"]["content"] == "hi"


async def test_components_v2_stays_set_and_excludes_content(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot(sync=False)
    await start_bot(bot)
    post = Route("POST", "/channels/{channel_id}/messages", channel_id=fake_discord.channel.id)
    created = await bot.http.request(post, json=V2_TEXT)
    edit = Route(
        "PATCH",
        "/channels/{channel_id}/messages/{message_id}",
        channel_id=fake_discord.channel.id,
        message_id=created["id"],
    )
    for body in ({"flags": 0}, {"content": "legacy text"}):
        with pytest.raises(discord.HTTPException) as refused:
            await bot.http.request(edit, json=body)
        assert (refused.value.status, refused.value.code) == (400, 50035)
    await bot.http.request(edit, json={"components": [{"type": 10, "content": "still v2"}]})


async def test_a_reply_must_point_into_the_same_channel(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot(sync=False)
    await start_bot(bot)
    elsewhere = await fake_discord.post_message("in music", channel=fake_discord.guild.channel_named("music"))
    channel = bot.get_channel(fake_discord.channel.id)
    assert isinstance(channel, discord.TextChannel)
    reference = discord.MessageReference(message_id=elsewhere.id, channel_id=elsewhere.channel_id)
    with pytest.raises(discord.HTTPException) as refused:
        await channel.send("cross-channel reply", reference=reference)
    assert (refused.value.status, refused.value.code) == (400, 50035)
    relaxed = discord.MessageReference(message_id=elsewhere.id, channel_id=channel.id, fail_if_not_exists=False)
    sent = await channel.send("sent as a plain message", reference=relaxed)
    assert fake_discord.messages[sent.id].reference is None


async def test_public_followups_unarchive_a_thread_and_ephemeral_ones_do_not(fake_discord: FakeDiscord, start_bot):
    bot = MiniBot()
    private_now, public_now = asyncio.Event(), asyncio.Event()

    @bot.tree.command(name="late", description="Answers after the thread was archived")
    async def late(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True)
        await private_now.wait()
        await interaction.edit_original_response(content="private progress")
        await interaction.followup.send("private note", ephemeral=True)
        await public_now.wait()
        await interaction.followup.send("public result")

    await start_bot(bot)
    thread = fake_discord.guild.add_thread(fake_discord.channel, "jam", owner_id=fake_discord.member.id)
    interaction = await fake_discord.slash("late", channel=thread)
    await interaction.wait_for_response()
    await fake_discord.set_thread_state(thread, archived=True)
    private_now.set()
    await interaction.wait_for_followups(1)
    assert thread.archived  # ephemeral messages are not part of the thread
    public_now.set()
    await interaction.wait_for_followups(2)
    assert not thread.archived
    assert not interaction.errors


def _modal(*components: dict[str, Any]) -> dict[str, Any]:
    return {"type": 9, "data": {"custom_id": "form", "title": "Form", "components": list(components)}}


UPLOAD = {"type": 19, "custom_id": "clip", "file_types": ["audio", ".mp4"]}
RADIO = {"type": 21, "custom_id": "mode", "options": [{"value": "a", "label": "A"}, {"value": "b", "label": "B"}]}


@pytest.mark.parametrize(
    ("component", "where"),
    [
        (UPLOAD, ["type"]),  # a file upload outside a Label
        ({"type": 1, "components": [RADIO]}, ["components", 0, "type"]),  # a radio group in a row
        ({"type": 18, "label": "x" * 46, "component": UPLOAD}, ["label"]),
        ({"type": 18, "label": "Clip", "component": {**UPLOAD, "min_values": 0}}, ["component", "min_values"]),
        (
            {"type": 18, "label": "Clip", "component": {**UPLOAD, "file_types": ["sound"]}},
            ["component", "file_types", 0],
        ),
        (
            {"type": 18, "label": "Mode", "component": {**RADIO, "options": RADIO["options"][:1]}},
            ["component", "options"],
        ),
        ({"type": 18, "label": "Mode", "component": {"type": 2, "style": 1, "custom_id": "b"}}, ["component", "type"]),
        (
            {"type": 18, "label": "Say", "component": {"type": 4, "custom_id": "t", "style": 1, "label": "old"}},
            ["component", "label"],
        ),
    ],
)
async def test_modal_labels_uploads_and_radio_groups_are_refused_as_the_docs_say(
    fake_discord: FakeDiscord, start_bot, component, where
):
    await _silent_command(fake_discord, start_bot)
    opened = await fake_discord.slash("silent")
    status, body = await _callback(fake_discord, opened, _modal(component))
    assert (status, body["code"]) == (400, 50035)
    errors = body["errors"]["data"]["components"]["0"]
    for key in where:
        errors = errors[str(key)]
    assert errors["_errors"]


async def test_a_modal_upload_submits_attachment_ids_with_their_resolved_files(fake_discord: FakeDiscord, start_bot):
    await _silent_command(fake_discord, start_bot)
    opened = await fake_discord.slash("silent")
    form = _modal(
        {"type": 18, "label": "Clip", "component": {**UPLOAD, "required": False, "min_values": 0}},
        {
            "type": 18,
            "label": "Mode",
            "component": {**RADIO, "options": [*RADIO["options"][:1], {**RADIO["options"][1], "default": True}]},
        },
    )
    status, _ = await _callback(fake_discord, opened, form)
    assert status == 200
    clip = fake_discord.attachment("riff.mp4", b"x" * 10, content_type="video/mp4")
    submitted = await fake_discord.submit_modal(opened, {"clip": clip})
    payload = submitted.data
    upload, mode = (top["component"] for top in payload["components"])
    assert upload["values"] == [str(clip.id)]
    assert payload["resolved"]["attachments"][str(clip.id)]["filename"] == "riff.mp4"
    assert mode["value"] == "b"  # the default choice
    big = fake_discord.attachment("long.wav", b"", size=fake_discord.limits.attachment_size_limit + 1)
    with pytest.raises(ValueError, match="over the member's upload limit"):
        await fake_discord.submit_modal(opened, {"clip": big})
