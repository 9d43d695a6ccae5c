"""Progress fan-out: members' subscriptions to their jobs, throttled for Discord."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.service.requests import JobUpdate, Phase

log = logging.getLogger("jamgen.service.progress")

UpdateCallback = Callable[[JobUpdate], Awaitable[None] | None]


@dataclass
class _Subscription:
    callback: UpdateCallback
    last_sent: float = float("-inf")
    last_phase: Phase | None = None
    last_position: int | None = None


class ProgressHub:
    """Sends each job's updates to its subscribers, at most once per interval.

    Phase changes (queued → running → done …) always go out at once; queue
    positions and percentages are throttled to one per ``interval`` seconds.

    Args:
        interval: seconds between two throttled updates of one subscription.
        clock: monotonic clock (tests pass a fake).
    """

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._subs: dict[str, list[_Subscription]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, job_id: str, callback: UpdateCallback) -> Callable[[], None]:
        """Call ``callback`` with the job's updates; returns a function that unsubscribes.

        Args:
            job_id: the job to watch.
            callback: sync or async function taking a :class:`JobUpdate`.
        """
        sub = _Subscription(callback)
        self._subs.setdefault(job_id, []).append(sub)

        def unsubscribe() -> None:
            subs = self._subs.get(job_id, [])
            if sub in subs:
                subs.remove(sub)
            if not subs:
                self._subs.pop(job_id, None)

        return unsubscribe

    def watched(self) -> list[str]:
        """Jobs with at least one subscriber."""
        return list(self._subs)

    def publish(self, update: JobUpdate) -> None:
        """Offer an update; subscribers get it now or when the throttle allows the next one."""
        now = self._clock()
        final = update.phase in (Phase.DONE, Phase.FAILED, Phase.CANCELLED)
        for sub in list(self._subs.get(update.job_id, [])):
            changed_phase = update.phase != sub.last_phase
            if not changed_phase and now - sub.last_sent < self.interval:
                continue
            if not changed_phase and update.phase == Phase.QUEUED and update.position == sub.last_position:
                continue
            sub.last_sent, sub.last_phase, sub.last_position = now, update.phase, update.position
            self._dispatch(sub.callback, update)
        if final:
            self._subs.pop(update.job_id, None)

    def _dispatch(self, callback: UpdateCallback, update: JobUpdate) -> None:
        try:
            result = callback(update)
        except Exception:
            log.exception("progress callback failed for job %s", update.job_id)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(self._guard(result, update.job_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guard(awaitable: Awaitable[None], job_id: str) -> None:
        try:
            await awaitable
        except Exception:
            log.exception("progress callback failed for job %s", job_id)

    async def drain(self) -> None:
        """Wait for callbacks in flight (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
