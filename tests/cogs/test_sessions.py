"""Jam sessions end to end: real bot, fake Discord, debug models (docs/SESSIONS.md)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from bot.audio import encode, read_recipe
from bot.audio.arrange import REMIX_CROSSFADE_S
from tests.bot.audio.test_arrange import click_track
from tests.cogs.test_buttons import custom_id
from tests.cogs.test_remix import modal_values
from tests.harness import ffprobe_duration, job_id_of, wait_for_take, wait_state
from tests.harness import is_take as harness_is_take

FEEL = ("100 bpm", "in A minor", "4/4")


def decoded_seconds(data: bytes, tmp_path: Path) -> float:
    """Length of an MP3 as decoded (ffprobe's container duration also counts the encoder's delay and padding)."""
    path = tmp_path / "decode.mp3"
    path.write_bytes(data)
    pcm = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1", "-ar", "32000", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return len(pcm) / 2 / 32000


async def start_jam(jam, user=None, **options):
    """``/session start`` in #general; returns the jam's thread and its stored session."""
    values = {"theme": "night drive", "bpm": 100, "key": "Am", "time_signature": "4/4", "model": "debug", **options}
    interaction = await jam.fake.slash("session start", values, user=user or jam.fake.admin)
    answer = await interaction.wait_for_message(lambda m: "jam is open" in m.content, timeout=20)
    assert answer.ephemeral
    thread = jam.fake.guild.threads()[-1]
    session = await jam.store.session_for_thread(thread.id)
    assert session is not None
    return thread, session


def is_take(message, known=()):
    return harness_is_take(message) and job_id_of(message) not in known


async def delivered(jam, interaction, known=()):
    message = await wait_for_take(interaction)
    assert is_take(message, known)
    await wait_state(jam.store, job_id_of(message), "delivered")
    return message


async def generate_in(jam, thread, prompt, user, duration=2):
    options = {"prompt": prompt, "duration": duration}
    interaction = await jam.fake.slash("generate", options, user=user, channel=thread)
    return await delivered(jam, interaction)


async def remix_in(jam, take, *, mode, prompt, user):
    click = await jam.fake.click(take, custom_id(take, "remix"), user=user)
    await click.wait_for_response()
    submitted = await jam.fake.submit_modal(click, modal_values(click.modal, prompt=prompt, mode=mode), user=user)
    return await delivered(jam, submitted, known=(job_id_of(take),))


@pytest.fixture
def engine_prompts(jam, monkeypatch):
    """Every prompt the engine is asked to make (after the service decorated it)."""
    prompts: list[str] = []
    original = jam.engine.generate

    async def recording(batch, on_progress=None):
        prompts.extend(request.prompt for request in batch)
        return await original(batch, on_progress)

    monkeypatch.setattr(jam.engine, "generate", recording)
    return prompts


