"""A jam's tree of takes (each take under the one it was made from) and a take's place in it, as data.

How they read on Discord is ``bot/discord/tree.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.service.session_rules import DROPPED_STATES
from bot.store import Job, Session


@dataclass(frozen=True)
class TreeEntry:
    """One take in a session's tree.

    Args:
        job: the take.
        depth: 0 for takes that start a branch.
        parent_id: its parent inside the session (None for a root).
        children: its children inside the session, oldest first.
        bpm: the detected tempo of its first take.
        best: the winner of the jam's best-take vote.
    """

    job: Job
    depth: int
    parent_id: str | None
    children: tuple[str, ...]
    bpm: float | None
    best: bool = False


def tree_parent(job: Job) -> str | None:
    """The take a take grows from: its parent, or for a take made from a stem, the take split into stems."""
    stem_of = job.params.get("audio_stem_of")
    return str(stem_of) if stem_of else job.parent_id


def build_tree(jobs: Sequence[Job], *, best: str | None = None) -> list[TreeEntry]:
    """A session's takes in tree order (each parent before its children, branches oldest first).

    Failed and cancelled jobs are left out; a take whose parent is outside the session starts a branch.

    Args:
        jobs: the session's jobs in submission order.
        best: the job id of the best-take vote's winner, if any.
    """
    kept = [job for job in jobs if job.state not in DROPPED_STATES]
    ids = {job.id for job in kept}
    parents = {job.id: tree_parent(job) for job in kept}
    children: dict[str | None, list[Job]] = {}
    for job in kept:
        children.setdefault(parents[job.id] if parents[job.id] in ids else None, []).append(job)
    entries: list[TreeEntry] = []
    stack: list[tuple[Job, int]] = [(job, 0) for job in reversed(children.get(None, []))]
    while stack:
        job, depth = stack.pop()
        kids = children.get(job.id, [])
        takes = (job.extra or {}).get("takes") or [{}]
        entries.append(
            TreeEntry(
                job=job,
                depth=depth,
                parent_id=parents[job.id] if parents[job.id] in ids else None,
                children=tuple(kid.id for kid in kids),
                bpm=takes[0].get("bpm"),
                best=job.id == best,
            )
        )
        stack.extend((kid, depth + 1) for kid in reversed(kids))
    return entries


@dataclass(frozen=True)
class TakePlace:
    """Where a take stands in its jam, for its message: its number, its parent and its children.

    Args:
        session: the jam.
        number: 1 for the jam's first take.
        parent_id: the take it was made from, if any.
        children: the takes made from it, oldest first.
    """

    session: Session
    number: int
    parent_id: str | None
    children: tuple[str, ...]


def take_place(job: Job, session: Session, jobs: Sequence[Job]) -> TakePlace:
    """``job``'s place among the session's jobs (in submission order; failed and cancelled ones do not count)."""
    ids = [j.id for j in jobs if j.state not in DROPPED_STATES]
    number = ids.index(job.id) + 1 if job.id in ids else len(ids) + 1
    children = tuple(j.id for j in jobs if tree_parent(j) == job.id and j.state not in DROPPED_STATES)
    return TakePlace(session, number, tree_parent(job), children)
