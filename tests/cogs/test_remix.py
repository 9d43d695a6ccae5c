"""Remix from any message with audio: the context menu, its modal, and reply-to-remix."""

from __future__ import annotations

import discord
import pytest

from tests.cogs.test_buttons import make_take
from tests.harness import form_values, is_take, job_id_of, wait_for_take, wait_state, wav_bytes


def modal_values(modal: dict, *, prompt: str, mode: str, duration: str = "2") -> dict[str, str]:
    return form_values(modal, prompt=prompt, mode=mode, duration=duration)


async def test_context_menu_remixes_a_members_audio(jam):
    riff = jam.fake.attachment("hum.wav", wav_bytes(3.0), content_type="audio/wav")
    posted = await jam.fake.post_message("my humming", attachments=[riff], author=jam.fake.admin)
    menu = await jam.fake.message_command("Remix with jamgen", posted)
    await menu.wait_for_response()
    assert menu.modal is not None
    submitted = await jam.fake.submit_modal(
        menu, modal_values(menu.modal, prompt="as a string quartet", mode="continue")
    )
    result = await wait_for_take(submitted)
    job = await jam.store.get_job(job_id_of(result))
    assert job.mode == "continuation"
    assert job.prompt == "as a string quartet"


async def test_context_menu_on_a_message_without_audio_says_so_privately(jam):
    posted = await jam.fake.post_message("no audio here")
    menu = await jam.fake.message_command("Remix with jamgen", posted)
    answer = await menu.wait_for_message(lambda m: m.ephemeral, timeout=10)
    assert "no audio" in answer.content


async def test_the_form_offers_its_modes_and_takes_audio_only_as_discord_would_enforce(jam):
    riff = jam.fake.attachment("hum.wav", wav_bytes(2.0), content_type="audio/wav")
    posted = await jam.fake.post_message("x", attachments=[riff])
    menu = await jam.fake.message_command("Remix with jamgen", posted)
    await menu.wait_for_response()
    labels = {top["label"]: top["component"] for top in menu.modal["components"]}
    assert [o["value"] for o in labels["Mode"]["options"]] == ["melody", "style", "continue", "stems"]
    upload = labels["Your own clip"]
    assert (upload["type"], upload["required"], "audio" in upload["file_types"]) == (19, False, True)
    with pytest.raises(ValueError, match="offers"):
        await jam.fake.submit_modal(menu, modal_values(menu.modal, prompt="p", mode="polka"))
    notes = jam.fake.attachment("notes.txt", b"not audio", content_type="text/plain")
    with pytest.raises(ValueError, match="does not take"):
        await jam.fake.submit_modal(menu, form_values(menu.modal, prompt="p", your_own_clip=notes))
    # Without a take or a message's file, /remix's form needs the upload.
    alone = await jam.fake.slash("remix", {})
    await alone.wait_for_response()
    assert {top["label"]: top["component"] for top in alone.modal["components"]}["Your own clip"]["required"] is True
    with pytest.raises(ValueError, match="takes 1 to 1 files"):
        await jam.fake.submit_modal(alone, form_values(alone.modal, prompt="p"))


async def test_the_remix_form_with_an_uploaded_clip_makes_the_same_job_as_melody_with_that_clip(jam):
    clip = wav_bytes(3.0, freq=262.0)
    by_command = await wait_for_take(
        await jam.fake.slash(
            "melody",
            {
                "audio": jam.fake.attachment("tune.wav", clip, content_type="audio/wav"),
                "prompt": "synth lead",
                "duration": 2,
            },
        )
    )
    form = await jam.fake.slash("remix", {})
    await form.wait_for_response()
    upload = jam.fake.attachment("tune.wav", clip, content_type="audio/wav")
    submitted = await jam.fake.submit_modal(
        form, form_values(form.modal, prompt="synth lead", mode="melody", duration="2", your_own_clip=upload)
    )
    by_form = await wait_for_take(submitted)
    one, other = [await jam.store.get_job(job_id_of(m)) for m in (by_command, by_form)]
    for field in ("mode", "model", "prompt", "takes", "parent_id", "user_id", "channel_id"):
        assert getattr(one, field) == getattr(other, field), field
    assert {k: v for k, v in one.params.items() if k != "input_path"} == {
        k: v for k, v in other.params.items() if k != "input_path"
    }
    kept = [open(job.params["input_path"], "rb").read() for job in (one, other)]  # noqa: SIM115
    assert kept[0] == kept[1] == clip


async def test_an_upload_in_the_form_of_a_take_is_the_input_and_the_take_stays_the_parent(jam):
    take = await make_take(jam)
    click = await jam.fake.click(take, next(b["custom_id"] for b in take.buttons if ":remix:" in b["custom_id"]))
    await click.wait_for_response()
    hum = jam.fake.attachment("hum.m4a.wav", wav_bytes(2.0), content_type="audio/wav")
    submitted = await jam.fake.submit_modal(
        click, form_values(click.modal, prompt="on a cello", mode="melody", duration="2", your_own_clip=hum)
    )
    job = await jam.store.get_job(job_id_of(await wait_for_take(submitted)))
    assert (job.mode, job.parent_id, job.params["audio_filename"]) == ("melody", job_id_of(take), "hum.m4a.wav")
    assert job.params.get("audio_from_job") is None


