"""Remixes of one stem of a take ("``bass: continue, add a funky clavinet``" in a reply).

When the take's stems exist, the remix starts at once from that stem. When they do not, the take is
split first (charged as stems) and the remix waits in the stems job's ``extra`` as a follow-up: it is
submitted, and charged, once the stems are posted. A follow-up that cannot start then (quota, queue)
is told to its member and nothing is charged for it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.engine.types import STEM_NAMES, Mode
from bot.errors import JamgenError, UserInputError
from bot.service.requests import AudioInput, JamRequest, Receipt
from bot.store import Job, JobState, JobStore

log = logging.getLogger("jamgen.service")

Submit = Callable[[JamRequest], Awaitable[Receipt]]
Tell = Callable[[Job, str], Awaitable[None]]
FOLLOW_UPS = "stem_remixes"
# What a follow-up keeps of its request: the rest is rebuilt (its audio) or belongs to the asking moment.
_KEPT: tuple[str, ...] = ("user_id", "guild_id", "channel_id", "mode", "prompt", "model", "duration", "role_ids")
_KEPT += ("is_admin", "upload_limit_bytes", "reply_to_message_id", "personal")


@dataclasses.dataclass(frozen=True)
class StemRemixAnswer:
    """What a stem remix got: its own receipt, or the receipt of the stems it waits for.

    Args:
        receipt: the remix's receipt (it started) or the stems job's (the remix follows it).
        waits_for_stems: the remix starts once the stems are posted.
    """

    receipt: Receipt | None
    waits_for_stems: bool
    stems_job_id: str


class StemRemixes:
    """Starts stem remixes, and the ones waiting for their stems once those are posted.

    Args:
        submit: the service's submit (checks, quota, queue).
        tell: tells a member that their waiting remix could not start.
    """

    def __init__(self, store: JobStore, submit: Submit, tell: Tell) -> None:
        self.store = store
        self._submit = submit
        self._tell = tell
        self._lock = asyncio.Lock()

    async def submit(self, request: JamRequest, stem: str) -> StemRemixAnswer:
        """Remix ``stem`` of the take ``request.audio`` names (splitting it first when needed), or of the
        stems job it names."""
        source = request.audio
        if source is None or source.from_job is None:
            raise UserInputError("A stem remix needs a take of jamgen's to take the stem from.")
        if stem not in STEM_NAMES:
            raise UserInputError(f"There is no stem called '{stem}'; stems are {', '.join(STEM_NAMES)}.")
        replied = await self.store.get_job(source.from_job)
        if replied is not None and replied.mode == Mode.STEMS:  # a stems message itself: its own stem
            return StemRemixAnswer(await self._submit(self.from_stem(request, replied.id, stem)), False, replied.id)
        stems = await self.store.stems_job_for(source.from_job, source.take)
        if stems is not None and stems.state in (JobState.RENDERED, JobState.DELIVERED):
            return StemRemixAnswer(await self._submit(self.from_stem(request, stems.id, stem)), False, stems.id)
        split: Receipt | None = None
        if stems is None:
            split = await self._submit(
                dataclasses.replace(request, mode=Mode.STEMS, prompt="", model=None, duration=None, parent_id=None)
            )
            stems_id = split.job_id
        else:
            stems_id = stems.id
        async with self._lock:
            job = await self.store.get_job(stems_id)
            waiting = list(((job.extra if job else None) or {}).get(FOLLOW_UPS) or [])
            kept = {name: getattr(request, name) for name in _KEPT}
            await self.store.update_job(stems_id, extra={FOLLOW_UPS: [*waiting, {**kept, "stem": stem}]})
        # Stems made in the instant before the follow-up was written would never start it: look again.
        job = await self.store.get_job(stems_id)
        if job is not None and job.state == JobState.DELIVERED:
            await self.start_waiting(job)
        return StemRemixAnswer(split, True, stems_id)

    @staticmethod
    def from_stem(request: JamRequest, stems_job_id: str, stem: str) -> JamRequest:
        """The request with one stem of a stems job as its audio (the stems job is its parent)."""
        audio = AudioInput(from_job=stems_job_id, take=STEM_NAMES.index(stem))
        return dataclasses.replace(request, audio=audio, parent_id=stems_job_id)

    async def resume(self) -> None:
        """At start-up: the remixes whose stems were posted just before a stop start now."""
        for job in await self.store.stems_jobs_with_followups(FOLLOW_UPS):
            await self.start_waiting(job)

    async def start_waiting(self, job: Job) -> None:
        """Submit the remixes waiting for this stems job (called once it is delivered)."""
        async with self._lock:
            fresh = await self.store.get_job(job.id)
            waiting: list[dict[str, Any]] = list(((fresh.extra if fresh else None) or {}).get(FOLLOW_UPS) or [])
            if not waiting:
                return
            await self.store.update_job(job.id, extra={FOLLOW_UPS: None})
        for kept in waiting:
            fields = {**kept, "mode": Mode(kept["mode"]), "role_ids": tuple(kept.get("role_ids") or ())}
            stem = fields.pop("stem")
            request = self.from_stem(JamRequest(**fields), job.id, stem)
            try:
                receipt = await self._submit(request)
                log.info("job %s: the %s remix waiting for it started as %s", job.id, stem, receipt.job_id)
            except JamgenError as exc:
                await self._tell(job, f"your {stem} remix could not start: {exc.message}")
