"""Stems through the fake Discord: the 🎚 button, /stems, the menu, the stem buttons and prefixes, the cache."""

from __future__ import annotations

import pytest

from bot.engine.types import STEM_NAMES, EngineError
from tests.cogs.test_buttons import custom_id, make_take
from tests.cogs.test_remix import modal_values
from tests.fakediscord.basics import MIB, FakeLimits
from tests.harness import (
    is_take,
    job_id_of,
    receipt_job_id,
    refunded,
    told,
    track_posts,
    wait_for_take,
    wait_state,
    wav_bytes,
)


def stem_files(message) -> list[str]:
    return sorted(a.filename for a in message.attachments if a.filename.endswith(".mp3"))


async def split(jam, take, user=None):
    click = await jam.fake.click(take, custom_id(take, "stems"), user=user)
    message = await wait_for_take(click)
    await wait_state(jam.store, job_id_of(message), "delivered")
    return message


async def test_the_stems_button_posts_four_stems_with_their_picture_and_a_second_click_is_free_and_at_once(jam):
    take = await make_take(jam)
    stems = await split(jam, take)
    stems_id = job_id_of(stems)
    assert stem_files(stems) == sorted(f"{stems_id}-{name}.mp3" for name in STEM_NAMES)
    assert any(a.filename.endswith(".png") for a in stems.attachments)
    job = await jam.store.get_job(stems_id)
    assert (job.mode, job.parent_id) == ("stems", job_id_of(take))
    # One row of jam buttons per stem: continue from it, melody from it, style from it.
    jam_buttons = [b["custom_id"] for b in stems.buttons if b["custom_id"].startswith("jamgen:stemmix:")]
    assert len(jam_buttons) == 12
    assert f"jamgen:stemmix:continue:{stems_id}:1" in jam_buttons
    # Another member asks again: told where they are, privately, at once, and charged nothing.
    carol = jam.fake.add_member("carol")
    used = (await jam.service.quota(carol.id, jam.fake.guild.id)).used
    again = await jam.fake.click(take, custom_id(take, "stems"), user=carol)
    answer = await again.wait_for_original(lambda m: "already here" in m.content, timeout=10)
    assert str(stems.id) in answer.content
    assert (await jam.service.quota(carol.id, jam.fake.guild.id)).used == used
    assert len(track_posts(jam.fake, stems_id)) == 1
    assert [j.id for j in await jam.store.children(job_id_of(take))] == [stems_id]


async def test_stems_command_splits_an_uploaded_file_and_a_take_by_its_id(jam):
    loop = jam.fake.attachment("loop.wav", wav_bytes(2.0), content_type="audio/wav")
    uploaded = await wait_for_take(await jam.fake.slash("stems", {"audio": loop}))
    assert len(stem_files(uploaded)) == 4
    assert (await jam.store.get_job(job_id_of(uploaded))).parent_id is None
    take = await make_take(jam)
    by_id = await wait_for_take(await jam.fake.slash("stems", {"job_id": job_id_of(take)}))
    assert (await jam.store.get_job(job_id_of(by_id))).parent_id == job_id_of(take)
    neither = await jam.fake.slash("stems", {})
    answer = await neither.wait_for_original(lambda m: "job_id" in m.content, timeout=10)
    assert answer.ephemeral


async def test_split_into_stems_menu_on_a_members_audio_and_on_a_message_without_any(jam):
    riff = jam.fake.attachment("riff.wav", wav_bytes(2.0), content_type="audio/wav")
    posted = await jam.fake.post_message("my riff", attachments=[riff], author=jam.fake.admin)
    stems = await wait_for_take(await jam.fake.message_command("Split into stems", posted))
    assert len(stem_files(stems)) == 4
    empty = await jam.fake.post_message("no audio here")
    menu = await jam.fake.message_command("Split into stems", empty)
    answer = await menu.wait_for_original(lambda m: "no audio" in m.content, timeout=10)
    assert answer.ephemeral


async def test_a_stem_button_opens_the_remix_form_with_that_stem_and_show_names_it(jam):
    take = await make_take(jam)
    stems = await split(jam, take)
    click = await jam.fake.click(stems, f"jamgen:stemmix:melody:{job_id_of(stems)}:0")
    await click.wait_for_response()
    assert click.modal is not None
    submitted = await jam.fake.submit_modal(click, modal_values(click.modal, prompt="marimba", mode="continue"))
    remix = await wait_for_take(submitted)
    job = await jam.store.get_job(job_id_of(remix))
    assert (job.mode, job.parent_id, job.params["audio_stem"]) == ("continuation", job_id_of(stems), "drums")
    show = await jam.fake.slash("show", {"job_id": job.id})
    card = await show.wait_for_original(lambda m: m.embeds, timeout=10)
    assert f"from the drums of `{job_id_of(take)}`" in str(card.embeds[0])


