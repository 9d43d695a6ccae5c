"""Polls in the fake, as resources/poll.mdx and resources/message.mdx describe them.

A bot creates a poll with Create Message (``poll``: the Poll Create Request object); the fake checks it as
Discord does, keeps it by message id (``fake.polls``) and serves it in every payload of that message, with
its ``results``. Members vote through :class:`PollActions` (``fake.vote`` / ``fake.unvote``), which sends
MESSAGE_POLL_VOTE_ADD/REMOVE to a bot with the GUILD_MESSAGE_POLLS intent. At its expiry (the test moves the
fake clock with ``fake.advance``; ``await fake.expire_polls()`` waits for it) or on End Poll the poll is
finalized: ``results.is_finalized`` becomes true, MESSAGE_UPDATE is sent and Discord's POLL_RESULT message
(type 46, a ``poll_result`` embed) is posted. The REST routes are in rest_polls.py.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from tests.fakediscord import guards
from tests.fakediscord.model import INTENT_GUILD_MESSAGES, FakeChannel, FakeMember, iso
from tests.fakediscord.permissions import SEND_POLLS, require
from tests.fakediscord.records import FakeMessage
from tests.fakediscord.rules import DiscordError, FormErrors

# docs: events/gateway.mdx "Gateway Intents": GUILD_MESSAGE_POLLS (1 << 24) carries the vote events.
INTENT_GUILD_MESSAGE_POLLS = 1 << 24
# docs: resources/message.mdx "Message Types": POLL_RESULT 46.
POLL_RESULT = 46
# docs: topics/opcodes-and-status-codes.mdx "JSON Error Codes".
POLL_EXPIRED = 520001
CANNOT_EDIT_POLL = 520003
CANNOT_EXPIRE_NON_POLL = 520006
CANNOT_EDIT_OTHERS_MESSAGE = 50005
# docs: resources/poll.mdx: question text 300, answer text 55, up to 10 answers, duration up to 32 days
# (768 hours, openapi.json PollCreateRequest: minimum 1), default 24; layout type 1 (DEFAULT).
MAX_QUESTION = 300
MAX_ANSWER = 55
MAX_ANSWERS = 10
MAX_HOURS = 768
DEFAULT_HOURS = 24
DEFAULT_LAYOUT = 1


class PollVoteError(Exception):
    """A test asked a member to vote where Discord's client would not let them."""


@dataclass
class FakePoll:
    """A poll on a message: its answers (numbered from 1), expiry, votes per answer and whether it is final."""

    message_id: int
    channel_id: int
    author_id: int
    question: str
    answers: list[dict[str, Any]]
    expiry: dt.datetime
    allow_multiselect: bool = False
    layout_type: int = DEFAULT_LAYOUT
    votes: dict[int, list[int]] = field(default_factory=dict)
    finalized: bool = False

    def count(self, answer_id: int) -> int:
        """Votes on one answer."""
        return len(self.votes.get(answer_id, []))

    def payload(self, viewer_id: int) -> dict[str, Any]:
        """The poll object (resources/poll.mdx "Poll Object") as ``viewer_id`` sees it."""
        return {
            "question": {"text": self.question},
            "answers": [{"answer_id": n, "poll_media": media} for n, media in enumerate(self.answers, start=1)],
            "expiry": iso(self.expiry),
            "allow_multiselect": self.allow_multiselect,
            "layout_type": self.layout_type,
            # docs: resources/poll.mdx: answers without votes may be left out of answer_counts.
            "results": {
                "is_finalized": self.finalized,
                "answer_counts": [
                    {"id": n, "count": self.count(n), "me_voted": viewer_id in self.votes.get(n, [])}
                    for n in range(1, len(self.answers) + 1)
                    if self.count(n)
                ],
            },
        }

    def result_embed(self) -> dict[str, Any]:
        """The ``poll_result`` embed of the POLL_RESULT message (resources/message.mdx "Poll Result Embed Fields")."""
        total = sum(self.count(n) for n in range(1, len(self.answers) + 1))
        top = max((self.count(n) for n in range(1, len(self.answers) + 1)), default=0)
        fields = [
            {"name": "poll_question_text", "value": self.question},
            {"name": "victor_answer_votes", "value": str(top)},
            {"name": "total_votes", "value": str(total)},
        ]
        winners = [n for n in range(1, len(self.answers) + 1) if top and self.count(n) == top]
        if len(winners) == 1:  # a tie has no victor
            fields += [
                {"name": "victor_answer_id", "value": str(winners[0])},
                {"name": "victor_answer_text", "value": str(self.answers[winners[0] - 1].get("text") or "")},
            ]
        return {"type": "poll_result", "fields": [{**f, "inline": False} for f in fields]}


