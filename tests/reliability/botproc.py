"""The production bot (`jamgen run`) in its own process, pointed at a FakeDiscord: for kill -9 tests.

Usage (the test starts it; settings come from the environment, as in production)::

    python -m tests.reliability.botproc http://127.0.0.1:PORT/api/v10 ws://127.0.0.1:PORT/gateway

Only two things differ from ``jamgen run``, both test-only and both set up here, never in ``bot/``:

- discord.py's REST base and gateway URL point at the fake (as ``tests/fakediscord/runner.py`` does
  in-process);
- ``JAMGEN_TEST_SLOW_STEP_S`` (read by this script only) makes the engine worker sleep that long at
  every decoding step (``EngineFaults.slow_prefix=""``), so a test can catch jobs queued and running.

:class:`BotProcess` starts, kills (SIGKILL) and stops (SIGTERM) it from an asyncio test while the
fake keeps serving in the test's own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakediscord import FakeDiscord

REPO = Path(__file__).resolve().parents[2]
SLOW_STEP_ENV = "JAMGEN_TEST_SLOW_STEP_S"


def main(argv: Sequence[str]) -> int:
    """Patch discord.py's URLs (and the engine's faults), then run ``jamgen run``.

    Args:
        argv: the REST base URL and the gateway URL of the fake.
    """
    api_base, gateway_url = argv
    import discord.gateway
    import discord.http
    import yarl

    discord.http.Route.BASE = api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
    slow_step_s = float(os.environ.get(SLOW_STEP_ENV) or 0)
    if slow_step_s:
        from bot.config import Settings
        from bot.engine.client import EngineClient
        from bot.engine.config import EngineConfig
        from bot.engine.protocol import EngineFaults

        def slow_engine(settings: Settings, *, warmup: bool | None = None) -> EngineClient:
            faults = EngineFaults(slow_prefix="", slow_step_s=slow_step_s)
            return EngineClient(EngineConfig.from_settings(settings, warmup=warmup), faults=faults)

        EngineClient.from_settings = slow_engine  # type: ignore[method-assign,assignment]

    from bot.cli import main as jamgen

    if os.environ.get("JAMGEN_LOG_LEVEL") == "DEBUG":
        import logging

        # At DEBUG, numba dumps every function librosa compiles at start-up (megabytes, seconds); it
        # has no secrets to look for, so keep it quiet here to save test time (see docs/RELIABILITY.md).
        logging.getLogger("numba").setLevel(logging.INFO)
    return jamgen(["--env-file", os.devnull, "run"])


def child_pids(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its closing parenthesis.
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(stat.parent.name))
    return children


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class BotProcess:
    """One run of :func:`main` in a child process, its output in a log file.

    Args:
        fake: the fake Discord the bot connects to (serving in this process's event loop).
        env: environment of the child (settings and the token).
        log_path: where its stdout and stderr go.
    """

    def __init__(self, fake: FakeDiscord, env: Mapping[str, str], log_path: Path) -> None:
        self.fake = fake
        self.env = dict(env)
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None
        self.started_s = 0.0

    async def start(self, ready_timeout: float = 90.0) -> None:
        """Start the child and wait until it has identified on the fake's gateway and answers /help."""
        identifies = self.fake.gateway.identify_count
        began = time.monotonic()
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.reliability.botproc",
                self.fake.api_base,
                self.fake.gateway_url,
                cwd=REPO,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = began + ready_timeout
        while self.fake.gateway.identify_count <= identifies:
            if self.process.returncode is not None:
                raise RuntimeError(f"the bot process exited ({self.process.returncode}):\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the bot process did not connect in {ready_timeout:.0f} s:\n{self.log_tail()}")
            await asyncio.sleep(0.05)
        # The gateway is up once setup (recovery, command sync) is done; /help proves commands are answered.
        probe = await self.fake.slash("help", {})
        await probe.wait_for_response(timeout=max(5.0, deadline - time.monotonic()))
        self.started_s = time.monotonic() - began

    @property
    def pid(self) -> int:
        """The child's process id."""
        assert self.process is not None
        return self.process.pid

    async def kill(self) -> list[int]:
        """SIGKILL the bot alone (not its process group). Returns the pids of its children (the engine
        worker, multiprocessing's resource tracker), which must notice and exit by themselves."""
        assert self.process is not None
        children = child_pids(self.process.pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)
        await self.process.wait()
        return children

    async def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (a graceful stop, as `docker stop` does) and wait; returns the exit status."""
        assert self.process is not None
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                await self.kill()
        assert self.process.returncode is not None
        return self.process.returncode

    def log_tail(self, lines: int = 40) -> str:
        """The end of the child's log, for failure messages."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def __repr__(self) -> str:
        pid: Any = self.process.pid if self.process else None
        return f"BotProcess(pid={pid}, log={self.log_path})"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
