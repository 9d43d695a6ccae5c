"""/queue, /jobs, /show, /cancel, /quota, /help and the refusals members meet."""

from __future__ import annotations

import asyncio

from tests.cogs.test_buttons import custom_id, make_take
from tests.harness import job_id_of, wait_for_take, wait_state


async def private_answer(interaction, timeout=15):
    return await interaction.wait_for_message(lambda m: m.ephemeral and not m.loading, timeout=timeout)


async def test_queue_shows_your_place_and_cancel_by_id_refunds(jam):
    jam.engine.open.clear()
    await jam.fake.slash("generate", {"prompt": "first", "duration": 2}, user=jam.fake.admin)
    await asyncio.wait_for(jam.engine.entered.wait(), 10)
    mine = await jam.fake.slash("generate", {"prompt": "second", "duration": 3})
    progress = await mine.wait_for_original(lambda m: m.custom_ids, timeout=10)
    job_id = custom_id(progress, "cancel").split(":")[2]
    queue = await private_answer(await jam.fake.slash("queue", {}))
    assert "now playing" in queue.content
    assert f"`{job_id}`" in queue.content
    assert "← you" in queue.content
    assert "at #1" in queue.content
    cancel = await private_answer(await jam.fake.slash("cancel", {"job_id": job_id}))
    assert "Cancelling" in cancel.content
    await wait_state(jam.store, job_id, "cancelled")
    quota = await private_answer(await jam.fake.slash("quota", {}))
    assert "600 s** of music left today" in quota.content
    jam.engine.open.set()


async def test_jobs_and_show_with_a_remix_chain_three_takes_deep(jam):
    first = await make_take(jam, prompt="root take")
    click = await jam.fake.click(first, custom_id(first, "extend"))
    second = await wait_for_take(click)
    await wait_state(jam.store, job_id_of(second), "delivered")
    click = await jam.fake.click(second, custom_id(second, "reroll"))
    third = await wait_for_take(click)
    ids = [job_id_of(m) for m in (first, second, third)]
    await wait_state(jam.store, ids[2], "delivered")
    show = await jam.fake.slash("show", {"job_id": ids[2]})
    answer = await show.wait_for_message(lambda m: m.embeds, timeout=15)
    fields = {f["name"]: f["value"] for f in answer.embeds[0]["fields"]}
    assert fields["Lineage"] == " → ".join(f"`{i}`" for i in ids)
    assert fields["State"] == "delivered"
    assert "https://discord.com/channels/" in fields["Link"]
    root = await jam.fake.slash("show", {"job_id": ids[0]})
    root_answer = await root.wait_for_message(lambda m: m.embeds, timeout=15)
    root_fields = {f["name"]: f["value"] for f in root_answer.embeds[0]["fields"]}
    assert ids[1] in root_fields["Remixes"]
    jobs = await private_answer(await jam.fake.slash("jobs", {}))
    assert all(i in jobs.content for i in ids)


async def test_show_unknown_job_and_help(jam):
    missing = await private_answer(await jam.fake.slash("show", {"job_id": "zzzzzzzz"}))
    assert "no job with id zzzzzzzz" in missing.content
    help_answer = await private_answer(await jam.fake.slash("help", {}))
    for word in ("top_k", "top_p", "temperature", "cfg", "bpm", "seed"):
        assert word in help_answer.content


async def test_quota_exceeded_is_refused_privately_with_the_reset_time(jam):
    await jam.service.set_user_budget(jam.fake.guild.id, jam.fake.member.id, 3)
    refused = await jam.fake.slash("generate", {"prompt": "too long", "duration": 4})
    answer = await private_answer(refused)
    assert "⚠️" in answer.content
    assert "resets" in answer.content.lower()
    assert not await jam.store.list_user_jobs(jam.fake.member.id, jam.fake.guild.id)


async def test_prompt_over_the_limit_is_refused_politely(jam):
    refused = await jam.fake.slash("generate", {"prompt": "x" * 600})
    answer = await private_answer(refused)
    assert "600 characters long; the limit is 500" in answer.content


async def test_too_many_pending_jobs(jam):
    jam.engine.open.clear()
    for i in range(3):
        accepted = await jam.fake.slash("generate", {"prompt": f"take {i}", "duration": 2})
        await accepted.wait_for_original(lambda m: m.custom_ids, timeout=10)
    refused = await jam.fake.slash("generate", {"prompt": "one too many", "duration": 2})
    answer = await private_answer(refused)
    assert "⚠️" in answer.content
    assert "3" in answer.content
    jam.engine.open.set()


async def test_model_autocomplete_offers_the_guilds_enabled_models(jam):
    await jam.service.update_guild_settings(jam.fake.guild.id, enabled_models=("debug", "debug-melody"))
    result = await jam.fake.autocomplete("generate", {"prompt": "x", "model": "deb"}, focused="model")
    await result.wait_for_response()
    assert [c.value for c in result.choices] == ["debug", "debug-melody"]


async def test_missing_channel_permissions_are_explained_privately_not_hit_as_403s(jam):
    managed = next(r for r in jam.fake.guild.roles.values() if r.managed)
    everyone = jam.fake.guild.roles[jam.fake.guild.id]
    attach_files = 1 << 15
    managed.permissions &= ~attach_files
    everyone.permissions &= ~attach_files
    refused = await jam.fake.slash("generate", {"prompt": "no files allowed", "duration": 2})
    answer = await private_answer(refused)
    assert "needs Attach Files" in answer.content
    assert not await jam.store.list_user_jobs(jam.fake.member.id, jam.fake.guild.id)
    assert not jam.fake.client_errors(status=403)