def hours_of(value: Any) -> float | None:
    """A duration as a number of hours (discord.py sends 24.0), or None when it is not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def validate_poll(payload: dict[str, Any]) -> None:
    """Raise Discord's 400 for a Poll Create Request that breaks resources/poll.mdx's rules."""
    poll = payload.get("poll")
    if poll is None:
        return
    errors = FormErrors(["poll"])
    if not isinstance(poll, dict):
        errors.add([], "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
        errors.raise_if_any()
    question = (poll.get("question") or {}).get("text") if isinstance(poll.get("question"), dict) else None
    if not question:
        errors.add(["question", "text"], "BASE_TYPE_REQUIRED", "This field is required")
    elif len(question) > MAX_QUESTION:
        errors.add(["question", "text"], "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_QUESTION} or fewer in length.")
    answers = poll.get("answers")
    if not isinstance(answers, list) or not 1 <= len(answers) <= MAX_ANSWERS:
        errors.add(["answers"], "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_ANSWERS} in length.")
    else:
        for n, answer in enumerate(answers):
            text = ((answer or {}).get("poll_media") or {}).get("text")
            if not text:
                errors.add(["answers", n, "poll_media", "text"], "BASE_TYPE_REQUIRED", "This field is required")
            elif len(text) > MAX_ANSWER:
                errors.add(
                    ["answers", n, "poll_media", "text"],
                    "BASE_TYPE_MAX_LENGTH",
                    f"Must be {MAX_ANSWER} or fewer in length.",
                )
    if poll.get("duration") is not None:
        hours = hours_of(poll["duration"])
        if hours is None or not hours.is_integer():
            errors.add(["duration"], "NUMBER_TYPE_COERCE", f'Value "{poll["duration"]}" is not int.')
        elif hours < 1:
            errors.add(["duration"], "NUMBER_TYPE_MIN", "int value should be greater than or equal to 1.")
        elif hours > MAX_HOURS:
            errors.add(["duration"], "NUMBER_TYPE_MAX", f"int value should be less than or equal to {MAX_HOURS}.")
    if poll.get("layout_type") not in (None, DEFAULT_LAYOUT):
        errors.add(["layout_type"], "ENUM_TYPE_COERCE", f'Value "{poll["layout_type"]}" is not a valid enum value.')
    # A poll with IS_COMPONENTS_V2 is refused by layout_rules.check_legacy_fields (resources/message.mdx).
    errors.raise_if_any()


class PollActions:
    """Mixed into :class:`FakeDiscord`: polls on messages, members' votes, expiry and finalizing."""

    polls: dict[int, FakePoll]

    def prepare_poll(self, channel: FakeChannel, payload: dict[str, Any]) -> int | None:
        """Check a create's ``poll`` and keep it under a new message id (returned; None without a poll)."""
        if payload.get("poll") is None:
            return None
        validate_poll(payload)
        # docs: topics/permissions.mdx SEND_POLLS: sending a poll needs it (403 50013 Missing Permissions).
        require(guards.bot_bits(self, channel), SEND_POLLS)
        poll = payload["poll"]
        message_id = self.ids.next()
        hours = hours_of(poll.get("duration")) or DEFAULT_HOURS
        self.polls[message_id] = FakePoll(
            message_id=message_id,
            channel_id=channel.id,
            author_id=self.bot_user.id,
            question=poll["question"]["text"],
            answers=[dict(answer["poll_media"]) for answer in poll["answers"]],
            expiry=self.clock.utcnow() + dt.timedelta(hours=hours),
            allow_multiselect=bool(poll.get("allow_multiselect")),
            layout_type=int(poll.get("layout_type") or DEFAULT_LAYOUT),
        )
        return message_id

    def add_poll_fields(self, message: FakeMessage, body: dict[str, Any]) -> None:
        """A message payload's poll (with its results) and a POLL_RESULT's ``poll_result`` embed type."""
        poll = self.polls.get(message.id)
        if poll is not None:
            body["poll"] = poll.payload(self.bot_user.id)
        if message.type == POLL_RESULT:
            for embed in body.get("embeds") or []:
                embed["type"] = "poll_result"

    def check_poll_edit(self, message: FakeMessage) -> None:
        """docs: resources/poll.mdx "After creation, the poll message cannot be edited." (520003)."""
        if message.id in self.polls:
            raise DiscordError(400, CANNOT_EDIT_POLL, "Cannot edit a poll message")

    def poll_of(self, message: FakeMessage) -> FakePoll:
        """The poll on a message (KeyError when it has none)."""
        return self.polls[message.id]

    async def vote(
        self, message: FakeMessage, answer_id: int, *, user: FakeMember | None = None, add: bool = True
    ) -> None:
        """A member votes (or with ``add=False`` takes the vote back) on an answer: MESSAGE_POLL_VOTE_ADD/REMOVE.

        Raises:
            PollVoteError: the poll ended, the answer does not exist, or a second answer of a single-choice poll.
        """
        await self.wait_until_ready()
        poll = self.polls[message.id]
        member = user or self.member
        if poll.finalized or poll.expiry <= self.clock.utcnow():
            raise PollVoteError(f"poll {message.id} has ended")  # docs: error 520001 "Poll expired"
        if not 1 <= answer_id <= len(poll.answers):
            raise PollVoteError(f"poll {message.id} has no answer {answer_id}")
        voters = poll.votes.setdefault(answer_id, [])
        if add:
            if member.user.id in voters:
                return
            if not poll.allow_multiselect and any(member.user.id in v for v in poll.votes.values()):
                raise PollVoteError(f"{member.user.username} voted on poll {message.id} already (one answer only)")
            voters.append(member.user.id)
        elif member.user.id in voters:
            voters.remove(member.user.id)
        else:
            return
        # docs: events/gateway-events.mdx "Message Poll Vote Add/Remove"; events/gateway.mdx GUILD_MESSAGE_POLLS.
        if self.gateway.wants(INTENT_GUILD_MESSAGE_POLLS):
            event = {
                "user_id": str(member.user.id),
                "channel_id": str(message.channel_id),
                "message_id": str(message.id),
                "guild_id": str(message.guild_id),
                "answer_id": answer_id,
            }
            await self.gateway.dispatch("MESSAGE_POLL_VOTE_ADD" if add else "MESSAGE_POLL_VOTE_REMOVE", event)
        self.notify()

    async def unvote(self, message: FakeMessage, answer_id: int, *, user: FakeMember | None = None) -> None:
        """A member takes a vote back (MESSAGE_POLL_VOTE_REMOVE)."""
        await self.vote(message, answer_id, user=user, add=False)

    def advance(self, seconds: float) -> None:
        """Move the fake clock (see ``WorldBuilding.advance``); polls that expired are finalized in the background."""
        super().advance(seconds)  # type: ignore[misc]
        if any(not p.finalized and p.expiry <= self.clock.utcnow() for p in self.polls.values()):
            self._spawn(self.expire_polls())

    async def expire_polls(self) -> list[FakePoll]:
        """Finalize every poll whose expiry has passed on the fake clock; returns them."""
        due = [p for p in self.polls.values() if not p.finalized and p.expiry <= self.clock.utcnow()]
        for poll in due:
            await self.finalize_poll(poll)
        return due

    async def finalize_poll(self, poll: FakePoll) -> None:
        """The final tally: ``is_finalized``, MESSAGE_UPDATE, then the POLL_RESULT message (once)."""
        if poll.finalized:
            return
        poll.finalized = True
        message = self.messages[poll.message_id]
        if message.deleted:
            return
        message.snapshot()
        if self.gateway.wants(INTENT_GUILD_MESSAGES):
            await self.gateway.dispatch("MESSAGE_UPDATE", self.bot_view(message, gateway=True))
        channel = self.find_channel(poll.channel_id)
        assert channel is not None
        # docs: resources/message.mdx "Poll result messages": same channel, author of the poll (mentioned),
        # message_reference to the poll, a poll_result embed.
        await self.store_message(
            channel=channel,
            author=self.users[poll.author_id],
            payload={"embeds": [poll.result_embed()]},
            attachments=[],
            source="test",
            message_type=POLL_RESULT,
            reference={
                "type": 0,
                "message_id": str(poll.message_id),
                "channel_id": str(poll.channel_id),
                "guild_id": str(message.guild_id),
            },
        )
