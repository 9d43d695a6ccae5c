"""A pool of engines: N batches at once, each on a free engine that preferably holds its model.

The service stays the only scheduler: it takes a batch from its fair queue only after
:meth:`EnginePool.claim` has promised it an engine, so fairness holds across the pool. A claim
binds to an engine at its first ``generate`` call, when the batch's model is known:

* an engine that already ran that model (loading costs far more than a batch), else
* the engine whose least recently used model is the oldest (an empty engine first).

Members are any :class:`~bot.engine.types.Engine`: local :class:`~bot.engine.client.EngineClient`
children (each restarts its own worker after a crash) or Ray actors (``bot/engine/ray_backend.py``),
which leave the pool when they die and are replaced when capacity returns. An engine that dies
mid-batch answers every request ``EngineError(retriable=True)``, so the service re-queues the jobs
with the attempt counted, exactly as with a single engine. This module imports neither torch nor Ray.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.engine.types import (
    Engine,
    EngineError,
    EngineHealth,
    GenerationCancelledError,
    GenerationRequest,
    GenerationResult,
    ProgressCallback,
)

log = logging.getLogger("jamgen.engine.pool")

Outcome = GenerationResult | EngineError
# Ids cancelled before their batch reached an engine: remembered this many at most.
MAX_PRECANCELLED = 10_000
NO_ENGINE = "No generation engine is reachable right now, so this take could not be made."


@dataclass(eq=False)
class PoolMember:
    """One engine in the pool and what the pool knows about it.

    Args:
        number: 1-based, in order of joining (never reused).
        where: where it runs, for people (``local child 2 (GPU 1)``, ``ray node 10.0.0.7``).
        busy: it holds a claim's batch.
        models: model name → the dispatch tick it last ran (the pool's view of the engine's LRU).
        batches: batches it has run.
    """

    number: int
    engine: Engine
    where: str
    busy: bool = False
    models: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    retired: bool = False


@dataclass(frozen=True)
class MemberHealth:
    """One engine as ``/jam status``, ``jamgen doctor`` and the heartbeat show it.

    Args:
        busy: running a batch.
        batches: batches it has run.
        health: the engine's own health (device, loaded models, restarts).
    """

    number: int
    where: str
    busy: bool
    batches: int
    health: EngineHealth


class EngineClaim:
    """A promise of one engine for one batch; bound to a member at the first ``generate``.

    Release it (or use ``async with``) when the batch is over.
    """

    def __init__(self, pool: EnginePool, *, available: bool = True) -> None:
        self._pool = pool
        self.available = available
        self.member: PoolMember | None = None
        self._released = False

    async def __aenter__(self) -> EngineClaim:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    async def generate(
        self, batch: Sequence[GenerationRequest], on_progress: ProgressCallback | None = None
    ) -> list[Outcome]:
        """Run one generate call on this claim's engine (see :meth:`Engine.generate`)."""
        if not self.available:
            return [EngineError(NO_ENGINE, retriable=False) for _ in batch]
        return await self._pool._generate_on_claim(self, batch, on_progress)

    def release(self) -> None:
        """Give the engine back to the pool."""
        if not self._released:
            self._released = True
            self._pool._release(self)


