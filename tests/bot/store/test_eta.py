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


async def test_measurements_saved_together_fold_as_if_saved_one_by_one(db_path, clock, tmp_path):
    samples = [("small", 1, 0.10), ("small", 4, 0.40), ("small", 1, 0.30), ("medium", 1, 0.20), ("small", 1, 0.20)]
    async with JobStore.open(db_path, clock=clock) as together:
        saved = await together.record_step_times(samples)
    async with JobStore.open(tmp_path / "alone.db", clock=clock) as alone:
        one_by_one = {}
        for model, batch, seconds in samples:
            one_by_one[(model, batch)] = await alone.record_step_time(model, batch, seconds)
    assert saved == pytest.approx(one_by_one)
    assert set(saved) == {("small", 1), ("small", 4), ("medium", 1)}
