"""Item 1: the bot process is killed with SIGKILL in every job state and restarted on the same database.

The bot runs as a real separate process (``botproc.py``: ``jamgen run`` pointed at the fake), so a
kill loses everything in memory (interaction tokens, the queue, uploads in flight) exactly as
``kill -9`` or a power cut would. Three processes, two kills:

1. jobs A..D by four members (slash commands, each in a channel of its own) and E (a
   reply-to-remix, with its public progress reply); the engine is slow and takes one job at a
   time. Killed while A is rendered (its upload keeps failing with 500s), B's upload is in flight
   (Discord has made the message, the answer has not arrived), C is running and D and E are queued.
2. restarted (still slow): A and B are redelivered into their channels, C runs again (attempt 2)
   and is killed again, D and E wait.
3. restarted at full speed: C has had its attempts and fails, refunded and announced; D and E
   run, and E's progress reply from the first process is removed when its take is posted.

Every job ends delivered exactly once (one post carrying its MP3, B's being the post from before
the crash) or failed with its refund.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from bot.store import JobStore
from tests.harness import job_id_of, refunded, track_posts, wav_bytes
from tests.reliability.botproc import SLOW_STEP_ENV, BotProcess, alive
from tests.reliability.secrets_watch import BOT_TOKEN, WATCH

pytestmark = pytest.mark.slow

SLOW_STEP_S = "0.06"  # ~1.6 s for a 1-s take, ~6.4 s for the 4-s take C


def bot_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The child's environment: this one without JAMGEN_* settings, plus the test bot's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAMGEN_", "DISCORD_"))}
    env.update(
        {
            "DISCORD_TOKEN": BOT_TOKEN,
            "JAMGEN_DATA_DIR": str(tmp_path / "data"),
            "JAMGEN_DB_PATH": str(tmp_path / "data" / "jamgen.db"),
            "JAMGEN_DEBUG_MODELS": "true",
            "JAMGEN_DEFAULT_MODEL": "debug",
            "JAMGEN_ENABLED_MODELS": "debug",
            "JAMGEN_DEFAULT_DURATION": "1",
            "JAMGEN_PROGRESS_INTERVAL": "0.5",
            "JAMGEN_MAX_BATCH": "1",
            "JAMGEN_MAX_ATTEMPTS": "2",
            "JAMGEN_CPU_THREADS": "1",
            "JAMGEN_LOG_LEVEL": "DEBUG",
            "JAMGEN_SHUTDOWN_GRACE": "5",
            **extra,
        }
    )
    return env


async def until(what: str, check: Any, bot: BotProcess, timeout: float = 60.0) -> None:
    """Poll an async check until it is true; fail with the bot's log when it never is."""
    deadline = time.monotonic() + timeout
    while not await check():
        if bot.process is not None and bot.process.returncode is not None:
            raise AssertionError(f"the bot exited while waiting for {what}:\n{bot.log_tail()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{bot.log_tail()}")
        await asyncio.sleep(0.05)


