"""`jamgen doctor`: every check with its fix, the exit status, and the quick health check."""

import asyncio
import base64
import json
import os
import subprocess
import sys
import time

import pytest

from bot.cli import main
from bot.cli.doctor import (
    DeviceReport,
    Level,
    application_id_from_token,
    check_db,
    check_folders,
    check_limits,
    check_models,
    check_stems_model,
    check_token,
    device_findings,
    verdict,
)
from bot.config import Settings
from bot.engine.registry import MODELS
from bot.heartbeat import Heartbeat, heartbeat_path, write_heartbeat
from bot.store import latest_version, migrate_database

BOT_ID = 1234567890123456789
TOKEN = base64.urlsafe_b64encode(str(BOT_ID).encode()).decode().rstrip("=") + ".GaBcDe." + "x" * 38
REAL_MODELS = [name for name, spec in MODELS.items() if not spec.debug and not spec.separator]


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAMGEN_", "DISCORD_", "HF_"))}
    env |= {
        "DISCORD_TOKEN": TOKEN,
        "HF_HOME": str(tmp_path / "hf"),
        "JAMGEN_DATA_DIR": str(tmp_path / "data"),
        "JAMGEN_DB_PATH": str(tmp_path / "data" / "jamgen.db"),
        "JAMGEN_MODEL_DIR": str(tmp_path / "models"),
    }
    return env | extra


@pytest.fixture(scope="module")
def cpu_doctor(tmp_path_factory):
    """One real `jamgen doctor` run on this CPU machine (it imports torch and audiocraft in a child)."""
    tmp_path = tmp_path_factory.mktemp("doctor")
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "--env-file", str(tmp_path / "none.env"), "doctor"],
        capture_output=True,
        text=True,
        env=_env(tmp_path, JAMGEN_DEVICE="auto"),
        cwd=tmp_path,
        timeout=300,
    )


@pytest.mark.slow
def test_doctor_on_a_cpu_machine_reports_cpu_mode_missing_weights_and_can_start(cpu_doctor):
    assert cpu_doctor.returncode == 0, cpu_doctor.stdout + cpu_doctor.stderr
    lines = cpu_doctor.stdout.splitlines()
    assert any(line.startswith("ok    audio") and "libmp3lame" in line for line in lines)
    assert any(line.startswith("ok    torch") and "torch 2.11" in line for line in lines)
    cpu = next(line for line in lines if line.startswith("warn  device"))
    assert "CPU mode" in cpu
    default = lines.index(next(line for line in lines if "small (default): weights missing" in line))
    assert lines[default].startswith("warn  weights")
    assert "fix: `jamgen models pull small`" in lines[default + 1]
    others = next(line for line in lines if "weights missing for" in line)
    assert others.split("weights missing for ")[1].split(" (")[0].split(", ") == REAL_MODELS[1:]
    assert any(line.startswith("info  stems") and "htdemucs: weights missing" in line for line in lines)
    assert lines[-1] == "The bot can start (2 warning(s) above)."
    assert TOKEN not in cpu_doctor.stdout + cpu_doctor.stderr
    assert f"bot id {BOT_ID}" in cpu_doctor.stdout


# ------------------------------------------------------------------------------------------ token


@pytest.mark.parametrize(
    ("token", "says"),
    [
        ("", "DISCORD_TOKEN is not set"),
        (f"Bot {TOKEN}", "starts with 'Bot '"),
        (f'"{TOKEN}"', "wrapped in quotes"),
        (f" {TOKEN}\n", "spaces or line breaks"),
        ("a" * 64, "public key"),
        ("Ab1_" * 8, "client secret"),
        ("1234567890123456789", "looks like an id"),
        ("x" * 40, "does not look like a bot token (40 characters, 1 part(s)"),
    ],
)
def test_a_malformed_token_fails_with_a_fix_and_is_never_printed(token, says):
    (finding,) = check_token(token)
    assert finding.level is Level.FAIL
    assert says in finding.message
    assert finding.fix
    if token:
        assert token.strip() not in finding.message + finding.fix


def test_a_well_formed_token_names_its_bot_and_a_mismatched_app_id_warns():
    (ok,) = check_token(TOKEN)
    assert ok.level is Level.OK
    assert str(BOT_ID) in ok.message
    assert application_id_from_token(TOKEN) == BOT_ID
    _, mismatch = check_token(TOKEN, app_id=42)
    assert mismatch.level is Level.WARN
    assert "DISCORD_APP_ID is 42" in mismatch.message


# ------------------------------------------------------------------------------------------ device