class EnginePool:
    """N engines, each running at most one batch at a time (see the module docstring).

    Args:
        members: the engines and where each runs.
        claim_timeout_s: how long :meth:`claim` waits for an engine while the pool has none
            (None = forever); then the claim comes back unavailable and its batch fails refunded.
    """

    def __init__(self, members: Sequence[tuple[Engine, str]] = (), *, claim_timeout_s: float | None = None) -> None:
        self.claim_timeout_s = claim_timeout_s
        self.members: list[PoolMember] = []
        self._numbers = itertools.count(1)
        self._ticks = itertools.count(1)
        self._claims = 0
        self._changed = asyncio.Event()
        self._running: dict[str, PoolMember] = {}
        self._precancelled: set[str] = set()
        self._closed = False
        for engine, where in members:
            self.add(engine, where)

    # ------------------------------------------------------------ membership

    def add(self, engine: Engine, where: str) -> PoolMember:
        """A new engine joins and takes batches from now on."""
        member = PoolMember(next(self._numbers), engine, where)
        self.members.append(member)
        log.info("engine %d joined the pool: %s", member.number, where)
        self._changed.set()
        return member

    def retire(self, member: PoolMember, reason: str) -> None:
        """An engine that is gone for good (a lost Ray actor) leaves; its batch was answered retriable."""
        if member.retired:
            return
        member.retired = True
        self.members.remove(member)
        log.warning("engine %d (%s) left the pool: %s", member.number, member.where, reason)
        self._changed.set()

    @property
    def capacity(self) -> int:
        """Batches that can run at once (engines in the pool)."""
        return len(self.members)

    # ------------------------------------------------------------ claims

    async def claim(self) -> EngineClaim:
        """Wait until an engine is free and promise it to the caller's next batch."""
        loop = asyncio.get_running_loop()
        deadline = None if self.claim_timeout_s is None else loop.time() + self.claim_timeout_s
        while self._claims >= len(self.members):
            if self._closed:
                return EngineClaim(self, available=False)
            self._changed.clear()
            if deadline is not None and not self.members:
                # Only an empty pool (cluster unreachable) times out; busy engines are waited for.
                left = deadline - loop.time()
                if left <= 0:
                    log.error("no engine for %.0f s; the next batch fails refunded", self.claim_timeout_s)
                    return EngineClaim(self, available=False)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(left):
                        await self._changed.wait()
            else:
                await self._changed.wait()
        self._claims += 1
        return EngineClaim(self)

    def claim_now(self) -> EngineClaim | None:
        """A claim at once when an engine is free (no wait, no task), else None."""
        if self._claims >= len(self.members) or self._closed:
            return None
        self._claims += 1
        return EngineClaim(self)

    def choose(self, model: str) -> PoolMember | None:
        """The free engine a batch of ``model`` should run on (None when every engine is busy)."""
        free = [m for m in self.members if not m.busy]
        if not free:
            return None
        holding = [m for m in free if model in m.models]
        if holding:
            return max(holding, key=lambda m: m.models[model])
        # Evict the coldest: an empty engine first, then the one whose LRU model is the oldest.
        return min(free, key=lambda m: (min(m.models.values(), default=0), m.number))

    async def _bind(self, claim: EngineClaim, model: str) -> PoolMember:
        while True:
            member = self.choose(model)
            if member is not None:
                member.busy = True
                claim.member = member
                return member
            # The engine promised to this claim left the pool: wait for another one to be free.
            self._changed.clear()
            await self._changed.wait()

    def _release(self, claim: EngineClaim) -> None:
        if claim.available:
            self._claims -= 1
        member = claim.member
        if member is not None:
            member.busy = False
            claim.member = None
        self._changed.set()

    async def _generate_on_claim(
        self, claim: EngineClaim, batch: Sequence[GenerationRequest], on_progress: ProgressCallback | None
    ) -> list[Outcome]:
        if not batch:
            return []
        member = claim.member
        if member is None or member.retired:
            if member is not None:
                member.busy = False
            member = await self._bind(claim, batch[0].model)
        results: list[Outcome | None] = [None] * len(batch)
        live: list[GenerationRequest] = []
        for index, request in enumerate(batch):
            if request.request_id in self._precancelled:
                self._precancelled.discard(request.request_id)
                results[index] = GenerationCancelledError()
            else:
                live.append(request)
        for request in live:
            self._running[request.request_id] = member
        member.models[batch[0].model] = next(self._ticks)
        member.batches += 1
        try:
            outcomes = list(await member.engine.generate(live, on_progress)) if live else []
        finally:
            for request in live:
                self._running.pop(request.request_id, None)
        if any(isinstance(o, EngineError) and o.retriable for o in outcomes):
            # The engine may have restarted (crash, watchdog, memory): it holds no model any more.
            member.models.clear()
        answers = iter(outcomes)
        return [r if r is not None else next(answers) for r in results]

    # ------------------------------------------------------------ the Engine protocol

    async def generate(
        self, batch: Sequence[GenerationRequest], on_progress: ProgressCallback | None = None
    ) -> list[Outcome]:
        """Run one batch on the best free engine (claims and releases one)."""
        async with await self.claim() as claim:
            return await claim.generate(batch, on_progress)

    async def cancel(self, request_id: str) -> None:
        """Cancel a request on the engine that runs it (or before it reaches one)."""
        member = self._running.get(request_id)
        if member is not None:
            await member.engine.cancel(request_id)
            return
        if len(self._precancelled) >= MAX_PRECANCELLED:
            self._precancelled.clear()
        self._precancelled.add(request_id)

    async def members_health(self) -> list[MemberHealth]:
        """Every engine: where it runs, its device and models, busy or idle, restarts."""
        members = list(self.members)
        healths = await asyncio.gather(*(m.engine.health() for m in members), return_exceptions=True)
        out = []
        for member, answer in zip(members, healths, strict=True):
            health = EngineHealth(False, "unreachable", (), 0, None) if isinstance(answer, BaseException) else answer
            out.append(MemberHealth(member.number, member.where, member.busy, member.batches, health))
        return out

    async def describe(self) -> list[str]:
        """One line per engine, for the heartbeat and ``jamgen doctor``."""
        return [describe_member(m) for m in await self.members_health()]

    async def health(self) -> EngineHealth:
        """The pool as one engine: alive when any engine is, models and counters summed over engines."""
        members = await self.members_health()
        alive = [m.health for m in members if m.health.alive]
        models = sorted({name for m in members for name in m.health.loaded_models})
        devices = ", ".join(f"{m.number}: {m.health.device}" for m in members) or "no engine"
        return EngineHealth(
            alive=bool(alive),
            device=devices,
            loaded_models=tuple(models),
            restarts=sum(m.health.restarts for m in members),
            pid=alive[0].pid if alive else None,
            generate_calls=sum(m.health.generate_calls for m in members),
            busy=any(m.busy for m in members),
        )

    async def start(self) -> None:
        """Start every engine that can be started (a local worker imports torch)."""
        await asyncio.gather(*(m.engine.start() for m in self.members if hasattr(m.engine, "start")))

    async def close(self) -> None:
        """Stop every engine; requests in flight come back retriable."""
        self._closed = True
        self._changed.set()
        await asyncio.gather(*(m.engine.close() for m in list(self.members)), return_exceptions=True)


def describe_member(member: MemberHealth) -> str:
    """``engine 2: local child 2 (GPU 1) · cuda:0 (…) · busy · small, medium · 14 batches · 0 restarts``."""
    health = member.health
    state = ("busy" if member.busy else "idle") if health.alive else "DOWN"
    models = ", ".join(health.loaded_models) or "no model loaded"
    return (
        f"engine {member.number}: {member.where} · {health.device} · {state} · {models} · "
        f"{member.batches} batches · {health.restarts} restarts"
    )


def as_pool(engine: Engine) -> EnginePool:
    """``engine`` as a pool: itself when it is one, else a pool of that single engine."""
    if isinstance(engine, EnginePool):
        return engine
    return EnginePool([(engine, "local")])


def local_pool(engines: Sequence[Engine], gpus: bool) -> EnginePool:
    """A pool of local child engines; child ``i`` owns GPU ``i`` when ``gpus``."""
    return EnginePool(
        [(engine, f"local child {i + 1}" + (f" (GPU {i})" if gpus else "")) for i, engine in enumerate(engines)]
    )
