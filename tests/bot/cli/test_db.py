import os
import sqlite3

import pytest

from bot.cli import main
from bot.store import latest_version


@pytest.fixture
def db(tmp_path, monkeypatch):
    for key in list(os.environ):
        if key.startswith(("JAMGEN_", "DISCORD_")):
            monkeypatch.delenv(key)
    path = tmp_path / "data" / "jamgen.db"
    monkeypatch.setenv("JAMGEN_DB_PATH", str(path))
    return path


def _jamgen(*args):
    return main(["--env-file", os.devnull, "db", *args])


def test_migrate_creates_then_reports_up_to_date(db, capsys):
    assert _jamgen("migrate") == 0
    assert capsys.readouterr().out.strip() == f"{db}: migrated from schema 0 to {latest_version()}"
    assert db.is_file()
    assert _jamgen("migrate") == 0
    assert capsys.readouterr().out.strip() == f"{db}: schema {latest_version()}, up to date"


def test_the_db_option_overrides_the_setting(db, tmp_path, capsys):
    other = tmp_path / "other.db"
    assert main(["--env-file", os.devnull, "db", "--db", str(other), "migrate"]) == 0
    assert other.is_file()
    assert not db.exists()


def test_check_says_ok_for_a_healthy_database(db, capsys):
    _jamgen("migrate")
    capsys.readouterr()
    assert _jamgen("check") == 0
    assert capsys.readouterr().out.strip() == f"ok: {db} (schema {latest_version()})"


def test_check_lists_problems_and_exits_1(db, capsys):
    _jamgen("migrate")
    conn = sqlite3.connect(db)  # foreign keys are off on a plain connection: write a dangling row
    conn.execute(
        "INSERT INTO quota_ledger (user_id, guild_id, day, kind, amount_ms, job_id, created_at) "
        "VALUES (1, 10, '2030-01-01', 'debit', -5, 'nosuchjb', 'x')"
    )
    conn.commit()
    conn.close()
    capsys.readouterr()
    assert _jamgen("check") == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{db}: 1 problem(s)"
    assert out[1] == "- foreign key: quota_ledger row 1 points at a missing jobs row"


def test_check_of_a_missing_database_is_a_user_error(db, capsys):
    assert _jamgen("check") == 2
    assert "there is no database at" in capsys.readouterr().err
    assert not db.exists()


def test_a_newer_database_is_refused_with_exit_2(db, capsys):
    _jamgen("migrate")
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {latest_version() + 3}")
    conn.close()
    capsys.readouterr()
    assert _jamgen("migrate") == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: the database at {db} is from a newer jamgen (schema {latest_version() + 3}, "
        f"this code knows {latest_version()}): upgrade jamgen or restore a backup"
    )
    assert _jamgen("check") == 1
    assert "newer than this jamgen knows" in capsys.readouterr().out


def test_backup_writes_a_checked_copy_and_refuses_to_overwrite(db, tmp_path, capsys):
    _jamgen("migrate")
    target = tmp_path / "backups" / "one.db"
    capsys.readouterr()
    assert _jamgen("backup", str(target)) == 0
    assert capsys.readouterr().out.startswith(f"backed up {db} to {target} (schema {latest_version()}, 0 jobs,")
    conn = sqlite3.connect(target)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        conn.close()
    assert _jamgen("backup", str(target)) == 2
    assert "already exists" in capsys.readouterr().err


def test_db_needs_an_action(db, capsys):
    with pytest.raises(SystemExit) as info:
        _jamgen()
    assert info.value.code == 2
