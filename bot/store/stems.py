"""Stems (the ``stems`` table): the drums, bass, other and vocals a stems job split a take into."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.store.base import StoreBase
from bot.store.ids import normalize_job_id
from bot.store.models import Job
from bot.store.rows import ts

# A stems job that may still answer a request for the same take's stems: waiting, running, or done with files.
_LIVE_STEMS = (
    "mode = 'stems' AND parent_id = ? AND json_extract(params, '$.audio_take') = ? "
    "AND (state IN ('queued', 'running') OR (state IN ('rendered', 'delivered') AND outputs <> '[]'))"
)


@dataclass(frozen=True)
class Stem:
    """One stem a stems job made.

    Args:
        job_id: the stems job.
        stem: ``drums``, ``bass``, ``other`` or ``vocals``.
        position: its place among the job's outputs (0-based).
        source_job_id: the take it was split from (None for an attachment).
        source_take: which take of that job (0-based).
        path: its MP3.
    """

    job_id: str
    stem: str
    position: int
    source_job_id: str | None
    source_take: int
    path: str


class StemsMixin(StoreBase):
    """Stem methods of :class:`~bot.store.JobStore`."""

    async def record_stems(
        self, job_id: str, stems: Sequence[tuple[str, str]], *, source_job_id: str | None, source_take: int = 0
    ) -> None:
        """Keep the stems a job made (again after a retry: the rows are replaced).

        Args:
            job_id: the stems job.
            stems: (stem name, MP3 path) in output order.
            source_job_id: the take they were split from (None for an attachment).
            source_take: which take of it.
        """
        wanted = normalize_job_id(job_id)
        now = ts(self.now())
        async with self._tx() as db:
            await db.execute("DELETE FROM stems WHERE job_id = ?", (wanted,))
            await db.executemany(
                "INSERT INTO stems (job_id, stem, position, source_job_id, source_take, path, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(wanted, name, i, source_job_id, source_take, path, now) for i, (name, path) in enumerate(stems)],
            )

    async def stems_of_job(self, job_id: str) -> list[Stem]:
        """The stems a stems job made, in output order (empty before it is rendered or after retention)."""
        async with self._tx(write=False) as db:
            rows = await db.execute_fetchall(
                "SELECT job_id, stem, position, source_job_id, source_take, path FROM stems "
                "WHERE job_id = ? ORDER BY position",
                (normalize_job_id(job_id),),
            )
        return [
            Stem(r["job_id"], r["stem"], r["position"], r["source_job_id"], r["source_take"], r["path"]) for r in rows
        ]

    async def stems_job_for(self, source_job_id: str, take: int) -> Job | None:
        """The newest stems job of a take that is waiting, running, or done with its files still kept."""
        found = await self._select_jobs(f"{_LIVE_STEMS} ORDER BY seq DESC LIMIT 1", (source_job_id, take))
        return found[0] if found else None

    async def stems_jobs_with_followups(self, key: str) -> list[Job]:
        """Delivered stems jobs whose ``extra[key]`` still holds work to start (a stop came in between)."""
        return await self._select_jobs(
            "mode = 'stems' AND state = 'delivered' AND json_extract(extra, '$.' || ?) IS NOT NULL ORDER BY seq",
            (key,),
        )