async def test_a_jam_of_three_members_five_takes_a_tree_and_a_bounce(jam, engine_prompts):
    alice, bob = jam.fake.admin, jam.fake.member
    carol = jam.fake.add_member("carol")
    thread, session = await start_jam(jam, user=alice)
    header = next(m for m in jam.fake.bot_messages(channel=thread) if m.embeds)
    assert header.pinned
    assert "100 bpm · A minor · 4/4" in json.dumps(header.embeds[0], ensure_ascii=False)

    # generate → continue (a reply) → extend (button) → remix (melody) → continue (remix form).
    # The debug models continue at most 4 s of audio, so the chain starts with a 1 s take.
    first = await generate_in(jam, thread, "dreamy synths", bob, duration=1)
    await jam.fake.post_message(
        f"<@{jam.fake.bot_user.id}> continue: add drums", author=carol, channel=thread, reply_to=first
    )
    second = await jam.fake.wait_for_message(lambda m: is_take(m, {job_id_of(first)}), channel=thread, timeout=60)
    await wait_state(jam.store, job_id_of(second), "delivered")
    extend = await jam.fake.click(second, custom_id(second, "extend"), user=alice)
    third = await delivered(jam, extend, known=(job_id_of(second),))
    fourth = await remix_in(jam, third, mode="melody", prompt="as a music box", user=bob)
    fifth = await remix_in(jam, fourth, mode="continue", prompt="then the drop", user=carol)
    takes = [first, second, third, fourth, fifth]
    ids = [job_id_of(m) for m in takes]
    jobs = [await jam.store.get_job(job_id) for job_id in ids]

    assert [job.mode for job in jobs] == ["text", "continuation", "continuation", "melody", "continuation"]
    assert [job.parent_id for job in jobs] == [None, *ids[:-1]]
    assert all(job.session_id == session.id for job in jobs)
    assert [job.user_id for job in jobs] == [bob.id, carol.id, alice.id, bob.id, carol.id]
    assert len(engine_prompts) == 5
    for prompt in engine_prompts:
        for part in FEEL:
            assert prompt.count(part) == 1, prompt
    assert engine_prompts[0] == "dreamy synths, 100 bpm, in A minor, 4/4"
    assert engine_prompts[3] == "as a music box, 100 bpm, in A minor, 4/4"

    # Each take's message shows its place; a parent's message learns its children.
    assert f"take #3 · from `{ids[1]}`" in jam.fake.messages[third.id].text
    await jam.fake.wait_for(lambda: f"led to `{ids[1]}`" in jam.fake.messages[first.id].text, timeout=10)

    tree = await jam.fake.slash("session tree", {}, user=carol, channel=thread)
    shown = await tree.wait_for_message(lambda m: not m.ephemeral and "night drive" in m.content, timeout=20)
    lines = shown.content.splitlines()
    assert "5 takes by 3 members" in lines[0]
    assert [line.split("`")[1] for line in lines[1:]] == ids
    assert lines[1].startswith("`")
    assert lines[2].startswith("└ ")
    assert lines[5].startswith("\u2003" * 3 + "└ ")
    assert f"`{ids[3]}` <@{bob.id}> 🎼 as a music box" in lines[4]

    bounce = await jam.fake.slash("session bounce", {}, user=alice, channel=thread)
    posted = await bounce.wait_for_message(lambda m: m.attachments and not m.ephemeral, timeout=60)
    mp3 = posted.attachments[0]
    assert mp3.filename.endswith(".mp3")
    parts = [decoded_seconds(Path(job.outputs[0]).read_bytes(), jam.tmp_path) for job in jobs]
    prompts = sum(job.params["prompt_seconds"] for job in jobs if job.mode == "continuation")
    expected = sum(parts) - prompts - REMIX_CROSSFADE_S  # one remix join
    assert decoded_seconds(mp3.data, jam.tmp_path) == pytest.approx(expected, abs=0.1)
    assert ffprobe_duration(mp3.data, jam.tmp_path) == pytest.approx(expected, abs=0.1)
    saved = jam.tmp_path / "bounce.mp3"
    saved.write_bytes(mp3.data)
    recipe = await read_recipe(saved)
    assert [part["job_id"] for part in recipe["parts"]] == ids
    assert [part["mode"] for part in recipe["parts"]] == [job.mode for job in jobs]
    assert {c["user_id"] for c in recipe["contributors"]} == {alice.id, bob.id, carol.id}
    assert {c["name"].lower() for c in recipe["contributors"]} == {"alice", "bob", "carol"}
    stored = await jam.store.get_session(session.id)
    assert stored.extra["bounce"]["message_id"] == posted.id


async def test_a_restart_mid_jam_keeps_the_session_and_its_tree_and_new_takes_join(jam):
    thread, session = await start_jam(jam)
    first = await generate_in(jam, thread, "warm pads", jam.fake.member)
    await jam.restart()
    second = await generate_in(jam, thread, "now with bass", jam.fake.admin)
    job = await jam.store.get_job(job_id_of(second))
    assert job.session_id == session.id
    assert job.prompt == "now with bass, 100 bpm, in A minor, 4/4"
    tree = await jam.fake.slash("session tree", {}, channel=thread)
    shown = await tree.wait_for_message(lambda m: not m.ephemeral and "night drive" in m.content, timeout=20)
    assert "2 takes by 2 members" in shown.content
    assert [line.split("`")[1] for line in shown.content.splitlines()[1:]] == [job_id_of(first), job.id]


async def test_the_loop_button_posts_whole_bars_of_a_120_bpm_take(jam):
    thread, _ = await start_jam(jam, bpm=120, time_signature="3/4")
    take = await generate_in(jam, thread, "metronome", jam.fake.member)
    job = await jam.store.get_job(job_id_of(take))
    # The debug model makes noise; the take's file becomes a click track with a known tempo.
    await encode(click_track(120.0, seconds=9.0), 32000, Path(job.outputs[0]), fmt="mp3", normalization="none")
    click = await jam.fake.click(take, custom_id(take, "loop"))
    posted = await click.wait_for_message(lambda m: m.attachments and not m.ephemeral, timeout=30)
    loop = posted.embeds[0]
    fields = {field["name"]: field["value"] for field in loop["fields"]}
    bars = int(fields["Length"].split()[0])
    assert fields["Time signature"] == "3/4"
    assert float(fields["Tempo"].split()[0]) == pytest.approx(120.0, rel=0.01)
    assert decoded_seconds(posted.attachments[0].data, jam.tmp_path) == pytest.approx(bars * 3 * 0.5, rel=0.01)
    assert "Loop" in {b.get("label") for b in take.buttons}