def test_device_findings_for_gpu_cpu_and_broken_installs():
    settings = Settings.from_env({"JAMGEN_DEFAULT_MODEL": "large"})
    gpu = DeviceReport("2.11.0", "1.4.0a2", "cuda:0 (Small GPU, 8 GB)", True, 8.0, free_gb=7.5)
    found = device_findings(gpu, settings)
    assert [f.level for f in found] == [Level.OK, Level.OK, Level.WARN]
    assert found[1].message.startswith("GPU mode: cuda:0 (Small GPU, 8 GB), 7.5 GB free now")
    assert "'large' needs about 16 GB" in found[2].message
    crowded = device_findings(DeviceReport("2.11.0", "x", "cuda:0 (G, 80 GB)", True, 80.0, free_gb=10.0), settings)
    assert "Another process holds 70.0 GB" in crowded[2].message
    cpu = device_findings(DeviceReport("2.11.0", "x", "cpu", False, 24.0), Settings.from_env({"JAMGEN_DEVICE": "cpu"}))
    assert cpu[1].level is Level.WARN
    assert cpu[1].message.startswith("CPU mode (JAMGEN_DEVICE=cpu; 24 GB RAM)")
    refused = device_findings(
        DeviceReport("2.11.0", "x", error="JAMGEN_DEVICE is 'cuda' but torch sees no GPU"), settings
    )
    assert refused[-1].level is Level.FAIL
    assert "nvidia-smi" in refused[-1].fix
    (broken,) = device_findings(
        DeviceReport("", "", import_error="ModuleNotFoundError: No module named 'torch'"), settings
    )
    assert broken.level is Level.FAIL
    assert "scripts/install.sh" in broken.fix


# ------------------------------------------------------------------------------------------ models


def test_missing_default_weights_fail_only_when_downloads_are_off(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    settings = Settings.from_env(
        {"JAMGEN_MODEL_DIR": str(tmp_path / "models"), "JAMGEN_ENABLED_MODELS": "small,melody"}
    )
    online = check_models(settings, offline=False)
    assert [(f.level, f.message.split(":")[0]) for f in online] == [
        (Level.WARN, "small (default)"),
        (Level.INFO, "weights missing for melody (each is downloaded on first use)."),
    ]
    offline = check_models(settings, offline=True)
    assert offline[0].level is Level.FAIL
    assert "HF_HUB_OFFLINE" in offline[0].message
    local = tmp_path / "models" / "small"
    local.mkdir(parents=True)
    for name in ("state_dict.bin", "compression_state_dict.bin"):
        (local / name).write_bytes(b"x")
    present = check_models(settings, offline=True)
    assert (present[0].level, present[0].message) == (Level.OK, f"small (default): local {local}")


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"JAMGEN_DEFAULT_MODEL": "huge"}, "'huge', which is not a model jamgen knows"),
        ({"JAMGEN_DEFAULT_MODEL": "medium", "JAMGEN_ENABLED_MODELS": "small"}, "not in JAMGEN_ENABLED_MODELS"),
        ({"JAMGEN_DEFAULT_MODEL": "debug"}, "a test model and JAMGEN_DEBUG_MODELS is off"),
    ],
)
def test_a_default_model_that_cannot_serve_fails(env, says):
    failures = [f for f in check_models(Settings.from_env(env), offline=False) if f.level is Level.FAIL]
    assert len(failures) == 1
    assert says in failures[0].message


