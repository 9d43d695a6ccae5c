"""Item 5: abuse. A flood of requests, and members reaching for what is not theirs.

- 50 members send 10 ``/generate`` each within 10 s: every interaction is acknowledged within 3 s,
  the per-member (3) and per-server (20) caps on waiting jobs hold at every instant, every accepted
  job is delivered exactly once, every refused one is told why, and resident memory stays bounded.
- A member cannot use admin commands, delete or cancel another member's job, or act on another
  job by forging a button's custom_id (a modified client can send any custom_id it likes).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import Counter
from datetime import datetime

import pytest

from tests.fakediscord.records import walk_components
from tests.fakediscord.server import CommandHiddenError
from tests.harness import receipt_job_id, rss_mib, submit, told, track_posts, wait_state

pytestmark = pytest.mark.slow

MEMBERS = 50
ROUNDS = 10
PER_USER_CAP = 3
PER_GUILD_CAP = 20


@pytest.fixture
def world_overrides() -> dict[str, str]:
    return {
        "JAMGEN_MAX_BATCH": "4",
        "JAMGEN_MAX_PENDING_PER_USER": str(PER_USER_CAP),
        "JAMGEN_MAX_PENDING_PER_GUILD": str(PER_GUILD_CAP),
        "JAMGEN_PROGRESS_INTERVAL": "1",
    }


def most_pending_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    """The largest number of intervals [start, end) that overlap at one instant."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    current = peak = 0
    for _, step in events:  # at equal times an end (-1) sorts before a start (+1)
        current += step
        peak = max(peak, current)
    return peak


async def test_fifty_members_ten_requests_each_within_ten_seconds(world):
    fake = world.fake
    members = [fake.add_member(f"flood{i:02d}") for i in range(MEMBERS)]
    gc.collect()
    rss_before = rss_mib()
    interactions = []
    began = time.monotonic()
    for round_index in range(ROUNDS):
        for member in members:
            interactions.append(await fake.slash("generate", {"prompt": f"flood {round_index}"}, user=member))
        # Spread the rounds over the 10 s (at most), as a real flood would arrive.
        await asyncio.sleep(max(0.0, began + (round_index + 1) * 0.9 - time.monotonic()))
    sending_s = time.monotonic() - began
    assert sending_s <= 10.0

    # Every request is answered: a receipt, or a refusal that says why.
    def answered(interaction) -> bool:
        original = interaction.original
        return receipt_job_id(interaction) is not None or (original is not None and "⚠️" in original.content)

    await fake.wait_for(lambda: all(answered(i) for i in interactions), timeout=60, what="every answer")
    accepted = {receipt_job_id(i): i for i in interactions if receipt_job_id(i)}
    refusals = Counter(
        "member cap"
        if "You already have" in i.original.content
        else "server cap"
        if "This server already has" in i.original.content
        else "other"
        for i in interactions
        if not receipt_job_id(i)
    )
    assert len(accepted) + sum(refusals.values()) == MEMBERS * ROUNDS
    assert refusals["other"] == 0, [i.original.content for i in interactions if not receipt_job_id(i)][:3]
    # Both caps were put to the test.
    assert refusals["member cap"] > 0
    assert refusals["server cap"] > 0

    # Every accepted job is delivered, once.
    for job_id in accepted:
        job = await wait_state(world.store, job_id, "delivered", "failed", "cancelled", timeout=240)
        assert job.state.value == "delivered", job.error
        assert len(track_posts(fake, job_id)) == 1
    finished_s = time.monotonic() - began

    # Every interaction was acknowledged within Discord's 3 s.
    latencies = sorted(i.ack_latency for i in interactions)
    assert latencies[-1] < 3.0

    # The caps held at every instant: a job waits from its creation until it is rendered.
    jobs = await world.all_jobs()
    assert {j.id for j in jobs} == set(accepted)
    spans = [(j, (j.created_at, j.rendered_at or j.finished_at)) for j in jobs]
    assert most_pending_at_once([span for _, span in spans]) <= PER_GUILD_CAP
    for member in members:
        mine = [span for job, span in spans if job.user_id == member.id]
        assert most_pending_at_once(mine) <= PER_USER_CAP
    # Quota: exactly one second charged per delivered job, nothing for refusals.
    for member in members:
        mine = [j for j in jobs if j.user_id == member.id]
        assert (await world.service.quota(member.id, fake.guild.id)).used == pytest.approx(len(mine))

    gc.collect()
    rss_growth = rss_mib() - rss_before
    assert rss_growth < 250, f"resident memory grew by {rss_growth:.0f} MiB"
    print(
        f"\nabuse: {MEMBERS * ROUNDS} requests sent in {sending_s:.1f} s; {len(accepted)} accepted and delivered "
        f"by {finished_s:.0f} s; refused {dict(refusals)}; ack p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, "
        f"max {latencies[-1] * 1000:.0f} ms; RSS growth {rss_growth:.0f} MiB"
    )


