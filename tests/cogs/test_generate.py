"""/generate, /melody, /style, /continue end to end: real bot, fake Discord, debug models."""

from __future__ import annotations

import discord
import pytest

from bot.audio import read_recipe
from tests.harness import ffprobe_duration, job_id_of, wait_for_take, wait_state, wav_bytes


# The real worker: its own progress reports reach the member's bar, and its take has the requested length.
# Classic cards: it reads the embed (tests/cogs/test_cards.py covers the V2 card).
@pytest.mark.engine
@pytest.mark.parametrize("world_overrides", [{"JAMGEN_CARD_STYLE": "classic"}])
async def test_generate_defers_within_3s_and_delivers_an_mp3_of_the_requested_duration(jam):
    interaction = await jam.fake.slash("generate", {"prompt": "lofi piano, 80 bpm", "duration": 3})
    await interaction.wait_for_response()
    assert interaction.deferred
    assert interaction.ack_latency < 3
    message = await wait_for_take(interaction)
    mp3 = next(a for a in message.attachments if a.filename.endswith(".mp3"))
    assert mp3.data[:3] == b"ID3"
    assert ffprobe_duration(mp3.data, jam.tmp_path) == pytest.approx(3.0, abs=0.1)
    embed = message.embeds[0]
    text = str(embed)
    for word in ("Model", "Mode", "Seed", "Tempo", "debug", "text"):
        assert word in text
    assert embed["image"]["url"].startswith("attachment://")
    labels = {b.get("label") for b in message.buttons}
    assert {"Reroll", "Recipe", "Delete", "Extend", "Remix"} <= labels
    await wait_state(jam.store, job_id_of(message), "delivered")
    # The private progress message went queued → generating with a bar → ready, and kept its Cancel button meanwhile.
    shown = [v.content for v in interaction.original.versions]
    assert any("Queued" in text and "position 1" in text for text in shown)
    assert any("Generating" in text and "%" in text and "▰" in text for text in shown)
    assert "is ready" in interaction.original.content
    assert interaction.original.ephemeral


async def test_a_take_is_a_channel_message_and_the_private_receipt_links_to_it(jam):
    interaction = await jam.fake.slash("generate", {"prompt": "lofi piano, 80 bpm", "duration": 2})
    message = await wait_for_take(interaction)
    assert message.source == "channel", "a regular message, so that replies to it can be read"
    assert message.channel_id == jam.fake.channel.id
    assert f"<@{jam.fake.member.id}>" in message.text
    assert jam.fake.member.id in message.mention_ids
    assert not [m for m in interaction.followups if m.attachments]
    assert str(message.id) in interaction.original.content


async def test_a_take_goes_out_as_a_followup_only_where_jamgen_may_no_longer_post(jam):
    jam.engine.open.clear()
    interaction = await jam.fake.slash("generate", {"prompt": "closed room", "duration": 2})
    await interaction.wait_for_original(lambda m: m.custom_ids, timeout=10)
    jam.fake.channel.set_overwrite(jam.fake.bot_member, deny=discord.Permissions(send_messages=True))
    channel = jam.bot.get_channel(jam.fake.channel.id)
    await jam.fake.wait_for(lambda: not channel.permissions_for(channel.guild.me).send_messages, timeout=10)
    jam.engine.open.set()
    message = await wait_for_take(interaction)
    assert message.source == "followup"
    assert any(a.filename.endswith(".mp3") for a in message.attachments)
    await wait_state(jam.store, job_id_of(message), "delivered")


# The real worker conditions on the melody (the debug-melody model's chroma path).
@pytest.mark.engine
async def test_melody_with_an_attachment(jam):
    riff = jam.fake.attachment("riff.wav", wav_bytes(3.0), content_type="audio/wav")
    interaction = await jam.fake.slash(
        "melody", {"audio": riff, "prompt": "synth lead", "duration": 2, "model": "debug-melody"}
    )
    message = await wait_for_take(interaction)
    assert "melody" in message.text
    job = await jam.store.get_job(job_id_of(message))
    assert (job.model, job.mode, job.params["duration"]) == ("debug-melody", "melody", 2)
    mp3 = next(a for a in message.attachments if a.filename.endswith(".mp3"))
    assert ffprobe_duration(mp3.data, jam.tmp_path) == pytest.approx(2.0, abs=0.1)
    posted = jam.tmp_path / "melody.mp3"
    posted.write_bytes(mp3.data)
    recipe = await read_recipe(posted)  # what the member's file says about itself
    assert recipe["job_id"] == job.id
    assert (recipe["model"], recipe["mode"], recipe["duration"]) == ("debug-melody", "melody", 2)


async def test_bad_attachment_gets_a_private_message_and_costs_nothing(jam):
    junk = jam.fake.attachment("song.mp3", b"this is not audio at all" * 100, content_type="audio/mpeg")
    interaction = await jam.fake.slash("melody", {"audio": junk, "prompt": "x", "model": "debug-melody"})
    message = await interaction.wait_for_message(lambda m: m.ephemeral, timeout=30)
    assert "⚠️" in message.content
    status = await jam.service.quota(jam.fake.member.id, jam.fake.guild.id)
    assert status.used == 0


# The real worker runs the style conditioner with these excerpt settings.
@pytest.mark.engine
async def test_style_uses_a_style_model_and_its_excerpt_settings(jam):
    excerpt = jam.fake.attachment("vibe.wav", wav_bytes(5.0, freq=220), content_type="audio/wav")
    interaction = await jam.fake.slash(
        "style", {"audio": excerpt, "prompt": "same vibe", "duration": 2, "excerpt_length": 2.0, "eval_q": 2}
    )
    message = await wait_for_take(interaction)
    job = await jam.store.get_job(job_id_of(message))
    assert job.model == "debug-style"
    assert job.mode == "style"
    assert job.params["eval_q"] == 2
    assert job.params["excerpt_length"] == 2.0
    assert job.params["cfg_coef_beta"] == 5.0


async def test_style_excerpt_too_short_is_explained(jam):
    blip = jam.fake.attachment("blip.wav", wav_bytes(0.8), content_type="audio/wav")
    interaction = await jam.fake.slash("style", {"audio": blip, "duration": 2})
    message = await interaction.wait_for_message(lambda m: m.ephemeral and not m.loading, timeout=30)
    assert "Style needs at least 1.5 s of audio" in message.content


# The real worker keeps the prompt at the start of its output: 3 s of prompt + 2 s of new music.
@pytest.mark.engine
async def test_continue_keeps_the_prompt_and_adds_new_music(jam):
    source = jam.fake.attachment("start.wav", wav_bytes(3.0), content_type="audio/wav")
    interaction = await jam.fake.slash("continue", {"audio": source, "prompt": "and then", "duration": 2})
    message = await wait_for_take(interaction)
    mp3 = next(a for a in message.attachments if a.filename.endswith(".mp3"))
    job = await jam.store.get_job(job_id_of(message))
    assert job.params["prompt_seconds"] == pytest.approx(3.0, abs=0.05)
    assert ffprobe_duration(mp3.data, jam.tmp_path) == pytest.approx(5.0, abs=0.15)
