"""One bounce: the chain of takes that leads to a take, joined into a single track.

A take's predecessor is the take whose audio it was made from (a continuation, an extend,
a melody or style remix of a take); a reroll stands in for the take it rerolled. The chain
stops at a take made from words or from an attached file. The bounce carries every part's
recipe and the contributors in its tags. See docs/SESSIONS.md.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot import audio
from bot.audio.arrange import CONTINUATION_CROSSFADE_S, REMIX_CROSSFADE_S, Join
from bot.engine.registry import get_model_spec
from bot.engine.types import STEM_NAMES, Mode
from bot.errors import UserInputError
from bot.service.config import Paths, ServiceConfig
from bot.service.recipes import Recipe, job_recipe, take_seed
from bot.service.requests import find_job
from bot.service.session_rules import MADE_STATES, clip_text
from bot.store import Job, JobNotFoundError, JobStore, Session

log = logging.getLogger("jamgen.sessions")

MAX_CHAIN = 500


class StemsMissingError(UserInputError):
    """A bounce of some stems needs the stems of every take of the chain; these have none yet.

    Args:
        missing: (job id, 0-based take) of each take without stems.
    """

    def __init__(self, missing: Sequence[tuple[str, int]]) -> None:
        self.missing = tuple(missing)
        names = ", ".join(f"`{job_id}`" for job_id, _ in self.missing[:10])
        super().__init__(f"{len(self.missing)} takes of this chain have no stems yet: {names}.")


def parse_stems(text: str | None) -> tuple[str, ...]:
    """``"drums, bass"`` → ``("drums", "bass")`` in the stems' own order; empty text means the whole takes."""
    if not text or not text.strip():
        return ()
    wanted = {word.strip().lower() for word in text.replace(" ", ",").split(",") if word.strip()}
    unknown = sorted(wanted - set(STEM_NAMES))
    if unknown:
        raise UserInputError(f"There is no stem called {', '.join(unknown)}; stems are {', '.join(STEM_NAMES)}.")
    return tuple(name for name in STEM_NAMES if name in wanted)


@dataclass(frozen=True)
class ChainLink:
    """One take in a bounce's chain.

    Args:
        take: which of its takes (0-based).
        join: how it joins the previous link (``start``, ``continuation`` or ``crossfade``).
        prompt_s: continuation: seconds at its start that repeat the previous link.
        cut_previous_at_s: continuation: where in the previous link it continued from (None = its end).
    """

    job: Job
    take: int
    join: Join
    prompt_s: float = 0.0
    cut_previous_at_s: float | None = None


@dataclass(frozen=True)
class BouncePlan:
    """What a bounce will join.

    Args:
        links: root first.
        session: the session of the last take, if any.
        contributors: user ids in order of first appearance.
    """

    links: tuple[ChainLink, ...]
    session: Session | None
    contributors: tuple[int, ...]

    @property
    def last(self) -> ChainLink:
        """The take the bounce leads to."""
        return self.links[-1]


@dataclass(frozen=True)
class BounceResult:
    """A rendered bounce.

    Args:
        plan: what was joined.
        path: the MP3.
    """

    plan: BouncePlan
    path: Path
    duration_s: float
    bitrate_kbps: int | None
    size_bytes: int


def take_path(job: Job, take: int) -> Path:
    """The file of a finished take (0-based), or a refusal that says why there is none."""
    if job.state not in MADE_STATES:
        raise UserInputError(f"Take `{job.id}` isn't finished yet.")
    if not 0 <= take < len(job.outputs):
        if not job.outputs and job.outputs_cleared_at is not None:
            raise UserInputError(f"The audio of take `{job.id}` has been cleaned up.")
        raise JobNotFoundError(job.id, f"Job `{job.id}` has no take {take + 1}.")
    path = Path(job.outputs[take])
    if not path.exists():
        raise UserInputError(f"The audio of take `{job.id}` has been cleaned up.")
    return path


