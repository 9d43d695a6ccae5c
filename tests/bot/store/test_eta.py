import pytest

from bot.store import JobStore


async def test_step_times_are_a_persisted_moving_average(db_path, clock):
    async with JobStore.open(db_path, clock=clock) as store:
        assert await store.step_time("small", 1) is None
        assert await store.record_step_time("small", 1, 0.10) == pytest.approx(0.10)
        assert await store.record_step_time("small", 1, 0.20, weight=0.5) == pytest.approx(0.15)
        assert await store.record_step_time("small", 4, 0.50) == pytest.approx(0.50)
        assert await store.record_step_time("small", 1, 0.15) == pytest.approx(0.15)
    async with JobStore.open(db_path, clock=clock) as store:
        assert await store.step_time("small", 1) == pytest.approx(0.15)
        assert await store.step_time("small", 4) == pytest.approx(0.50)
        assert await store.step_time("medium", 1) is None


@pytest.mark.parametrize(("batch", "seconds", "weight"), [(0, 0.1, 0.2), (1, -0.1, 0.2), (1, 0.1, 0.0), (1, 0.1, 1.5)])
async def test_nonsense_measurements_are_refused(store, batch, seconds, weight):
    with pytest.raises(ValueError):
        await store.record_step_time("small", batch, seconds, weight=weight)
    assert await store.step_time("small", max(batch, 1)) is None
