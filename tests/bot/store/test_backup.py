"""`jamgen db backup` while the bot keeps writing: the copy is healthy and holds every committed job."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest

from bot.store import BackupExistsError, JobStore, backup_database, check_database

from .conftest import new_job, raw

ROOT = Path(__file__).resolve().parents[3]


async def test_a_backup_taken_during_writes_restores_every_committed_job(tmp_path, db_path, clock):
    backup = tmp_path / "backups" / "jamgen-backup.db"
    committed: list[str] = []
    backup_running = asyncio.Event()
    written_during_backup = 0
    stop = asyncio.Event()

    async def writer(store: JobStore) -> None:
        nonlocal written_during_backup
        n = 0
        while not stop.is_set():
            n += 1
            job = await store.submit_job(new_job(user_id=1 + n % 3, prompt=f"take {n}"), cost=1.5, is_admin=True)
            committed.append(job.id)
            if backup_running.is_set():
                written_during_backup += 1
            await asyncio.sleep(0)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAMGEN_", "DISCORD_"))}
    env["JAMGEN_DB_PATH"] = str(db_path)
    async with JobStore.open(db_path, clock=clock) as store:
        task = asyncio.create_task(writer(store))
        try:
            while len(committed) < 20:
                await asyncio.sleep(0.01)
            before = set(committed)
            backup_running.set()
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot.cli",
                "--env-file",
                os.devnull,
                "db",
                "backup",
                str(backup),
                cwd=ROOT,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
            backup_running.clear()
            stop.set()
            await task
        finally:
            stop.set()
            if not task.done():
                task.cancel()
    assert proc.returncode == 0, err.decode()
    assert out.decode().startswith(f"backed up {db_path} to {backup}")
    assert written_during_backup > 0  # the bot really kept writing

    assert (await check_database(backup)).ok
    restored = tmp_path / "restored" / "jamgen.db"
    restored.parent.mkdir()
    shutil.copyfile(backup, restored)  # restoring = putting the backup file in place while the bot is stopped
    async with JobStore.open(restored, clock=clock) as store:
        ids = {row[0] for row in raw(restored, "SELECT id FROM jobs")}
        assert before <= ids <= set(committed)
        for job_id in before:
            assert (await store.get_job(job_id)).cost == 1.5
        debits = raw(restored, "SELECT count(*), sum(amount_ms) FROM quota_ledger WHERE kind = 'debit'")
        assert debits == [(len(ids), -1500 * len(ids))]  # every job in the copy has its one debit
    assert (await check_database(restored)).ok


async def test_a_backup_never_overwrites_a_file(store, db_path, tmp_path):
    target = tmp_path / "exists.db"
    target.write_text("precious")
    with pytest.raises(BackupExistsError):
        await backup_database(db_path, target)
    assert target.read_text() == "precious"
    report = await backup_database(db_path, tmp_path / "fresh.db")
    assert report.jobs == 0
    assert report.size_bytes > 0
    assert not (tmp_path / "fresh.db.partial").exists()
