"""The fair queue: round-robin across members, batches of compatible takes.

Pure data structure, no I/O: the service feeds it jobs and asks it for the
next batch. Fairness: members take turns (whoever was served longest ago goes first), so
one member with ten queued jobs delays another member's first job by at most
one batch. Batching: the job at
the head of the fair order always runs next; compatible jobs (same batch key)
from the next few places of the fair order join it up to ``max_batch`` takes.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Hashable, Iterator
from dataclasses import dataclass

MAX_REMEMBERED_USERS = 10_000


@dataclass(frozen=True)
class QueuedJob:
    """One job waiting for the engine.

    Args:
        job_id: store id.
        user_id: who asked (the unit of fairness).
        takes: engine requests it needs (its takes always run together).
        batch_key: jobs with equal keys may share a generate call; None = runs alone.
        priority: higher goes first (admins); equal priority keeps fair order.
    """

    job_id: str
    user_id: int
    takes: int
    batch_key: Hashable | None
    priority: int = 0


class FairQueue:
    """Round-robin queue of jobs across users.

    Args:
        max_batch: most takes in one generate call.
        lookahead: how many places of the fair order a batch may reach into, in batches.
    """

    def __init__(self, max_batch: int, lookahead: int = 2) -> None:
        self.max_batch = max(1, max_batch)
        self._window = self.max_batch * max(1, lookahead)
        self._by_user: OrderedDict[int, deque[QueuedJob]] = OrderedDict()
        self._index: dict[str, QueuedJob] = {}
        # When each user was last served: users served longer ago (or never) take their turn first.
        self._last_served: OrderedDict[int, int] = OrderedDict()
        self._turn = 0

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._index

    def push(self, job: QueuedJob) -> None:
        """Add a job at the end of its user's line."""
        if job.job_id in self._index:
            return
        self._index[job.job_id] = job
        self._by_user.setdefault(job.user_id, deque()).append(job)

    def remove(self, job_id: str) -> bool:
        """Take a job out (cancel). Returns whether it was queued."""
        job = self._index.pop(job_id, None)
        if job is None:
            return False
        line = self._by_user[job.user_id]
        line.remove(job)
        if not line:
            del self._by_user[job.user_id]
        return True

    def fair_order(self) -> Iterator[QueuedJob]:
        """Jobs in the order they would start: priority first, then one per user per round."""
        urgent = sorted((j for j in self._index.values() if j.priority > 0), key=lambda j: -j.priority)
        yield from urgent
        urgent_ids = {j.job_id for j in urgent}
        users = sorted(self._by_user, key=lambda user: self._last_served.get(user, -1))  # stable: arrival order
        lines = [[j for j in self._by_user[user] if j.job_id not in urgent_ids] for user in users]
        depth = max((len(line) for line in lines), default=0)
        for round_index in range(depth):
            for line in lines:
                if round_index < len(line):
                    yield line[round_index]

    def position(self, job_id: str) -> int | None:
        """1-based place in the fair order, or None when not queued."""
        for place, job in enumerate(self.fair_order(), start=1):
            if job.job_id == job_id:
                return place
        return None

    def next_batch(self) -> list[QueuedJob]:
        """Remove and return the next batch: the head job plus compatible jobs close behind it."""
        order = self.fair_order()
        head = next(order, None)
        if head is None:
            return []
        batch = [head]
        if head.batch_key is not None:
            size = head.takes
            for place, job in enumerate(order, start=1):
                if place > self._window or size >= self.max_batch:
                    break
                if job.batch_key == head.batch_key and size + job.takes <= self.max_batch:
                    batch.append(job)
                    size += job.takes
        self._turn += 1
        for job in batch:
            self.remove(job.job_id)
            # The user just served goes to the back of the round.
            self._last_served[job.user_id] = self._turn
            self._last_served.move_to_end(job.user_id)
        while len(self._last_served) > MAX_REMEMBERED_USERS:
            self._last_served.popitem(last=False)
        return batch
