"""/generate, /melody, /style, /continue end to end: real bot, fake Discord, debug models."""

from __future__ import annotations

import pytest

from tests.cogs.conftest import ffprobe_duration, job_id_of, wait_state, wav_bytes

pytestmark = pytest.mark.slow


async def test_generate_defers_within_3s_and_delivers_an_mp3_of_the_requested_duration(jam):
    interaction = await jam.fake.slash("generate", {"prompt": "lofi piano, 80 bpm", "duration": 3})
    await interaction.wait_for_response()
    assert interaction.deferred
    assert interaction.ack_latency < 3
    message = await interaction.wait_for_message(lambda m: m.attachments and m.embeds, timeout=60)
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


async def test_melody_with_an_attachment(jam):
    riff = jam.fake.attachment("riff.wav", wav_bytes(3.0), content_type="audio/wav")
    interaction = await jam.fake.slash(
        "melody", {"audio": riff, "prompt": "synth lead", "duration": 2, "model": "debug-melody"}
    )
    message = await interaction.wait_for_message(lambda m: m.attachments, timeout=60)
    assert "melody" in message.text


async def test_bad_attachment_gets_a_private_message_and_costs_nothing(jam):
    junk = jam.fake.attachment("song.mp3", b"this is not audio at all" * 100, content_type="audio/mpeg")
    interaction = await jam.fake.slash("melody", {"audio": junk, "prompt": "x", "model": "debug-melody"})
    message = await interaction.wait_for_message(lambda m: m.ephemeral, timeout=30)
    assert "⚠️" in message.content
    status = await jam.service.quota(jam.fake.member.id, jam.fake.guild.id)
    assert status.used == 0
