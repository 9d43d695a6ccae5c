"""A heartbeat file that tells other processes the bot and its engine are alive.

The running bot rewrites ``<JAMGEN_DATA_DIR>/heartbeat.json`` every ``interval``
seconds with what its engine probe answered. ``jamgen doctor --quick`` (the
Docker HEALTHCHECK, a separate process in the same container) reads it: a file
that is missing, stale or says the engine is down means the bot is not healthy.
A stale file also catches an event loop that stopped turning, which no probe
from inside the bot could report.

Start it from the bot as a task and cancel it at shutdown::

    task = asyncio.create_task(run_heartbeat(heartbeat_path(settings.data_dir), engine.health))
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from bot import __version__
from bot.engine.types import EngineHealth

log = logging.getLogger("jamgen.heartbeat")

HEARTBEAT_FILE = "heartbeat.json"
DEFAULT_INTERVAL_S = 30.0
# A beat may be this many intervals old (plus the slack) before the bot counts as stuck.
STALE_AFTER_INTERVALS = 3
STALE_SLACK_S = 10.0

EngineProbe = Callable[[], Awaitable[EngineHealth]]
# One line per engine of a pool (``bot.engine.pool.EnginePool.describe``); None for a single engine.
EnginesProbe = Callable[[], Awaitable[list[str]]]


@dataclass(frozen=True)
class Heartbeat:
    """One beat, as written to the file.

    Args:
        pid: the bot's process id.
        written_at: Unix time of the beat.
        interval_s: seconds until the next beat is due.
        engine_alive: the engine's worker answered the probe.
        device: where the engine runs (``cpu``, ``cuda:0 (…)``), or ``unknown``.
        loaded_models: models in memory.
        restarts: engine worker restarts so far.
        detail: why the probe failed, when it did.
        version: jamgen's version.
        engines: one line per engine of a pool (where, device, models, busy or idle, restarts).
    """

    pid: int
    written_at: float
    interval_s: float
    engine_alive: bool
    device: str
    loaded_models: tuple[str, ...] = ()
    restarts: int = 0
    detail: str = ""
    version: str = __version__
    engines: tuple[str, ...] = ()

    def age_s(self, now: float) -> float:
        """Seconds since the beat was written.

        Args:
            now: Unix time.
        """
        return now - self.written_at

    def max_age_s(self) -> float:
        """How old the beat may get before the bot counts as stuck."""
        return STALE_AFTER_INTERVALS * self.interval_s + STALE_SLACK_S


def heartbeat_path(data_dir: Path) -> Path:
    """Where the bot writes its heartbeat.

    Args:
        data_dir: ``JAMGEN_DATA_DIR``.
    """
    return Path(data_dir) / HEARTBEAT_FILE


def _write(path: Path, beat: Heartbeat) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(asdict(beat), sort_keys=True))
    # A reader sees the old beat or the new one, never half a file.
    os.replace(partial, path)


async def write_heartbeat(path: Path, beat: Heartbeat) -> None:
    """Write one beat atomically (in a thread: the event loop never waits on the disk).

    Args:
        path: the heartbeat file.
        beat: what to write.
    """
    await asyncio.to_thread(_write, path, beat)


class HeartbeatUnreadableError(Exception):
    """The heartbeat file exists but is not a heartbeat (a partial copy, another program's file)."""


def read_heartbeat(path: Path) -> Heartbeat | None:
    """Read the last beat.

    Args:
        path: the heartbeat file.

    Returns:
        the beat, or None when there is no file (the bot never ran, or not with this data folder).

    Raises:
        HeartbeatUnreadableError: the file is not a heartbeat.
    """
    try:
        raw = json.loads(Path(path).read_text())
        return Heartbeat(
            pid=int(raw["pid"]),
            written_at=float(raw["written_at"]),
            interval_s=float(raw["interval_s"]),
            engine_alive=bool(raw["engine_alive"]),
            device=str(raw["device"]),
            loaded_models=tuple(str(m) for m in raw.get("loaded_models", ())),
            restarts=int(raw.get("restarts", 0)),
            detail=str(raw.get("detail", "")),
            version=str(raw.get("version", "")),
            engines=tuple(str(line) for line in raw.get("engines", ())),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HeartbeatUnreadableError(f"{path} is not a jamgen heartbeat ({type(exc).__name__}: {exc})") from exc


def heartbeat_problems(beat: Heartbeat | None, *, now: float) -> list[str]:
    """What is wrong with the bot according to its last beat (empty when it is healthy).

    Args:
        beat: the last beat (None when there is no file).
        now: Unix time.
    """
    if beat is None:
        return ["the bot has written no heartbeat: it is not running (or still starting) with this data folder"]
    problems = []
    age = beat.age_s(now)
    if age > beat.max_age_s():
        problems.append(
            f"the last heartbeat is {age:.0f} s old (a beat is due every {beat.interval_s:g} s): "
            f"the bot (pid {beat.pid}) has stopped or its event loop is stuck"
        )
    if not beat.engine_alive:
        why = f": {beat.detail}" if beat.detail else ""
        problems.append(f"the engine worker is not alive{why}")
    return problems


async def beat_once(
    probe: EngineProbe,
    *,
    interval_s: float,
    clock: Callable[[], float] = time.time,
    engines: EnginesProbe | None = None,
) -> Heartbeat:
    """Ask the engine how it is and make a beat of the answer.

    A probe that fails or takes longer than the interval gives a beat that says the engine is down.

    Args:
        probe: the engine's ``health`` method (or any coroutine function returning an EngineHealth).
        interval_s: seconds until the next beat.
        clock: Unix time.
        engines: one line per engine of a pool (None for a single engine).
    """
    try:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that arrives as
        # the probe finishes, and the heartbeat loop would then outlive its shutdown.
        async with asyncio.timeout(interval_s):
            health = await probe()
            lines = tuple(await engines()) if engines is not None else ()
    except Exception as exc:  # the heartbeat must report a broken probe, not die of it
        detail = "the health probe timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
        return Heartbeat(os.getpid(), clock(), interval_s, False, "unknown", detail=detail[:300])
    return Heartbeat(
        pid=os.getpid(),
        written_at=clock(),
        interval_s=interval_s,
        engine_alive=health.alive,
        device=health.device,
        loaded_models=tuple(health.loaded_models),
        restarts=health.restarts,
        detail="" if health.alive else "the worker does not answer (it restarts on the next job)",
        engines=lines,
    )


async def run_heartbeat(
    path: Path,
    probe: EngineProbe,
    interval: float = DEFAULT_INTERVAL_S,
    *,
    clock: Callable[[], float] = time.time,
    engines: EnginesProbe | None = None,
) -> None:
    """Write a beat now and then every ``interval`` seconds until cancelled.

    A beat that cannot be written (disk full, folder gone) is logged and tried again next time.

    Args:
        path: the heartbeat file (``heartbeat_path(settings.data_dir)``).
        probe: the engine's ``health`` method.
        interval: seconds between beats.
        clock: Unix time (tests pass their own).
        engines: one line per engine of a pool (None for a single engine).
    """
    while True:
        beat = await beat_once(probe, interval_s=interval, clock=clock, engines=engines)
        try:
            await write_heartbeat(path, beat)
        except OSError as exc:
            log.warning("could not write the heartbeat %s: %s", path, exc)
        await asyncio.sleep(interval)


def remove_heartbeat(path: Path) -> None:
    """Delete the heartbeat file (a clean shutdown may call this; a missing file is fine).

    Args:
        path: the heartbeat file.
    """
    with contextlib.suppress(FileNotFoundError):
        Path(path).unlink()
