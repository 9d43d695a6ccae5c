"""Best-take polls on Discord: posting a jam's poll, reading its final counts, announcing the winner once.

Discord closes a poll at its expiry (or when its author ends it: End Poll), then sends MESSAGE_UPDATE with
``results.is_finalized`` and posts a POLL_RESULT message (resources/poll.mdx, resources/message.mdx).
:class:`VoteWatcher` listens for both, and because events are lost while the bot is down it also fetches
every open poll at start-up and again at its stored end. The store closes a poll once
(``SessionVotes.close``), so whichever path notices first announces and the others do nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import discord

from bot.discord.render import clip, message_url
from bot.service.session_rules import strip_decoration
from bot.service.session_votes import SessionPoll, SessionVotes, VoteOutcome, VotePlan
from bot.service.sessions import Session

if TYPE_CHECKING:
    from bot.discord.bot import JamBot

log = logging.getLogger("jamgen.votes")

# docs: resources/poll.mdx: question text up to 300, answer text up to 55, duration up to 32 days (768 hours).
QUESTION_CHARS = 300
ANSWER_CHARS = 55
MAX_POLL_HOURS = 768
DEFAULT_POLL_HOURS = 24
# After the stored end, how long to wait before asking (Discord tallies after the end), and between tries.
CHECK_GRACE_S = 10.0
RECHECK_S = 60.0
RECHECKS = 60


def answer_text(job: Any, name: str, session: Session) -> str:
    """One poll answer: ``k7m2q9xa · mira · lofi piano…`` in at most 55 characters."""
    words = " ".join(strip_decoration(job.prompt, session).split()) or job.mode
    return clip(f"{job.id} · {name} · {words}", ANSWER_CHARS)


def question_text(session: Session) -> str:
    """The poll's question, naming the jam."""
    return clip(f"🏆 Best take of the jam “{session.theme}”?", QUESTION_CHARS)


def build_poll(plan: VotePlan, names: Mapping[int, str], hours: int) -> discord.Poll:
    """The poll of ``plan``'s takes (one vote per member)."""
    poll = discord.Poll(question_text(plan.session), duration=dt.timedelta(hours=hours), multiple=False)
    for job, _ in plan.takes:
        poll.add_answer(text=answer_text(job, names.get(job.user_id, str(job.user_id)), plan.session))
    return poll


def raw_results(data: Mapping[str, Any]) -> dict[int, int] | None:
    """Votes per answer id from a message object's ``poll``, once Discord finalized them (else None)."""
    poll = data.get("poll")
    results = poll.get("results") if isinstance(poll, Mapping) else None
    if not isinstance(results, Mapping) or not results.get("is_finalized"):
        return None
    # docs: resources/poll.mdx: an answer missing from answer_counts has no votes.
    return {int(entry["id"]): int(entry.get("count") or 0) for entry in results.get("answer_counts") or []}


def message_results(message: discord.Message) -> dict[int, int] | None:
    """Votes per answer id of a fetched poll message, once finalized (else None)."""
    poll = message.poll
    if poll is None or not poll.is_finalised():
        return None
    return {answer.id: answer.vote_count for answer in poll.answers}


def announcement(outcome: VoteOutcome) -> str:
    """What the thread reads when a poll closed."""
    winner = outcome.winner
    if winner is None:
        return "🗳️ The best-take vote closed without a single vote. Every take is still a winner."
    first = winner.delivered_message_ids[0] if winner.delivered_message_ids else None
    url = message_url(winner.guild_id, winner.channel_id, first)
    votes = f"{outcome.votes} vote{'s' if outcome.votes != 1 else ''}"
    return f"🏆 Best take: `{winner.id}` by <@{winner.user_id}> with {votes} (of {outcome.total})" + (
        f" {url}" if url else ""
    )