async def test_reply_to_a_jamgen_track_remixes_it_with_the_prefix_mode(jam):
    take = await make_take(jam)
    reply = await jam.fake.post_message(
        f"<@{jam.fake.bot_user.id}> continue: more cowbell", reply_to=take, mention_author=True
    )
    result = await jam.fake.wait_for_message(lambda m: is_take(m) and job_id_of(m) != job_id_of(take), timeout=60)
    job = await jam.store.get_job(job_id_of(result))
    assert job.mode == "continuation"
    assert job.prompt == "more cowbell"
    assert job.parent_id == job_id_of(take)
    assert result.reference is not None
    assert reply.id in (result.reference.get("message_id"), int(result.reference.get("message_id", 0)))


# Discord hides the files of a member's message that does not mention the bot unless it has the intent.
@pytest.mark.parametrize("world_overrides", [{"JAMGEN_MESSAGE_CONTENT_INTENT": "true"}])
async def test_mentioning_jamgen_in_a_reply_to_any_audio_remixes_it_with_the_guild_default_mode(jam):
    await jam.service.update_guild_settings(jam.fake.guild.id, remix_mode="continuation")
    riff = jam.fake.attachment("loop.wav", wav_bytes(3.0), content_type="audio/wav")
    original = await jam.fake.post_message("my loop", attachments=[riff], author=jam.fake.admin)
    await jam.fake.post_message(f"<@{jam.fake.bot_user.id}> make it jazzier", reply_to=original)
    result = await jam.fake.wait_for_message(is_take, timeout=60)
    job = await jam.store.get_job(job_id_of(result))
    assert job.mode == "continuation"
    assert job.prompt == "make it jazzier"
    await wait_state(jam.store, job.id, "delivered")


async def test_without_the_intent_a_mention_in_a_reply_to_a_members_audio_says_what_works(jam):
    riff = jam.fake.attachment("loop.wav", wav_bytes(3.0), content_type="audio/wav")
    original = await jam.fake.post_message("my loop", attachments=[riff], author=jam.fake.admin)
    reply = await jam.fake.post_message(f"<@{jam.fake.bot_user.id}> make it jazzier", reply_to=original)
    hint = await jam.fake.wait_for_message(lambda m: m.reference and "Remix with jamgen" in m.content, timeout=10)
    assert int(hint.reference["message_id"]) == reply.id
    assert await jam.service.user_jobs(jam.fake.member.id, jam.fake.guild.id) == []


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


async def test_without_the_intent_a_pinging_reply_to_a_take_brings_its_words_and_its_audio(jam):
    assert not jam.bot.intents.message_content
    take = await make_take(jam)
    assert take.source == "channel", "a regular message: replies to interaction responses arrive empty"
    hum = jam.fake.attachment("hum.wav", wav_bytes(4.0, freq=440.0), content_type="audio/wav")
    # The reply bar's @ON switch pings jamgen; the text does not mention it.
    reply = await jam.fake.post_message("style: as a jazz trio", reply_to=take, mention_author=True, attachments=[hum])
    result = await jam.fake.wait_for_message(lambda m: is_take(m) and job_id_of(m) != job_id_of(take), timeout=60)
    job = await jam.store.get_job(job_id_of(result))
    assert job.mode == "style"
    assert job.prompt == "as a jazz trio"
    assert job.parent_id == job_id_of(take)
    assert job.params["audio_filename"] == "hum.wav", "the reply's own audio is the input"
    assert job.params["audio_from_job"] is None
    assert int(result.reference["message_id"]) == reply.id


async def _reply_where_jamgen_may_not_post(jam):
    """A pinging reply to a take in a channel whose override denies jamgen Send Messages."""
    take = await make_take(jam)
    bob = jam.fake.member
    used_before = (await jam.store.quota_status(bob.id, jam.fake.guild.id)).used
    jobs_before = len(await jam.service.user_jobs(bob.id, jam.fake.guild.id))
    jam.fake.channel.set_overwrite(jam.fake.bot_member, deny=discord.Permissions(send_messages=True))
    channel = jam.bot.get_channel(jam.fake.channel.id)
    await jam.fake.wait_for(lambda: not channel.permissions_for(channel.guild.me).send_messages, timeout=10)
    await jam.fake.post_message("continue: more cowbell", reply_to=take, mention_author=True, author=bob)
    return used_before, jobs_before


async def _nothing_started(jam, used_before, jobs_before):
    bob = jam.fake.member
    await jam.fake.wait_idle(quiet=0.3)
    assert len(await jam.service.user_jobs(bob.id, jam.fake.guild.id)) == jobs_before, "no job was made"
    assert (await jam.store.quota_status(bob.id, jam.fake.guild.id)).used == used_before, "nothing was charged"
    assert not jam.fake.client_errors(code=50013), "jamgen did not try to post where it may not"


async def test_a_reply_where_jamgen_may_not_post_charges_nothing_and_the_member_is_told_by_dm(jam):
    used_before, jobs_before = await _reply_where_jamgen_may_not_post(jam)
    dms = await jam.fake.wait_for(lambda: jam.fake.dm_messages(jam.fake.member), timeout=10, what="a DM")
    assert "Send Messages" in dms[0].content
    assert "Nothing was charged" in dms[0].content
    assert f"<#{jam.fake.channel.id}>" in dms[0].content
    await _nothing_started(jam, used_before, jobs_before)


async def test_a_reply_where_jamgen_may_not_post_from_a_member_who_closed_dms_is_let_go_quietly(jam):
    jam.fake.close_dms(jam.fake.member)
    used_before, jobs_before = await _reply_where_jamgen_may_not_post(jam)
    await jam.fake.wait_for(lambda: jam.fake.client_errors(code=50007), timeout=10, what="the refused DM")
    assert not jam.fake.dm_messages(jam.fake.member)
    await _nothing_started(jam, used_before, jobs_before)
