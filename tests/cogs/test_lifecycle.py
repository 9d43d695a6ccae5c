"""Time and restarts: expired interaction tokens, and a bot restart with work pending and old buttons."""

from __future__ import annotations

import asyncio

import pytest

from bot.engine.types import EngineError
from tests.cogs.test_buttons import custom_id, make_take
from tests.harness import is_take, job_id_of, wait_for_take, wait_state


async def test_a_job_finishing_after_the_token_expired_is_posted_in_the_channel_exactly_once(jam, monkeypatch):
    jam.engine.open.clear()
    interaction = await jam.fake.slash("generate", {"prompt": "slow burner", "duration": 2})
    progress = await interaction.wait_for_original(lambda m: m.custom_ids, timeout=10)
    job_id = custom_id(progress, "cancel").split(":")[2]
    # 16 minutes pass on Discord's clock (and on jamgen's idea of the interaction's age).
    jam.fake.advance(16 * 60)
    import bot.discord.delivery as client

    monkeypatch.setattr(client, "interaction_alive", lambda interaction: False)
    jam.engine.open.set()
    await wait_state(jam.store, job_id, "delivered", timeout=60)
    posts = [m for m in jam.fake.bot_messages(jam.fake.channel) if is_take(m) and job_id in m.text]
    assert len(posts) == 1
    assert posts[0].source == "channel"
    assert f"<@{jam.fake.member.id}>" in posts[0].text
    assert any(a.filename.endswith(".mp3") for a in posts[0].attachments)
    assert not [m for m in interaction.followups if m.attachments]


async def test_expired_token_found_by_discord_falls_back_to_the_channel(jam):
    jam.engine.open.clear()
    interaction = await jam.fake.slash("generate", {"prompt": "late", "duration": 2})
    progress = await interaction.wait_for_original(lambda m: m.custom_ids, timeout=10)
    job_id = custom_id(progress, "cancel").split(":")[2]
    jam.fake.advance(16 * 60)  # jamgen's own clock says the token is fine; Discord answers 50027
    jam.engine.open.set()
    await wait_state(jam.store, job_id, "delivered", timeout=60)
    posts = [m for m in jam.fake.bot_messages(jam.fake.channel) if is_take(m) and job_id in m.text]
    assert len(posts) == 1
    assert jam.fake.client_errors(code=50027)


# The real worker runs on with the old try past the 0.1-s grace, and the stopping bot's late cancel must not
# reach the job's retry in the next bot (on the fake, outlasting the grace would be a race).
@pytest.mark.engine
async def test_restart_with_a_job_pending_and_old_buttons_still_working(jam):
    take = await make_take(jam, prompt="before the restart")
    jam.engine.open.clear()
    pending = await jam.fake.slash("generate", {"prompt": "pending over restart", "duration": 2})
    progress = await pending.wait_for_original(lambda m: m.custom_ids, timeout=10)
    pending_id = custom_id(progress, "cancel").split(":")[2]
    await asyncio.wait_for(jam.engine.entered.wait(), 10)
    jam.service.config = type(jam.service.config)(**{**jam.service.config.__dict__, "shutdown_grace": 0.1})
    await jam.restart()  # the running batch does not finish in time: it stays queued in the store
    jam.engine.open.set()
    await wait_state(jam.store, pending_id, "delivered", timeout=60)
    posts = [m for m in jam.fake.bot_messages() if is_take(m) and pending_id in m.text]
    assert len(posts) == 1, "delivered exactly once, in the channel (the old interaction is gone)"
    click = await jam.fake.click(take, custom_id(take, "reroll"))
    again = await wait_for_take(click)
    assert (await jam.store.get_job(job_id_of(again))).parent_id == job_id_of(take)
    recipe = await jam.fake.click(take, custom_id(take, "recipe"))
    answer = await recipe.wait_for_message(lambda m: "Recipe" in m.content, timeout=10)
    assert job_id_of(take) in answer.content


async def test_a_failure_after_the_token_expired_is_told_in_the_channel(jam, monkeypatch):
    jam.engine.open.clear()
    interaction = await jam.fake.slash("generate", {"prompt": "doomed", "duration": 2})
    progress = await interaction.wait_for_original(lambda m: m.custom_ids, timeout=10)
    job_id = custom_id(progress, "cancel").split(":")[2]
    import bot.discord.delivery as client

    monkeypatch.setattr(client, "interaction_alive", lambda interaction: False)

    jam.engine.fail_with = EngineError("The engine fell over.")
    jam.engine.open.set()
    await wait_state(jam.store, job_id, "failed", timeout=30)
    notice = await jam.fake.wait_for_message(lambda m: job_id in m.content and "⚠️" in m.content, timeout=10)
    assert f"<@{jam.fake.member.id}>" in notice.content
    assert "refunded" in notice.content


