"""Engines as Ray actors: the same worker code on any node of a Ray cluster (``JAMGEN_ENGINE_BACKEND=ray``).

Each actor (:class:`EngineHost`) runs one :class:`~bot.engine.client.EngineClient` on its node, so
the worker process, model loading, the LRU, the watchdog, cancel and health are exactly those of a
local engine. The bot side (:class:`RayEngine`) streams a batch's step progress and results back
(an async generator method with ``num_returns="streaming"``), so progress reaches the member's
message as from a local child.

:class:`RayEnginePool` keeps the pool filled: every ``poll_s`` it connects (when not yet connected),
drops actors that stopped answering and starts one actor per free GPU (per free CPU on a cluster
without GPUs) up to ``target`` engines (0 = as many as the cluster holds). A node that joins is
used without restarting the bot; an actor or node that is lost answers its batch
``EngineError(retriable=True)`` (the service re-queues the jobs, attempt counted) and is replaced
when capacity returns. While no engine is reachable at all, a batch waits ``claim_timeout_s`` and then
fails refunded (see docs/SCALING.md). Ray is imported only here, and only when this backend is chosen.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import socket
from collections.abc import AsyncIterator, Sequence
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayError

from bot.engine.client import EngineClient
from bot.engine.config import EngineConfig
from bot.engine.pool import EngineClaim, EnginePool, PoolMember
from bot.engine.protocol import EngineFaults
from bot.engine.types import (
    EngineError,
    EngineHealth,
    GenerationRequest,
    GenerationResult,
    Progress,
    ProgressCallback,
)

log = logging.getLogger("jamgen.engine.ray")

NAMESPACE = "jamgen"
HEALTH_TIMEOUT_S = 5.0
POLL_S = 2.0

Outcome = GenerationResult | EngineError


class EngineHost:
    """Lives inside a Ray actor: one local engine (a worker process) on that node."""

    def __init__(self, config: EngineConfig, faults: EngineFaults | None = None) -> None:
        self._client = EngineClient(config, faults=faults)

    async def start(self) -> dict[str, str]:
        """Start the worker; say where it runs."""
        await self._client.start()
        context = ray.get_runtime_context()
        gpus = ",".join(str(g) for g in ray.get_gpu_ids())
        return {"node_id": context.get_node_id(), "host": socket.gethostname(), "gpus": gpus}

    async def generate(self, batch: list[GenerationRequest]) -> AsyncIterator[Progress | list[Outcome]]:
        """Yield each step's :class:`Progress`, then the list of outcomes."""
        updates: asyncio.Queue[Progress] = asyncio.Queue()
        task = asyncio.ensure_future(self._client.generate(batch, updates.put_nowait))
        try:
            while not task.done():
                getter = asyncio.ensure_future(updates.get())
                await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield getter.result()
                else:
                    getter.cancel()
            while not updates.empty():
                yield updates.get_nowait()
            yield task.result()
        finally:
            if not task.done():  # the bot stopped listening: stop the batch too
                task.cancel()

    async def cancel(self, request_id: str) -> None:
        """Cancel one request of the running batch."""
        await self._client.cancel(request_id)

    async def health(self) -> EngineHealth:
        """The worker's health."""
        return await self._client.health()

    async def close(self) -> None:
        """Stop the worker."""
        await self._client.close()


@functools.cache
def _remote_host() -> Any:
    """The actor class (made once: Ray exports it to the cluster on first use)."""
    return ray.remote(EngineHost)


class RayEngine:
    """The bot's handle on one :class:`EngineHost` actor (implements :class:`~bot.engine.types.Engine`).

    Args:
        actor: the actor handle.
        where: where it runs, for people.
    """

    def __init__(self, actor: Any, where: str) -> None:
        self.actor = actor
        self.where = where
        self.lost: str | None = None

    async def generate(
        self, batch: Sequence[GenerationRequest], on_progress: ProgressCallback | None = None
    ) -> list[Outcome]:
        """Run the batch on the actor; a lost actor or node answers every request retriable."""
        results: list[Outcome] | None = None
        try:
            stream = self.actor.generate.options(num_returns="streaming").remote(list(batch))
            async for ref in stream:
                item = await ref
                if isinstance(item, Progress):
                    if on_progress is not None:
                        answer = on_progress(item)
                        if inspect.isawaitable(answer):
                            await answer
                else:
                    results = item
        except RayError as exc:
            self.lost = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            log.error("engine on %s was lost mid-batch (%s)", self.where, self.lost)
        except asyncio.CancelledError:
            for request in batch:  # stop the batch on the actor too, as a local engine does
                with contextlib.suppress(RayError):
                    self.actor.cancel.remote(request.request_id)
            raise
        if results is None:
            message = f"The engine on {self.where} was lost; the take goes back to the queue."
            return [EngineError(message, retriable=True) for _ in batch]
        return results

    async def cancel(self, request_id: str) -> None:
        """Cancel one request on the actor that runs it."""
        with contextlib.suppress(RayError):
            await self.actor.cancel.remote(request_id)

    async def health(self) -> EngineHealth:
        """The actor's worker health (not alive when the actor does not answer)."""
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_S):
                return await self.actor.health.remote()
        except (RayError, TimeoutError) as exc:
            if isinstance(exc, RayError):
                self.lost = type(exc).__name__
            return EngineHealth(False, self.where, (), 0, None)

    async def close(self) -> None:
        """Stop the worker and the actor."""
        with contextlib.suppress(RayError, TimeoutError):
            async with asyncio.timeout(HEALTH_TIMEOUT_S * 2):
                await self.actor.close.remote()
        with contextlib.suppress(RayError, ValueError):
            ray.kill(self.actor)