def forge(message, action: str, job_id: str) -> str:
    """Rewrite the custom_id of a button on a message, as a modified client could; returns the new id."""
    for component in walk_components(message.components):  # rows, and rows inside a take card's containers
        if component.get("custom_id", "").startswith(f"jamgen:{action}:"):
            component["custom_id"] = f"jamgen:{action}:{job_id}"
            return component["custom_id"]
    raise AssertionError(f"no {action} button on message {message.id}")


async def test_members_cannot_act_on_other_members_jobs(world):
    fake = world.fake
    bob, carol = fake.member, fake.add_member("carol")
    _, bob_job = await submit(world, "bob's take", user=bob)
    _, carol_job = await submit(world, "carol's take", user=carol)
    for job_id in (bob_job, carol_job):
        await wait_state(world.store, job_id, "delivered", timeout=60)
    (bob_post,) = track_posts(fake, bob_job)
    (carol_post,) = track_posts(fake, carol_job)

    # Admin commands: hidden from members, and refused on the server when a client sends them anyway.
    with pytest.raises(CommandHiddenError):
        await fake.slash("jam status", {}, user=carol)
    for command, options in (
        ("jam quota grant", {"member": carol, "seconds": 999}),
        ("jam block", {"member": bob}),
        ("jam settings set", {"daily_budget": 99999}),
    ):
        forced = await fake.slash(command, options, user=carol, force=True)
        answer = await forced.wait_for_message(lambda m: "⚠️" in m.content, timeout=10)
        assert "permission" in answer.content
    assert (await world.service.quota(carol.id, fake.guild.id)).granted == 0
    assert not await world.store.is_blocked(bob.id, fake.guild.id)
    assert (await world.service.guild_settings(fake.guild.id)).default_budget is None

    # Deleting another member's take with its own button: refused.
    delete_id = next(b["custom_id"] for b in bob_post.buttons if b["custom_id"].startswith("jamgen:delete:"))
    refused = await fake.click(bob_post, delete_id, user=carol)
    await refused.wait_for_message(lambda m: "⚠️" in m.content, timeout=10)

    # Forged: Carol's own Delete button rewritten to name Bob's job -> refused.
    forged_id = forge(carol_post, "delete", bob_job)
    refused = await fake.click(carol_post, forged_id, user=carol)
    await refused.wait_for_message(lambda m: "⚠️" in m.content, timeout=10)
    # Forged the other way: Bob's message with a Delete button naming Carol's own job -> refused too,
    # or the check on Carol's job would delete Bob's message.
    forged_id = forge(bob_post, "delete", carol_job)
    refused = await fake.click(bob_post, forged_id, user=carol)
    await refused.wait_for_response()
    await fake.wait_idle()
    assert not fake.messages[bob_post.id].deleted, "a forged custom_id deleted another member's take"
    assert not fake.messages[carol_post.id].deleted
    await refused.wait_for_message(lambda m: "⚠️" in m.content, timeout=10)

    # Cancelling someone else's waiting job: by id, by button, by a forged button -> refused, job untouched.
    world.engine.open.clear()
    _, blocker = await submit(world, "holds the engine", user=fake.admin)
    bob_waiting, bob_queued = await submit(world, "bob waits", user=bob)
    carol_waiting, carol_queued = await submit(world, "carol waits", user=carol)
    by_id = await fake.slash("cancel", {"job_id": bob_queued}, user=carol)
    answer = await by_id.wait_for_message(lambda m: "⚠️" in m.content, timeout=10)
    assert "your own jobs" in answer.content
    progress = await carol_waiting.wait_for_original(lambda m: m.custom_ids, timeout=10)
    forged_id = forge(progress, "cancel", bob_queued)
    forged = await fake.click(progress, forged_id, user=carol)
    answer = await forged.wait_for_message(lambda m: "⚠️" in m.content, timeout=10)
    assert "your own jobs" in answer.content
    assert (await world.store.get_job(bob_queued)).state.value == "queued"
    world.engine.open.set()
    for job_id in (blocker, bob_queued, carol_queued):
        assert (await wait_state(world.store, job_id, "delivered", timeout=60)).state.value == "delivered"
    # Bob's job went its way: he was told it is ready.
    await bob_waiting.wait_until(lambda i: told(i, bob_queued, "is ready"), timeout=10)
