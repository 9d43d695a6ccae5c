"""A writer killed with SIGKILL in the middle of a transaction leaves a healthy database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from bot.store import JobStore, check_database

from .conftest import new_job, raw

ROOT = Path(__file__).resolve().parents[3]

# The child writes 300 jobs and their debits in one transaction with a tiny page cache, so
# uncommitted pages spill into the write-ahead log before it is killed.
CHILD = textwrap.dedent(
    """
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("PRAGMA cache_size = 2")
    conn.execute("BEGIN IMMEDIATE")
    for n in range(300):
        job_id = "k" + format(n, "07d").replace("0", "a").replace("1", "b")
        conn.execute(
            "INSERT INTO jobs (id, user_id, guild_id, channel_id, mode, model, prompt, cost_ms, created_at) "
            "VALUES (?, 5, 10, 100, 'text', 'small', ?, 1000, '2030-01-01T12:00:00.000000+00:00')",
            (job_id, "half-written " * 200),
        )
        conn.execute(
            "INSERT INTO quota_ledger (user_id, guild_id, day, kind, amount_ms, job_id, created_at) "
            "VALUES (5, 10, '2030-01-01', 'debit', -1000, ?, 'x')",
            (job_id,),
        )
    print("ready", flush=True)
    time.sleep(120)
    """
)


def _jamgen(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAMGEN_", "DISCORD_"))}
    env["JAMGEN_DB_PATH"] = str(db)
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "--env-file", os.devnull, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )


async def test_a_killed_writer_leaves_no_half_written_job(db_path, clock):
    async with JobStore.open(db_path, clock=clock) as store:
        committed = await store.submit_job(new_job(user_id=5), cost=2)
    wal = db_path.with_name(db_path.name + "-wal")
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(db_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        assert wal.stat().st_size > 100_000  # uncommitted pages really reached the disk
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    result = _jamgen("db", "check", db=db_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok")

    assert raw(db_path, "SELECT id FROM jobs") == [(committed.id,)]
    assert raw(db_path, "SELECT count(*) FROM quota_ledger") == [(1,)]
    async with JobStore.open(db_path, clock=clock) as store:
        assert (await store.quota_status(5, 10)).used == 2
        await store.submit_job(new_job(user_id=5), cost=1)  # the dead writer's lock is gone
    assert (await check_database(db_path)).ok
