"""The fair queue: round-robin across members, batches of compatible takes.

Pure data structure, no I/O: the service feeds it jobs and asks it for the
next batch. Fairness: members take turns (whoever was served longest ago goes first), so
one member with ten queued jobs delays another member's first job by at most
one batch. Batching: the job at
the head of the fair order always runs next; compatible jobs (same batch key)
from the next few places of the fair order join it up to ``max_batch`` takes.
"""

from __future__ import annotations

import bisect
import itertools
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

    Taking the next batch reads only the head of the fair order (the users in turn order and the
    few places a batch may reach into), so it stays cheap with many thousands of queued jobs.

    Args:
        max_batch: most takes in one generate call.
        lookahead: how many places of the fair order a batch may reach into, in batches.
    """

    def __init__(self, max_batch: int, lookahead: int = 2) -> None:
        self.max_batch = max(1, max_batch)
        self._window = self.max_batch * max(1, lookahead)
        self._by_user: dict[int, deque[QueuedJob]] = {}
        self._index: dict[str, QueuedJob] = {}
        self._urgent: dict[str, QueuedJob] = {}
        # When each user was last served: users served longer ago (or never) take their turn first.
        self._last_served: OrderedDict[int, int] = OrderedDict()
        self._turn = 0
        # Users with queued jobs in turn order, kept sorted as jobs come and go: (last turn or -1
        # when never served, line number, user). A user's line gets its number when it opens, so
        # users served in the same turn, or never, keep the order their lines opened in.
        self._line_number: dict[int, int] = {}
        self._lines_opened = 0
        self._turn_order: list[tuple[int, int, int]] = []

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._index

    def push(self, job: QueuedJob) -> None:
        """Add a job at the end of its user's line."""
        if job.job_id in self._index:
            return
        self._index[job.job_id] = job
        if job.priority > 0:
            self._urgent[job.job_id] = job
        line = self._by_user.get(job.user_id)
        if line is None:
            line = self._by_user[job.user_id] = deque()
            self._lines_opened += 1
            self._line_number[job.user_id] = self._lines_opened
            self._place(job.user_id)
        line.append(job)

    def remove(self, job_id: str) -> bool:
        """Take a job out (cancel). Returns whether it was queued."""
        job = self._index.pop(job_id, None)
        if job is None:
            return False
        self._urgent.pop(job_id, None)
        line = self._by_user[job.user_id]
        line.remove(job)
        if not line:
            self._unplace(job.user_id)
            del self._by_user[job.user_id]
            del self._line_number[job.user_id]
        return True

    def fair_order(self) -> Iterator[QueuedJob]:
        """Jobs in the order they would start: priority first, then one per user per round."""
        urgent = sorted(self._urgent.values(), key=lambda j: -j.priority)
        yield from urgent
        users = [user for _, _, user in self._turn_order]
        lines: list[deque[QueuedJob]] | list[list[QueuedJob]]
        if urgent:
            lines = [[j for j in self._by_user[user] if j.job_id not in self._urgent] for user in users]
        else:
            lines = [self._by_user[user] for user in users]
        for round_index in itertools.count():
            more = False
            for line in lines:
                if round_index < len(line):
                    more = True
                    yield line[round_index]
            if not more:
                return

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
            queued = job.user_id in self._by_user
            if queued:
                self._unplace(job.user_id)
            self._last_served[job.user_id] = self._turn
            self._last_served.move_to_end(job.user_id)
            if queued:
                self._place(job.user_id)
        # Forget the users served longest ago, but never one with queued jobs (it would jump the line).
        forgettable = len(self._last_served) - MAX_REMEMBERED_USERS
        if forgettable > 0:
            for user in [u for u in itertools.islice(self._last_served, forgettable) if u not in self._by_user]:
                del self._last_served[user]
        return batch

    def _key(self, user: int) -> tuple[int, int, int]:
        return (self._last_served.get(user, -1), self._line_number[user], user)

    def _place(self, user: int) -> None:
        bisect.insort(self._turn_order, self._key(user))

    def _unplace(self, user: int) -> None:
        del self._turn_order[bisect.bisect_left(self._turn_order, self._key(user))]
