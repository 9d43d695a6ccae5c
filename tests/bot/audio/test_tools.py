"""The process runner: a wall clock that kills the whole process group, and a cap on output."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from bot.audio import AudioLimits, AudioToolMissingError, probe, tools_available
from bot.audio.tools import ToolTimeoutError, run_tool


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0]
    except FileNotFoundError:
        return True
    return state in "ZX"  # a zombie waiting for a reaper has ended too


async def test_a_timeout_kills_the_tool_and_its_children(tmp_path):
    pid_file = tmp_path / "child.pid"
    script = (
        "import subprocess, time\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    with pytest.raises(ToolTimeoutError, match="longer than 1 s"):
        await run_tool([sys.executable, "-c", script], timeout_s=1.0)
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(child)


async def test_output_over_the_cap_stops_the_tool():
    argv = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine", "-f", "f32le", "pipe:1"]  # endless
    result = await run_tool(argv, timeout_s=20, max_stdout_bytes=1_000_000)
    assert result.stdout_capped
    assert result.stdout == b""
    assert result.returncode != 0


async def test_stdin_and_exit_status_come_through():
    result = await run_tool(
        [sys.executable, "-c", "import sys; d = sys.stdin.buffer.read(); print(len(d)); sys.exit(3)"],
        timeout_s=20,
        stdin_data=b"x" * 3_000_000,
    )
    assert result.returncode == 3
    assert result.stdout.strip() == b"3000000"


async def test_a_missing_ffmpeg_is_a_config_error_that_says_how_to_install_it(monkeypatch, tmp_path, corpus):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AudioToolMissingError, match="ffprobe is not installed") as caught:
        await probe(corpus.valid["wav"], AudioLimits())
    assert caught.value.exit_code == 2
    assert not tools_available()
