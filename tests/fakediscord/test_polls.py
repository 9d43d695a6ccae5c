"""Polls as the fake serves them (resources/poll.mdx, resources/message.mdx, events/gateway-events.mdx),
seen through a real discord.py bot: what Discord accepts and refuses, votes, expiry, End Poll and the voters."""

from __future__ import annotations

import datetime as dt
from typing import Any

import discord
import pytest
from discord.http import Route

from tests.fakediscord import FakeDiscord
from tests.fakediscord.minibot import MiniBot
from tests.fakediscord.permissions import SEND_POLLS
from tests.fakediscord.polls import POLL_RESULT, FakePoll, PollVoteError


class PollBot(MiniBot):
    """Remembers poll votes and message updates."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.votes: list[tuple[str, int, int]] = []
        self.updates: list[dict[str, Any]] = []

    async def on_raw_poll_vote_add(self, payload: discord.RawPollVoteActionEvent) -> None:
        self.votes.append(("add", payload.user_id, payload.answer_id))

    async def on_raw_poll_vote_remove(self, payload: discord.RawPollVoteActionEvent) -> None:
        self.votes.append(("remove", payload.user_id, payload.answer_id))

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        self.updates.append(payload.data)


def poll_body(**changes: Any) -> dict[str, Any]:
    poll: dict[str, Any] = {
        "question": {"text": "Best take?"},
        "answers": [{"poll_media": {"text": "one"}}, {"poll_media": {"text": "two"}}],
        "duration": 24,
        "allow_multiselect": False,
        "layout_type": 1,
    }
    poll.update(changes)
    return {"poll": poll}


async def post(bot: discord.Client, fake: FakeDiscord, body: dict[str, Any]) -> Any:
    route = Route("POST", "/channels/{channel_id}/messages", channel_id=fake.channel.id)
    return await bot.http.request(route, json=body)


async def started(fake: FakeDiscord, start_bot: Any, **options: Any) -> PollBot:
    bot = PollBot(sync=False, **options)
    await start_bot(bot)
    return bot


async def test_a_poll_is_posted_and_served_with_its_answers_expiry_and_results(fake_discord, start_bot):
    bot = await started(fake_discord, start_bot)
    poll = discord.Poll("Best take?", duration=dt.timedelta(hours=5))
    poll.add_answer(text="one")
    poll.add_answer(text="two")
    sent = await bot.get_channel(fake_discord.channel.id).send(poll=poll)

    assert sent.poll is not None
    assert [a.id for a in sent.poll.answers] == [1, 2]  # answer ids count from 1
    expected = fake_discord.clock.utcnow() + dt.timedelta(hours=5)
    assert abs((sent.poll.expires_at - expected).total_seconds()) < 5
    assert not sent.poll.is_finalised()
    fetched = await bot.http.get_message(fake_discord.channel.id, sent.id)
    assert fetched["poll"]["results"] == {"is_finalized": False, "answer_counts": []}
    assert fetched["poll"]["question"] == {"text": "Best take?"}


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"question": {"text": "?" * 301}}, "poll.question.text"),
        ({"question": {}}, "poll.question.text"),
        ({"answers": [{"poll_media": {"text": "x" * 56}}]}, "poll.answers.0.poll_media.text"),
        ({"answers": []}, "poll.answers"),
        ({"answers": [{"poll_media": {"text": str(n)}} for n in range(11)]}, "poll.answers"),
        ({"duration": 0}, "poll.duration"),
        ({"duration": 769}, "poll.duration"),
        ({"duration": 1.5}, "poll.duration"),
        ({"layout_type": 2}, "poll.layout_type"),
    ],
)
async def test_a_poll_that_breaks_the_documented_limits_is_refused(fake_discord, start_bot, changes, where):
    bot = await started(fake_discord, start_bot)
    with pytest.raises(discord.HTTPException) as refused:
        await post(bot, fake_discord, poll_body(**changes))
    assert (refused.value.status, refused.value.code) == (400, 50035)
    assert f"In {where}" in refused.value.text
    assert fake_discord.polls == {}


async def test_limits_at_their_edge_are_accepted(fake_discord, start_bot):
    bot = await started(fake_discord, start_bot)
    answers = [{"poll_media": {"text": "x" * 55}} for _ in range(10)]
    data = await post(bot, fake_discord, poll_body(question={"text": "?" * 300}, answers=answers, duration=768))
    assert len(data["poll"]["answers"]) == 10


async def test_a_poll_with_components_v2_is_refused(fake_discord, start_bot):
    bot = await started(fake_discord, start_bot)
    with pytest.raises(discord.HTTPException) as refused:
        await post(bot, fake_discord, {**poll_body(), "flags": 1 << 15})
    assert (refused.value.status, refused.value.code) == (400, 50035)
    assert "In poll" in refused.value.text


async def test_a_poll_needs_send_polls(fake_discord, start_bot):
    fake_discord.channel.set_overwrite(fake_discord.bot_member, deny=SEND_POLLS)
    bot = await started(fake_discord, start_bot)
    with pytest.raises(discord.Forbidden) as refused:
        await post(bot, fake_discord, poll_body())
    assert (refused.value.status, refused.value.code) == (403, 50013)


async def test_a_poll_message_cannot_be_edited(fake_discord, start_bot):
    bot = await started(fake_discord, start_bot)
    data = await post(bot, fake_discord, {**poll_body(), "content": "vote!"})
    route = Route("PATCH", "/channels/{c}/messages/{m}", c=fake_discord.channel.id, m=int(data["id"]))
    with pytest.raises(discord.HTTPException) as refused:
        await bot.http.request(route, json={"content": "changed"})
    assert (refused.value.status, refused.value.code) == (400, 520003)


async def test_votes_reach_a_bot_with_the_polls_intent_and_count(fake_discord, start_bot):
    bot = await started(fake_discord, start_bot)
    data = await post(bot, fake_discord, poll_body())
    message = fake_discord.messages[int(data["id"])]
    carol = fake_discord.add_member("carol")
    await fake_discord.vote(message, 2)
    await fake_discord.vote(message, 2, user=carol)
    await fake_discord.vote(message, 1, user=fake_discord.admin)
    await fake_discord.unvote(message, 1, user=fake_discord.admin)
    with pytest.raises(PollVoteError):  # one answer per member unless allow_multiselect
        await fake_discord.vote(message, 1)
    await fake_discord.wait_for(lambda: len(bot.votes) == 4)
    bob = fake_discord.member.user.id
    assert bot.votes[0] == ("add", bob, 2)
    assert bot.votes[-1] == ("remove", fake_discord.admin.user.id, 1)
    counts = (await bot.http.get_message(fake_discord.channel.id, message.id))["poll"]["results"]["answer_counts"]
    assert counts == [{"id": 2, "count": 2, "me_voted": False}]


async def test_votes_do_not_reach_a_bot_without_the_polls_intent(fake_discord, start_bot):
    intents = discord.Intents.default()
    intents.polls = False
    bot = await started(fake_discord, start_bot, intents=intents)
    data = await post(bot, fake_discord, poll_body())
    message = fake_discord.messages[int(data["id"])]
    await fake_discord.vote(message, 1)
    await fake_discord.react(message, "🔥")  # a later event: once it arrived, a vote event would have too
    await fake_discord.wait_for(lambda: bot.seen_reactions)
    assert bot.votes == []
    assert fake_discord.polls[message.id].count(1) == 1


async def test_at_its_expiry_the_poll_is_finalized_updated_and_a_result_message_posted(fake_discord, start_bot):
    bot = await started(fake_discord, start_bot)
    data = await post(bot, fake_discord, poll_body(duration=2))
    message = fake_discord.messages[int(data["id"])]
    await fake_discord.vote(message, 2)
    fake_discord.advance(3600)
    assert await fake_discord.expire_polls() == []  # not yet
    fake_discord.advance(3601)
    await fake_discord.wait_for(lambda: any(m.type == POLL_RESULT for m in fake_discord.messages.values()))
    await fake_discord.wait_for(lambda: bot.updates)
    assert bot.updates[-1]["poll"]["results"]["is_finalized"] is True
    result = next(m for m in fake_discord.messages.values() if m.type == POLL_RESULT)
    assert result.reference["message_id"] == str(message.id)
    assert result.author.id == fake_discord.bot_user.id
    assert fake_discord.bot_user.id in result.mention_ids
    seen = await bot.http.get_message(fake_discord.channel.id, result.id)
    assert seen["embeds"][0]["type"] == "poll_result"
    fields = {f["name"]: f["value"] for f in seen["embeds"][0]["fields"]}
    assert (fields["victor_answer_id"], fields["victor_answer_votes"], fields["total_votes"]) == ("2", "1", "1")
    with pytest.raises(PollVoteError):
        await fake_discord.vote(message, 1, user=fake_discord.admin)
    with pytest.raises(discord.HTTPException) as refused:
        await bot.http.end_poll(fake_discord.channel.id, message.id)
    assert (refused.value.status, refused.value.code) == (400, 520001)


async def test_end_poll_finalizes_the_bots_own_poll_only(fake_discord, start_bot):
    bot = await started(fake_discord, start_bot)
    data = await post(bot, fake_discord, poll_body())
    ended = await bot.http.end_poll(fake_discord.channel.id, int(data["id"]))
    assert ended["poll"]["results"]["is_finalized"] is True
    await fake_discord.wait_for(lambda: bot.updates)

    plain = await fake_discord.post_message("no poll here")
    with pytest.raises(discord.HTTPException) as refused:
        await bot.http.end_poll(fake_discord.channel.id, plain.id)
    assert (refused.value.status, refused.value.code) == (400, 520006)

    theirs = await fake_discord.post_message("a member's poll")
    fake_discord.polls[theirs.id] = FakePoll(
        message_id=theirs.id,
        channel_id=theirs.channel_id,
        author_id=theirs.author.id,
        question="theirs",
        answers=[{"text": "a"}, {"text": "b"}],
        expiry=fake_discord.clock.utcnow() + dt.timedelta(hours=1),
    )
    with pytest.raises(discord.Forbidden) as forbidden:
        await bot.http.end_poll(fake_discord.channel.id, theirs.id)
    assert (forbidden.value.status, forbidden.value.code) == (403, 50005)


async def test_answer_voters_lists_who_voted_within_the_limit(fake_discord, start_bot):
    bot = await started(fake_discord, start_bot)
    data = await post(bot, fake_discord, poll_body())
    message = fake_discord.messages[int(data["id"])]
    await fake_discord.vote(message, 1)
    await fake_discord.vote(message, 1, user=fake_discord.admin)
    voters = await bot.http.get_poll_answer_voters(fake_discord.channel.id, message.id, 1, limit=1)
    assert len(voters["users"]) == 1
    every = await bot.http.get_poll_answer_voters(fake_discord.channel.id, message.id, 1)
    assert {int(u["id"]) for u in every["users"]} == {fake_discord.member.user.id, fake_discord.admin.user.id}
    with pytest.raises(discord.HTTPException) as refused:
        await bot.http.get_poll_answer_voters(fake_discord.channel.id, message.id, 1, limit=101)
    assert (refused.value.status, refused.value.code) == (400, 50035)
