"""Jam sessions: a thread per jam with a shared tempo, key and meter; its tree of takes; loops; one bounce.

:class:`SessionService` is what the ``/session`` commands and the 🔁 Loop button call. It is
built from the store, the service's config, its paths and its model policy; the pure rules
(settings, prompt decoration, :func:`join_session`) live in ``session_rules.py``, the tree in
``session_tree.py``, loops in ``loops.py`` and bounces in ``bounce.py``. No Discord here: ids and text only. See
docs/SESSIONS.md.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.engine.types import ModelUnavailableError
from bot.errors import ChannelNotAllowedError, UserInputError
from bot.service.bounce import BouncePlan, Bouncer, BounceResult, ChainLink
from bot.service.config import Paths, ServiceConfig
from bot.service.intake import ModelPolicy
from bot.service.loops import LoopResult, cut_loop
from bot.service.session_rules import (
    DEFAULT_TIME_SIGNATURE,
    MADE_STATES,
    MAX_THEME_CHARS,
    NotInSessionError,
    SessionEndedError,
    SessionPermissionError,
    SessionSettings,
    beats_per_bar,
    clip_text,
    decorate_prompt,
    describe_session,
    join_session,
    parse_bpm,
    parse_key,
    parse_time_signature,
    strip_decoration,
)
from bot.service.session_tree import TakePlace, TreeEntry, build_tree, take_place
from bot.service.session_votes import SessionVotes, VoteOutcome, VotePlan
from bot.store import Job, JobStore, Session, SessionBudgetExceededError

log = logging.getLogger("jamgen.sessions")
# The session ``extra`` key of the voice channel a jam plays in.
VOICE_CHANNEL = "voice_channel_id"


@dataclass(frozen=True)
class SessionSummary:
    """What ``/session end`` posts.

    Args:
        session: the session (ended).
        takes: takes made (rendered or delivered).
        contributors: user ids of the members who made them, in order of first take.
        most_reacted: the take with the most reactions and its count (None without reactions).
        bounce: the last bounce (``job_id``, ``duration_s``, ``channel_id``, ``message_id``), if one was made.
        best_take: the winner of the jam's best-take vote and its votes (None without a closed vote or votes).
        vote_held: whether a best-take vote closed.
    """

    session: Session
    takes: int
    contributors: tuple[int, ...]
    most_reacted: tuple[Job, int] | None
    bounce: Mapping[str, Any] | None
    best_take: tuple[Job, int] | None = None
    vote_held: bool = False


class _ServiceParts(Protocol):
    """What ``SessionService(jam_service)`` reads from the jam service (the older way to build one)."""

    @property
    def store(self) -> JobStore: ...
    @property
    def config(self) -> ServiceConfig: ...
    @property
    def paths(self) -> Paths: ...
    @property
    def models(self) -> ModelPolicy: ...


class SessionService:
    """Jam sessions (stateless: everything lives in the store).

    The jam service builds one (``JamService.sessions``). ``SessionService(jam_service)`` still works
    until the Discord layer uses that attribute.

    Args:
        config: the service's knobs (the upload limit, audio limits, levelling).
        paths: where loops and bounces are written.
        models: which models a server allows.
    """

    def __init__(
        self,
        store: JobStore | _ServiceParts,
        config: ServiceConfig | None = None,
        paths: Paths | None = None,
        models: ModelPolicy | None = None,
    ) -> None:
        if not isinstance(store, JobStore):
            service = store
            store, config, paths, models = service.store, service.config, service.paths, service.models
        if config is None or paths is None or models is None:
            raise TypeError("SessionService needs the store, the config, the paths and the model policy")
        self.store = store
        self.models = models
        self.paths = paths
        self.bounces = Bouncer(store, config, paths)
        self.votes = SessionVotes(store)
        self.config = config

    @property
    def config(self) -> ServiceConfig:
        """The service's knobs."""
        return self._config

    @config.setter
    def config(self, config: ServiceConfig) -> None:
        self._config = config
        self.bounces.config = config

    # -------------------------------------------------------------- opening and finding
    async def check_settings(
        self,
        *,
        guild_id: int | None,
        channel_id: int | None,
        theme: str,
        bpm: float | None = None,
        key: str | None = None,
        time_signature: str | None = None,
        model: str | None = None,
        budget: float | None = None,
    ) -> SessionSettings:
        """Check a new jam's settings before its thread is made.

        Args:
            guild_id: the server (jams need one).
            channel_id: where it is started.
            theme: what it is about.
            key: key, e.g. "A minor" or "Am".
            time_signature: e.g. "4/4".
            model: default model.
            budget: seconds the whole jam may use (None = no jam budget).

        Raises:
            UserInputError: a setting is not valid here.
        """
        if guild_id is None:
            raise UserInputError("Jams happen in servers: start one from a server's text channel.")
        theme = " ".join(theme.split())
        if not theme:
            raise UserInputError("Give the jam a theme, e.g. 'late night drive'.")
        guild = await self.store.get_guild_settings(guild_id)
        if guild.allowed_channel_ids and channel_id not in guild.allowed_channel_ids:
            raise ChannelNotAllowedError(tuple(guild.allowed_channel_ids), hint="Start the jam in")
        if model is not None:
            names = await self.models.models_for_guild(guild_id)
            if model not in names:
                raise ModelUnavailableError(
                    f"The model '{model}' is not enabled here. Pick one of: {', '.join(names)}."
                )
        if budget is not None and budget <= 0:
            raise UserInputError("A jam budget must be more than 0 seconds (leave it out for no jam budget).")
        return SessionSettings(
            theme=clip_text(theme, MAX_THEME_CHARS),
            bpm=parse_bpm(bpm),
            key=parse_key(key),
            time_signature=parse_time_signature(time_signature),
            model=model,
            budget=budget,
        )

    async def open(
        self, settings: SessionSettings, *, guild_id: int, channel_id: int, thread_id: int, owner_id: int
    ) -> Session:
        """Store a new jam for a thread that was just made.

        Args:
            settings: from :meth:`check_settings`.
            channel_id: the channel it was started in.
            thread_id: its thread.
            owner_id: who started it.
        """
        return await self.store.create_session(
            guild_id=guild_id,
            channel_id=channel_id,
            thread_id=thread_id,
            owner_id=owner_id,
            theme=settings.theme,
            bpm=settings.bpm,
            key=settings.key,
            time_signature=settings.time_signature,
            model=settings.model,
            budget=settings.budget,
        )

    async def remember_header(self, session_id: str, message_id: int) -> Session:
        """Record the pinned header message."""
        return await self.store.update_session(session_id, header_message_id=message_id)

    async def for_channel(self, channel_id: int | None) -> Session | None:
        """The session whose thread this is, if any.

        Args:
            channel_id: the interaction's channel.
        """
        return None if channel_id is None else await self.store.session_for_thread(channel_id)

    async def require(self, channel_id: int | None) -> Session:
        """The session whose thread this is.

        Args:
            channel_id: the interaction's channel.

        Raises:
            NotInSessionError: not a jam's thread.
        """
        session = await self.for_channel(channel_id)
        if session is None:
            raise NotInSessionError()
        return session

    async def get(self, session_id: str) -> Session | None:
        """A session by id."""
        return await self.store.get_session(session_id)

    # -------------------------------------------------------------- the tree and a take's place
    async def tree(self, session: Session) -> list[TreeEntry]:
        """The session's takes in tree order (the best-take vote's winner marked)."""
        best = (session.extra.get("best_take") or {}).get("job_id")
        return build_tree(await self.store.session_jobs(session.id), best=best)

    async def place(self, job: Job) -> TakePlace | None:
        """A take's place in its jam (None outside a jam)."""
        if not job.session_id:
            return None
        session = await self.store.get_session(job.session_id)
        if session is None:
            return None
        return take_place(job, session, await self.store.session_jobs(session.id))

    # -------------------------------------------------------------- loops
    async def loop(self, job_id: str, take: int = 0, *, byte_limit: int | None = None) -> LoopResult:
        """Cut take ``take`` of a job into a loop of whole bars (see :func:`bot.service.loops.cut_loop`)."""
        return await cut_loop(self.store, self.config, self.paths, job_id, take, byte_limit=byte_limit)

    # -------------------------------------------------------------- bounces (bounce.py)
    async def latest_take(self, session: Session) -> Job:
        """The session's most recent finished take (see :meth:`Bouncer.latest_take`)."""
        return await self.bounces.latest_take(session)

    async def bounce_plan(self, job_id: str, take: int = 0) -> BouncePlan:
        """The chain of takes that leads to take ``take`` of ``job_id``, root first (see :meth:`Bouncer.plan`)."""
        return await self.bounces.plan(job_id, take)

    async def render_bounce(
        self,
        plan: BouncePlan,
        *,
        names: Mapping[int, str] | None = None,
        byte_limit: int | None = None,
        stems: Sequence[str] = (),
    ) -> BounceResult:
        """Render the plan into one tagged MP3, of some stems only if asked (see :meth:`Bouncer.render`)."""
        return await self.bounces.render(plan, names=names, byte_limit=byte_limit, stems=stems)

    async def remember_bounce(self, result: BounceResult, *, channel_id: int, message_id: int) -> None:
        """Record where a session's bounce was posted (see :meth:`Bouncer.remember`)."""
        await self.bounces.remember(result, channel_id=channel_id, message_id=message_id)

    # -------------------------------------------------------------- budget, reactions, the end
    async def set_budget(self, session: Session, seconds: float | None, *, user_id: int, is_admin: bool) -> Session:
        """Set (or with None remove) the jam's budget.

        Args:
            seconds: seconds the whole jam may use; None = no jam budget.
            user_id: who asks (the starter, unless ``is_admin``).
            is_admin: a server admin.
        """
        if session.owner_id != user_id and not is_admin:
            raise SessionPermissionError("change its budget")
        if seconds is not None and seconds <= 0:
            raise UserInputError("A jam budget must be more than 0 seconds.")
        return await self.store.update_session(session.id, budget=seconds)

    async def usage(self, session: Session) -> float:
        """Seconds the jam's takes have used (refunds deducted)."""
        return await self.store.session_usage(session.id)

    async def record_reaction(self, message_id: int, user_id: int, emoji: str, *, add: bool) -> str | None:
        """Count a reaction on a session take's message (other messages are ignored).

        Args:
            user_id: who reacted.
            emoji: the emoji as text.
            add: added (True) or removed.

        Returns:
            the take's job id, or None when the message is not a session take.
        """
        return await self.store.record_reaction(message_id, user_id, emoji, add=add)

    async def summary(self, session: Session) -> SessionSummary:
        """Contributors, takes, the most-reacted take and the bounce."""
        made = [job for job in await self.store.session_jobs(session.id) if job.state in MADE_STATES]
        counts = await self.store.reaction_counts(session.id)
        best: tuple[Job, int] | None = None
        for job in made:  # oldest first, so the first of equals wins
            count = counts.get(job.id, 0)
            if count and (best is None or count > best[1]):
                best = (job, count)
        voted = session.extra.get("best_take")
        winner = await self.store.get_job(voted["job_id"]) if voted and voted.get("job_id") else None
        return SessionSummary(
            session=session,
            takes=len(made),
            contributors=tuple(dict.fromkeys(job.user_id for job in made)),
            most_reacted=best,
            bounce=session.extra.get("bounce"),
            best_take=(winner, int(voted.get("votes") or 0)) if winner is not None and voted else None,
            vote_held=bool(voted),
        )

    async def end(self, session: Session, *, user_id: int, is_admin: bool) -> SessionSummary:
        """Close the jam: takes made in its thread from now on are ordinary takes.

        Args:
            user_id: who asks (the starter, unless ``is_admin``).
            is_admin: a server admin.

        Raises:
            SessionPermissionError: someone else's jam.
            SessionEndedError: it had ended already.
        """
        if session.owner_id != user_id and not is_admin:
            raise SessionPermissionError("end it")
        ended_session, ended = await self.store.end_session(session.id)
        if not ended:
            raise SessionEndedError("This jam has already ended.")
        log.info("session %s ended by %s", session.id, user_id)
        return await self.summary(ended_session)

    # -------------------------------------------------------------- voice (the player is bot/discord/voice.py)
    async def set_voice_channel(self, session: Session, channel_id: int | None) -> None:
        """Remember the voice channel the jam plays in (None: it does not), so that a restart rejoins it."""
        await self.store.update_session(session.id, extra={VOICE_CHANNEL: channel_id})

    async def voice_sessions(self) -> list[Session]:
        """Open jams that play in a voice channel (``extra["voice_channel_id"]``)."""
        return await self.store.sessions_with_extra(VOICE_CHANNEL)


__all__ = [
    "DEFAULT_TIME_SIGNATURE",
    "BouncePlan",
    "BounceResult",
    "ChainLink",
    "LoopResult",
    "NotInSessionError",
    "Session",
    "SessionBudgetExceededError",
    "SessionEndedError",
    "SessionPermissionError",
    "SessionService",
    "SessionSettings",
    "SessionSummary",
    "TreeEntry",
    "VoteOutcome",
    "VotePlan",
    "beats_per_bar",
    "build_tree",
    "decorate_prompt",
    "describe_session",
    "join_session",
    "parse_bpm",
    "parse_key",
    "parse_time_signature",
    "strip_decoration",
]
