import dataclasses

import pytest

from bot.errors import InternalError, UserInputError
from bot.store import (
    BlockedError,
    IllegalTransitionError,
    Job,
    JobNotFoundError,
    JobState,
    NewJob,
    SecretRefusedError,
    TooManyPendingError,
)
from bot.store.ids import ALPHABET, ID_LENGTH, looks_like_job_id

from .conftest import START, new_job, raw


async def test_a_submitted_job_keeps_its_whole_recipe(store):
    submitted = new_job(
        user_id=5,
        guild_id=10,
        channel_id=200,
        mode="style",
        model="style",
        prompt="jazz trio",
        params={"duration": 12.5, "sampling": {"top_k": 250}, "inputs": ["jobs/x/in.wav"]},
        takes=3,
        seed=1234,
        session_id="sess-1",
        interaction_id=111,
        request_message_id=222,
        reply_to_message_id=333,
        progress_message_id=444,
        priority=2,
        extra={"note": "first"},
    )
    job = await store.submit_job(submitted, cost=37.5)
    assert looks_like_job_id(job.id)
    assert job.state is JobState.QUEUED
    assert job.is_pending
    assert not job.is_final
    assert (job.user_id, job.guild_id, job.channel_id) == (5, 10, 200)
    assert (job.mode, job.model, job.prompt, job.takes, job.seed) == ("style", "style", "jazz trio", 3, 1234)
    assert job.params == {"duration": 12.5, "sampling": {"top_k": 250}, "inputs": ["jobs/x/in.wav"]}
    assert (job.interaction_id, job.request_message_id, job.reply_to_message_id, job.progress_message_id) == (
        111,
        222,
        333,
        444,
    )
    assert (job.session_id, job.priority, job.extra, job.cost, job.attempts) == (
        "sess-1",
        2,
        {"note": "first"},
        37.5,
        0,
    )
    assert job.created_at == START
    assert job.outputs == []
    assert job.delivered_message_ids == []
    assert await store.get_job(job.id) == job


async def test_ids_are_short_unambiguous_and_unique(store):
    ids = {(await store.submit_job(new_job(), cost=0)).id for _ in range(60)}
    assert len(ids) == 60
    assert all(len(i) == ID_LENGTH and set(i) <= set(ALPHABET) for i in ids)
    assert not set(ALPHABET) & set("01ilo")


async def test_ids_are_found_however_they_are_typed(store):
    job = await store.submit_job(new_job(), cost=0)
    typed = f"  {job.id[:4].upper()}-{job.id[4:].upper()} "
    assert (await store.get_job(typed)).id == job.id
    assert await store.get_job("zzzzzzzz") is None


async def test_direct_message_jobs_have_no_guild(store):
    job = await store.submit_job(new_job(guild_id=None), cost=1)
    assert job.guild_id is None
    assert (await store.quota_status(1, None)).used == 1


def test_no_field_or_column_can_hold_a_token(db_path):
    for cls in (Job, NewJob):
        assert not [f.name for f in dataclasses.fields(cls) if "token" in f.name]


async def test_the_jobs_table_has_no_token_column(store, db_path):
    columns = [row[1] for row in raw(db_path, "PRAGMA table_info(jobs)")]
    assert "interaction_id" in columns
    assert not [c for c in columns if "token" in c]


@pytest.mark.parametrize(
    ("params", "extra"),
    [
        ({"interaction_token": "abc"}, {}),
        ({"nested": {"Token": "abc"}}, {}),
        ({}, {"followup": "aW50ZXJhY3Rpb246MTIzNDU2Nzg5OmFiY2RlZg"}),
        ({"list": ["ok", {"webhook_token": "x"}]}, {}),
    ],
)
async def test_anything_that_looks_like_a_token_is_refused_before_the_disk(store, db_path, params, extra):
    with pytest.raises(SecretRefusedError) as info:
        await store.submit_job(new_job(params=params, extra=extra), cost=1)
    assert isinstance(info.value, InternalError)
    assert raw(db_path, "SELECT count(*) FROM jobs")[0][0] == 0
    assert raw(db_path, "SELECT count(*) FROM quota_ledger")[0][0] == 0