def test_the_stems_model_is_checked_on_its_own(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    settings = Settings.from_env({"JAMGEN_MODEL_DIR": str(tmp_path / "models")})
    # Not among the music models, whatever JAMGEN_ENABLED_MODELS says.
    assert not any("htdemucs" in f.message for f in check_models(settings, offline=False))
    (online,) = check_stems_model(settings, offline=False)
    assert (online.level, online.message) == (
        Level.INFO,
        "htdemucs: weights missing; the first stems wait for its download.",
    )
    (offline,) = check_stems_model(settings, offline=True)
    assert offline.level is Level.WARN
    assert "refused while HF_HUB_OFFLINE" in offline.message
    assert "jamgen models pull htdemucs" in offline.fix
    (wrong,) = check_stems_model(Settings.from_env({"JAMGEN_STEMS_MODEL": "small"}), offline=False)
    assert wrong.level is Level.WARN
    assert "no stems model" in wrong.message


def test_unknown_enabled_models_warn():
    found = check_models(Settings.from_env({"JAMGEN_ENABLED_MODELS": "small,smol"}), offline=False)
    assert found[0].level is Level.WARN
    assert "smol" in found[0].message


# ------------------------------------------------------------------------------------------ storage


async def test_database_checks(tmp_path):
    missing = tmp_path / "data" / "jamgen.db"
    (created_later,) = await check_db(missing)
    assert created_later.level is Level.OK
    assert "creates it at the first start" in created_later.message
    await migrate_database(missing)
    (healthy,) = await check_db(missing)
    assert healthy.level is Level.OK
    assert healthy.message.endswith(f"schema {latest_version()}, integrity ok.")
    foreign = tmp_path / "notes.db"
    foreign.write_bytes(b"these are not the tables you are looking for" * 100)
    (refused,) = await check_db(foreign)
    assert refused.level is Level.FAIL
    assert "not an SQLite database" in refused.message


def test_a_data_folder_that_cannot_be_created_fails(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    (bad,) = check_folders(Settings.from_env({"JAMGEN_DATA_DIR": str(blocker / "data")}))
    assert bad.level is Level.FAIL
    assert "uid 1000" in bad.fix
    (good,) = check_folders(Settings.from_env({"JAMGEN_DATA_DIR": str(tmp_path / "data")}))
    assert good.level is Level.OK


# ------------------------------------------------------------------------------------------ limits


def test_limits_are_summarised_and_contradictions_warn():
    summary, intent = check_limits(Settings.from_env({}))
    assert summary.level is intent.level is Level.INFO
    assert "takes up to 120 s" in summary.message
    assert "mentions jamgen" in intent.message
    warnings = [
        f.message
        for f in check_limits(
            Settings.from_env(
                {
                    "JAMGEN_DAILY_BUDGET_SECONDS": "0",
                    "JAMGEN_MAX_DURATION": "300",
                    "JAMGEN_UPLOAD_LIMIT_MB": "1",
                    "JAMGEN_MAX_PENDING_PER_USER": "30",
                }
            )
        )
        if f.level is Level.WARN
    ]
    assert len(warnings) == 3
    assert "members without a role tier" in warnings[0]
    assert "4 takes of 300 s do not fit a 1 MiB upload" in warnings[1]
    assert "JAMGEN_MAX_PENDING_PER_USER is larger" in warnings[2]
    (expensive,) = [
        f
        for f in check_limits(Settings.from_env({"JAMGEN_DEFAULT_MODEL": "large", "JAMGEN_DAILY_BUDGET_SECONDS": "30"}))
        if f.level is Level.WARN
    ]
    assert "costs 40 s" in expensive.message


def test_the_verdict_is_the_exit_status():
    assert verdict(check_token(TOKEN), quick=False) == (0, "The bot can start.")
    status, closing = verdict(check_token(""), quick=False)
    assert status == 1
    assert "fix the 1 FAIL line(s)" in closing


# ------------------------------------------------------------------------------------------ quick


@pytest.fixture
def quick(tmp_path, monkeypatch, capsys):
    for key, value in _env(tmp_path).items():
        monkeypatch.setenv(key, value)

    def run():
        status = main(["--env-file", str(tmp_path / "none.env"), "doctor", "--quick", "--json"])
        return status, json.loads(capsys.readouterr().out)

    return run


async def test_quick_is_healthy_with_a_database_and_a_fresh_heartbeat(tmp_path, quick):
    await migrate_database(tmp_path / "data" / "jamgen.db")
    beat = Heartbeat(pid=99, written_at=time.time(), interval_s=30, engine_alive=True, device="cpu")
    await write_heartbeat(heartbeat_path(tmp_path / "data"), beat)
    status, report = await _in_thread(quick)
    assert status == 0
    assert report["ok"] is True
    assert [f["area"] for f in report["findings"]] == ["database", "bot"]
    assert report["findings"][1]["message"] == "pid 99 alive, engine on cpu (no model loaded)"


async def test_quick_is_unhealthy_when_the_heartbeat_is_stale_or_the_engine_down(tmp_path, quick):
    await migrate_database(tmp_path / "data" / "jamgen.db")
    path = heartbeat_path(tmp_path / "data")
    await write_heartbeat(path, Heartbeat(99, time.time() - 500, 30, True, "cpu"))
    status, report = await _in_thread(quick)
    assert status == 1
    assert "500 s old" in report["findings"][1]["message"]
    await write_heartbeat(path, Heartbeat(99, time.time(), 30, False, "cpu", detail="worker crashed"))
    status, report = await _in_thread(quick)
    assert status == 1
    assert report["findings"][1]["message"] == "the engine worker is not alive: worker crashed"


def test_quick_without_a_database_or_a_bot_is_unhealthy(quick):
    status, report = quick()
    assert status == 1
    database, bot = report["findings"]
    assert (database["level"], bot["level"]) == ("FAIL", "FAIL")
    assert "no database" in database["message"]
    assert "no heartbeat" in bot["message"]


async def _in_thread(run):
    # The command runs its own event loop (asyncio.run), so it cannot run inside the test's.
    return await asyncio.to_thread(run)
