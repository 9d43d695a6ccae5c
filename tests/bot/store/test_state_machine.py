"""Quota invariants under any sequence of submissions, transitions, grants, overrides and restarts.

The machine keeps its own model of every ledger row and compares it after each step with what
the store reports and with the raw rows of the SQLite file.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from bot.store import IllegalTransitionError, JobStore, QuotaExceededError, TooManyPendingError
from bot.store.quota import utc_day

from .conftest import FakeClock, new_job

USERS = (1, 2)
GUILD = 10
DEFAULT_BUDGET_MS = 20_000
MAX_PENDING = 4
MAX_ATTEMPTS = 2
COSTS = st.sampled_from([0.0, 0.5, 1.0, 2.5, 4.0, 7.25, 12.0])


@dataclass
class ModelJob:
    user: int
    state: str
    cost_ms: int
    day: str
    attempts: int = 0
    refunded: bool = False


class QuotaMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="jamgen-store-sm-"))
        self.path = self.folder / "jamgen.db"
        self.clock = FakeClock(datetime(2030, 1, 1, 20, 0, tzinfo=UTC))
        self.loop = asyncio.new_event_loop()
        self.store = self._open()
        self.jobs: dict[str, ModelJob] = {}
        self.rows: list[tuple[int, str, str, int]] = []  # (user, day, kind, amount_ms) for every ledger row
        self.overrides: dict[int, int] = {}

    # -- plumbing

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def _open(self) -> JobStore:
        return self.run(JobStore.open(self.path, clock=self.clock, default_budget=DEFAULT_BUDGET_MS / 1000))

    def teardown(self) -> None:
        try:
            self.run(self.store.close())
        finally:
            self.loop.close()
            shutil.rmtree(self.folder, ignore_errors=True)

    # -- the model

    @property
    def today(self) -> str:
        return utc_day(self.clock.now)

    def budget_ms(self, user: int) -> int:
        return self.overrides.get(user, DEFAULT_BUDGET_MS)

    def net_ms(self, user: int) -> int:
        return sum(amount for u, day, _, amount in self.rows if u == user and day == self.today)

    def remaining_ms(self, user: int) -> int:
        return max(0, self.budget_ms(user) + self.net_ms(user))

    def ids(self, *states: str) -> list[str]:
        # In submission order: job ids are random, so sorting them would make a replayed example draw a
        # different job (hypothesis then calls the test flaky).
        return [job_id for job_id, job in self.jobs.items() if job.state in states]

    def refund_in_model(self, job_id: str) -> int:
        job = self.jobs[job_id]
        if job.refunded:
            return 0
        job.refunded = True
        self.rows.append((job.user, job.day, "refund", job.cost_ms))
        return job.cost_ms

    # -- rules

    @rule(user=st.sampled_from(USERS), cost=COSTS)
    def submit(self, user: int, cost: float) -> None:
        cost_ms = round(cost * 1000)
        pending = len([j for j in self.jobs.values() if j.user == user and j.state in ("queued", "running")])
        remaining = self.remaining_ms(user)
        before = self.budget_ms(user) + self.net_ms(user)
        try:
            job = self.run(
                self.store.submit_job(new_job(user_id=user, guild_id=GUILD), cost=cost, max_pending_user=MAX_PENDING)
            )
        except TooManyPendingError:
            assert pending >= MAX_PENDING
            return
        except QuotaExceededError as exc:
            assert pending < MAX_PENDING
            assert cost_ms > remaining
            assert round(exc.remaining * 1000) == remaining  # noqa: PT017 - a stateful rule, not a test
            return
        assert pending < MAX_PENDING
        assert cost_ms <= remaining
        assert job.id not in self.jobs
        self.jobs[job.id] = ModelJob(user=user, state="queued", cost_ms=cost_ms, day=self.today)
        self.rows.append((user, self.today, "debit", -cost_ms))
        after = self.budget_ms(user) + self.net_ms(user)
        assert after >= min(0, before)  # a charge never takes the balance below zero

    @precondition(lambda self: self.ids("queued"))
    @rule(data=st.data())
    def start(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(self.ids("queued")))
        job = self.run(self.store.mark_running(job_id))
        self.jobs[job_id].state = "running"
        self.jobs[job_id].attempts += 1
        assert job.attempts == self.jobs[job_id].attempts

    @precondition(lambda self: self.ids("running"))
    @rule(data=st.data())
    def interrupt(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(self.ids("running")))
        self.run(self.store.requeue(job_id))
        self.jobs[job_id].state = "queued"

    @precondition(lambda self: self.ids("running"))
    @rule(data=st.data())
    def finish(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(self.ids("running")))
        self.run(self.store.mark_rendered(job_id, [f"{job_id}.mp3"]))
        self.jobs[job_id].state = "rendered"

    @precondition(lambda self: self.ids("rendered"))
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(self.ids("rendered")))
        self.run(self.store.mark_delivered(job_id, [1]))
        self.jobs[job_id].state = "delivered"

    @precondition(lambda self: self.ids("queued", "running", "rendered"))
    @rule(data=st.data(), refund=st.booleans())
    def fail(self, data: st.DataObject, refund: bool) -> None:
        job_id = data.draw(st.sampled_from(self.ids("queued", "running", "rendered")))
        self.run(self.store.mark_failed(job_id, "it broke", refund=refund))
        self.jobs[job_id].state = "failed"
        if refund:
            self.refund_in_model(job_id)

    @precondition(lambda self: self.ids("queued", "running", "rendered"))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(self.ids("queued", "running", "rendered")))
        previous = self.jobs[job_id].state
        self.run(self.store.mark_cancelled(job_id))
        self.jobs[job_id].state = "cancelled"
        if previous != "rendered":
            self.refund_in_model(job_id)

    @precondition(lambda self: self.ids("delivered", "failed", "cancelled"))
    @rule(data=st.data())
    def refund_again(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(self.ids("delivered", "failed", "cancelled")))
        expected = self.refund_in_model(job_id)
        assert round(self.run(self.store.refund(job_id)) * 1000) == expected
        assert self.run(self.store.refund(job_id)) == 0

    @precondition(lambda self: self.ids("delivered", "failed", "cancelled"))
    @rule(data=st.data(), action=st.sampled_from(["start", "deliver", "fail", "cancel"]))
    def illegal(self, data: st.DataObject, action: str) -> None:
        job_id = data.draw(st.sampled_from(self.ids("delivered", "failed", "cancelled")))
        call = {
            "start": lambda: self.store.mark_running(job_id),
            "deliver": lambda: self.store.mark_delivered(job_id, [2]),
            "fail": lambda: self.store.mark_failed(job_id, "x", refund=True),
            "cancel": lambda: self.store.mark_cancelled(job_id),
        }[action]
        try:
            self.run(call())
        except IllegalTransitionError:
            return
        raise AssertionError(f"{action} on a {self.jobs[job_id].state} job was allowed")

    @rule(user=st.sampled_from(USERS), seconds=st.sampled_from([0.5, 3.0, 10.0]))
    def grant(self, user: int, seconds: float) -> None:
        self.run(self.store.grant(user, GUILD, seconds, by=99))
        self.rows.append((user, self.today, "grant", round(seconds * 1000)))

    @rule(user=st.sampled_from(USERS), seconds=st.sampled_from([None, 0.0, 5.0, 20.0, 45.0]))
    def override(self, user: int, seconds: float | None) -> None:
        self.run(self.store.set_user_budget(user, GUILD, seconds))
        if seconds is None:
            self.overrides.pop(user, None)
        else:
            self.overrides[user] = round(seconds * 1000)

    @rule(user=st.sampled_from(USERS))
    def reset(self, user: int) -> None:
        used = -sum(a for u, d, kind, a in self.rows if u == user and d == self.today and kind != "grant")
        given = round(self.run(self.store.reset_quota(user, GUILD)) * 1000)
        assert given == max(0, used)
        if given:
            self.rows.append((user, self.today, "reset", given))

    @rule(hours=st.sampled_from([1, 5, 13]))
    def pass_time(self, hours: int) -> None:
        self.clock.advance(hours=hours)

    @rule()
    def restart(self) -> None:
        self.run(self.store.close())
        self.store = self._open()
        recovery = self.run(self.store.recover(max_attempts=MAX_ATTEMPTS))
        failed = set()
        for job_id in self.ids("running"):
            job = self.jobs[job_id]
            if job.attempts >= MAX_ATTEMPTS:
                job.state = "failed"
                self.refund_in_model(job_id)
                failed.add(job_id)
            else:
                job.state = "queued"
        assert {j.id for j in recovery.failed} == failed
        assert [j.id for j in recovery.requeued] == sorted(self.ids("queued"), key=self.order)
        assert {j.id for j in recovery.redeliver} == set(self.ids("rendered"))

    def order(self, job_id: str) -> int:
        return self.run(self.store.get_job(job_id)).seq

    # -- invariants

    @invariant()
    def balances_match_the_ledger_and_the_model(self) -> None:
        conn = sqlite3.connect(self.path)
        try:
            for user in USERS:
                status = self.run(self.store.quota_status(user, GUILD))
                ledger_sum = conn.execute(
                    "SELECT coalesce(sum(amount_ms), 0) FROM quota_ledger "
                    "WHERE user_id = ? AND guild_id = ? AND day = ?",
                    (user, GUILD, self.today),
                ).fetchone()[0]
                assert ledger_sum == self.net_ms(user)
                assert round(status.budget * 1000) == self.budget_ms(user)
                assert round(status.remaining * 1000) == max(0, self.budget_ms(user) + ledger_sum)
                assert round(status.remaining * 1000) == self.remaining_ms(user)
                assert status.remaining >= 0
            per_job = dict.fromkeys(self.jobs, (0, 0))
            for job_id, debits, refunds in conn.execute(
                "SELECT job_id, sum(kind = 'debit'), sum(kind = 'refund') FROM quota_ledger "
                "WHERE job_id IS NOT NULL GROUP BY job_id"
            ):
                per_job[job_id] = (debits, refunds)
            for job_id, job in self.jobs.items():
                assert per_job[job_id] == (1, int(job.refunded)), job_id  # charged once, refunded at most once
            total = conn.execute("SELECT coalesce(sum(amount_ms), 0) FROM quota_ledger").fetchone()[0]
            assert total == sum(amount for *_, amount in self.rows)
            states = dict(conn.execute("SELECT id, state FROM jobs"))
            assert states == {job_id: job.state for job_id, job in self.jobs.items()}
        finally:
            conn.close()


QuotaMachine.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestQuotaMachine = pytest.mark.slow(QuotaMachine.TestCase)  # ~900 steps on a real file: several seconds
