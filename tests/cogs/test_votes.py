"""Best-take polls of a jam end to end: /session vote, members' votes, expiry or /session endvote, restarts.

The real bot against the fake Discord, whose polls follow resources/poll.mdx (tests/fakediscord/polls.py);
the fake engine makes the takes.
"""

from __future__ import annotations

import asyncio

from tests.fakediscord.polls import POLL_RESULT
from tests.harness import job_id_of, told, wait_for_take, wait_state

HOUR = 3600


async def start_jam(jam, user):
    """``/session start`` in #general; the jam's thread and its stored session."""
    values = {"theme": "night drive", "bpm": 100, "model": "debug"}
    interaction = await jam.fake.slash("session start", values, user=user)
    await interaction.wait_for_message(lambda m: "jam is open" in m.content, timeout=20)
    thread = jam.fake.guild.threads()[-1]
    session = await jam.store.session_for_thread(thread.id)
    assert session is not None
    return thread, session


async def generate_in(jam, thread, prompt, user):
    """A 1-s take made in the jam's thread, once delivered."""
    interaction = await jam.fake.slash("generate", {"prompt": prompt, "duration": 1}, user=user, channel=thread)
    message = await wait_for_take(interaction)
    await wait_state(jam.store, job_id_of(message), "delivered")
    return message


def poll_messages(jam, thread):
    return [jam.fake.messages[mid] for mid, poll in jam.fake.polls.items() if poll.channel_id == thread.id]


def announcements(jam, thread):
    return [
        m
        for m in jam.fake.bot_messages(channel=thread)
        if "best-take vote closed" in m.content or "🏆 Best take" in m.content
    ]


async def react_counted(jam, session, expected):
    async def counted() -> None:
        while await jam.store.reaction_counts(session.id) != expected:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(counted(), 10)


async def start_vote(jam, thread, user, **options):
    interaction = await jam.fake.slash("session vote", options, user=user, channel=thread)
    await interaction.wait_until(lambda i: told(i, "Poll posted"), timeout=20)
    [message] = poll_messages(jam, thread)
    return message


async def settled(jam) -> None:
    """Every event and request the bot is busy with has been handled."""
    assert await jam.fake.wait_idle(quiet=0.2, timeout=10)


async def test_a_vote_of_three_takes_closes_at_its_end_and_the_winner_is_everywhere(jam):
    alice, bob = jam.fake.admin, jam.fake.member
    carol = jam.fake.add_member("carol")
    thread, session = await start_jam(jam, user=alice)
    one = await generate_in(jam, thread, "first idea", bob)
    two = await generate_in(jam, thread, "second idea", carol)
    three = await generate_in(jam, thread, "third idea", alice)
    ids = [job_id_of(m) for m in (one, two, three)]
    await jam.fake.react(two, "🔥", user=bob)
    await jam.fake.react(two, "🎸", user=alice)
    await jam.fake.react(three, "🔥", user=carol)
    await react_counted(jam, session, {ids[1]: 2, ids[2]: 1})

    message = await start_vote(jam, thread, alice, hours=2)
    poll = jam.fake.polls[message.id]
    assert [a["text"].split(" · ")[0] for a in poll.answers] == [ids[1], ids[2], ids[0]]  # most reacted first
    assert poll.answers[0]["text"].lower().startswith(f"{ids[1]} · carol · second idea")
    assert all(len(a["text"]) <= 55 for a in poll.answers)
    assert "night drive" in poll.question
    assert not poll.allow_multiselect

    await jam.fake.vote(message, 2, user=bob)
    await jam.fake.vote(message, 2, user=carol)
    await jam.fake.vote(message, 1, user=alice)
    jam.fake.advance(2 * HOUR + 1)
    shown = await jam.fake.wait_for_message(lambda m: "🏆 Best take" in m.content, channel=thread, timeout=10)
    assert f"`{ids[2]}` by <@{alice.id}> with 2 votes" in shown.content
    await jam.fake.wait_for(lambda: any(m.type == POLL_RESULT for m in jam.fake.messages.values()))
    await settled(jam)
    assert len(announcements(jam, thread)) == 1  # MESSAGE_UPDATE and POLL_RESULT both arrived; one announcement

    tree = await jam.fake.slash("session tree", {}, user=bob, channel=thread)
    lines = (await tree.wait_for_message(lambda m: not m.ephemeral and "night drive" in m.content, timeout=20)).content
    marked = [line for line in lines.splitlines() if "🏆" in line]
    assert len(marked) == 1
    assert f"`{ids[2]}`" in marked[0]

    end = await jam.fake.slash("session end", {}, user=alice, channel=thread)
    summary = await end.wait_for_message(lambda m: not m.ephemeral and "jam is over" in m.content, timeout=20)
    assert f"Best take by vote: `{ids[2]}` by <@{alice.id}> with 2 votes" in summary.content


