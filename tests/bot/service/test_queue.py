from hypothesis import given, settings
from hypothesis import strategies as st

from bot.service.queue import FairQueue, QueuedJob


def job(job_id, user, key="k", takes=1, priority=0):
    return QueuedJob(job_id, user, takes, key, priority)


def drain(queue):
    batches = []
    while queue:
        batches.append([j.job_id for j in queue.next_batch()])
    return batches


def test_round_robin_puts_newcomers_before_a_heavy_user():
    queue = FairQueue(max_batch=4)
    for i in range(10):
        queue.push(job(f"a{i}", user=1, key="x"))
    for user in (2, 3, 4):
        queue.push(job(f"u{user}", user=user, key="y"))
    assert [j.job_id for j in queue.next_batch()] == ["a0", "a1", "a2", "a3"]
    assert [j.job_id for j in queue.next_batch()] == ["u2", "u3", "u4"]


def test_user_served_last_goes_to_the_back():
    queue = FairQueue(max_batch=1)
    queue.push(job("a1", 1))
    assert [j.job_id for j in queue.next_batch()] == ["a1"]
    queue.push(job("a2", 1))
    queue.push(job("b1", 2))
    assert [j.job_id for j in queue.next_batch()] == ["b1"]


def test_only_compatible_jobs_share_a_batch_and_seeded_jobs_run_alone():
    queue = FairQueue(max_batch=4)
    queue.push(job("s1", 1, key=None))
    queue.push(job("x1", 2, key="x"))
    queue.push(job("y1", 3, key="y"))
    queue.push(job("x2", 4, key="x"))
    assert drain(queue) == [["s1"], ["x1", "x2"], ["y1"]]


def test_takes_of_one_job_stay_together_and_fill_the_batch():
    queue = FairQueue(max_batch=4)
    queue.push(job("big", 1, takes=3))
    queue.push(job("two", 2, takes=2))
    queue.push(job("one", 3, takes=1))
    assert drain(queue) == [["big", "one"], ["two"]]


def test_priority_jobs_go_first_and_remove_works():
    queue = FairQueue(max_batch=1)
    queue.push(job("m1", 1))
    queue.push(job("m2", 2))
    queue.push(job("admin", 3, priority=1))
    assert queue.position("admin") == 1
    assert queue.remove("m1") is True
    assert queue.remove("m1") is False
    assert drain(queue) == [["admin"], ["m2"]]


@settings(max_examples=60, deadline=None)
@given(
    jobs=st.lists(st.tuples(st.integers(0, 5), st.sampled_from(["a", "b", None]), st.integers(1, 3)), max_size=40),
    max_batch=st.integers(1, 6),
)
def test_every_job_runs_exactly_once_and_no_batch_overflows(jobs, max_batch):
    queue = FairQueue(max_batch=max_batch)
    for i, (user, key, takes) in enumerate(jobs):
        queue.push(job(f"j{i}", user, key=key, takes=min(takes, max_batch)))
    seen = []
    while queue:
        batch = queue.next_batch()
        assert batch
        assert sum(j.takes for j in batch) <= max_batch
        assert len({j.batch_key for j in batch}) == 1
        if batch[0].batch_key is None:
            assert len(batch) == 1
        seen += [j.job_id for j in batch]
    assert sorted(seen) == sorted(f"j{i}" for i in range(len(jobs)))


@settings(max_examples=60, deadline=None)
@given(heavy=st.integers(1, 12), others=st.integers(1, 3), max_batch=st.integers(3, 8))
def test_a_newcomer_waits_at_most_one_batch_behind_a_heavy_user(heavy, others, max_batch):
    queue = FairQueue(max_batch=max_batch)
    for i in range(heavy):
        queue.push(job(f"h{i}", 1, key="heavy"))
    for user in range(2, 2 + others):
        queue.push(job(f"n{user}", user, key="light"))
    batches = drain(queue)
    for user in range(2, 2 + others):
        index = next(i for i, b in enumerate(batches) if f"n{user}" in b)
        assert index <= 1


