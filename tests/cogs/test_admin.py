"""/jam for admins: hidden from members, checked again on the server, and doing what it says."""

from __future__ import annotations

import pytest

from tests.cogs.test_library import private_answer
from tests.fakediscord.server import CommandHiddenError
from tests.harness import job_id_of, wait_for_take, wait_state


async def test_members_cannot_see_or_use_admin_commands(jam):
    with pytest.raises(CommandHiddenError):
        await jam.fake.slash("jam status", {})
    forced = await jam.fake.slash("jam status", {}, force=True)
    answer = await private_answer(forced)
    assert "permission" in answer.content
    forged = await jam.fake.slash("jam quota grant", {"member": jam.fake.member, "seconds": 999}, force=True)
    await private_answer(forged)
    status = await jam.service.quota(jam.fake.member.id, jam.fake.guild.id)
    assert status.granted == 0


async def test_settings_show_set_models_channel_and_tier(jam):
    admin = jam.fake.admin
    shown = await private_answer(await jam.fake.slash("jam settings show", {}, user=admin))
    assert "all channels" in shown.content
    changed = await private_answer(
        await jam.fake.slash(
            "jam settings set", {"max_duration": 30, "max_takes": 2, "remix_by_reply": False}, user=admin
        )
    )
    assert "Max duration:** 30 s" in changed.content
    assert "Remix by reply:** off" in changed.content
    await private_answer(await jam.fake.slash("jam settings models", {"models": "debug, debug-melody"}, user=admin))
    settings = await jam.service.guild_settings(jam.fake.guild.id)
    assert settings.enabled_models == ("debug", "debug-melody")
    music = next(c for c in jam.fake.guild.channels.values() if c.name == "music")
    await private_answer(await jam.fake.slash("jam settings channel", {"channel": music, "allowed": True}, user=admin))
    refused = await private_answer(await jam.fake.slash("generate", {"prompt": "in general", "duration": 2}))
    assert "doesn't play in this channel" in refused.content
    vip = jam.fake.guild.add_role("VIP")
    tier = await private_answer(await jam.fake.slash("jam settings tier", {"role": vip, "seconds": 1200}, user=admin))
    assert "1200" in tier.content
    bad_model = await private_answer(await jam.fake.slash("jam settings set", {"default_model": "nope"}, user=admin))
    assert "There is no model called 'nope'" in bad_model.content


async def test_quota_set_grant_reset_block_and_unblock(jam):
    admin, bob = jam.fake.admin, jam.fake.member
    await private_answer(await jam.fake.slash("jam quota set", {"member": bob, "seconds": 5}, user=admin))
    assert (await jam.service.quota(bob.id, jam.fake.guild.id)).budget == 5
    await private_answer(await jam.fake.slash("jam quota grant", {"member": bob, "seconds": 7}, user=admin))
    assert (await jam.service.quota(bob.id, jam.fake.guild.id)).remaining == 12
    await private_answer(await jam.fake.slash("jam block", {"member": bob, "reason": "spam"}, user=admin))
    assert await jam.store.is_blocked(bob.id, jam.fake.guild.id)
    blocked = await private_answer(await jam.fake.slash("generate", {"prompt": "hi", "duration": 2}))
    assert "⚠️" in blocked.content
    assert await jam.service.user_jobs(bob.id, jam.fake.guild.id) == [], "a blocked member's request makes no job"
    await private_answer(await jam.fake.slash("jam unblock", {"member": bob}, user=admin))
    assert not await jam.store.is_blocked(bob.id, jam.fake.guild.id)
    # Unblocked, bob can make a take again; it is charged.
    take = await wait_for_take(await jam.fake.slash("generate", {"prompt": "hi again", "duration": 2}))
    await wait_state(jam.store, job_id_of(take), "delivered")
    charged = await jam.service.quota(bob.id, jam.fake.guild.id)
    assert (charged.used, charged.remaining) == (pytest.approx(2.0), pytest.approx(10.0))
    await private_answer(await jam.fake.slash("jam quota reset", {"member": bob}, user=admin))
    # The reset gives today's use back; the grant stays.
    reset = await jam.service.quota(bob.id, jam.fake.guild.id)
    assert (reset.used, reset.remaining) == (0, 12)
    status = await private_answer(await jam.fake.slash("jam status", {}, user=admin))
    assert "Engine:** up" in status.content
    assert "Queue:**" in status.content


async def test_sync_is_for_the_bot_owner(jam):
    bob = jam.fake.add_member("mod", admin=True)
    refused = await private_answer(await jam.fake.slash("jam sync", {}, user=bob))
    assert "permission" in refused.content
    done = await private_answer(await jam.fake.slash("jam sync", {}, user=jam.fake.admin))
    assert "synced" in done.content
