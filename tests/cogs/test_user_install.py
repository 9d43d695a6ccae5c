"""jamgen as a user-installed app: /generate where the bot is not a member, in its DM, and when the queue is long.

A personal request (jamgen not installed in that server, or a DM) is charged to the member's own ledger (guild
key 0), uses no server settings, and is answered only through the interaction (at most 5 followups) or by DM:
never a post in, nor any REST call to, the channel.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Any

import pytest

from tests.fakediscord.installs import CommandNotAvailableError
from tests.fakediscord.model import FakeChannel
from tests.harness import JamWorld, is_take, job_id_of, receipt_job_id, refunded, told, wait_for_take, wait_state


def _outside_channel(jam: JamWorld) -> FakeChannel:
    """A server without the bot, where bob has installed jamgen to his account."""
    jam.fake.install_for_user(jam.fake.member)
    return jam.fake.add_outside_guild("Elsewhere", members=[jam.fake.member]).text_channels()[0]


def _calls_to(jam: JamWorld, channel: FakeChannel) -> list[Any]:
    """The bot's REST requests naming that channel (followups go to the interaction's webhook instead)."""
    return [r for r in jam.fake.requests if f"/channels/{channel.id}" in r.path]


async def _known_eta(jam: JamWorld) -> None:
    """Wait until the scheduler has measured a take, so a receipt carries an ETA."""

    async def measured() -> None:
        while await jam.service.scheduler.eta_for_position(1, "debug", 1.0) is None:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(measured(), 10)


async def test_a_user_install_in_a_server_without_the_bot_is_answered_by_followup_and_charged_to_the_member(jam):
    channel = _outside_channel(jam)
    interaction = await jam.fake.slash("generate", {"prompt": "lofi far away", "duration": 1}, channel=channel)
    message = await wait_for_take(interaction)
    assert message.source == "followup"
    assert is_take(message)
    assert message.channel_id == channel.id
    job = await wait_state(jam.store, job_id_of(message), "delivered")
    # The member's own ledger (the DM one, guild key 0), no server of its own.
    assert job.guild_id is None
    assert job.extra.get("personal") is True
    [debit] = await jam.store.job_ledger(job.id)
    assert (debit.kind, debit.user_id, debit.guild_id) == ("debit", jam.fake.member.id, None)
    assert debit.amount < 0
    assert _calls_to(jam, channel) == []
    assert jam.fake.client_errors() == []
    assert len(interaction.followups) <= 5


async def test_when_the_queue_outlasts_the_token_the_receipt_says_so_and_the_take_comes_by_dm(jam):
    channel = _outside_channel(jam)
    first = await jam.fake.slash("generate", {"prompt": "warm up", "duration": 1}, channel=channel)
    await wait_for_take(first)
    await _known_eta(jam)
    # Any measured ETA now outlasts the token's life (plus jamgen's margin).
    jam.bot.deliverer.token_lifetime = dt.timedelta(seconds=1)
    interaction = await jam.fake.slash("generate", {"prompt": "the long wait", "duration": 1}, channel=channel)
    await interaction.wait_until(receipt_job_id, timeout=15)
    job_id = receipt_job_id(interaction)
    assert told(interaction, "longer than Discord lets me answer here", "DM you the take")
    await wait_state(jam.store, job_id, "delivered")
    dms = [m for m in jam.fake.dm_messages(jam.fake.member) if job_id_of(m) == job_id]
    assert len(dms) == 1
    assert is_take(dms[0])
    assert not [m for m in interaction.followups if m.attachments]
    assert _calls_to(jam, channel) == []


async def test_with_dms_closed_the_long_wait_fails_kindly_and_is_refunded(jam):
    channel = _outside_channel(jam)
    await wait_for_take(await jam.fake.slash("generate", {"prompt": "warm up", "duration": 1}, channel=channel))
    await _known_eta(jam)
    jam.bot.deliverer.token_lifetime = dt.timedelta(seconds=1)
    jam.fake.close_dms(jam.fake.member)
    interaction = await jam.fake.slash("generate", {"prompt": "nobody home", "duration": 1}, channel=channel)
    await interaction.wait_until(receipt_job_id, timeout=15)
    job_id = receipt_job_id(interaction)
    await wait_state(jam.store, job_id, "failed")
    assert await refunded(jam.store, job_id)
    await interaction.wait_until(lambda i: told(i, "DMs are closed"), timeout=10)
    assert _calls_to(jam, channel) == []


async def test_generate_in_the_bots_dm_is_personal_and_answered_there(jam):
    jam.fake.install_for_user(jam.fake.member)
    dm = jam.fake.bot_dm_channel(jam.fake.member)
    interaction = await jam.fake.slash("generate", {"prompt": "bedroom pop", "duration": 1}, channel=dm)
    done = await interaction.wait_for_original(lambda m: "is ready" in m.content, timeout=30)
    assert "/channels/@me/" in done.content
    [message] = [m for m in interaction.followups if m.attachments]
    assert message.channel_id == dm.id
    assert is_take(message)
    job = await wait_state(jam.store, job_id_of(message), "delivered")
    assert job.guild_id is None
    assert [(d.user_id, d.guild_id) for d in await jam.store.job_ledger(job.id)] == [(jam.fake.member.id, None)]


async def test_a_personal_job_caught_by_a_restart_is_delivered_by_dm(jam):
    channel = _outside_channel(jam)
    jam.engine.open.clear()
    # Alice's take holds the engine; bob's (another length, so another batch) waits in the queue over the restart.
    await jam.fake.slash("generate", {"prompt": "holding", "duration": 1}, user=jam.fake.admin)
    await asyncio.wait_for(jam.engine.entered.wait(), 10)
    interaction = await jam.fake.slash("generate", {"prompt": "over the restart", "duration": 2}, channel=channel)
    await interaction.wait_until(receipt_job_id, timeout=15)
    job_id = receipt_job_id(interaction)
    # A restart with the gate still closed: the held batch cannot finish in the grace, so both jobs stay queued
    # (``jam.restart`` would open the gate first, and bob's job could run before the bot stops).
    jam.service.config = dataclasses.replace(jam.service.config, shutdown_grace=0.1)
    await jam.run.stop()
    await jam.store.close()
    await jam.boot()
    jam.engine.open.set()
    await wait_state(jam.store, job_id, "delivered", timeout=30)
    dms = [m for m in jam.fake.dm_messages(jam.fake.member) if job_id_of(m) == job_id]
    assert len(dms) == 1
    assert is_take(dms[0])
    assert _calls_to(jam, channel) == []


async def test_commands_declare_both_installs_except_those_that_need_the_bot_in_the_server(jam):
    declared = {c["name"]: (c["integration_types"], c["contexts"]) for c in jam.fake.global_commands.values()}
    everywhere = ([0, 1], [0, 1, 2])
    for name in ("generate", "melody", "style", "continue", "remix", "stems", "Remix with jamgen", "Split into stems"):
        assert declared[name] == everywhere, name
    for name in ("jam", "session"):
        assert declared[name] == ([0], [0]), name
    # A guild-install-only command is not offered where jamgen is only installed to the member.
    channel = _outside_channel(jam)
    with pytest.raises(CommandNotAvailableError):
        await jam.fake.slash("jam status", channel=channel, force=True)
