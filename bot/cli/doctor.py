"""`jamgen doctor`: check that everything the bot needs is in place, and say how to fix what is not.

Full check (``jamgen doctor``): the token's shape (never printed), ffmpeg with libmp3lame, torch,
audiocraft and the device (in a child process, as the engine would see them; the engine worker
itself is not started), which model weights are here, the database (schema, integrity), the
folders, and the configured limits.

Quick check (``jamgen doctor --quick``, the Docker HEALTHCHECK): the database opens and has a
schema, and the running bot's heartbeat (``<JAMGEN_DATA_DIR>/heartbeat.json``) is fresh and says
its engine worker is alive. No torch, no ffmpeg: it answers in well under a second.

Exit status: 0 when the bot can start and make a track with its default model (warnings
allowed), 1 when a problem printed as FAIL stands in the way. ``--quick``: 0 healthy, 1 not.
A bad setting stops before any check with exit status 2, like every command.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import importlib.metadata
import importlib.util
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

from bot.audio.encode import MP3_BITRATES_KBPS
from bot.audio.tools import check_tools
from bot.config import Settings
from bot.engine.registry import MODELS, ModelSpec
from bot.engine.weights import WEIGHT_FILES, find_weights, hf_cache_dir, hf_offline, local_files
from bot.errors import JamgenError
from bot.heartbeat import HeartbeatUnreadableError, heartbeat_path, heartbeat_problems, read_heartbeat
from bot.store import check_database, latest_version
from bot.store.schema import connect, schema_version

DEVICE_PROBE_TIMEOUT_S = 180.0
QUICK_DB_TIMEOUT_S = 5.0


class Level(StrEnum):
    """How bad a finding is."""

    OK = "ok"
    INFO = "info"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Finding:
    """One line of the report.

    Args:
        area: what was checked (``token``, ``audio``, ``device``, ``weights``, ``database`` …).
        level: ok, info, warn or FAIL (FAIL means the bot cannot start or cannot make music).
        message: what was found.
        fix: what to do about it ("" when nothing needs doing).
    """

    area: str
    level: Level
    message: str
    fix: str = ""


# ---------------------------------------------------------------------------------------- token

_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")


def application_id_from_token(token: str) -> int | None:
    """The bot's user id, read from the first part of its token (for bots it equals the application id).

    Args:
        token: a Discord bot token.

    Returns:
        the id, or None when the token does not have the usual shape.
    """
    first = token.split(".", 1)[0]
    if not _SEGMENT.match(first):
        return None
    try:
        text = base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return int(text) if text.isdigit() and 15 <= len(text) <= 21 else None


def check_token(token: str, app_id: int = 0) -> list[Finding]:
    """Judge the bot token by its shape alone: offline, and without ever printing it.

    Args:
        token: DISCORD_TOKEN as configured.
        app_id: DISCORD_APP_ID (0 = not set).
    """
    where = "Discord developer portal → your application → Bot → Reset Token"
    if not token:
        return [
            Finding(
                "token",
                Level.FAIL,
                "DISCORD_TOKEN is not set; `jamgen run` cannot log in.",
                f"Copy config.example.env to .env and set DISCORD_TOKEN= to the token from the {where}.",
            )
        ]
    stripped = token.strip().strip("'\"").strip()
    mistakes = [
        (token != token.strip(), "DISCORD_TOKEN has spaces or line breaks around it.", "Remove them."),
        (token.strip()[:1] in "'\"", "DISCORD_TOKEN is wrapped in quotes.", "Remove the quotes."),
        (
            stripped.lower().startswith("bot "),
            "DISCORD_TOKEN starts with 'Bot '; that word is added by the library.",
            "Keep only the token itself.",
        ),
        (
            bool(re.fullmatch(r"[0-9a-f]{64}", stripped)),
            "DISCORD_TOKEN looks like the application's public key, not the bot token.",
            f"Use the token from the {where}.",
        ),
        (
            bool(re.fullmatch(r"[A-Za-z0-9_-]{32}", stripped)),
            "DISCORD_TOKEN looks like the OAuth2 client secret, not the bot token.",
            f"Use the token from the {where}.",
        ),
        (
            stripped.isdigit(),
            "DISCORD_TOKEN looks like an id (digits only), not the bot token.",
            f"Put the id in DISCORD_APP_ID and the token from the {where} in DISCORD_TOKEN.",
        ),
    ]
    found = [Finding("token", Level.FAIL, message, fix) for bad, message, fix in mistakes if bad]
    if found:
        return found[:1]
    parts = stripped.split(".")
    if len(parts) != 3 or not all(_SEGMENT.match(p) for p in parts) or len(stripped) < 50:
        return [
            Finding(
                "token",
                Level.FAIL,
                f"DISCORD_TOKEN does not look like a bot token ({len(stripped)} characters, "
                f"{len(parts)} part(s); a bot token has three parts joined by dots, about 70 characters).",
                f"Copy it again from the {where}; copy the whole line.",
            )
        ]
    bot_id = application_id_from_token(stripped)
    if bot_id is None:
        return [
            Finding(
                "token",
                Level.WARN,
                "DISCORD_TOKEN has three parts but its first part names no bot id; it may still work.",
                f"If login fails, copy it again from the {where}.",
            )
        ]
    findings = [
        Finding(
            "token", Level.OK, f"DISCORD_TOKEN has a bot token's shape (bot id {bot_id}; not checked with Discord)."
        )
    ]
    if app_id and app_id != bot_id:
        findings.append(
            Finding(
                "token",
                Level.WARN,
                f"DISCORD_APP_ID is {app_id} but the token belongs to bot {bot_id}.",
                "Set DISCORD_APP_ID to the Application ID on the portal's General Information page "
                "(or leave it 0 to use the token's), so `jamgen invite` invites the right bot.",
            )
        )
    return findings


# ---------------------------------------------------------------------------------------- audio


async def check_audio() -> list[Finding]:
    """ffmpeg and ffprobe on PATH, and ffmpeg can write MP3."""
    report = await check_tools()
    if report.ok:
        return [Finding("audio", Level.OK, report.summary)]
    return [Finding("audio", Level.FAIL, problem, fix) for problem, fix in report.problems]


# ---------------------------------------------------------------------------------------- device

# Runs in a child process: the engine's own device code decides, as it would in the worker.
_DEVICE_PROBE = """\
import json, sys
out = {}
try:
    from bot.engine.worker import runtime
    try:
        device = runtime.select_device(sys.argv[1])
    except RuntimeError as exc:
        out["error"] = str(exc)
    else:
        out["device"] = runtime.describe_device(device)
        out["on_gpu"] = device.type == "cuda"
        out["memory_gb"] = runtime.device_memory_gb(device)
        if device.type == "cuda":
            out["free_gb"] = runtime.device_free_gb(device)
