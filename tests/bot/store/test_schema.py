import asyncio
import sqlite3

import pytest

from bot.errors import ConfigError
from bot.store import (
    DatabaseTooNewError,
    JobState,
    JobStore,
    MigrationFailedError,
    NotADatabaseError,
    check_database,
    latest_version,
)
from bot.store.schema import Migration, connect, load_migrations, migrate, schema_version, split_statements

from .conftest import new_job, raw

TABLES_V1 = {"jobs", "guild_settings", "role_tiers", "member_quota", "blocks"}
TABLES_V2 = TABLES_V1 | {"quota_ledger", "eta_stats"}
TABLES_LATEST = TABLES_V2 | {"sessions", "take_reactions", "stems", "session_polls"}


def _tables(path):
    return {r[0] for r in raw(path, "SELECT name FROM sqlite_master WHERE type = 'table'")} - {"sqlite_sequence"}


def test_migration_files_are_numbered_without_gaps_and_there_are_several():
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert latest_version() == len(migrations) >= 2
    assert all(split_statements(m.sql) for m in migrations)


def test_split_statements_keeps_trigger_bodies_whole():
    sql = (
        "-- a comment\nCREATE TABLE a (x);\n"
        "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  UPDATE a SET x = 1;\n  UPDATE a SET x = 2;\nEND;\n-- end\n"
    )
    statements = split_statements(sql)
    assert len(statements) == 2
    assert statements[1].startswith("CREATE TRIGGER")
    assert statements[1].endswith("END;")


async def test_open_creates_folders_and_sets_the_connection_up(db_path, clock):
    assert not db_path.parent.exists()
    async with JobStore.open(db_path, clock=clock) as store:
        db = store._db
        assert (await db.execute_fetchall("PRAGMA journal_mode"))[0][0] == "wal"
        assert (await db.execute_fetchall("PRAGMA foreign_keys"))[0][0] == 1
        assert (await db.execute_fetchall("PRAGMA busy_timeout"))[0][0] == 10_000
        assert await schema_version(db) == latest_version()
    assert _tables(db_path) == TABLES_LATEST


async def test_store_works_when_awaited_instead_of_entered(db_path, clock):
    store = await JobStore.open(db_path, clock=clock)
    try:
        job = await store.submit_job(new_job(), cost=1)
        assert (await store.get_job(job.id)).state is JobState.QUEUED
    finally:
        await store.close()
        await store.close()  # idempotent


async def test_the_database_refuses_a_job_pointing_at_a_missing_parent(db_path, clock):
    # foreign_keys = ON really is in force on the store's connection
    async with JobStore.open(db_path, clock=clock) as store:
        with pytest.raises(sqlite3.IntegrityError):
            await store._db.execute(
                "INSERT INTO jobs (id, user_id, channel_id, mode, model, parent_id, created_at) "
                "VALUES ('abcdefgh', 1, 1, 'text', 'small', 'zzzzzzzz', 'now')"
            )


async def _database_at(path, version):
    db = await connect(path, create=True)
    try:
        result = await migrate(db, path, target=version)
        assert result.after == version
        if version >= 1:
            await db.execute(
                "INSERT INTO jobs (id, user_id, guild_id, channel_id, mode, model, prompt, state, created_at) "
                "VALUES ('olderjob', 7, 10, 100, 'text', 'small', 'from an old schema', 'delivered', "
                "'2029-12-31T10:00:00.000000+00:00')"
            )
            await db.execute(
                "INSERT INTO guild_settings (guild_id, default_model, updated_at) VALUES (10, 'medium', 'x')"
            )
    finally:
        await db.close()


@pytest.mark.parametrize("version", range(latest_version()))
async def test_migrates_from_every_earlier_schema_version(tmp_path, clock, version):
    path = tmp_path / "old.db"
    await _database_at(path, version)
    assert raw(path, "PRAGMA user_version")[0][0] == version
    async with JobStore.open(path, clock=clock, default_budget=30) as store:
        assert await schema_version(store._db) == latest_version()
        if version >= 1:
            old = await store.get_job("olderjob")
            assert old is not None
            assert old.prompt == "from an old schema"
            assert old.extra == {}
            assert (await store.get_guild_settings(10)).default_model == "medium"
        await store.submit_job(new_job(), cost=12)
        assert (await store.quota_status(1, 10)).remaining == 18
    assert _tables(path) == TABLES_LATEST
    assert (await check_database(path)).ok


async def test_reopening_an_up_to_date_database_changes_nothing(db_path, clock):
    async with JobStore.open(db_path, clock=clock) as store:
        job = await store.submit_job(new_job(), cost=1)
    async with JobStore.open(db_path, clock=clock) as store:
        assert (await store.get_job(job.id)).id == job.id
    assert raw(db_path, "PRAGMA user_version")[0][0] == latest_version()


async def test_a_database_from_a_newer_jamgen_is_refused_with_a_clear_message(db_path, clock):
    async with JobStore.open(db_path, clock=clock):
        pass
    newer = latest_version() + 1
    raw(db_path, f"PRAGMA user_version = {newer}")
    with pytest.raises(DatabaseTooNewError) as info:
        await JobStore.open(db_path, clock=clock)
    assert isinstance(info.value, ConfigError)
    assert str(info.value) == (
        f"the database at {db_path} is from a newer jamgen (schema {newer}, this code knows {latest_version()}): "
        "upgrade jamgen or restore a backup"
    )
    assert raw(db_path, "PRAGMA user_version")[0][0] == newer  # left exactly as it was


async def test_a_failing_migration_is_rolled_back_whole(tmp_path):
    path = tmp_path / "x.db"
    migrations = [
        Migration(1, "0001_ok.sql", "CREATE TABLE one (x);"),
        Migration(2, "0002_broken.sql", "CREATE TABLE two (x);\nINSERT INTO missing_table VALUES (1);"),
    ]
    db = await connect(path, create=True)
    try:
        with pytest.raises(MigrationFailedError) as info:
            await migrate(db, path, migrations=migrations)
        assert "0002_broken.sql" in str(info.value)
        assert "schema 1" in str(info.value)
        assert await schema_version(db) == 1
    finally:
        await db.close()
    assert _tables(path) == {"one"}


async def test_a_file_that_is_not_a_database_is_refused(tmp_path, clock):
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is not sqlite at all, just some text that is long enough" * 20)
    with pytest.raises(NotADatabaseError):
        await JobStore.open(path, clock=clock)


async def test_many_processes_opening_a_new_file_at_once_all_end_on_the_newest_schema(db_path, clock):
    stores = await asyncio.gather(*(JobStore.open(db_path, clock=clock) for _ in range(8)))
    try:
        versions = [await schema_version(s._db) for s in stores]
        assert versions == [latest_version()] * 8
    finally:
        for s in stores:
            await s.close()
    assert _tables(db_path) == TABLES_LATEST