async def _reply_remix_pending_over_a_restart(jam, fail_with: EngineError | None = None):
    """A reply-to-remix job caught by a restart while it runs (``fail_with``: how its next try ends);
    returns its id and its public progress reply."""
    take = await make_take(jam, prompt="take to remix")
    jam.engine.open.clear()
    jam.engine.entered.clear()
    await jam.fake.post_message("continue: more cowbell", reply_to=take, mention_author=True)
    progress = await jam.fake.wait_for_message(
        lambda m: m.reference and any(c.startswith("jamgen:cancel:") for c in m.custom_ids), timeout=10
    )
    job_id = custom_id(progress, "cancel").split(":")[2]
    await asyncio.wait_for(jam.engine.entered.wait(), 10)
    await _restart_then_run(jam, fail_with)
    return job_id, progress


async def _restart_then_run(jam, fail_with: EngineError | None) -> None:
    """Restart while a batch runs; in the new process the batch's next try ends as ``fail_with`` says."""
    jam.service.config = type(jam.service.config)(**{**jam.service.config.__dict__, "shutdown_grace": 0.1})
    await jam.shutdown()  # opens the gate: the old try runs on until the grace is over, then stays queued
    jam.engine.open.clear()
    await jam.boot()
    jam.engine.fail_with = fail_with
    jam.engine.open.set()


# The real worker runs on with the old try past the 0.1-s grace, and the stopping bot's late cancel must not
# reach the job's retry in the next bot (on the fake, outlasting the grace would be a race).
@pytest.mark.engine
async def test_after_a_restart_a_delivered_reply_remix_removes_its_stale_progress_reply(jam):
    job_id, progress = await _reply_remix_pending_over_a_restart(jam)
    await wait_state(jam.store, job_id, "delivered", timeout=60)
    await jam.fake.wait_for(lambda: progress.deleted, timeout=10, what="the old progress reply removed")
    posts = [m for m in jam.fake.bot_messages() if is_take(m) and job_id in m.text]
    assert len(posts) == 1


# The real worker runs on with the old try past the 0.1-s grace, and the stopping bot's late cancel must not
# reach the job's retry in the next bot (on the fake, outlasting the grace would be a race).
@pytest.mark.engine
async def test_after_a_restart_a_failing_reply_remix_tells_the_member_and_removes_its_progress_reply(jam):
    job_id, progress = await _reply_remix_pending_over_a_restart(jam, EngineError("The engine fell over."))
    await wait_state(jam.store, job_id, "failed", timeout=30)
    notice = await jam.fake.wait_for_message(lambda m: job_id in m.content and "⚠️" in m.content, timeout=10)
    assert f"<@{jam.fake.member.id}>" in notice.content
    assert "refunded" in notice.content
    await jam.fake.wait_for(lambda: progress.deleted, timeout=10, what="the old progress reply removed")


# The real worker runs on with the old try past the 0.1-s grace, and the stopping bot's late cancel must not
# reach the job's retry in the next bot (on the fake, outlasting the grace would be a race).
@pytest.mark.engine
async def test_a_job_recovered_after_a_restart_that_then_fails_is_told_in_the_channel(jam):
    jam.engine.open.clear()
    jam.engine.entered.clear()
    pending = await jam.fake.slash("generate", {"prompt": "doomed over restart", "duration": 2})
    progress = await pending.wait_for_original(lambda m: m.custom_ids, timeout=10)
    job_id = custom_id(progress, "cancel").split(":")[2]
    await asyncio.wait_for(jam.engine.entered.wait(), 10)
    await _restart_then_run(jam, EngineError("The engine fell over."))
    await wait_state(jam.store, job_id, "failed", timeout=30)
    notice = await jam.fake.wait_for_message(lambda m: job_id in m.content and "⚠️" in m.content, timeout=10)
    assert f"<@{jam.fake.member.id}>" in notice.content
    assert "refunded" in notice.content
    assert sum(entry.amount for entry in await jam.store.job_ledger(job_id)) == 0, "charged and refunded"
