"""Best-take votes of a jam, as data: which takes a poll offers, who won, what the jam remembers.

The Discord side (the poll message, its results, the announcement) is ``bot/discord/votes.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.errors import UserInputError
from bot.service.session_rules import MADE_STATES, SessionEndedError, SessionPermissionError
from bot.store import Job, JobStore, PollAlreadyOpenError, Session, SessionPoll

log = logging.getLogger("jamgen.sessions")

MAX_VOTE_TAKES = 10  # docs: resources/poll.mdx, at most 10 answers
MIN_VOTE_TAKES = 2


class VoteOpenError(UserInputError):
    """The jam has a poll open already."""

    def __init__(self) -> None:
        super().__init__("This jam already has a best-take poll open: vote there, or end it with `/session endvote`.")


class NoVoteError(UserInputError):
    """There is no open poll to end."""

    def __init__(self) -> None:
        super().__init__("This jam has no best-take poll open. Start one with `/session vote`.")


@dataclass(frozen=True)
class VotePlan:
    """The takes a new poll offers, most reacted first (ties: the earlier take first).

    Args:
        session: the jam.
        takes: each take with its reactions, in answer order.
    """

    session: Session
    takes: tuple[tuple[Job, int], ...]


@dataclass(frozen=True)
class VoteOutcome:
    """A closed poll: the winner (None without votes), its votes and every take's votes.

    Args:
        poll: the poll, closed.
        session: its jam.
        winner: the winning take.
        votes: the winner's votes.
        total: all votes.
    """

    poll: SessionPoll
    session: Session
    winner: Job | None
    votes: int
    total: int


def vote_order(made: Sequence[Job], reactions: Mapping[str, int]) -> list[tuple[Job, int]]:
    """Takes by reactions, most first; ``made`` is in submission order, so equals keep the earlier first."""
    ranked = sorted(enumerate(made), key=lambda pair: (-reactions.get(pair[1].id, 0), pair[0]))
    return [(job, reactions.get(job.id, 0)) for _, job in ranked[:MAX_VOTE_TAKES]]


def pick_winner(job_ids: Sequence[str], counts: Mapping[int, int]) -> tuple[str | None, int]:
    """The most voted answer's take and its votes; ties go to the answer listed first; no votes: (None, 0).

    Args:
        job_ids: the takes in answer order.
        counts: votes per answer id (Discord numbers answers from 1; missing answers have no votes).
    """
    best: tuple[str | None, int] = (None, 0)
    for answer_id, job_id in enumerate(job_ids, start=1):
        votes = counts.get(answer_id, 0)
        if votes > best[1]:
            best = (job_id, votes)
    return best


class SessionVotes:
    """Best-take polls of jams (stateless: everything lives in the store)."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    async def plan(self, session: Session, *, user_id: int, is_admin: bool) -> VotePlan:
        """The takes a new poll would offer.

        Raises:
            SessionPermissionError: not the starter nor an admin.
            SessionEndedError: the jam is over.
            VoteOpenError: a poll is open.
            UserInputError: fewer than two takes.
        """
        if session.owner_id != user_id and not is_admin:
            raise SessionPermissionError("start a best-take vote")
        if not session.is_open:
            raise SessionEndedError("This jam has ended; its takes can no longer be voted on.")
        if await self.store.open_poll(session.id) is not None:
            raise VoteOpenError()
        made = [job for job in await self.store.session_jobs(session.id) if job.state in MADE_STATES]
        if len(made) < MIN_VOTE_TAKES:
            raise UserInputError(
                f"A vote needs at least {MIN_VOTE_TAKES} finished takes in the jam; it has {len(made)} so far."
            )
        return VotePlan(session, tuple(vote_order(made, await self.store.reaction_counts(session.id))))

    async def remember(self, plan: VotePlan, *, message_id: int, channel_id: int, ends_at: datetime) -> SessionPoll:
        """Store the poll Discord posted for ``plan``.

        Raises:
            VoteOpenError: another poll was opened meanwhile.
        """
        try:
            return await self.store.create_poll(
                session_id=plan.session.id,
                message_id=message_id,
                channel_id=channel_id,
                job_ids=[job.id for job, _ in plan.takes],
                ends_at=ends_at,
            )
        except PollAlreadyOpenError as exc:
            raise VoteOpenError() from exc

    async def open_poll(self, session: Session, *, user_id: int, is_admin: bool) -> SessionPoll:
        """The jam's open poll, for ending it early.

        Raises:
            SessionPermissionError: not the starter nor an admin.
            NoVoteError: none is open.
        """
        if session.owner_id != user_id and not is_admin:
            raise SessionPermissionError("end the best-take vote")
        poll = await self.store.open_poll(session.id)
        if poll is None:
            raise NoVoteError()
        return poll

    async def open_polls(self) -> list[SessionPoll]:
        """Every poll still waiting for its result."""
        return await self.store.open_polls()

    async def poll(self, message_id: int) -> SessionPoll | None:
        """The poll posted as this message, if it is a jam's."""
        return await self.store.get_poll(message_id)

    async def close(self, poll: SessionPoll, counts: Mapping[int, int]) -> VoteOutcome | None:
        """Close a poll with Discord's final counts; the outcome only for the call that closed it.

        Args:
            poll: the poll.
            counts: votes per answer id.
        """
        winner_id, votes = pick_winner(poll.job_ids, counts)
        by_job = {job_id: counts.get(n, 0) for n, job_id in enumerate(poll.job_ids, start=1) if counts.get(n, 0)}
        closed, now = await self.store.close_poll(poll.message_id, by_job, winner_id, votes)
        if not now:
            return None
        session = await self.store.get_session(closed.session_id)
        assert session is not None
        winner = await self.store.get_job(winner_id) if winner_id else None
        log.info("session %s: poll %s closed, winner %s (%d votes)", session.id, poll.message_id, winner_id, votes)
        return VoteOutcome(closed, session, winner, votes, sum(by_job.values()))

    async def announced(self, poll: SessionPoll, message_id: int) -> None:
        """Record where the result was announced."""
        await self.store.mark_poll_announced(poll.message_id, message_id)


__all__ = [
    "MAX_VOTE_TAKES",
    "MIN_VOTE_TAKES",
    "NoVoteError",
    "SessionPoll",
    "SessionVotes",
    "VoteOpenError",
    "VoteOutcome",
    "VotePlan",
    "pick_winner",
    "vote_order",
]