async def test_a_token_cannot_sneak_in_through_update_job(store):
    job = await store.submit_job(new_job(), cost=1)
    with pytest.raises(SecretRefusedError):
        await store.update_job(job.id, extra={"token": "x"})
    with pytest.raises(SecretRefusedError):
        await store.update_job(job.id, params={"interaction_token": "x"})
    assert (await store.get_job(job.id)).extra == {}
    assert (await store.get_job(job.id)).params == {"duration": 10}


async def test_the_happy_path_records_every_step(store, clock):
    job = await store.submit_job(new_job(), cost=10)
    clock.advance(seconds=5)
    running = await store.mark_running(job.id)
    assert running.state is JobState.RUNNING
    assert running.attempts == 1
    assert running.started_at == clock.now
    clock.advance(seconds=30)
    rendered = await store.mark_rendered(job.id, ["out/a.mp3", "out/b.mp3"], extra={"loudness": -14.0})
    assert rendered.state is JobState.RENDERED
    assert rendered.outputs == ["out/a.mp3", "out/b.mp3"]
    assert rendered.rendered_at == clock.now
    assert rendered.extra == {"loudness": -14.0}
    clock.advance(seconds=2)
    delivered = await store.mark_delivered(job.id, [9001, 9002])
    assert delivered.state is JobState.DELIVERED
    assert delivered.is_final
    assert delivered.delivered_message_ids == [9001, 9002]
    assert delivered.delivered_at == delivered.finished_at == clock.now
    assert (await store.quota_status(1, 10)).used == 10  # delivered work stays charged


ILLEGAL = [
    ("queued", "render"),
    ("queued", "deliver"),
    ("queued", "requeue"),
    ("running", "start"),
    ("running", "deliver"),
    ("rendered", "start"),
    ("rendered", "render"),
    ("rendered", "requeue"),
    ("delivered", "start"),
    ("delivered", "fail"),
    ("delivered", "cancel"),
    ("delivered", "deliver"),
    ("failed", "start"),
    ("failed", "cancel"),
    ("failed", "fail"),
    ("cancelled", "start"),
    ("cancelled", "deliver"),
    ("cancelled", "cancel"),
]


async def _job_in(store, state):
    job = await store.submit_job(new_job(), cost=1)
    if state == "cancelled":
        return await store.mark_cancelled(job.id)
    if state == "failed":
        return await store.mark_failed(job.id, "no", refund=False)
    if state == "queued":
        return job
    job = await store.mark_running(job.id)
    if state == "running":
        return job
    job = await store.mark_rendered(job.id, ["x.mp3"])
    if state == "rendered":
        return job
    return await store.mark_delivered(job.id, [1])


def _act(store, action, job_id):
    return {
        "start": lambda: store.mark_running(job_id),
        "render": lambda: store.mark_rendered(job_id, ["y.mp3"]),
        "deliver": lambda: store.mark_delivered(job_id, [2]),
        "fail": lambda: store.mark_failed(job_id, "oops", refund=True),
        "cancel": lambda: store.mark_cancelled(job_id),
        "requeue": lambda: store.requeue(job_id),
    }[action]()


@pytest.mark.parametrize(("state", "action"), ILLEGAL)
async def test_illegal_transitions_are_refused_and_change_nothing(store, state, action):
    job = await _job_in(store, state)
    ledger_before = await store.job_ledger(job.id)
    with pytest.raises(IllegalTransitionError) as info:
        await _act(store, action, job.id)
    assert not info.value.user_error
    assert info.value.current == state
    assert await store.get_job(job.id) == job
    assert await store.job_ledger(job.id) == ledger_before


@pytest.mark.parametrize("action", ["start", "render", "deliver", "fail", "cancel", "requeue"])
async def test_transitions_of_an_unknown_job_say_so(store, action):
    with pytest.raises(JobNotFoundError) as info:
        await _act(store, action, "zzzzzzzz")
    assert isinstance(info.value, UserInputError)


