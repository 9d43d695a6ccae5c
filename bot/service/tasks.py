"""What the parts of the service share: their background tasks and the one log line per job state."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

from bot.store import Job

log = logging.getLogger("jamgen.service")


class Background:
    """Tasks the service starts and does not wait for at once (renders, deliveries, notices, measurements)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` as a task kept until it ends."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def finish(self, grace: float) -> None:
        """Let the tasks end within ``grace`` seconds, then cancel what is left."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
        for task in list(self._tasks):
            task.cancel()


def log_state(job: Job, state: str, **details: Any) -> None:
    """One line per state a job reaches, with the seconds since it was submitted."""
    elapsed = (time.time() - job.created_at.timestamp()) if job.created_at else 0.0
    extra = " ".join(f"{k}={v}" for k, v in details.items())
    log.info("job %s %s after %.2f s %s", job.id, state, elapsed, extra)
