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
DISCORD_BOOTSTRAP = {"bot/client.py"}


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


def test_torch_and_audiocraft_only_in_the_engine():
    offenders = [_rel(p) for p in _python_files("bot") + _python_files("cogs") if _imported_roots(p) & TORCH_LIKE]
    assert [o for o in offenders if not o.startswith("bot/engine/")] == []


def test_discord_only_in_cogs_and_the_client():
    offenders = [_rel(p) for p in _python_files("bot") if _imported_roots(p) & DISCORD]
    assert [o for o in offenders if o not in DISCORD_BOOTSTRAP] == []


def test_sql_drivers_only_in_the_store():
    offenders = [_rel(p) for p in _python_files("bot") + _python_files("cogs") if _imported_roots(p) & SQL]
    assert [o for o in offenders if not o.startswith("bot/store/")] == []


def test_ffmpeg_only_in_audio():
    offenders = [
        _rel(p)
        for p in _python_files("bot") + _python_files("cogs")
        if (_imported_roots(p) & FFMPEG) or ({"ffmpeg", "ffprobe"} & _string_constants(p))
    ]
    assert [o for o in offenders if not o.startswith("bot/audio/")] == []


def test_cogs_reach_the_core_only_through_the_service():
    forbidden = ("bot.store", "bot.engine.worker", "bot.audio")
    offenders = []
    for path in _python_files("cogs"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            offenders += [f"{_rel(path)}: {n}" for n in names if n.startswith(forbidden)]
    assert offenders == []


def test_core_imports_without_torch_or_discord():
    modules = []
    for path in _python_files("bot"):
        rel = _rel(path)
        if rel.startswith(WORKER_SIDE) or rel in DISCORD_BOOTSTRAP or path.name == "__main__.py":
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