async def test_end_summarises_the_jam_counts_reactions_and_archives_the_thread(jam):
    alice, bob = jam.fake.admin, jam.fake.member
    carol = jam.fake.add_member("carol")
    thread, session = await start_jam(jam, user=alice)
    one = await generate_in(jam, thread, "idea one", bob)
    two = await generate_in(jam, thread, "idea two", carol)
    await jam.fake.react(two, "🔥", user=bob)
    await jam.fake.react(two, "🎸", user=alice)
    await jam.fake.react(one, "🔥", user=carol)
    await jam.fake.react(one, "🔥", user=jam.fake.bot_member)  # the bot's own reactions do not count

    async def counted() -> None:
        while await jam.store.reaction_counts(session.id) != {job_id_of(one): 1, job_id_of(two): 2}:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(counted(), 10)

    refused = await jam.fake.slash("session end", {}, user=bob, channel=thread)
    answer = await refused.wait_for_message(lambda m: m.ephemeral and "Only the member who started" in m.content)
    assert answer.ephemeral
    ended = await jam.fake.slash("session end", {}, user=alice, channel=thread)
    summary = await ended.wait_for_message(lambda m: not m.ephemeral and "jam is over" in m.content, timeout=20)
    assert "2 takes by 2 members" in summary.content
    assert f"<@{bob.id}>" in summary.content
    assert f"<@{carol.id}>" in summary.content
    assert f"Most-reacted take: `{job_id_of(two)}` by <@{carol.id}> (2 reactions)" in summary.content
    assert "No bounce was made" in summary.content
    await jam.fake.wait_for(lambda: thread.archived, timeout=10)

    # After the end the thread is an ordinary place again, once a member's message has woken it up
    # (Discord refuses application commands in archived threads; a post unarchives an unlocked one).
    await jam.fake.post_message("one more?", author=carol, channel=thread)
    await jam.fake.wait_for(lambda: not thread.archived, timeout=10)
    later = await generate_in(jam, thread, "after party", carol)
    job = await jam.store.get_job(job_id_of(later))
    assert job.session_id is None
    assert job.prompt == "after party"


async def test_bad_settings_make_no_thread_and_the_jam_budget_is_kept(jam):
    bad = await jam.fake.slash("session start", {"theme": "x", "key": "H minor"}, user=jam.fake.admin)
    answer = await bad.wait_for_message(lambda m: "The key must look like" in m.content, timeout=10)
    assert answer.ephemeral
    assert jam.fake.guild.threads() == []

    thread, session = await start_jam(jam, budget=1)
    refused = await jam.fake.slash("generate", {"prompt": "too long", "duration": 2}, channel=thread)
    answer = await refused.wait_for_message(lambda m: "budget" in m.content, timeout=10)
    assert answer.ephemeral
    assert await jam.store.session_jobs(session.id) == []
    denied = await jam.fake.slash("session budget", {"seconds": 60}, user=jam.fake.member, channel=thread)
    await denied.wait_for_message(lambda m: "Only the member who started" in m.content, timeout=10)
    raised = await jam.fake.slash("session budget", {"seconds": 60}, user=jam.fake.admin, channel=thread)
    await raised.wait_for_message(lambda m: "may use 60 s" in m.content, timeout=10)
    take = await generate_in(jam, thread, "fits now", jam.fake.member)
    assert (await jam.store.get_job(job_id_of(take))).session_id == session.id
    outside = await jam.fake.slash("session tree", {})
    await outside.wait_for_message(lambda m: "inside a jam's thread" in m.content, timeout=10)


async def test_a_take_finished_after_the_end_is_posted_without_touching_the_archived_thread(jam):
    alice = jam.fake.admin
    thread, session = await start_jam(jam, user=alice)
    first = await generate_in(jam, thread, "idea one", alice)
    jam.engine.open.clear()
    click = await jam.fake.click(first, custom_id(first, "reroll"), user=alice)
    await click.wait_for_original(lambda m: m.custom_ids, timeout=10)  # queued behind the closed gate
    ended = await jam.fake.slash("session end", {}, user=alice, channel=thread)
    await ended.wait_for_message(lambda m: not m.ephemeral and "jam is over" in m.content, timeout=20)
    await jam.fake.wait_for(lambda: thread.archived, timeout=10)
    jam.engine.open.set()
    late = await delivered(jam, click, known=(job_id_of(first),))
    assert late.channel_id == thread.id
    job = await jam.store.get_job(job_id_of(late))
    assert job.session_id == session.id
    assert job.parent_id == job_id_of(first)
    assert job.id in {j.id for j in await jam.store.session_jobs(session.id)}, "its place in the jam is kept"
    assert not jam.fake.client_errors(code=50083), "nothing was edited, reacted to or pinned while archived"