async def test_cancelling_refunds_unless_the_track_was_already_rendered(store):
    queued = await store.submit_job(new_job(), cost=5)
    running = await store.mark_running((await store.submit_job(new_job(), cost=7)).id)
    rendered = await _job_in(store, "rendered")  # cost 1
    assert (await store.quota_status(1, 10)).used == 13
    await store.mark_cancelled(queued.id)
    await store.mark_cancelled(running.id)
    await store.mark_cancelled(rendered.id)
    assert (await store.quota_status(1, 10)).used == 1
    assert [e.kind for e in await store.job_ledger(rendered.id)] == ["debit"]


async def test_failing_refunds_only_when_asked(store):
    ours = await store.mark_running((await store.submit_job(new_job(), cost=4)).id)
    theirs = await store.submit_job(new_job(), cost=6)
    failed = await store.mark_failed(ours.id, "The engine crashed.", refund=True)
    assert failed.state is JobState.FAILED
    assert failed.error == "The engine crashed."
    assert failed.finished_at
    await store.mark_failed(theirs.id, "Your file was not audio.", refund=False)
    assert (await store.quota_status(1, 10)).used == 6


async def test_delivery_can_be_given_up_after_rendering(store):
    job = await _job_in(store, "rendered")
    failed = await store.mark_failed(job.id, "Discord would not take the file.", refund=True)
    assert failed.state is JobState.FAILED
    assert (await store.quota_status(1, 10)).used == 0


async def test_update_job_sets_message_ids_and_merges_extra(store):
    job = await store.submit_job(new_job(extra={"a": 1, "b": 2}), cost=1)
    updated = await store.update_job(job.id, progress_message_id=55, extra={"b": None, "c": [1, 2]})
    assert updated.progress_message_id == 55
    assert updated.extra == {"a": 1, "c": [1, 2]}
    again = await store.update_job(job.id, reply_to_message_id=66)
    assert (again.progress_message_id, again.reply_to_message_id, again.extra) == (55, 66, {"a": 1, "c": [1, 2]})
    moved = await store.update_job(job.id, params={"duration": 10, "input_path": f"jobs/{job.id}/in.wav"})
    assert moved.params == {"duration": 10, "input_path": f"jobs/{job.id}/in.wav"}
    assert moved.progress_message_id == 55
    cleared = await store.update_job(job.id, progress_message_id=None)
    assert cleared.progress_message_id is None
    with pytest.raises(JobNotFoundError):
        await store.update_job("zzzzzzzz", progress_message_id=1)


async def test_list_user_jobs_is_newest_first_and_filters(store):
    a = await store.submit_job(new_job(guild_id=10), cost=0)
    b = await store.submit_job(new_job(guild_id=20), cost=0)
    c = await store.submit_job(new_job(guild_id=10), cost=0)
    await store.submit_job(new_job(user_id=2), cost=0)
    assert [j.id for j in await store.list_user_jobs(1)] == [c.id, b.id, a.id]
    assert [j.id for j in await store.list_user_jobs(1, guild_id=10)] == [c.id, a.id]
    assert [j.id for j in await store.list_user_jobs(1, limit=1)] == [c.id]


async def test_children_and_lineage_follow_remixes(store):
    root = await store.submit_job(new_job(), cost=0)
    child = await store.submit_job(new_job(parent_id=root.id), cost=0)
    other_child = await store.submit_job(new_job(parent_id=root.id.upper()), cost=0)
    grandchild = await store.submit_job(new_job(parent_id=child.id), cost=0)
    assert [j.id for j in await store.children(root.id)] == [child.id, other_child.id]
    assert [j.id for j in await store.lineage(grandchild.id)] == [root.id, child.id, grandchild.id]
    assert [j.id for j in await store.lineage(root.id)] == [root.id]
    assert await store.children(grandchild.id) == []
    with pytest.raises(JobNotFoundError):
        await store.lineage("zzzzzzzz")


async def test_remixing_a_missing_job_is_refused_and_not_charged(store, db_path):
    with pytest.raises(JobNotFoundError):
        await store.submit_job(new_job(parent_id="zzzzzzzz"), cost=3)
    assert raw(db_path, "SELECT count(*) FROM jobs")[0][0] == 0
    assert (await store.quota_status(1, 10)).used == 0


