"""A fake engine for service tests: controllable timing, counted calls, injectable faults.

Only the GPU is faked; the store (SQLite), audio (ffmpeg) and the service are real.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bot.engine.registry import get_model_spec
from bot.engine.types import (
    EngineError,
    EngineHealth,
    GenerationCancelled,
    GenerationRequest,
    GenerationResult,
    Progress,
    ProgressCallback,
)


@dataclass
class FakeEngine:
    """Makes a quiet sine per request; each generate call can be held open by the test.

    Args:
        hold: when set, every generate call waits for ``release`` before finishing.
        steps: decoding steps a call reports (progress goes 0..steps).
        step_delay: seconds between progress reports.
    """

    hold: bool = False
    steps: int = 10
    step_delay: float = 0.0
    calls: list[list[GenerationRequest]] = field(default_factory=list)
    fail_next: list[EngineError] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: set[str] = field(default_factory=set)

    async def generate(
        self, batch: Sequence[GenerationRequest], on_progress: ProgressCallback | None = None
    ) -> list[GenerationResult | EngineError]:
        self.calls.append(list(batch))
        self.started.set()
        for step in range(1, self.steps + 1):
            if all(r.request_id in self.cancelled for r in batch):
                break
            if on_progress is not None:
                for request in batch:
                    result = on_progress(Progress(request.request_id, step, self.steps))
                    if asyncio.iscoroutine(result):
                        await result
            await asyncio.sleep(self.step_delay)
        if self.hold:
            await self.release.wait()
        self.started.clear()
        if self.fail_next:
            error = self.fail_next.pop(0)
            return [error for _ in batch]
        out: list[GenerationResult | EngineError] = []
        for request in batch:
            if request.request_id in self.cancelled:
                out.append(GenerationCancelled())
                continue
            spec = get_model_spec(request.model)
            n = int(request.duration * spec.sample_rate)
            t = np.arange(n, dtype=np.float32) / spec.sample_rate
            wave = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
            audio = np.stack([wave] * spec.channels)
            seed = request.seed if request.seed is not None else 1234
            out.append(GenerationResult(request.request_id, audio, spec.sample_rate, seed, 0.5, self.steps, len(batch)))
        return out

    async def cancel(self, request_id: str) -> None:
        self.cancelled.add(request_id)

    async def health(self) -> EngineHealth:
        return EngineHealth(alive=True, device="fake", loaded_models=(), restarts=0, pid=None)

    async def close(self) -> None:
        self.release.set()