class ReferenceQueue:
    """The fair order as first written (sort every user, list every job): the behaviour to keep."""

    def __init__(self, max_batch):
        self.max_batch = max_batch
        self.jobs = {}  # job id -> job, in push order
        self.lines = {}  # user -> job ids, users in the order their lines opened
        self.last_served = {}
        self.turn = 0

    def push(self, j):
        if j.job_id not in self.jobs:
            self.jobs[j.job_id] = j
            self.lines.setdefault(j.user_id, []).append(j)

    def remove(self, job_id):
        j = self.jobs.pop(job_id, None)
        if j is None:
            return False
        self.lines[j.user_id].remove(j)
        if not self.lines[j.user_id]:
            del self.lines[j.user_id]
        return True

    def fair_order(self):
        urgent = sorted((j for j in self.jobs.values() if j.priority > 0), key=lambda j: -j.priority)
        users = sorted(self.lines, key=lambda u: self.last_served.get(u, -1))
        lines = [[j for j in self.lines[u] if j.priority <= 0] for u in users]
        order = list(urgent)
        for r in range(max((len(line) for line in lines), default=0)):
            order += [line[r] for line in lines if r < len(line)]
        return order

    def next_batch(self):
        order = self.fair_order()
        if not order:
            return []
        head, batch, size = order[0], [order[0]], order[0].takes
        if head.batch_key is not None:
            for place, j in enumerate(order[1:], start=1):
                if place > self.max_batch * 2 or size >= self.max_batch:
                    break
                if j.batch_key == head.batch_key and size + j.takes <= self.max_batch:
                    batch.append(j)
                    size += j.takes
        self.turn += 1
        for j in batch:
            self.remove(j.job_id)
            self.last_served[j.user_id] = self.turn
        return batch


operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("push"),
            st.integers(0, 6),
            st.sampled_from(["a", "b", None]),
            st.integers(1, 3),
            st.sampled_from([0, 0, 0, 1, 2]),
        ),
        st.tuples(st.just("remove"), st.integers(0, 60)),
        st.tuples(st.just("next")),
    ),
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(ops=operations, max_batch=st.integers(1, 6))
def test_the_fair_order_and_batches_match_the_reference_after_any_pushes_cancels_and_batches(ops, max_batch):
    queue, reference = FairQueue(max_batch=max_batch), ReferenceQueue(max_batch)
    pushed = 0
    for op in ops:
        if op[0] == "push":
            _, user, key, takes, priority = op
            new = job(f"j{pushed}", user, key=key, takes=min(takes, max_batch), priority=priority)
            pushed += 1
            queue.push(new)
            reference.push(new)
        elif op[0] == "remove":
            assert queue.remove(f"j{op[1]}") == reference.remove(f"j{op[1]}")
        else:
            assert queue.next_batch() == reference.next_batch()
        assert list(queue.fair_order()) == reference.fair_order()
        assert len(queue) == len(reference.jobs)
    while reference.jobs:
        assert queue.next_batch() == reference.next_batch()
    assert not queue


def test_a_user_with_queued_jobs_is_never_forgotten(monkeypatch):
    monkeypatch.setattr("bot.service.queue.MAX_REMEMBERED_USERS", 2)
    queue = FairQueue(max_batch=1)
    queue.push(job("a1", 1))
    queue.push(job("a2", 1))
    assert [j.job_id for j in queue.next_batch()] == ["a1"]  # user 1 served, still queued
    for user in (2, 3, 4):
        queue.push(job(f"u{user}", user))
        queue.next_batch()
    queue.push(job("new", 9))
    # User 1 was served longest ago but still waits: kept, so the newcomer goes first, then user 1.
    assert [j.job_id for j in queue.fair_order()] == ["new", "a2"]
    assert len(queue._last_served) <= 2 + 1