except Exception as exc:
    out["import_error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


@dataclass(frozen=True)
class DeviceReport:
    """What the engine would run on.

    Args:
        torch: the installed torch version ("" when missing).
        audiocraft: the installed audiocraft (tts-webui-audiocraft) version ("" when missing).
        device: ``cpu`` or ``cuda:0 (NVIDIA H100 80GB HBM3, 79 GB)``.
        on_gpu: the engine would use CUDA.
        memory_gb: the device's memory (RAM for the CPU).
        free_gb: free GPU memory now (None on the CPU).
        error: the engine refuses the configured device (JAMGEN_DEVICE=cuda without a GPU).
        import_error: torch or audiocraft cannot be imported.
    """

    torch: str = ""
    audiocraft: str = ""
    device: str = ""
    on_gpu: bool = False
    memory_gb: float = 0.0
    free_gb: float | None = None
    error: str = ""
    import_error: str = ""


def _installed(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return ""


async def probe_device(requested: str, timeout_s: float = DEVICE_PROBE_TIMEOUT_S) -> DeviceReport:
    """Import torch and audiocraft in a child process and ask the engine's code which device it would use.

    Args:
        requested: JAMGEN_DEVICE (auto, cuda or cpu).
        timeout_s: seconds the child may take (the imports take several seconds).
    """
    torch_version, audiocraft_version = _installed("torch"), _installed("tts-webui-audiocraft")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _DEVICE_PROBE,
        requested,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return DeviceReport(
            torch=torch_version,
            audiocraft=audiocraft_version,
            import_error=f"importing torch and audiocraft took over {timeout_s:g} s",
        )
    lines = stdout.decode("utf-8", "replace").strip().splitlines()
    try:
        found = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        return DeviceReport(torch=torch_version, audiocraft=audiocraft_version, import_error=tail[0][:300])
    return DeviceReport(torch=torch_version, audiocraft=audiocraft_version, **found)


def device_findings(report: DeviceReport, settings: Settings) -> list[Finding]:
    """Judge the device report against the settings.

    Args:
        report: from :func:`probe_device`.
        settings: jamgen's settings.
    """
    reinstall = "Reinstall with `bash scripts/install.sh` (or `make install`); it pins torch 2.11.0 and audiocraft."
    if report.import_error or not report.torch:
        why = report.import_error or "torch is not installed"
        return [Finding("torch", Level.FAIL, f"The engine's libraries cannot be loaded: {why}.", reinstall)]
    findings = [Finding("torch", Level.OK, f"torch {report.torch}, audiocraft {report.audiocraft or '?'}")]
    if report.error:
        findings.append(
            Finding(
                "device",
                Level.FAIL,
                report.error,
                "Check `nvidia-smi` (driver 580 or newer for torch's CUDA 13 build; in Docker, the GPU "
                "reservation and the NVIDIA Container Toolkit), or set JAMGEN_DEVICE=auto or cpu.",
            )
        )
        return findings
    budget = settings.model_memory_gb or 0.8 * report.memory_gb
    if report.on_gpu:
        free = f", {report.free_gb:.1f} GB free now" if report.free_gb is not None else ""
        findings.append(
            Finding("device", Level.OK, f"GPU mode: {report.device}{free}; models may use {budget:.1f} GB.")
        )
        if report.free_gb is not None and report.free_gb < 0.5 * report.memory_gb:
            findings.append(
                Finding(
                    "device",
                    Level.WARN,
                    f"Another process holds {report.memory_gb - report.free_gb:.1f} GB of the GPU's memory.",
                    "Check `nvidia-smi`; jamgen expects the GPU to itself (or lower JAMGEN_MODEL_MEMORY_GB).",
                )
            )
    else:
        reason = "JAMGEN_DEVICE=cpu" if settings.device == "cpu" else "torch sees no CUDA GPU"
        findings.append(
            Finding(
                "device",
                Level.WARN,
                f"CPU mode ({reason}; {report.memory_gb:.0f} GB RAM): tracks are made, but a real model "
                "takes minutes per take.",
                "For a GPU: install the NVIDIA driver (580 or newer) and check `nvidia-smi`; in Docker, "
                "reserve the GPU (docker-compose.yml does) with the NVIDIA Container Toolkit installed.",
            )
        )
    default = MODELS.get(settings.default_model)
    if report.on_gpu and default is not None and not default.debug and default.vram_gb > budget:
        findings.append(
            Finding(
                "device",
                Level.WARN,
                f"The default model '{default.name}' needs about {default.vram_gb:g} GB, more than the "
                f"{budget:.1f} GB models may use here.",
                "Pick a smaller JAMGEN_DEFAULT_MODEL (small needs 4 GB) or raise JAMGEN_MODEL_MEMORY_GB.",
            )
        )
    return findings


# ---------------------------------------------------------------------------------------- models


def _enabled(settings: Settings) -> list[ModelSpec]:
    """The music models members may use (the stems model is checked on its own)."""
    return [
        spec
        for spec in MODELS.values()
        if not spec.separator
        and (not spec.debug or settings.debug_models)
        and (not settings.enabled_models or spec.name in settings.enabled_models)
    ]


def check_stems_model(settings: Settings, *, offline: bool) -> list[Finding]:
    """JAMGEN_STEMS_MODEL is a separator, and whether its weights are here (🎚 Stems needs them)."""
    spec = MODELS.get(settings.stems_model)
    if spec is None or not spec.separator:
        return [
            Finding(
                "stems",
                Level.WARN,
                f"JAMGEN_STEMS_MODEL is '{settings.stems_model}', which is no stems model: 🎚 Stems are refused.",
                "Set JAMGEN_STEMS_MODEL=htdemucs.",
            )
        ]
    where = find_weights(spec, settings.model_dir)
    if where.present:
        return [Finding("stems", Level.OK, f"{spec.name}: {where.source} {where.path or ''}".rstrip())]
    note = "🎚 Stems are refused while HF_HUB_OFFLINE is on" if offline else "the first stems wait for its download"
    return [
        Finding(
            "stems",
            Level.WARN if offline else Level.INFO,
            f"{spec.name}: weights missing; {note}.",
            f"`jamgen models pull {spec.name}` where there is network, or put "
            f"{' and '.join(local_files(spec))} into {where.local_dir}/.",
        )
    ]


def check_models(settings: Settings, *, offline: bool | None = None) -> list[Finding]:
    """The default model is known and enabled, and whose weights are here.

    Args:
        settings: jamgen's settings.
        offline: downloads are off (default: ``HF_HUB_OFFLINE`` from the environment).
    """
    offline = hf_offline() if offline is None else offline
    findings: list[Finding] = []
    unknown = [name for name in settings.enabled_models if name not in MODELS]
    if unknown:
        findings.append(
            Finding(
                "models",
                Level.WARN,
                f"JAMGEN_ENABLED_MODELS names models jamgen does not know: {', '.join(unknown)}.",
                "Use names from `jamgen models`.",
            )
        )
    default = MODELS.get(settings.default_model)
    enabled = _enabled(settings)
    if default is None:
        findings.append(
            Finding(
                "models",
                Level.FAIL,
                f"JAMGEN_DEFAULT_MODEL is '{settings.default_model}', which is not a model jamgen knows.",
                "Pick one from `jamgen models` (small is a good start).",
            )
        )
    elif default not in enabled:
        why = "a test model and JAMGEN_DEBUG_MODELS is off" if default.debug else "not in JAMGEN_ENABLED_MODELS"
        findings.append(
            Finding(
                "models",
                Level.FAIL,
                f"The default model '{default.name}' is {why}, so every request without a model is refused.",
                "Change JAMGEN_DEFAULT_MODEL or JAMGEN_ENABLED_MODELS.",
            )
        )
    cache = hf_cache_dir()
    copy_hint = f"or copy {' and '.join(WEIGHT_FILES)} from huggingface.co/facebook/musicgen-NAME into"
    missing: list[str] = []
    for spec in (s for s in enabled if not s.debug):
        where = find_weights(spec, settings.model_dir)
        if where.present:
            tag = " (default)" if spec is default else ""
            findings.append(Finding("weights", Level.OK, f"{spec.name}{tag}: {where.source} {where.path}"))
        elif spec is not default:
            missing.append(spec.name)
        else:
            level = Level.FAIL if offline else Level.WARN
            note = (
                "downloads are off (HF_HUB_OFFLINE), so no track can be made with it"
                if offline
                else "the first jam waits for its download"
            )
            findings.append(
                Finding(
                    "weights",
                    level,
                    f"{spec.name} (default): weights missing; {note}.",
                    f"`jamgen models pull {spec.name}` where there is network (fills {cache}), "
                    f"{copy_hint.replace('NAME', spec.name)} {where.local_dir}/.",
                )
            )
    if missing:
        note = "unusable while HF_HUB_OFFLINE is on" if offline else "each is downloaded on first use"
        findings.append(
            Finding(
                "weights",
                Level.INFO,
                f"weights missing for {', '.join(missing)} ({note}).",
                f"`jamgen models pull {' '.join(missing)}` where there is network (fills {cache}), "
                f"{copy_hint} {settings.model_dir}/NAME/.",
            )
        )
    if not offline and not _writable(cache):
        findings.append(
            Finding(
                "weights",
                Level.WARN,
                f"The Hugging Face cache {cache} is not writable, so downloads will fail.",
                "Make it writable for this user, or point HF_HOME at a folder that is.",
            )
        )
    return findings


# ---------------------------------------------------------------------------------------- storage


def _writable(path: Path) -> bool:
    """Whether ``path`` can be written, or created inside its nearest existing parent."""
    path = Path(path).absolute()
    while not path.exists():
        if path.parent == path:
            return False
        path = path.parent
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def check_folders(settings: Settings) -> list[Finding]:
    """The data folder can be written.

    Args:
        settings: jamgen's settings.
    """
    folder = settings.data_dir
    if _writable(folder):
        state = "" if folder.exists() else " (created at the first start)"
        return [Finding("folders", Level.OK, f"data folder {folder} is writable{state}.")]
    return [
        Finding(
            "folders",
            Level.FAIL,
            f"The data folder {folder} cannot be written by this user (uid {os.getuid()}).",
            "Fix its owner (`chown`), or point JAMGEN_DATA_DIR at a writable folder; in Docker, "
            "a bind-mounted /data must be writable by uid 1000.",
        )
    ]


async def check_db(path: Path) -> list[Finding]:
    """The database's schema version and SQLite's integrity and foreign-key checks.

    Args:
        path: JAMGEN_DB_PATH.
    """
    if not path.exists():
        if _writable(path.parent):
            return [Finding("database", Level.OK, f"{path} does not exist yet; the bot creates it at the first start.")]
        return [
            Finding(
                "database",
                Level.FAIL,
                f"{path} does not exist and its folder cannot be written.",
                "Fix the folder's owner, or point JAMGEN_DB_PATH somewhere writable.",
            )
        ]
    try:
        report = await check_database(path)
    except JamgenError as exc:
        return [Finding("database", Level.FAIL, exc.message, "Point JAMGEN_DB_PATH at jamgen's database.")]
    if not report.ok:
        restore = "Restore the last backup (README: Backup and restore); `jamgen db check` lists the problems."
        return [Finding("database", Level.FAIL, f"{path}: {problem}", restore) for problem in report.problems]
    if report.schema < report.latest:
        note = f"schema {report.schema}; the bot migrates it to {report.latest} at start"
    else:
        note = f"schema {report.schema}"
    return [Finding("database", Level.OK, f"{path}: {note}, integrity ok.")]


# ---------------------------------------------------------------------------------------- limits


def check_limits(settings: Settings) -> list[Finding]:
    """Summarise what members may do, and point out limits that contradict each other.

    Args:
        settings: jamgen's settings.
    """
    s = settings
    findings = [
        Finding(
            "limits",
            Level.INFO,
            f"takes up to {s.max_duration} s (default {s.default_duration} s), {s.max_takes} per request; "
            f"{s.daily_budget_seconds} s of audio per member per day; pending jobs: {s.max_pending_per_user} per "
            f"member, {s.max_pending_per_guild} per server, {s.max_queue} in all; attachments up to "
            f"{s.max_attachment_mb:g} MiB and {s.max_input_minutes:g} min; uploads {s.upload_limit_mb:g} MiB "
            "when Discord does not say.",
        ),
        Finding(
            "limits",
            Level.INFO,
            "message-content intent "
            + (
                "on: replies to tracks remix without mentioning jamgen (enable it in the developer portal too)."
                if s.message_content_intent
                else "off: a reply remixes when it mentions jamgen (Discord's default for replies)."
            ),
        ),
    ]
    default = MODELS.get(s.default_model)
    if s.daily_budget_seconds == 0:
        findings.append(
            Finding(
                "limits",
                Level.WARN,
                "JAMGEN_DAILY_BUDGET_SECONDS is 0: members without a role tier or their own budget "
                "cannot make anything.",
                "Raise it, or give roles a budget with /jam settings tier.",
            )
        )
    elif default is not None and s.default_duration * default.cost_weight > s.daily_budget_seconds:
        cost = s.default_duration * default.cost_weight
        findings.append(
            Finding(
                "limits",
                Level.WARN,
                f"One default take ({s.default_duration} s with {default.name}) costs {cost:g} s, more than the daily "
                f"budget of {s.daily_budget_seconds} s.",
                "Raise JAMGEN_DAILY_BUDGET_SECONDS or lower JAMGEN_DEFAULT_DURATION.",
            )
        )
    smallest_kbps = min(MP3_BITRATES_KBPS)
    per_take_bytes = s.upload_limit_mb * 1024 * 1024 / s.max_takes
    if s.max_duration * smallest_kbps * 1000 / 8 > per_take_bytes:
        findings.append(
            Finding(
                "limits",
                Level.WARN,
                f"{s.max_takes} takes of {s.max_duration} s do not fit a {s.upload_limit_mb:g} MiB upload even at "
                f"{smallest_kbps} kbps, so such requests fail after the work is done.",
                "Lower JAMGEN_MAX_DURATION or JAMGEN_MAX_TAKES (Discord's default upload limit is 10 MiB).",
            )
        )
    if s.max_pending_per_user > s.max_pending_per_guild:
        findings.append(
            Finding(
                "limits",
                Level.WARN,
                "JAMGEN_MAX_PENDING_PER_USER is larger than JAMGEN_MAX_PENDING_PER_GUILD; the server cap wins.",
                "Make the per-member cap the smaller one.",
            )
        )
    return findings


# ---------------------------------------------------------------------------------------- quick


async def quick_db(path: Path) -> list[Finding]:
    """The database opens and has a schema (no integrity scan: this runs every minute).

    Args:
        path: JAMGEN_DB_PATH.
    """
    try:
        async with asyncio.timeout(QUICK_DB_TIMEOUT_S):
            db = await connect(path, create=False, wal=False)
            try:
                version = await schema_version(db)
            finally:
                await db.close()
    except TimeoutError:
        return [Finding("database", Level.FAIL, f"{path} did not open within {QUICK_DB_TIMEOUT_S:g} s.")]
    except JamgenError as exc:
        return [Finding("database", Level.FAIL, exc.message)]
    if version == 0 or version > latest_version():
        return [Finding("database", Level.FAIL, f"{path} has schema {version}; this jamgen knows {latest_version()}.")]
    return [Finding("database", Level.OK, f"{path}: schema {version}")]


def quick_heartbeat(data_dir: Path, now: float | None = None) -> list[Finding]:
    """The running bot's last heartbeat is fresh and says the engine worker is alive.

    Args:
        data_dir: JAMGEN_DATA_DIR.
        now: Unix time (default: now).
    """
    path = heartbeat_path(data_dir)
    try:
        beat = read_heartbeat(path)
    except HeartbeatUnreadableError as exc:
        return [Finding("bot", Level.FAIL, str(exc))]
    problems = heartbeat_problems(beat, now=time.time() if now is None else now)
    if problems:
        fix = "Start it with `jamgen run` (Docker: `docker compose up -d`); see its log (`docker compose logs jamgen`)."
        return [Finding("bot", Level.FAIL, problem, fix) for problem in problems]
    assert beat is not None
    models = ", ".join(beat.loaded_models) or "no model loaded"
    if beat.engines:  # a pool: one line per engine (where, device, models, busy or idle, restarts)
        alive = sum(" · DOWN · " not in line for line in beat.engines)
        found = [Finding("bot", Level.OK, f"pid {beat.pid} alive, {alive} of {len(beat.engines)} engines up")]
        return found + [Finding("engine", Level.OK, line) for line in beat.engines]
    return [Finding("bot", Level.OK, f"pid {beat.pid} alive, engine on {beat.device} ({models})")]


# ---------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this subcommand's options.

    Args:
        parser: the subcommand's parser.
    """
    parser.add_argument(
        "--quick",
        action="store_true",
        help="only check that the database opens and the running bot's engine is alive (the Docker HEALTHCHECK)",
    )
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.epilog = "Exit status: 0 = the bot can start (warnings allowed), 1 = a FAIL line says what stops it."


RAY_FIX = "Install it: .venv/bin/pip install -r requirements/ray.txt -c requirements/runtime.txt (docs/SCALING.md)."


def check_engines(settings: Settings, now: float | None = None) -> list[Finding]:
    """How many engines run where (docs/SCALING.md), and every engine of a running bot.

    Never contacts a Ray cluster (joining an unreachable one can hang for minutes).

    Args:
        settings: jamgen's settings.
        now: Unix time (default: now).
    """
    found: list[Finding] = []
    if settings.engine_backend == "ray":
        if importlib.util.find_spec("ray") is None:
            return [Finding("engines", Level.FAIL, "JAMGEN_ENGINE_BACKEND=ray but Ray is not installed.", RAY_FIX)]
        count = settings.engines or "one per cluster GPU"
        found.append(Finding("engines", Level.INFO, f"Ray actors on {settings.ray_address} ({count})"))
    elif settings.engines > 1:
        found.append(Finding("engines", Level.INFO, f"{settings.engines} local engines; child i owns GPU i"))
    try:
        beat = read_heartbeat(heartbeat_path(settings.data_dir))
    except HeartbeatUnreadableError:
        return found
    if beat is not None and not heartbeat_problems(beat, now=time.time() if now is None else now):
        found += [Finding("engines", Level.INFO, f"running: {line}") for line in beat.engines]
    return found


async def full_check(settings: Settings) -> list[Finding]:
    """Every check of `jamgen doctor`, in the order they are printed.

    Args:
        settings: jamgen's settings.
    """
    audio, device = await asyncio.gather(check_audio(), probe_device(settings.device))
    return [
        *check_token(settings.discord_token.get_secret_value(), settings.discord_app_id),
        *audio,
        *device_findings(device, settings),
        *check_models(settings),
        *check_stems_model(settings, offline=hf_offline()),
        *check_folders(settings),
        *await check_db(settings.db_path),
        *check_limits(settings),
        *check_engines(settings),
    ]


async def quick_check(settings: Settings) -> list[Finding]:
    """The health check: database and heartbeat.

    Args:
        settings: jamgen's settings.
    """
    return [*await quick_db(settings.db_path), *quick_heartbeat(settings.data_dir)]


def render(findings: Sequence[Finding]) -> str:
    """The findings as aligned text, each fix under its problem.

    Args:
        findings: what the checks found.
    """
    area_width = max((len(f.area) for f in findings), default=0)
    lines = []
    for f in findings:
        lines.append(f"{f.level.value:<4}  {f.area:<{area_width}}  {f.message}")
        if f.fix:
            lines.append(f"{'':<4}  {'':<{area_width}}  fix: {f.fix}")
    return "\n".join(lines)


def verdict(findings: Sequence[Finding], *, quick: bool) -> tuple[int, str]:
    """The exit status and the closing sentence.

    Args:
        findings: what the checks found.
        quick: the health check was run.
    """
    fails = sum(f.level is Level.FAIL for f in findings)
    warns = sum(f.level is Level.WARN for f in findings)
    if quick:
        return (1, "unhealthy") if fails else (0, "healthy")
    if fails:
        return 1, f"The bot cannot start or cannot make music: fix the {fails} FAIL line(s) above."
    note = f" ({warns} warning(s) above)" if warns else ""
    return 0, f"The bot can start{note}."


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the checks and print what they found.

    Args:
        args: parsed arguments (``quick``, ``json``).
        settings: jamgen's settings.

    Returns:
        0 when the bot can start (``--quick``: is healthy), 1 otherwise.
    """
    findings = asyncio.run(quick_check(settings) if args.quick else full_check(settings))
    status, closing = verdict(findings, quick=args.quick)
    if args.json:
        print(json.dumps({"ok": status == 0, "findings": [asdict(f) for f in findings]}, indent=2))
    else:
        print(render(findings))
        print(closing)
    return status
