"""The pure parts of jam sessions (prompt decoration, settings, the tree) and joining a session on submit."""

from __future__ import annotations

import pytest

from bot.discord.tree import render_tree_pages
from bot.engine.types import Mode
from bot.errors import UserInputError
from bot.service.requests import JamRequest
from bot.service.sessions import (
    beats_per_bar,
    build_tree,
    decorate_prompt,
    join_session,
    parse_bpm,
    parse_key,
    parse_time_signature,
    strip_decoration,
)
from bot.store import JobStore, NewJob

JAM = {"bpm": 100, "key": "A minor", "time_signature": "4/4"}


# ---------------------------------------------------------------------- decoration
def test_the_session_feel_is_added_as_musicgen_captions_put_it():
    assert decorate_prompt("dreamy synths", **JAM) == "dreamy synths, 100 bpm, in A minor, 4/4"
    assert decorate_prompt("dreamy synths.", **JAM) == "dreamy synths, 100 bpm, in A minor, 4/4"
    assert decorate_prompt("", **JAM) == "100 bpm, in A minor, 4/4"
    assert decorate_prompt("lofi", bpm=90) == "lofi, 90 bpm"
    assert decorate_prompt("lofi") == "lofi"


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("punk, 180 bpm", "punk, 180 bpm, in A minor, 4/4"),
        ("slow tempo ballad", "slow tempo ballad, in A minor, 4/4"),
        ("ballad in D major", "ballad in D major, 100 bpm, 4/4"),
        ("ballad, F#m", "ballad, F#m, 100 bpm, 4/4"),
        ("ballad in c sharp minor", "ballad in c sharp minor, 100 bpm, 4/4"),
        ("ballad in the key of G", "ballad in the key of G, 100 bpm, 4/4"),
        ("waltz in 3/4", "waltz in 3/4, 100 bpm, in A minor"),
        ("odd time signature jazz", "odd time signature jazz, 100 bpm, in A minor"),
        ("jig, 6/8, 120 bpm, E minor", "jig, 6/8, 120 bpm, E minor"),
    ],
)
def test_what_the_member_wrote_wins_and_is_never_doubled(prompt, expected):
    assert decorate_prompt(prompt, **JAM) == expected


def test_decorating_twice_changes_nothing():
    once = decorate_prompt("I am a dreamer, amazing pads", **JAM)
    assert once == "I am a dreamer, amazing pads, 100 bpm, in A minor, 4/4"  # "am" is not A minor
    assert decorate_prompt(once, **JAM) == once


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("A minor", "A minor"),
        ("am", "A minor"),
        ("Am", "A minor"),
        ("C#m", "C# minor"),
        ("Eb", "Eb major"),
        ("ebm", "Eb minor"),
        ("F sharp major", "F# major"),
        ("b flat min", "Bb minor"),
        ("G maj", "G major"),
        ("D", "D major"),
    ],
)
def test_keys_are_read_in_the_forms_members_type(text, key):
    assert parse_key(text) == key


def test_bad_settings_are_refused_with_a_sentence():
    for bad in ("H minor", "A dorian", "minor"):
        with pytest.raises(UserInputError, match="The key must look like"):
            parse_key(bad)
    for bad in ("4/3", "0/4", "17/4", "four four", "4"):
        with pytest.raises(UserInputError, match="time signature"):
            parse_time_signature(bad)
    with pytest.raises(UserInputError, match="between 30 and 300"):
        parse_bpm(500)
    assert parse_key("  ") is None
    assert parse_time_signature(" 6 / 8 ") == "6/8"
    assert parse_bpm(99.6) == 100


def test_bars_follow_the_time_signature():
    assert [beats_per_bar(ts) for ts in ("4/4", "3/4", "2/2", "6/8", "9/8", "12/8", "7/8", "3/8", None)] == [
        4,
        3,
        2,
        2,
        3,
        4,
        7,
        3,
        4,
    ]


