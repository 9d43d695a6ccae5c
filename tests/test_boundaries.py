"""One concern, one room: who may import torch, discord, SQL drivers and ffmpeg."""

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TORCH_LIKE = {"torch", "torchaudio", "audiocraft", "demucs", "transformers", "xformers"}
DISCORD = {"discord"}
SQL = {"aiosqlite", "sqlite3"}
FFMPEG = {"ffmpeg"}

# Modules that the bot's main process must be able to import without torch or discord.
WORKER_SIDE = "bot/engine/worker"
# The Discord room inside bot/: may import discord and the service. bot/client.py is a transitional
# re-export of bot.discord (drop it from here when the file goes).
DISCORD_ROOM = ("bot/discord/", "bot/client.py")
# The core: imports neither discord nor the Discord room.
CORE = ("bot/service/", "bot/store/", "bot/audio/", "bot/engine/")


def _python_files(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if ".venv" not in p.parts)


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def _string_constants(path: Path) -> set[str]:
    return {
        node.value
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _imported_modules(path: Path) -> list[str]:
    """Every module an import statement names, ``from a import b`` as both ``a`` and ``a.b`` (absolute
    imports only; jamgen uses no relative ones)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return names


def _in_discord_room(rel: str) -> bool:
    return rel.startswith(DISCORD_ROOM)


def test_torch_and_audiocraft_only_in_the_engine():
    offenders = [_rel(p) for p in _python_files("bot") + _python_files("cogs") if _imported_roots(p) & TORCH_LIKE]
    assert [o for o in offenders if not o.startswith("bot/engine/")] == []


def test_discord_only_in_cogs_and_the_discord_room():
    offenders = [_rel(p) for p in _python_files("bot") if _imported_roots(p) & DISCORD]
    assert [o for o in offenders if not _in_discord_room(o)] == []
    assert any(o.startswith("bot/discord/") for o in offenders), "the Discord room moved: update DISCORD_ROOM"


def test_the_core_does_not_import_the_discord_room_or_the_cogs():
    offenders = [
        f"{_rel(path)}: {name}"
        for folder in CORE
        for path in _python_files(folder)
        for name in _imported_modules(path)
        if name == "bot.discord" or name.startswith(("bot.discord.", "bot.client", "cogs"))
    ]
    assert offenders == []


def test_sql_drivers_only_in_the_store():
    offenders = [_rel(p) for p in _python_files("bot") + _python_files("cogs") if _imported_roots(p) & SQL]
    assert [o for o in offenders if not o.startswith("bot/store/")] == []


def test_the_core_writes_no_discord_mentions():
    """User and channel mentions are Discord markup: the Discord room formats them (f-string parts count)."""
    offenders = [
        _rel(p)
        for folder in CORE
        for p in _python_files(folder)
        if any("<@" in text or "<#" in text for text in _string_constants(p))
    ]
    assert offenders == []


def test_ffmpeg_only_in_audio():
    offenders = [
        _rel(p)
        for p in _python_files("bot") + _python_files("cogs")
        if (_imported_roots(p) & FFMPEG) or ({"ffmpeg", "ffprobe"} & _string_constants(p))
    ]
    assert [o for o in offenders if not o.startswith("bot/audio/")] == []


def test_cogs_and_the_discord_room_reach_the_core_only_through_the_service():
    forbidden = ("bot.store", "bot.engine.worker", "bot.audio")
    paths = _python_files("cogs") + [p for p in _python_files("bot") if _in_discord_room(_rel(p))]
    offenders = [f"{_rel(path)}: {n}" for path in paths for n in _imported_modules(path) if n.startswith(forbidden)]
    assert offenders == []


def test_the_discord_room_does_not_import_the_cogs():
    paths = [p for p in _python_files("bot") if _in_discord_room(_rel(p))]
    offenders = [f"{_rel(path)}: {n}" for path in paths for n in _imported_modules(path) if n.split(".")[0] == "cogs"]
    assert offenders == []


def test_core_imports_without_torch_or_discord():
    modules = []
    for path in _python_files("bot"):
        rel = _rel(path)
        if rel.startswith(WORKER_SIDE) or _in_discord_room(rel) or path.name == "__main__.py":
            continue
        modules.append(rel[:-3].replace("/", ".").removesuffix(".__init__"))
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(json.dumps(sorted(set(sys.modules) & set({sorted(TORCH_LIKE | DISCORD)!r}))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert json.loads(out.stdout) == []
    assert len(modules) >= 5


def test_the_discord_room_and_the_cogs_import_without_torch():
    modules = [
        _rel(p)[:-3].replace("/", ".").removesuffix(".__init__")
        for p in _python_files("bot") + _python_files("cogs")
        if _in_discord_room(_rel(p)) or _rel(p).startswith("cogs/")
    ]
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(json.dumps(sorted(set(sys.modules) & set({sorted(TORCH_LIKE)!r}))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert json.loads(out.stdout) == []
    assert "bot.discord.bot" in modules


def test_sessions_import_without_the_jam_service():
    """Sessions are built from the store, config, paths and model policy, not from JamService: no cycle."""
    code = "import json, sys\nimport bot.service.sessions\nprint(json.dumps('bot.service.jam' in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert json.loads(out.stdout) is False