class RayEnginePool(EnginePool):
    """A pool whose engines are Ray actors, kept filled from the cluster's free GPUs (or CPUs).

    Args:
        config: the engine configuration every actor's worker uses.
        address: the cluster (``host:port`` of the head, or ``auto``).
        target: engines wanted (0 = one per GPU of the cluster, one per CPU when it has none).
        claim_timeout_s: how long a batch waits while no engine is reachable before it fails refunded.
        faults: test-only fault injection for every worker.
        poll_s: seconds between looks at the cluster.
    """

    def __init__(
        self,
        config: EngineConfig,
        *,
        address: str = "auto",
        target: int = 0,
        claim_timeout_s: float | None = 120.0,
        faults: EngineFaults | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        super().__init__(claim_timeout_s=claim_timeout_s)
        self.config = config
        self.address = address
        self.target = target
        self.poll_s = poll_s
        self._faults = faults
        self._keeper: asyncio.Task[None] | None = None
        self._starting = 0
        self._looked = asyncio.Event()
        self.connected = False
        self.last_error: str | None = None

    async def start(self) -> None:
        """Start keeping the pool filled; return after the first look at the cluster.

        Joining an unreachable cluster can hang for minutes inside Ray: that happens in a thread,
        and ``start`` returns after ``start_timeout_s`` anyway (the bot serves; batches wait, then fail refunded).
        """
        if self._keeper is None:
            self._keeper = asyncio.create_task(self._keep_filled(), name="jamgen-ray-pool")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.config.start_timeout_s):
                await self._looked.wait()

    async def fill(self) -> None:
        """One look at the cluster: connect, drop lost engines, start engines where there is room."""
        if not await self._connect():
            return
        for member in list(self.members):
            engine = member.engine
            if isinstance(engine, RayEngine) and not member.busy and engine.lost is None:
                await engine.health()  # marks a lost actor
            if isinstance(engine, RayEngine) and engine.lost is not None and not member.busy:
                self.retire(member, engine.lost)
                with contextlib.suppress(RayError, ValueError):
                    ray.kill(engine.actor)
        try:
            total, free = await asyncio.to_thread(lambda: (ray.cluster_resources(), ray.available_resources()))
        except RayError as exc:
            self.last_error = str(exc)
            return
        gpus = total.get("GPU", 0) > 0
        unit = "GPU" if gpus else "CPU"
        wanted = self.target or int(total.get(unit, 0))
        room = int(free.get(unit, 0))
        missing = min(wanted - len(self.members) - self._starting, room)
        if missing > 0:
            await asyncio.gather(*(self._start_engine(gpus) for _ in range(missing)))

    async def _connect(self) -> bool:
        if self.connected:
            return True
        try:
            await asyncio.to_thread(self._init_ray)
        except Exception as exc:  # ConnectionError, RuntimeError, …: the cluster is out of reach
            if self.last_error != str(exc):
                log.error("cannot reach the Ray cluster at %s: %s", self.address, exc)
            self.last_error = str(exc)
            return False
        self.connected = True
        self.last_error = None
        log.info("joined the Ray cluster at %s: %s", self.address, ray.cluster_resources())
        return True

    def _init_ray(self) -> None:
        if not ray.is_initialized():
            ray.init(address=self.address, namespace=NAMESPACE, log_to_driver=False)

    async def _start_engine(self, gpus: bool) -> PoolMember | None:
        self._starting += 1
        host = _remote_host().options(
            num_gpus=1 if gpus else 0,
            num_cpus=0 if gpus else 1,
            max_restarts=0,
            max_concurrency=64,
        )
        actor = host.remote(self.config, self._faults)
        try:
            async with asyncio.timeout(self.config.start_timeout_s):
                place = await actor.start.remote()
        except (RayError, TimeoutError, GetTimeoutError, EngineError) as exc:
            log.warning("an engine actor did not start: %s", exc)
            with contextlib.suppress(RayError, ValueError):
                ray.kill(actor)
            return None
        finally:
            self._starting -= 1
        where = f"ray node {place['node_id'][:8]} on {place['host']}" + (f" (GPU {place['gpus']})" if gpus else "")
        engine = RayEngine(actor, where)
        member = self.add(engine, where)
        engine.where = f"engine {member.number}, {where}"
        return member

    def _release(self, claim: EngineClaim) -> None:
        member = claim.member
        super()._release(claim)
        if member is not None and isinstance(member.engine, RayEngine) and member.engine.lost is not None:
            # Lost mid-batch: it leaves now, so the next batch cannot be sent to it.
            self.retire(member, member.engine.lost)
            with contextlib.suppress(RayError, ValueError):
                ray.kill(member.engine.actor)

    async def _keep_filled(self) -> None:
        while True:
            try:
                await self.fill()
            except Exception:
                log.exception("looking at the Ray cluster failed")
            self._looked.set()
            await asyncio.sleep(self.poll_s)

    async def close(self) -> None:
        """Stop looking at the cluster and stop every actor (the cluster itself stays up)."""
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None
        await super().close()