async def test_a_requeued_job_keeps_its_place_in_the_queue(store):
    first = await store.submit_job(new_job(), cost=0)
    second = await store.submit_job(new_job(), cost=0)
    await store.mark_running(first.id)
    third = await store.submit_job(new_job(), cost=0)
    assert [j.id for j in await store.queued_jobs()] == [second.id, third.id]
    requeued = await store.requeue(first.id)
    assert requeued.state is JobState.QUEUED
    assert requeued.attempts == 1
    assert requeued.started_at is None
    assert [j.id for j in await store.queued_jobs()] == [first.id, second.id, third.id]
    assert [j.id for j in await store.jobs_in_state(JobState.QUEUED)] == [first.id, second.id, third.id]


async def test_count_pending_counts_queued_and_running_only(store):
    a = await store.submit_job(new_job(user_id=1, guild_id=10), cost=0)
    await store.submit_job(new_job(user_id=1, guild_id=20), cost=0)
    await store.submit_job(new_job(user_id=2, guild_id=10), cost=0)
    done = await _job_in(store, "delivered")
    await store.mark_running(a.id)
    assert done.user_id == 1
    assert await store.count_pending() == 3
    assert await store.count_pending(user_id=1) == 2
    assert await store.count_pending(guild_id=10) == 2
    assert await store.count_pending(user_id=1, guild_id=10) == 1


async def test_pending_caps_refuse_without_charging(store, db_path):
    for _ in range(2):
        await store.submit_job(new_job(user_id=1), cost=1, max_pending_user=2)
    with pytest.raises(TooManyPendingError) as info:
        await store.submit_job(new_job(user_id=1), cost=1, max_pending_user=2)
    assert (info.value.scope, info.value.pending, info.value.limit) == ("user", 2, 2)
    assert "You already have 2 tracks" in str(info.value)
    await store.submit_job(new_job(user_id=2), cost=1, max_pending_guild=3)
    with pytest.raises(TooManyPendingError) as info:
        await store.submit_job(new_job(user_id=3), cost=1, max_pending_guild=3)
    assert info.value.scope == "guild"
    assert "This server already has 3" in str(info.value)
    # a DM is not counted against any server
    await store.submit_job(new_job(user_id=3, guild_id=None), cost=1, max_pending_guild=3)
    with pytest.raises(TooManyPendingError) as info:
        await store.submit_job(new_job(user_id=4, guild_id=99), cost=1, max_queue=4)
    assert info.value.scope == "queue"
    assert raw(db_path, "SELECT count(*) FROM jobs")[0][0] == 4
    assert raw(db_path, "SELECT count(*) FROM quota_ledger")[0][0] == 4


async def test_finished_jobs_free_their_pending_slot(store):
    job = await store.submit_job(new_job(), cost=0, max_pending_user=1)
    await store.mark_cancelled(job.id)
    await store.submit_job(new_job(), cost=0, max_pending_user=1)


async def test_blocked_members_and_servers_are_refused(store, db_path):
    await store.block("user", 1, reason="spam")
    with pytest.raises(BlockedError) as info:
        await store.submit_job(new_job(user_id=1), cost=1)
    assert info.value.kind == "user"
    assert info.value.reason == "spam"
    assert "spam" not in str(info.value)
    assert await store.is_blocked(1, None)
    assert await store.is_blocked(1, 10)
    await store.block("guild", 20, reason="abuse")
    assert await store.is_blocked(2, 20)
    assert not await store.is_blocked(2, 10)
    assert not await store.is_blocked(2, None)
    with pytest.raises(BlockedError) as info:
        await store.submit_job(new_job(user_id=2, guild_id=20), cost=1)
    assert info.value.kind == "guild"
    assert "this server" in str(info.value)
    assert {(b.kind, b.target_id, b.reason) for b in await store.list_blocks()} == {
        ("user", 1, "spam"),
        ("guild", 20, "abuse"),
    }
    assert await store.unblock("user", 1)
    assert not await store.unblock("user", 1)
    await store.submit_job(new_job(user_id=1), cost=1)
    assert raw(db_path, "SELECT count(*) FROM jobs")[0][0] == 1
    with pytest.raises(ValueError):
        await store.block("channel", 5)