async def test_endvote_closes_early_and_refusals_are_private(jam):
    alice, bob = jam.fake.admin, jam.fake.member
    nowhere = await jam.fake.slash("session vote", {}, user=alice)
    await nowhere.wait_until(lambda i: told(i, "only works inside a jam's thread"), timeout=20)
    thread, _ = await start_jam(jam, user=alice)
    one = await generate_in(jam, thread, "solo", bob)
    too_few = await jam.fake.slash("session vote", {}, user=alice, channel=thread)
    await too_few.wait_until(lambda i: told(i, "at least 2 finished takes"), timeout=20)
    two = await generate_in(jam, thread, "duo", alice)
    not_starter = await jam.fake.slash("session vote", {}, user=bob, channel=thread)
    await not_starter.wait_until(lambda i: told(i, "Only the member who started this jam"), timeout=20)

    message = await start_vote(jam, thread, alice)
    again = await jam.fake.slash("session vote", {}, user=alice, channel=thread)
    await again.wait_until(lambda i: told(i, "already has a best-take poll open"), timeout=20)
    assert len(poll_messages(jam, thread)) == 1
    await jam.fake.vote(message, 1, user=bob)  # answer 1: the earlier take (no reactions anywhere)

    end = await jam.fake.slash("session endvote", {}, user=alice, channel=thread)
    await end.wait_until(lambda i: told(i, "Poll ended"), timeout=20)
    shown = await jam.fake.wait_for_message(lambda m: "🏆 Best take" in m.content, channel=thread, timeout=10)
    assert f"`{job_id_of(one)}` by <@{bob.id}> with 1 vote " in shown.content
    await settled(jam)
    assert len(announcements(jam, thread)) == 1
    assert all(m.ephemeral for i in (nowhere, too_few, not_starter, again) for m in i.messages)
    none_open = await jam.fake.slash("session endvote", {}, user=alice, channel=thread)
    await none_open.wait_until(lambda i: told(i, "no best-take poll open"), timeout=20)
    assert job_id_of(two) in jam.fake.polls[message.id].answers[1]["text"]


async def test_a_poll_that_closed_while_jamgen_was_down_is_announced_once_after_the_restart(jam):
    alice, bob = jam.fake.admin, jam.fake.member
    thread, _ = await start_jam(jam, user=alice)
    await generate_in(jam, thread, "take a", bob)
    b = await generate_in(jam, thread, "take b", alice)
    message = await start_vote(jam, thread, alice, hours=1)
    await jam.fake.vote(message, 2, user=bob)

    await jam.shutdown()
    jam.fake.advance(HOUR + 1)
    assert [p.message_id for p in await jam.fake.expire_polls()] in ([message.id], [])
    assert jam.fake.polls[message.id].finalized  # Discord closed it; the bot heard nothing
    await jam.boot()
    shown = await jam.fake.wait_for_message(lambda m: "🏆 Best take" in m.content, channel=thread, timeout=20)
    assert f"`{job_id_of(b)}`" in shown.content
    await jam.restart()
    await settled(jam)
    assert len(announcements(jam, thread)) == 1