# ---------------------------------------------------------------------- joining and the tree
@pytest.fixture
async def store(tmp_path):
    async with JobStore.open(tmp_path / "jamgen.db") as opened:
        yield opened


def request(channel_id: int, prompt: str = "dreamy synths", mode: Mode = Mode.TEXT, **fields) -> JamRequest:
    return JamRequest(user_id=1, guild_id=10, channel_id=channel_id, mode=mode, prompt=prompt, **fields)


async def test_a_request_in_the_thread_joins_the_open_session(store):
    session = await store.create_session(
        guild_id=10, channel_id=100, thread_id=555, owner_id=1, theme="t", model="debug", **JAM
    )
    joined, home = await join_session(store, request(555), max_prompt_length=500)
    assert joined.session_id == session.id
    assert joined.prompt == "dreamy synths, 100 bpm, in A minor, 4/4"
    assert joined.model == "debug"
    assert home == 100  # the allowed-channel check looks at the channel the jam lives in
    chosen, _ = await join_session(store, request(555, model="small"), max_prompt_length=500)
    assert chosen.model == "small"
    melody, _ = await join_session(store, request(555, mode=Mode.MELODY), max_prompt_length=500)
    assert melody.model is None  # the jam's text model cannot follow a melody: the usual choice applies
    long_prompt = "x" * 490
    kept, _ = await join_session(store, request(555, long_prompt), max_prompt_length=500)
    assert kept.prompt == long_prompt
    elsewhere, home = await join_session(store, request(100, session_id=session.id), max_prompt_length=500)
    assert elsewhere.session_id is None
    assert elsewhere.prompt == "dreamy synths"
    assert home == 100
    await store.end_session(session.id)
    after, _ = await join_session(store, request(555), max_prompt_length=500)
    assert after.session_id is None
    assert after.prompt == "dreamy synths"


async def test_the_tree_nests_children_under_parents_and_pages_when_large(store):
    session = await store.create_session(guild_id=10, channel_id=100, thread_id=556, owner_id=1, theme="t", **JAM)

    async def take(prompt: str, parent: str | None = None, user: int = 1) -> str:
        new = NewJob(
            user_id=user,
            guild_id=10,
            channel_id=556,
            mode="text" if parent is None else "continuation",
            model="debug",
            prompt=decorate_prompt(prompt, **JAM),
            params={"duration": 2},
            parent_id=parent,
            session_id=session.id,
        )
        return (await store.submit_job(new, cost=0)).id

    root = await take("root groove")
    child = await take("with drums", root, user=2)
    grandchild = await take("bigger", child, user=3)
    sibling = await take("quieter", root, user=2)
    second_root = await take("another idea")
    entries = build_tree(await store.session_jobs(session.id))
    assert [(e.job.id, e.depth) for e in entries] == [
        (root, 0),
        (child, 1),
        (grandchild, 2),
        (sibling, 1),
        (second_root, 0),
    ]
    assert entries[0].children == (child, sibling)
    [page] = render_tree_pages(session, entries)
    assert "5 takes by 3 members" in page
    assert f"`{child}` <@2> ⏩ with drums · ⏳" in page
    assert "100 bpm, in A minor" not in page.split("\n", 1)[1]  # the jam's feel is not repeated on every line
    assert strip_decoration(entries[0].job.prompt, session) == "root groove"

    for n in range(40):
        await take(f"variation number {n} with a long description of the sound " * 2, root)
    pages = render_tree_pages(session, build_tree(await store.session_jobs(session.id)), page_chars=1000)
    assert len(pages) > 2
    assert all(len(p) <= 1000 for p in pages)
    assert pages[0].splitlines()[0].endswith(f"page 1/{len(pages)}")
    listed = [line.split("`")[1] for p in pages for line in p.splitlines()[1:]]
    assert len(listed) == len(set(listed)) == 45
