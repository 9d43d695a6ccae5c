"""ETA statistics: a moving average of seconds per generation step, per model and batch size."""

from __future__ import annotations

from collections.abc import Sequence

import aiosqlite

from bot.store.base import StoreBase
from bot.store.rows import first, ts

ETA_WEIGHT = 0.2


class EtaMixin(StoreBase):
    """ETA statistics methods of :class:`~bot.store.JobStore`."""

    async def record_step_time(
        self, model: str, batch_size: int, seconds_per_step: float, *, weight: float = ETA_WEIGHT
    ) -> float:
        """Fold one measurement into the moving average of seconds per generation step.

        Args:
            model: registry model name.
            batch_size: requests in the batch.
            seconds_per_step: the measured time per step.
            weight: how much the new measurement counts (0-1).

        Returns:
            the new average.
        """
        averages = await self.record_step_times([(model, batch_size, seconds_per_step)], weight=weight)
        return averages[(model, batch_size)]

    async def record_step_times(
        self, samples: Sequence[tuple[str, int, float]], *, weight: float = ETA_WEIGHT
    ) -> dict[tuple[str, int], float]:
        """Fold measurements (model, batch size, seconds per step), in order, in one transaction.

        Returns:
            the new average of each (model, batch size) measured.
        """
        if not 0 < weight <= 1 or any(batch < 1 or not seconds >= 0 for _, batch, seconds in samples):
            raise ValueError("batch_size must be >= 1, seconds_per_step >= 0 and weight in (0, 1]")
        now = ts(self.now())
        async with self._tx() as db:
            await db.executemany(
                "INSERT INTO eta_stats (model, batch_size, seconds_per_step, samples, updated_at) "
                "VALUES (?, ?, ?, 1, ?) ON CONFLICT (model, batch_size) DO UPDATE SET "
                "seconds_per_step = eta_stats.seconds_per_step * (1 - ?) + excluded.seconds_per_step * ?, "
                "samples = eta_stats.samples + 1, updated_at = excluded.updated_at",
                [(model, batch, float(seconds), now, weight, weight) for model, batch, seconds in samples],
            )
            rows = await db.execute_fetchall("SELECT model, batch_size, seconds_per_step FROM eta_stats")
        measured = {(model, batch) for model, batch, _ in samples}
        return {(row[0], int(row[1])): float(row[2]) for row in rows if (row[0], int(row[1])) in measured}

    async def step_time(self, model: str, batch_size: int) -> float | None:
        """The average seconds per step for a model and batch size, or None before any measurement.

        Args:
            model: registry model name.
            batch_size: requests in the batch.
        """
        async with self._tx(write=False) as db:
            return await _step_time(db, model, batch_size)


async def _step_time(db: aiosqlite.Connection, model: str, batch_size: int) -> float | None:
    rows = await db.execute_fetchall(
        "SELECT seconds_per_step FROM eta_stats WHERE model = ? AND batch_size = ?", (model, batch_size)
    )
    row = first(rows)
    return None if row is None else float(row[0])