async def test_a_stem_prefix_in_a_reply_remixes_that_stem(jam):
    take = await make_take(jam)
    stems = await split(jam, take)
    await jam.fake.post_message(
        f"<@{jam.fake.bot_user.id}> bass: continue, add a funky clavinet", reply_to=take, mention_author=True
    )
    result = await jam.fake.wait_for_message(
        lambda m: is_take(m) and job_id_of(m) not in (job_id_of(take), job_id_of(stems)), timeout=60
    )
    job = await jam.store.get_job(job_id_of(result))
    assert job.mode == "continuation"
    assert job.prompt == "add a funky clavinet"
    assert (job.params["audio_from_job"], job.params["audio_take"]) == (job_id_of(stems), STEM_NAMES.index("bass"))


async def test_a_stem_prefix_on_a_take_without_stems_splits_it_first_then_remixes_the_stem(jam):
    take = await make_take(jam)
    await jam.fake.post_message(
        f"<@{jam.fake.bot_user.id}> drums: melody: big band brass", reply_to=take, mention_author=True
    )
    remix = await jam.fake.wait_for_message(
        lambda m: is_take(m) and "Stems of" not in m.text and job_id_of(m) != job_id_of(take),
        timeout=90,
    )
    job = await jam.store.get_job(job_id_of(remix))
    stems_job = await jam.store.get_job(job.params["audio_from_job"])
    assert (job.mode, job.params["audio_stem"], stems_job.parent_id) == ("melody", "drums", job_id_of(take))


class TestASmallUploadLimit:
    @pytest.fixture
    def fake_discord_options(self):
        return {"limits": FakeLimits(attachment_size_limit=MIB // 8)}

    async def test_stems_are_spread_over_messages_that_each_fit_never_refused(self, jam):
        take = await make_take(jam, duration=4)
        click = await jam.fake.click(take, custom_id(take, "stems"))
        first = await wait_for_take(click)
        job = await wait_state(jam.store, job_id_of(first), "delivered")
        posts = track_posts(jam.fake, job.id)
        assert len(posts) == len(job.delivered_message_ids) > 1
        assert sorted(f for post in posts for f in stem_files(post)) == sorted(
            f"{job.id}-{name}.mp3" for name in STEM_NAMES
        )
        assert all(sum(a.size for a in post.attachments) <= MIB // 8 for post in posts)


async def test_stems_that_fail_on_jamgens_side_are_refunded_told_and_can_be_asked_for_again(jam):
    take = await make_take(jam)
    used = (await jam.service.quota(jam.fake.member.id, jam.fake.guild.id)).used
    jam.engine.engine.fail_next.append(EngineError("The separator ran out of memory."))
    click = await jam.fake.click(take, custom_id(take, "stems"))
    await click.wait_until(lambda i: told(i, "failed", "refunded"), timeout=30)
    failed = await wait_state(jam.store, receipt_job_id(click), "failed")
    assert await refunded(jam.store, failed.id)
    assert (await jam.service.quota(jam.fake.member.id, jam.fake.guild.id)).used == pytest.approx(used)
    assert track_posts(jam.fake, failed.id) == []
    again = await split(jam, take)  # not answered from the failed job: split anew, charged once
    assert job_id_of(again) != failed.id
    assert [e.kind for e in await jam.store.job_ledger(job_id_of(again))] == ["debit"]


async def test_a_bounce_of_some_stems_splits_the_takes_without_stems_first_then_bounces_only_those(jam):
    take = await make_take(jam)
    asked = await jam.fake.slash("session bounce", {"job_id": job_id_of(take), "stems": "drums, bass"})
    answer = await asked.wait_for_original(lambda m: "no stems yet" in m.content, timeout=20)
    assert "Splitting 1 of them now" in answer.content
    stems_job = await jam.service.find_stems(job_id_of(take), 0)
    await wait_state(jam.store, stems_job.id, "delivered")
    again = await jam.fake.slash("session bounce", {"job_id": job_id_of(take), "stems": "drums, bass"})
    posted = await again.wait_for_message(lambda m: m.attachments and not m.ephemeral, timeout=30)
    assert "bounced the drums, bass of 1 take into" in posted.content
    assert posted.attachments[0].filename.endswith("-bounce-drums-bass.mp3")
    wrong = await jam.fake.slash("session bounce", {"job_id": job_id_of(take), "stems": "kazoo"})
    refused = await wrong.wait_for_original(lambda m: "no stem called kazoo" in m.content, timeout=10)
    assert refused.ephemeral


async def test_a_stem_prefix_in_the_remix_form_of_a_take_remixes_that_stem(jam):
    take = await make_take(jam)
    stems = await split(jam, take)
    click = await jam.fake.click(take, custom_id(take, "remix"))
    await click.wait_for_response()
    submitted = await jam.fake.submit_modal(
        click, modal_values(click.modal, prompt="vocals: a choir answers", mode="style")
    )
    job = await jam.store.get_job(job_id_of(await wait_for_take(submitted)))
    assert (job.mode, job.prompt, job.parent_id) == ("style", "a choir answers", job_id_of(stems))
    assert (job.params["audio_stem"], job.params["audio_stem_of"]) == ("vocals", job_id_of(take))