async def test_kill_9_in_every_job_state_then_restart(fake_discord, tmp_path):
    fake = fake_discord
    members = {name: fake.add_member(name) for name in ("carol", "dave", "erin", "frank")}
    members["bob"] = fake.member
    log = tmp_path / "bot.log"
    WATCH.process_logs.append(log)
    store = await JobStore.open(tmp_path / "data" / "jamgen.db")
    slow = bot_env(tmp_path, **{SLOW_STEP_ENV: SLOW_STEP_S})
    try:
        # ---- run 1: A rendered (upload failing), B mid-upload, C running, D queued -> kill -9
        first = BotProcess(fake, slow, log)
        await first.start()
        asks = {
            "A": ("bob", 1),
            "B": ("carol", 1),
            "C": ("dave", 4),
            "D": ("erin", 1),
        }
        interactions = {}
        rooms = {name: fake.guild.add_text_channel(f"room-{name.lower()}") for name in asks}
        for name, (member, seconds) in asks.items():
            interactions[name] = await fake.slash(
                "generate", {"prompt": f"job {name}", "duration": seconds}, user=members[member], channel=rooms[name]
            )
            if name == "A":
                failing = fake.faults.server_error(
                    f"/channels/{rooms['A'].id}/messages", method="POST", status=500, times=None
                )
            if name == "B":
                # The fake makes the message on arrival and holds the answer back: the upload is in flight.
                fake.faults.delay(f"/channels/{rooms['B'].id}/messages", method="POST", seconds=12)
        riff = fake.attachment("riff.wav", wav_bytes(2.0), content_type="audio/wav")
        # It mentions jamgen, so its file reaches a bot without the message-content intent.
        song = await fake.post_message(f"<@{fake.bot_user.id}> my riff", author=members["frank"], attachments=[riff])
        await fake.post_message(
            f"<@{fake.bot_user.id}> continue: job E", author=members["frank"], reply_to=song, mention_author=False
        )
        ids: dict[str, str] = {}

        async def receipts_shown() -> bool:
            for name, interaction in interactions.items():
                original = interaction.original
                if original is not None and "Queued `" in original.content:
                    ids[name] = original.content.split("`")[1]
            progress_e = [m for m in fake.bot_messages() if m.reference and "Queued `" in m.content]
            if progress_e:
                ids["E"] = progress_e[0].content.split("`")[1]
            return len(ids) == 5

        await until("five receipts", receipts_shown, first)
        progress_e = next(m for m in fake.bot_messages() if m.reference and ids["E"] in m.content)

        async def state(name: str) -> str:
            job = await store.get_job(ids[name])
            return job.state.value if job else "?"

        async def caught_in_every_state() -> bool:
            b_posted = any(job_id_of(m) == ids["B"] for m in fake.bot_messages())
            return (
                await state("A") == "rendered"
                and failing.hits >= 1
                and b_posted
                and await state("B") == "rendered"
                and await state("C") == "running"
                and await state("D") == "queued"
                and await state("E") == "queued"
            )

        await until("A rendered, B uploading, C running, D and E queued", caught_in_every_state, first)
        orphans = await first.kill()
        assert orphans, "the bot process had no engine worker"
        b_post_before_crash = next(m for m in fake.bot_messages() if job_id_of(m) == ids["B"])
        fake.faults.clear()

        # ---- run 2: A and B redelivered (B is found, not posted again), C runs again -> kill -9
        second = BotProcess(fake, slow, log)
        await second.start()

        async def redelivered_and_c_running_again() -> bool:
            c = await store.get_job(ids["C"])
            return (
                await state("A") == "delivered"
                and await state("B") == "delivered"
                and c is not None
                and c.state.value == "running"
                and c.attempts == 2
                and await state("D") == "queued"
            )

        await until("A, B delivered and C on its second attempt", redelivered_and_c_running_again, second)
        orphans += await second.kill()

        # ---- run 3: C has had its two attempts: failed, refunded, announced; D delivered
        third = BotProcess(fake, bot_env(tmp_path), log)
        await third.start()

        async def settled() -> bool:
            return await state("C") == "failed" and await state("D") == "delivered" and await state("E") == "delivered"

        await until("C failed, D and E delivered", settled, third)
        await fake.wait_for(lambda: progress_e.deleted, timeout=10, what="E's stale progress reply removed")
        await fake.wait_for(
            lambda: any(ids["C"] in m.content and "⚠️" in m.content for m in fake.bot_messages()),
            timeout=10,
            what="the failure notice for C",
        )
        assert await third.stop() == 0, third.log_tail()
        # The killed bots' engine workers noticed the closed pipe and exited: no orphan holds the GPU.
        await fake.wait_for(lambda: not any(alive(pid) for pid in orphans), timeout=15, what="orphans to exit")

        # ---- every job delivered exactly once, or failed with its refund
        for name in ("A", "B", "D", "E"):
            job = await store.get_job(ids[name])
            posts = track_posts(fake, ids[name])
            assert len(posts) == 1, f"{name} ({ids[name]}) was posted {len(posts)} times"
            assert job.delivered_message_ids == [posts[0].id]
            assert (await store.job_ledger(ids[name]))[0].kind == "debit"
            assert len(await store.job_ledger(ids[name])) == 1  # charged once, not refunded
        assert track_posts(fake, ids["B"])[0].id == b_post_before_crash.id
        c = await store.get_job(ids["C"])
        assert c.state.value == "failed"
        assert c.attempts == 2
        assert track_posts(fake, ids["C"]) == []
        assert await refunded(store, ids["C"])
        quota = await store.quota_status(members["dave"].id, fake.guild.id)
        assert quota.used == 0
        # A, B, D and E were posted in their channels; all MP3s total 4.
        assert sum(len(track_posts(fake, job_id)) for job_id in ids.values()) == 4
        print(
            f"\nkill -9 matrix: bot process starts {first.started_s:.1f} s / {second.started_s:.1f} s / "
            f"{third.started_s:.1f} s; 5 jobs, 2 kills, 4 delivered once, 1 failed refunded"
        )
    finally:
        for bot in [b for b in (locals().get(n) for n in ("first", "second", "third")) if b is not None]:
            if bot.process is not None and bot.process.returncode is None:
                await bot.kill()
        await store.close()
