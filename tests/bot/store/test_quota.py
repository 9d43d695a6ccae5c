import math
import sqlite3
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.errors import UserInputError
from bot.store import JobStore, QuotaExceededError, format_seconds, format_wait, next_reset, utc_day

from .conftest import FakeClock, new_job, raw


async def test_a_new_member_has_the_default_budget(store, clock):
    status = await store.quota_status(1, 10)
    assert (status.budget, status.used, status.granted, status.remaining) == (600, 0, 0, 600)
    assert not status.unlimited
    assert status.source == "default"
    assert status.day == "2030-01-01"
    assert status.resets_at == datetime(2030, 1, 2, tzinfo=UTC)


async def test_submitting_charges_and_the_ledger_says_so(store):
    job = await store.submit_job(new_job(), cost=42.25)
    status = await store.quota_status(1, 10)
    assert (status.used, status.remaining) == (42.25, 557.75)
    [debit] = await store.job_ledger(job.id)
    assert (debit.kind, debit.amount, debit.day, debit.user_id, debit.guild_id) == (
        "debit",
        -42.25,
        "2030-01-01",
        1,
        10,
    )


async def test_quota_exceeded_says_how_much_is_left_and_when_it_resets(store, db_path):
    await store.submit_job(new_job(), cost=590)
    with pytest.raises(QuotaExceededError) as info:
        await store.submit_job(new_job(), cost=30)
    error = info.value
    assert isinstance(error, UserInputError)
    assert error.user_error
    assert (error.remaining, error.cost, error.budget) == (10, 30, 600)
    assert error.resets_at == datetime(2030, 1, 2, tzinfo=UTC)
    assert str(error) == (
        "This needs 30 s of quota but you have 10 s left today (of 10 min). "
        "Try a shorter track, fewer takes or a lighter model. Your quota resets at 00:00 UTC, in 12 h."
    )
    assert raw(db_path, "SELECT count(*) FROM jobs")[0][0] == 1
    assert raw(db_path, "SELECT count(*) FROM quota_ledger")[0][0] == 1


async def test_an_exact_fit_is_allowed_and_then_nothing_more(store):
    await store.submit_job(new_job(), cost=599.999)
    await store.submit_job(new_job(), cost=0.001)
    assert (await store.quota_status(1, 10)).remaining == 0
    with pytest.raises(QuotaExceededError) as info:
        await store.submit_job(new_job(), cost=0.001)
    assert str(info.value).startswith("You have used all 10 min of today's quota.")
    await store.submit_job(new_job(), cost=0)  # free work is always allowed


async def test_budget_precedence(store):
    assert (await store.quota_status(1, 10, role_ids=[7])).source == "default"
    await store.update_guild_settings(10, default_budget=300)
    status = await store.quota_status(1, 10)
    assert (status.budget, status.source) == (300, "guild")
    await store.set_role_tier(10, 7, 900)
    await store.set_role_tier(10, 8, 1200)
    await store.set_role_tier(10, 9, 60)
    assert (await store.quota_status(1, 10, role_ids=[9])).budget == 60  # a tier may also be lower
    status = await store.quota_status(1, 10, role_ids=[7, 8, 9, 123])
    assert (status.budget, status.source) == (1200, "role")  # the best tier applies
    await store.set_user_budget(1, 10, 45)
    status = await store.quota_status(1, 10, role_ids=[8])
    assert (status.budget, status.source) == (45, "user")
    await store.set_unlimited(1, 10, True)
    status = await store.quota_status(1, 10, role_ids=[8])
    assert status.unlimited
    assert status.source == "unlimited"
    assert math.isinf(status.remaining)
    await store.set_unlimited(1, 10, False)
    await store.set_user_budget(1, 10, None)
    assert (await store.quota_status(1, 10, role_ids=[8])).budget == 1200
    await store.set_role_tier(10, 8, None)
    assert (await store.quota_status(1, 10, role_ids=[8])).source == "guild"
    status = await store.quota_status(1, 10, is_admin=True)
    assert status.unlimited
    assert status.source == "admin"


async def test_server_settings_and_tiers_do_not_apply_in_direct_messages(store):
    await store.update_guild_settings(10, default_budget=1)
    await store.set_role_tier(10, 7, 5000)
    status = await store.quota_status(1, None, role_ids=[7])
    assert (status.budget, status.source) == (600, "default")


async def test_the_global_default_can_be_given_per_call(store):
    assert (await store.quota_status(1, 10, default_budget=20)).budget == 20
    with pytest.raises(QuotaExceededError):
        await store.submit_job(new_job(), cost=21, default_budget=20)


async def test_admins_and_unlimited_members_are_never_refused_but_their_use_is_recorded(store):
    await store.submit_job(new_job(user_id=1), cost=5000, is_admin=True)
    status = await store.quota_status(1, 10, is_admin=True)
    assert status.used == 5000
    assert math.isinf(status.remaining)
    assert (await store.quota_status(1, 10)).remaining == 0  # not negative once the flag is gone
    await store.set_unlimited(2, 10, True)
    await store.submit_job(new_job(user_id=2), cost=5000)
    await store.set_unlimited(2, 10, False)
    assert (await store.quota_status(2, 10)).remaining == 0


async def test_quota_is_kept_per_server(store):
    await store.submit_job(new_job(guild_id=10), cost=600)
    with pytest.raises(QuotaExceededError):
        await store.submit_job(new_job(guild_id=10), cost=1)
    await store.submit_job(new_job(guild_id=20), cost=600)
    await store.submit_job(new_job(guild_id=None), cost=600)