class Bouncer:
    """Plans and renders bounces (stateless: everything lives in the store and the output folders)."""

    def __init__(self, store: JobStore, config: ServiceConfig, paths: Paths) -> None:
        self.store = store
        self.config = config
        self.paths = paths

    async def latest_take(self, session: Session) -> Job:
        """The session's most recent finished take.

        Raises:
            UserInputError: it has none yet.
        """
        made = [job for job in await self.store.session_jobs(session.id) if job.state in MADE_STATES]
        if not made:
            raise UserInputError("This jam has no finished takes to bounce yet.")
        return made[-1]

    async def plan(self, job_id: str, take: int = 0) -> BouncePlan:
        """The chain of takes that leads to take ``take`` of ``job_id``, root first.

        Args:
            job_id: the last take's job.
            take: 0-based take of it.

        Raises:
            UserInputError: a take is missing, unfinished or its audio was cleaned up.
        """
        job = await find_job(self.store, job_id)
        if job.state not in MADE_STATES:
            raise UserInputError(f"Take `{job.id}` isn't finished yet.")
        chain: list[tuple[Job, int]] = [(job, take)]
        seen = {job.id}
        while len(chain) < MAX_CHAIN:
            previous = await self._predecessor(chain[-1][0])
            if previous is None or previous[0].id in seen:
                break
            seen.add(previous[0].id)
            chain.append(previous)
        chain.reverse()
        links: list[ChainLink] = []
        for index, (link_job, link_take) in enumerate(chain):
            take_path(link_job, link_take)
            recipe = Recipe.from_job(link_job)
            if index == 0:
                links.append(ChainLink(link_job, link_take, "start"))
            elif recipe.mode == Mode.CONTINUATION:
                end = recipe.audio.end if recipe.audio else None
                links.append(
                    ChainLink(
                        link_job,
                        link_take,
                        "continuation",
                        prompt_s=float(recipe.prompt_seconds or 0.0),
                        cut_previous_at_s=None if end is None else float(end),
                    )
                )
            else:
                links.append(ChainLink(link_job, link_take, "crossfade"))
        contributors = tuple(dict.fromkeys(link.job.user_id for link in links))
        session = await self.store.get_session(job.session_id) if job.session_id else None
        return BouncePlan(links=tuple(links), session=session, contributors=contributors)

    async def _predecessor(self, job: Job) -> tuple[Job, int] | None:
        current = job
        for _ in range(MAX_CHAIN):
            source = Recipe.from_job(current).audio
            if source is not None and source.from_job:
                parent = await self.store.get_job(source.from_job)
                if parent is not None and parent.mode == Mode.STEMS:
                    # Made from a stem: the take before it is the one the stems were split from.
                    stems_source = Recipe.from_job(parent).audio
                    if stems_source is None or not stems_source.from_job:
                        return None
                    parent = await self.store.get_job(stems_source.from_job)
                    return None if parent is None else (parent, stems_source.take)
                return None if parent is None else (parent, source.take)
            if not current.parent_id:
                return None
            # A reroll (same recipe, new seed) stands in for the take it rerolled.
            parent = await self.store.get_job(current.parent_id)
            if parent is None:
                return None
            current = parent
        return None

    async def render(
        self,
        plan: BouncePlan,
        *,
        names: Mapping[int, str] | None = None,
        byte_limit: int | None = None,
        stems: Sequence[str] = (),
    ) -> BounceResult:
        """Render the plan into one MP3, tagged with every take's recipe and the contributors.

        Args:
            plan: from :meth:`plan`.
            names: display names of the contributors (user id -> name).
            byte_limit: the upload limit (default: the configured one).
            stems: only these stems of every take (e.g. the rhythm section); empty = the whole takes.

        Raises:
            BounceTooLongError: too long, or cannot fit the limit even at 64 kbps.
            StemsMissingError: ``stems`` were asked for and some takes have none yet.
        """
        folder = self.paths.output_folder(plan.last.job.id) / f"stem-mix-{plan.last.take + 1}"
        try:
            sources = await self._stem_mixes(plan, stems, folder) if stems else None
            return await self._render(plan, names or {}, byte_limit, sources, stems)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    async def _stem_mixes(self, plan: BouncePlan, stems: Sequence[str], folder: Path) -> list[Path]:
        """For each take of the chain, its chosen stems mixed into one WAV (they stand in for the take)."""
        found: list[list[Path]] = []
        missing: list[tuple[str, int]] = []
        for link in plan.links:
            job = await self.store.stems_job_for(link.job.id, link.take)
            rows = await self.store.stems_of_job(job.id) if job is not None else []
            paths = [Path(row.path) for row in rows if row.stem in stems]
            if len(paths) != len(stems) or not all(p.exists() for p in paths):
                missing.append((link.job.id, link.take))
            found.append(paths)
        if missing:
            raise StemsMissingError(missing)
        spec = get_model_spec(self.config.stems_model)
        folder.mkdir(parents=True, exist_ok=True)
        mixes = []
        for index, paths in enumerate(found):
            wavs = [await audio.decode(p, spec.sample_rate, spec.channels, self.config.audio_limits) for p in paths]
            length = max(w.shape[-1] for w in wavs)
            mix = np.zeros((spec.channels, length), dtype=np.float32)
            for wav in wavs:
                mix[:, : wav.shape[-1]] += wav
            encoded = await audio.encode(
                mix,
                spec.sample_rate,
                folder / f"part{index + 1}.wav",
                fmt="wav",
                byte_limit=2**40,
                normalization="none",
            )
            mixes.append(encoded.path)
        return mixes

    async def _render(
        self,
        plan: BouncePlan,
        names: Mapping[int, str],
        byte_limit: int | None,
        sources: list[Path] | None,
        stems: Sequence[str],
    ) -> BounceResult:
        config = self.config
        parts = [
            audio.BouncePart(
                path=sources[index] if sources else take_path(link.job, link.take),
                join=link.join,
                prompt_s=link.prompt_s,
                cut_previous_at_s=link.cut_previous_at_s,
            )
            for index, link in enumerate(plan.links)
        ]
        recipes = [job_recipe(link.job, seed=take_seed(link.job, link.take), take=link.take) for link in plan.links]
        contributors = [{"user_id": uid, "name": names.get(uid, str(uid))} for uid in plan.contributors]
        last = plan.last
        if plan.session is not None:
            title = f"{plan.session.theme} (bounce)"
        else:
            title = f"{clip_text(last.job.prompt or last.job.mode, 100)} (bounce)"
        if stems:
            title = f"{title[: -len(' (bounce)')]} ({', '.join(stems)} bounce)"
        tags = audio.bounce_tags(
            title,
            recipes,
            contributors,
            session_id=plan.session.id if plan.session else None,
            leads_to=last.job.id,
            continuation_crossfade_s=CONTINUATION_CROSSFADE_S,
            remix_crossfade_s=REMIX_CROSSFADE_S,
            **({"stems": list(stems)} if stems else {}),
        )
        track = await audio.bounce(
            parts,
            self.paths.bounce(last.job.id, last.take, stems),
            tags=tags,
            byte_limit=byte_limit or config.upload_limit_bytes,
            limits=config.audio_limits,
            normalization=config.level,
            loudness_target=config.loudness_target,
        )
        log.info(
            "bounce of %s: %d parts, %.1f s, %s kbps", last.job.id, len(parts), track.duration_s, track.bitrate_kbps
        )
        if plan.session is not None:
            record = {"job_id": last.job.id, "take": last.take, "duration_s": round(track.duration_s, 3)}
            await self.store.update_session(plan.session.id, extra={"bounce": record})
        return BounceResult(
            plan=plan,
            path=track.path,
            duration_s=track.duration_s,
            bitrate_kbps=track.bitrate_kbps,
            size_bytes=track.size_bytes,
        )

    async def remember(self, result: BounceResult, *, channel_id: int, message_id: int) -> None:
        """Record where a session's bounce was posted (for the end-of-jam summary).

        Args:
            channel_id: where it was posted.
        """
        if result.plan.session is None:
            return
        record = {
            "job_id": result.plan.last.job.id,
            "take": result.plan.last.take,
            "duration_s": round(result.duration_s, 3),
            "channel_id": channel_id,
            "message_id": message_id,
        }
        await self.store.update_session(result.plan.session.id, extra={"bounce": record})
