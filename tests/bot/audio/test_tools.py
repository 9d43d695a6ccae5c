"""The process runner: a wall clock that kills the whole process group, and a cap on output."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from bot.audio import AudioLimits, AudioToolMissingError, probe, tools_available
from bot.audio.tools import TOOL_NICENESS, ToolTimeoutError, check_tools, run_tool


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


async def test_tools_run_below_the_bots_own_cpu_priority():
    # An encoder must never win the CPU from the event loop on a small box.
    script = "import os; print(os.getpriority(os.PRIO_PROCESS, 0))"
    result = await run_tool([sys.executable, "-c", script], timeout_s=20)
    assert int(result.stdout) == os.getpriority(os.PRIO_PROCESS, 0) + TOOL_NICENESS
    assert TOOL_NICENESS > 0


async def test_a_missing_ffmpeg_is_a_config_error_that_says_how_to_install_it(monkeypatch, tmp_path, corpus):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AudioToolMissingError, match="ffprobe is not installed") as caught:
        await probe(corpus.valid["wav"], AudioLimits())
    assert caught.value.exit_code == 2
    assert not tools_available()


async def test_check_tools_finds_the_real_ffmpeg_and_its_mp3_encoder():
    report = await check_tools()
    assert report.ok, report.problems
    assert report.mp3_encoder
    assert report.version[:1].isdigit()
    assert "libmp3lame" in report.summary


async def test_check_tools_without_ffmpeg_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    report = await check_tools()
    assert not report.ok
    assert [problem.split()[0] for problem, _ in report.problems] == ["ffmpeg", "ffprobe"]
    assert all("apt-get install" in fix for _, fix in report.problems)


async def test_check_tools_refuses_an_ffmpeg_without_libmp3lame(monkeypatch, tmp_path):
    stub = (
        "#!/bin/sh\n"
        'case "$2" in\n'
        "  -version) echo 'ffmpeg version 9.9-stub Copyright (c) the stub' ;;\n"
        "  -encoders) echo ' A....D libtwolame  libtwolame MP2'; echo ' A....D aac  AAC' ;;\n"
        "esac\n"
    )
    for name in ("ffmpeg", "ffprobe"):
        (tmp_path / name).write_text(stub)
        (tmp_path / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    report = await check_tools()
    assert report.version == "9.9-stub"
    assert not report.mp3_encoder
    (problem, fix), *_ = report.problems
    assert "no libmp3lame encoder" in problem
    assert "Debian" in fix
