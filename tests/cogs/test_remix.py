"""Remix from any message with audio: the context menu, its modal, and reply-to-remix."""

from __future__ import annotations

import pytest

from tests.cogs.conftest import job_id_of, wait_state, wav_bytes
from tests.cogs.test_buttons import make_take

pytestmark = pytest.mark.slow


def modal_values(modal: dict, *, prompt: str, mode: str, duration: str = "2") -> dict[str, str]:
    values = {}
    for row in modal["components"]:
        for component in row["components"]:
            label = component["label"].lower()
            values[component["custom_id"]] = (
                mode if label.startswith("mode") else duration if "duration" in label else prompt
            )
    return values


async def test_context_menu_remixes_a_members_audio(jam):
    riff = jam.fake.attachment("hum.wav", wav_bytes(3.0), content_type="audio/wav")
    posted = await jam.fake.post_message("my humming", attachments=[riff], author=jam.fake.admin)
    menu = await jam.fake.message_command("Remix with jamgen", posted)
    await menu.wait_for_response()
    assert menu.modal is not None
    submitted = await jam.fake.submit_modal(
        menu, modal_values(menu.modal, prompt="as a string quartet", mode="continue")
    )
    result = await submitted.wait_for_message(lambda m: m.attachments and m.embeds, timeout=60)
    job = await jam.store.get_job(job_id_of(result))
    assert job.mode == "continuation"
    assert job.prompt == "as a string quartet"


async def test_context_menu_on_a_message_without_audio_says_so_privately(jam):
    posted = await jam.fake.post_message("no audio here")
    menu = await jam.fake.message_command("Remix with jamgen", posted)
    answer = await menu.wait_for_message(lambda m: m.ephemeral, timeout=10)
    assert "no audio" in answer.content


async def test_modal_with_a_bad_mode_is_refused_politely(jam):
    riff = jam.fake.attachment("hum.wav", wav_bytes(2.0), content_type="audio/wav")
    posted = await jam.fake.post_message("x", attachments=[riff])
    menu = await jam.fake.message_command("Remix with jamgen", posted)
    await menu.wait_for_response()
    submitted = await jam.fake.submit_modal(menu, modal_values(menu.modal, prompt="p", mode="polka"))
    answer = await submitted.wait_for_message(lambda m: m.ephemeral, timeout=10)
    assert "Mode must be melody, style or continue" in answer.content


async def test_reply_to_a_jamgen_track_remixes_it_with_the_prefix_mode(jam):
    take = await make_take(jam)
    reply = await jam.fake.post_message(
        f"<@{jam.fake.bot_user.id}> continue: more cowbell", reply_to=take, mention_author=True
    )
    result = await jam.fake.wait_for_message(
        lambda m: m.attachments and m.embeds and job_id_of(m) != job_id_of(take), timeout=60
    )
    job = await jam.store.get_job(job_id_of(result))
    assert job.mode == "continuation"
    assert job.prompt == "more cowbell"
    assert job.parent_id == job_id_of(take)
    assert result.reference is not None
    assert reply.id in (result.reference.get("message_id"), int(result.reference.get("message_id", 0)))


async def test_mentioning_jamgen_in_a_reply_to_any_audio_remixes_it_with_the_guild_default_mode(jam):
    await jam.service.update_guild_settings(jam.fake.guild.id, remix_mode="continuation")
    riff = jam.fake.attachment("loop.wav", wav_bytes(3.0), content_type="audio/wav")
    original = await jam.fake.post_message("my loop", attachments=[riff], author=jam.fake.admin)
    await jam.fake.post_message(f"<@{jam.fake.bot_user.id}> make it jazzier", reply_to=original)
    result = await jam.fake.wait_for_message(lambda m: m.attachments and m.embeds, timeout=60)
    job = await jam.store.get_job(job_id_of(result))
    assert job.mode == "continuation"
    assert job.prompt == "make it jazzier"
    await wait_state(jam.store, job.id, "delivered")


async def test_a_reply_without_mention_to_other_audio_is_ignored_and_remix_by_reply_can_be_off(jam):
    riff = jam.fake.attachment("loop.wav", wav_bytes(2.0), content_type="audio/wav")
    original = await jam.fake.post_message("my loop", attachments=[riff], author=jam.fake.admin)
    await jam.fake.post_message("nice!", reply_to=original)
    take = await make_take(jam)
    await jam.service.update_guild_settings(jam.fake.guild.id, remix_by_reply=False)
    await jam.fake.post_message(f"<@{jam.fake.bot_user.id}> melody: again", reply_to=take)
    await jam.fake.wait_idle(quiet=0.5, timeout=5)
    jobs = await jam.store.list_user_jobs(jam.fake.member.id, jam.fake.guild.id)
    assert len(jobs) == 1