async def test_grants_add_to_today_only(store, clock):
    await store.submit_job(new_job(), cost=600)
    await store.grant(1, 10, 30, by=99, note="contest winner")
    status = await store.quota_status(1, 10)
    assert (status.granted, status.used, status.remaining) == (30, 600, 30)
    [_, grant] = await store.ledger(1, 10)
    assert (grant.kind, grant.amount, grant.job_id, grant.actor_id, grant.note) == (
        "grant",
        30,
        None,
        99,
        "contest winner",
    )
    await store.submit_job(new_job(), cost=30)
    clock.advance(days=1)
    status = await store.quota_status(1, 10)
    assert (status.granted, status.used, status.remaining) == (0, 0, 600)
    with pytest.raises(ValueError):
        await store.grant(1, 10, 0)


async def test_the_day_is_the_utc_day_whatever_the_clock_zone(tmp_path):
    tokyo = timezone(timedelta(hours=9))
    clock = FakeClock(datetime(2030, 1, 2, 8, 30, tzinfo=tokyo))  # 2030-01-01 23:30 UTC
    async with JobStore.open(tmp_path / "j.db", clock=clock, default_budget=100) as store:
        await store.submit_job(new_job(), cost=100)
        status = await store.quota_status(1, 10)
        assert status.day == "2030-01-01"
        assert status.remaining == 0
        assert status.resets_at == datetime(2030, 1, 2, tzinfo=UTC)
        clock.advance(minutes=31)  # 00:01 UTC: a new day
        status = await store.quota_status(1, 10)
        assert status.day == "2030-01-02"
        assert status.remaining == 100


async def test_a_refund_after_midnight_goes_back_to_the_day_it_was_charged(store, clock):
    clock.now = datetime(2030, 1, 1, 23, 59, tzinfo=UTC)
    job = await store.submit_job(new_job(), cost=400)
    clock.advance(minutes=2)
    await store.submit_job(new_job(), cost=100)
    await store.mark_failed(job.id, "crashed", refund=True)
    status = await store.quota_status(1, 10)
    assert (status.used, status.remaining) == (100, 500)  # no bonus seconds today
    [_, refund] = await store.job_ledger(job.id)
    assert (refund.kind, refund.day, refund.amount) == ("refund", "2030-01-01", 400)


async def test_reset_gives_back_todays_use_and_keeps_the_ledger_consistent(store):
    a = await store.submit_job(new_job(), cost=200)
    await store.submit_job(new_job(), cost=100)
    await store.mark_cancelled(a.id)
    await store.grant(1, 10, 50)
    assert await store.reset_quota(1, 10, by=99) == 100
    status = await store.quota_status(1, 10)
    assert (status.used, status.granted, status.remaining) == (0, 50, 650)
    total = sum(e.amount for e in await store.ledger(1, 10, day=status.day))
    assert status.remaining == status.budget + total
    assert await store.reset_quota(1, 10) == 0  # nothing used: no row
    assert [e.kind for e in await store.ledger(1, 10)] == ["debit", "debit", "refund", "grant", "reset"]


async def test_refunds_are_idempotent(store):
    job = await store.submit_job(new_job(), cost=8)
    assert await store.refund(job.id) == 8
    assert await store.refund(job.id) == 0
    await store.mark_failed(job.id, "x", refund=True)
    assert await store.refund(job.id) == 0
    assert [e.kind for e in await store.job_ledger(job.id)] == ["debit", "refund"]
    assert (await store.quota_status(1, 10)).used == 0


async def test_the_database_itself_refuses_a_second_charge_or_refund(store, db_path):
    job = await store.submit_job(new_job(), cost=8)
    await store.refund(job.id)
    for kind, amount in (("debit", -8000), ("refund", 8000)):
        with pytest.raises(sqlite3.IntegrityError):
            raw(
                db_path,
                "INSERT INTO quota_ledger (user_id, guild_id, day, kind, amount_ms, job_id, created_at) "
                "VALUES (1, 10, '2030-01-01', ?, ?, ?, 'x')",
                (kind, amount, job.id),
            )


async def test_a_lowered_budget_leaves_nothing_but_never_goes_negative(store):
    await store.submit_job(new_job(), cost=300)
    await store.set_user_budget(1, 10, 100)
    status = await store.quota_status(1, 10)
    assert (status.budget, status.used, status.remaining) == (100, 300, 0)
    with pytest.raises(QuotaExceededError):
        await store.submit_job(new_job(), cost=1)


async def test_negative_or_endless_costs_are_refused(store):
    for cost in (-1, math.inf, math.nan):
        with pytest.raises(ValueError):
            await store.submit_job(new_job(), cost=cost)


def test_utc_day_and_reset_time():
    moment = datetime(2030, 3, 4, 23, 59, 59, tzinfo=UTC)
    assert utc_day(moment) == "2030-03-04"
    assert next_reset(moment) == datetime(2030, 3, 5, tzinfo=UTC)
    assert next_reset(datetime(2030, 3, 5, tzinfo=UTC)) == datetime(2030, 3, 6, tzinfo=UTC)
    assert utc_day(datetime(2030, 3, 5, 1, 0)) == "2030-03-05"  # naive is taken as UTC


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (4.5, "4.5 s"),
        (45, "45 s"),
        (90, "1 min 30 s"),
        (600, "10 min"),
        (3900, "1 h 5 min"),
        (math.inf, "unlimited"),
    ],
)
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=20), "in less than a minute"),
        (timedelta(minutes=3), "in 3 min"),
        (timedelta(hours=5, minutes=12), "in 5 h 12 min"),
        (timedelta(hours=2), "in 2 h"),
    ],
)
def test_format_wait(delta, text):
    assert format_wait(delta) == text
