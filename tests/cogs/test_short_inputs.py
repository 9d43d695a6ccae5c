"""Short or long conditioning audio through the fake Discord: fitted before charging, told on the receipt, delivered.

A style clip shorter than ``excerpt_length:`` is heard whole (not charged, queued and then refunded because the
engine refuses it); audio to continue that does not fit the model's window is cut to the part that fits.
"""

from __future__ import annotations

import pytest

from tests.cogs.test_buttons import make_take
from tests.harness import ffprobe_duration, is_take, job_id_of, wait_state, wav_bytes


async def test_style_with_a_2_s_clip_is_heard_whole_charged_and_delivered(jam):
    clip = jam.fake.attachment("two-seconds.wav", wav_bytes(2.0, freq=220), content_type="audio/wav")
    interaction = await jam.fake.slash("style", {"audio": clip, "prompt": "same vibe", "duration": 2})
    message = await jam.fake.wait_for_message(is_take, timeout=60)
    receipt = next(v.content for v in interaction.original.versions if "Queued" in v.content)
    assert "the style model listens to the 2.0 s it has (`excerpt_length:` asked for 3 s)" in receipt
    job = await jam.store.get_job(job_id_of(message))
    assert (job.mode, job.model) == ("style", "debug-style")
    assert job.params["excerpt_length"] == 2.0
    await wait_state(jam.store, job.id, "delivered")
    status = await jam.service.quota(jam.fake.member.id, jam.fake.guild.id)
    assert status.used == pytest.approx(2.0)  # charged (2 s at the debug model's weight) and not refunded


async def test_a_style_reply_to_a_short_take_is_heard_whole_and_delivered(jam):
    take = await make_take(jam)  # a 2 s take
    reply = await jam.fake.post_message(f"<@{jam.fake.bot_user.id}> style: but jazzier", reply_to=take)
    receipt = await jam.fake.wait_for_message(
        lambda m: m.reference is not None and "Queued" in m.content and m.id != reply.id, timeout=30
    )
    # A reply has no options to name: the receipt says what happened in its own words.
    assert "the style model listens to the 2.0 s it has (it listens to 3 s of a longer one)" in receipt.content
    result = await jam.fake.wait_for_message(lambda m: is_take(m) and job_id_of(m) != job_id_of(take), timeout=60)
    job = await jam.store.get_job(job_id_of(result))
    assert (job.mode, job.parent_id) == ("style", job_id_of(take))
    assert job.params["excerpt_length"] == 2.0
    await wait_state(jam.store, job.id, "delivered")


async def test_continue_of_a_file_longer_than_the_window_keeps_the_last_seconds_that_fit(jam):
    source = jam.fake.attachment("six.wav", wav_bytes(6.0), content_type="audio/wav")
    interaction = await jam.fake.slash("continue", {"audio": source, "prompt": "and then", "duration": 2})
    message = await jam.fake.wait_for_message(is_take, timeout=60)
    receipt = next(v.content for v in interaction.original.versions if "Queued" in v.content)
    assert "continues from the last 3.0 s of your 6.0 s" in receipt
    job = await jam.store.get_job(job_id_of(message))
    assert job.params["prompt_seconds"] == pytest.approx(3.0, abs=0.05)
    mp3 = next(a for a in message.attachments if a.filename.endswith(".mp3"))
    assert ffprobe_duration(mp3.data, jam.tmp_path) == pytest.approx(5.0, abs=0.15)
    await wait_state(jam.store, job.id, "delivered")