class VoteWatcher:
    """Notices when jams' polls close and announces each winner once."""

    def __init__(self, bot: JamBot) -> None:
        self.bot = bot
        self._timers: dict[int, asyncio.Task[None]] = {}

    @property
    def votes(self) -> SessionVotes:
        """The service's best-take votes."""
        return self.bot.sessions.votes

    def stop(self) -> None:
        """Cancel the end-time checks (on unload)."""
        for task in self._timers.values():
            task.cancel()
        self._timers.clear()

    async def resume(self) -> None:
        """Look at every open poll: closed while the bot was away → announce; else check again at its end."""
        for poll in await self.votes.open_polls():
            await self.check(poll)

    def watch(self, poll: SessionPoll) -> None:
        """Check ``poll`` once its stored end has passed (events may be missed)."""
        if poll.message_id not in self._timers:
            task = asyncio.get_running_loop().create_task(self._at_end(poll))
            self._timers[poll.message_id] = task
            task.add_done_callback(lambda _: self._timers.pop(poll.message_id, None))

    async def _at_end(self, poll: SessionPoll) -> None:
        wait = (poll.ends_at - dt.datetime.now(dt.UTC)).total_seconds() + CHECK_GRACE_S
        await asyncio.sleep(max(wait, 0.0))
        for _ in range(RECHECKS):
            current = await self.votes.poll(poll.message_id)
            if current is None or not current.is_open or await self.check(current, rewatch=False):
                return
            await asyncio.sleep(RECHECK_S)
        log.warning("poll %s: still not finalized long after its end; giving up", poll.message_id)

    async def check(self, poll: SessionPoll, *, rewatch: bool = True) -> bool:
        """Fetch the poll's message and close the poll if Discord finalized it; True when it is closed."""
        try:
            channel = self.bot.get_channel(poll.channel_id) or await self.bot.fetch_channel(poll.channel_id)
            if not isinstance(channel, discord.abc.Messageable):
                return False
            message = await channel.fetch_message(poll.message_id)
        except discord.NotFound:
            log.warning("poll %s: its message is gone; closing it without a result", poll.message_id)
            await self.votes.close(poll, {})
            return True
        except discord.HTTPException as exc:
            log.warning("poll %s: could not read it (%s); trying again later", poll.message_id, exc.status)
            if rewatch:
                self.watch(poll)
            return False
        counts = message_results(message)
        if counts is None:
            if rewatch:
                self.watch(poll)
            return False
        await self.finish(poll, counts)
        return True

    async def on_message_data(self, message_id: int, data: Mapping[str, Any]) -> None:
        """A MESSAGE_UPDATE: a finalized poll of a jam closes."""
        counts = raw_results(data)
        if counts is None:
            return
        poll = await self.votes.poll(message_id)
        if poll is not None and poll.is_open:
            await self.finish(poll, counts)

    async def on_poll_result(self, poll_message_id: int) -> None:
        """A POLL_RESULT message points at a poll: read its final counts if the update was missed."""
        poll = await self.votes.poll(poll_message_id)
        if poll is not None and poll.is_open:
            await self.check(poll)

    async def finish(self, poll: SessionPoll, counts: Mapping[int, int]) -> None:
        """Close the poll with its final counts; the call that closed it announces the winner."""
        outcome = await self.votes.close(poll, counts)
        if outcome is None:
            return
        timer = self._timers.pop(poll.message_id, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
        winner = outcome.winner
        mentions = discord.AllowedMentions(
            everyone=False, roles=False, users=[discord.Object(winner.user_id)] if winner else False
        )
        try:
            channel = self.bot.get_channel(poll.channel_id) or await self.bot.fetch_channel(poll.channel_id)
            assert isinstance(channel, discord.abc.Messageable)
            reference = discord.MessageReference(
                message_id=poll.message_id, channel_id=poll.channel_id, fail_if_not_exists=False
            )
            posted = await channel.send(announcement(outcome), allowed_mentions=mentions, reference=reference)
        except discord.HTTPException as exc:
            # The winner is stored: the tree and the summary still show it.
            log.warning("poll %s: could not announce the winner: %s", poll.message_id, exc.status)
            return
        with contextlib.suppress(Exception):
            await self.votes.announced(outcome.poll, posted.id)
