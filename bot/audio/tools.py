"""Running ffmpeg and ffprobe: argument lists, a wall clock, capped output, the whole process group killed.

Nothing here goes through a shell. Each run gets its own session (process
group) so that a timeout or a cancellation kills the tool and anything it
started, and the caller's coroutine never waits on a stuck decoder. Tools run
at a slightly lower CPU priority than the bot (``TOOL_NICENESS``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import signal
from collections.abc import Sequence
from dataclasses import dataclass

from bot.audio.errors import AudioToolMissingError

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"

_CHUNK = 1 << 20
_STDERR_KEEP = 64 * 1024
# Tools run a little below the bot's own CPU priority: on a small box an encoder competes with the
# event loop for the same cores, and the loop (Discord's 3 s acknowledgements, scheduling) must win.
TOOL_NICENESS = 5


@dataclass(frozen=True)
class ToolResult:
    """What one finished run of a tool left behind.

    Args:
        returncode: the exit status.
        stdout: everything it wrote to stdout (at most the cap).
        stderr: the last 64 KiB of its stderr, decoded leniently.
        stdout_capped: True when the run was killed because stdout went over the cap.
    """

    returncode: int
    stdout: bytes
    stderr: str
    stdout_capped: bool = False


class ToolTimeoutError(Exception):
    """A tool ran past its wall-clock limit and was killed (an internal signal; callers translate it)."""

    def __init__(self, tool: str, timeout_s: float) -> None:
        super().__init__(f"{tool} ran longer than {timeout_s:g} s and was killed")
        self.tool = tool
        self.timeout_s = timeout_s


@functools.cache
def _nice_path() -> str | None:
    # Looked up once: every ffmpeg and ffprobe run starts through it.
    return shutil.which("nice")


def tool_path(name: str) -> str:
    """The full path of ffmpeg or ffprobe.

    Args:
        name: ``FFMPEG`` or ``FFPROBE``.

    Raises:
        AudioToolMissingError: when it is not on PATH.
    """
    found = shutil.which(name)
    if found is None:
        raise AudioToolMissingError(
            f"{name} is not installed or not on PATH; jamgen needs it for audio "
            "(Debian/Ubuntu: apt-get install --no-install-recommends ffmpeg)."
        )
    return found


def tools_available() -> bool:
    """Whether both ffmpeg and ffprobe can be found (for `jamgen doctor`)."""
    return shutil.which(FFMPEG) is not None and shutil.which(FFPROBE) is not None


def _tool_env() -> dict[str, str]:
    env = dict(os.environ)
    env["AV_LOG_FORCE_NOCOLOR"] = "1"
    return env


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    # start_new_session=True made the child the leader of its own group, so its pid is the group id.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def _feed(proc: asyncio.subprocess.Process, data: bytes | memoryview | None) -> None:
    if proc.stdin is None:
        return
    try:
        if data is not None:
            view = memoryview(data).cast("B")
            for offset in range(0, len(view), _CHUNK):
                proc.stdin.write(view[offset : offset + _CHUNK])
                await proc.stdin.drain()
        proc.stdin.close()
        await proc.stdin.wait_closed()
    except (BrokenPipeError, ConnectionResetError):
        # The tool stopped reading (it failed or finished early); its exit status and stderr say why.
        pass


async def _read_capped(proc: asyncio.subprocess.Process, cap: int | None) -> tuple[bytes, bool]:
    assert proc.stdout is not None
    chunks: list[bytes] = []
    total = 0
    capped = False
    while True:
        chunk = await proc.stdout.read(_CHUNK)
        if not chunk:
            break
        if capped:
            continue  # drain after the kill until EOF
        total += len(chunk)
        if cap is not None and total > cap:
            capped = True
            chunks.clear()
            _kill_group(proc)
            continue
        chunks.append(chunk)
    return b"".join(chunks), capped


async def _read_tail(stream: asyncio.StreamReader | None) -> str:
    if stream is None:
        return ""
    kept = bytearray()
    while True:
        chunk = await stream.read(_CHUNK)
        if not chunk:
            break
        kept += chunk
        if len(kept) > _STDERR_KEEP:
            del kept[: len(kept) - _STDERR_KEEP]
    return kept.decode("utf-8", errors="replace")


async def run_tool(
    argv: Sequence[str],
    *,
    timeout_s: float,
    stdin_data: bytes | memoryview | None = None,
    max_stdout_bytes: int | None = None,
) -> ToolResult:
    """Run one tool to completion under a wall clock.

    Args:
        argv: the program and its arguments (never a shell string).
        timeout_s: seconds before the whole process group is killed.
        stdin_data: bytes written to its stdin (stdin is /dev/null when None).
        max_stdout_bytes: stdout beyond this kills the run; the result then has ``stdout_capped``.

    Raises:
        ToolTimeoutError: when the run took longer than ``timeout_s``.
        AudioToolMissingError: when the program is not installed.
    """
    program = argv[0]
    if os.sep not in program:
        program = tool_path(program)
    nice = _nice_path()
    command = [nice, "-n", str(TOOL_NICENESS), program] if nice else [program]
    proc = await asyncio.create_subprocess_exec(
        *command,
        *argv[1:],
        stdin=asyncio.subprocess.PIPE if stdin_data is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        env=_tool_env(),
    )
    try:
        async with asyncio.timeout(timeout_s):
            _, (stdout, capped), stderr = await asyncio.gather(
                _feed(proc, stdin_data), _read_capped(proc, max_stdout_bytes), _read_tail(proc.stderr)
            )
            returncode = await proc.wait()
    except TimeoutError:
        raise ToolTimeoutError(os.path.basename(argv[0]), timeout_s) from None
    finally:
        # Timeout, cancellation or any error: nothing of the run may outlive this call.
        if proc.returncode is None:
            _kill_group(proc)
            with contextlib.suppress(ProcessLookupError):
                await proc.wait()
    return ToolResult(returncode=returncode, stdout=stdout, stderr=stderr, stdout_capped=capped)


@dataclass(frozen=True)
class ToolsReport:
    """What `jamgen doctor` found about ffmpeg, ffprobe and the MP3 encoder.

    Args:
        ffmpeg_path: where ffmpeg is, or None.
        ffprobe_path: where ffprobe is, or None.
        version: ffmpeg's version (``5.1.6-0+deb12u1``), "" when unknown.
        mp3_encoder: whether ffmpeg lists the libmp3lame encoder.
        problems: ``(problem, fix)`` sentences; empty when audio works.
    """

    ffmpeg_path: str | None
    ffprobe_path: str | None
    version: str
    mp3_encoder: bool
    problems: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        """Audio in and out works."""
        return not self.problems

    @property
    def summary(self) -> str:
        """One line for a healthy report."""
        return f"{FFMPEG} {self.version or '(unknown version)'} with libmp3lame ({self.ffmpeg_path})"


_INSTALL_FIX = f"Debian/Ubuntu: apt-get install --no-install-recommends {FFMPEG} (scripts/install.sh does it as root)."


async def check_tools(timeout_s: float = 10.0) -> ToolsReport:
    """Find ffmpeg and ffprobe and check that ffmpeg can write MP3 (libmp3lame), for `jamgen doctor`.

    Args:
        timeout_s: seconds each ffmpeg run may take.
    """
    ffmpeg, ffprobe = shutil.which(FFMPEG), shutil.which(FFPROBE)
    problems: list[tuple[str, str]] = []
    for name, path in ((FFMPEG, ffmpeg), (FFPROBE, ffprobe)):
        if path is None:
            problems.append(
                (f"{name} is not installed or not on PATH; jamgen reads and writes audio with it.", _INSTALL_FIX)
            )
    if ffmpeg is None:
        return ToolsReport(ffmpeg, ffprobe, "", False, tuple(problems))
    version, mp3 = "", False
    try:
        banner = await run_tool([ffmpeg, "-hide_banner", "-version"], timeout_s=timeout_s, max_stdout_bytes=1 << 20)
        first = banner.stdout.decode("utf-8", "replace").splitlines()[:1]
        # "ffmpeg version 5.1.6-0+deb12u1 Copyright ..." -> "5.1.6-0+deb12u1"
        words = first[0].split() if first else []
        version = words[2] if len(words) > 2 and words[1] == "version" else ""
        encoders = await run_tool([ffmpeg, "-hide_banner", "-encoders"], timeout_s=timeout_s, max_stdout_bytes=4 << 20)
        mp3 = encoders.returncode == 0 and any(
            len(line.split()) > 1 and line.split()[1] == "libmp3lame"
            for line in encoders.stdout.decode("utf-8", "replace").splitlines()
        )
    except (ToolTimeoutError, OSError) as exc:
        problems.append((f"{FFMPEG} at {ffmpeg} does not answer ({exc}).", _INSTALL_FIX))
        return ToolsReport(ffmpeg, ffprobe, version, False, tuple(problems))
    if not mp3:
        problems.append(
            (
                f"{FFMPEG} at {ffmpeg} has no libmp3lame encoder, so jamgen cannot write MP3s.",
                f"Use a build with libmp3lame: Debian's {FFMPEG} package has it "
                f"(apt-get install --no-install-recommends {FFMPEG}); static builds without it do not work.",
            )
        )
    return ToolsReport(ffmpeg, ffprobe, version, mp3, tuple(problems))
