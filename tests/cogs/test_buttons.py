"""Buttons on takes and progress messages, through the fake Discord."""

from __future__ import annotations

import asyncio
import json

from tests.harness import form_values, job_id_of, wait_for_take, wait_state


async def make_take(jam, prompt="dusty boom bap, 90 bpm", **options):
    interaction = await jam.fake.slash("generate", {"prompt": prompt, "duration": 2, **options})
    message = await wait_for_take(interaction)
    await wait_state(jam.store, job_id_of(message), "delivered")
    return message


def custom_id(message, action):
    return next(b["custom_id"] for b in message.buttons if b["custom_id"].startswith(f"jamgen:{action}:"))


async def test_reroll_makes_the_same_recipe_with_a_new_seed(jam):
    first = await make_take(jam)
    click = await jam.fake.click(first, custom_id(first, "reroll"))
    again = await wait_for_take(click)
    old, new = job_id_of(first), job_id_of(again)
    assert old != new
    parent, child = await jam.store.get_job(old), await jam.store.get_job(new)
    assert child.parent_id == old
    assert child.prompt == parent.prompt
    assert child.params["duration"] == parent.params["duration"]
    assert child.extra["takes"][0]["seed"] != parent.extra["takes"][0]["seed"]


async def test_extend_continues_from_the_take(jam):
    first = await make_take(jam)
    click = await jam.fake.click(first, custom_id(first, "extend"))
    extended = await wait_for_take(click)
    job = await jam.store.get_job(job_id_of(extended))
    assert job.mode == "continuation"
    assert job.parent_id == job_id_of(first)
    assert "From" in extended.text


async def test_remix_button_opens_a_modal_and_submits_a_remix(jam):
    first = await make_take(jam)
    click = await jam.fake.click(first, custom_id(first, "remix"))
    await click.wait_for_response()
    assert click.modal is not None
    values = form_values(click.modal, prompt="now with strings", mode="continue", duration="2")
    submitted = await jam.fake.submit_modal(click, values)
    remix = await wait_for_take(submitted)
    job = await jam.store.get_job(job_id_of(remix))
    assert job.mode == "continuation"
    assert job.prompt == "now with strings"
    assert job.parent_id == job_id_of(first)


async def test_recipe_is_private_and_complete(jam):
    first = await make_take(jam, seed=1234)
    click = await jam.fake.click(first, custom_id(first, "recipe"))
    reply = await click.wait_for_message(lambda m: "Recipe" in m.content, timeout=10)
    assert reply.ephemeral
    recipe = json.loads(reply.content.split("```json\n", 1)[1].rsplit("\n```", 1)[0])
    assert recipe["job_id"] == job_id_of(first)
    assert recipe["seeds"] == [1234]
    for key in ("model", "mode", "prompt", "duration", "top_k", "top_p", "temperature", "cfg_coef"):
        assert key in recipe


async def test_delete_only_by_owner_or_admin(jam):
    first = await make_take(jam)
    carol = jam.fake.add_member("carol")
    refused = await jam.fake.click(first, custom_id(first, "delete"), user=carol)
    answer = await refused.wait_for_message(lambda m: m.ephemeral, timeout=10)
    assert "Only the member who made this take" in answer.content
    assert first.id in jam.fake.messages
    assert not jam.fake.messages[first.id].deleted
    by_admin = await jam.fake.click(first, custom_id(first, "delete"), user=jam.fake.admin)
    await by_admin.wait_for_response()
    await jam.fake.wait_for(lambda: jam.fake.messages[first.id].deleted, timeout=10)


async def test_cancel_button_while_queued_refunds(jam):
    jam.engine.open.clear()
    blocker = await jam.fake.slash("generate", {"prompt": "blocker", "duration": 2}, user=jam.fake.admin)
    await blocker.wait_for_original(lambda m: "Queued" in m.content or "Generating" in m.content, timeout=10)
    waiting = await jam.fake.slash("generate", {"prompt": "to cancel", "duration": 3})
    progress = await waiting.wait_for_original(lambda m: m.custom_ids, timeout=10)
    assert "position" in progress.content
    click = await jam.fake.click(progress, custom_id(progress, "cancel"))
    await click.wait_for_response()
    job_id = custom_id(progress, "cancel").split(":")[2]
    await wait_state(jam.store, job_id, "cancelled")
    status = await jam.service.quota(jam.fake.member.id, jam.fake.guild.id)
    assert status.used == 0
    jam.engine.open.set()
    await wait_for_take(blocker)
    await asyncio.sleep(0.2)
    assert not any(m.attachments for m in waiting.messages)


async def test_cancel_button_while_running_charges_nothing(jam):
    jam.engine.open.clear()
    running = await jam.fake.slash("generate", {"prompt": "long one", "duration": 3})
    progress = await running.wait_for_original(lambda m: m.custom_ids, timeout=10)
    await asyncio.wait_for(jam.engine.entered.wait(), 10)
    click = await jam.fake.click(progress, custom_id(progress, "cancel"))
    await click.wait_for_response()
    jam.engine.open.set()
    job_id = custom_id(progress, "cancel").split(":")[2]
    await wait_state(jam.store, job_id, "cancelled")
    assert (await jam.service.quota(jam.fake.member.id, jam.fake.guild.id)).used == 0


async def test_members_cannot_cancel_each_others_jobs_even_with_a_forged_custom_id(jam):
    jam.engine.open.clear()
    mine = await jam.fake.slash("generate", {"prompt": "mine", "duration": 2})
    progress = await mine.wait_for_original(lambda m: m.custom_ids, timeout=10)
    carol = jam.fake.add_member("carol")
    click = await jam.fake.click(progress, custom_id(progress, "cancel"), user=carol)
    answer = await click.wait_for_message(lambda m: m.ephemeral, timeout=10)
    assert "your own jobs" in answer.content
    job_id = custom_id(progress, "cancel").split(":")[2]
    assert (await jam.store.get_job(job_id)).state.value in ("queued", "running")
    jam.engine.open.set()
    await wait_state(jam.store, job_id, "delivered", timeout=60)
