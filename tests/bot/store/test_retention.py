import asyncio

from bot.store import JobState, run_retention, sweep_outputs

from .conftest import new_job


async def _rendered_job(store, tmp_path, name, *, deliver=True):
    job = await store.mark_running((await store.submit_job(new_job(), cost=0)).id)
    paths = []
    for take in range(2):
        path = tmp_path / "outputs" / f"{name}-{take}.mp3"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"audio")
        paths.append(str(path))
    job = await store.mark_rendered(job.id, paths)
    if deliver:
        job = await store.mark_delivered(job.id, [1])
    return job


async def test_old_outputs_are_listed_deleted_and_forgotten(store, clock, tmp_path):
    old = await _rendered_job(store, tmp_path, "old")
    stuck = await _rendered_job(store, tmp_path, "stuck", deliver=False)
    clock.advance(days=5)
    recent = await _rendered_job(store, tmp_path, "recent")
    clock.advance(days=3)
    assert await store.outputs_older_than(7) == [(old.id, old.outputs)]
    assert await sweep_outputs(store, 7) == 1
    cleared = await store.get_job(old.id)
    assert cleared.outputs == []
    assert cleared.outputs_cleared_at == clock.now
    assert cleared.state is JobState.DELIVERED
    assert cleared.prompt == "lofi piano"
    assert not any((tmp_path / "outputs" / f"old-{t}.mp3").exists() for t in range(2))
    assert all((tmp_path / "outputs" / f"{n}-{t}.mp3").exists() for n in ("stuck", "recent") for t in range(2))
    assert (await store.get_job(stuck.id)).outputs == stuck.outputs  # delivery may still be retried
    assert (await store.get_job(recent.id)).outputs == recent.outputs
    assert await store.outputs_older_than(7) == []


async def test_a_job_whose_files_cannot_be_deleted_keeps_its_paths(store, clock, tmp_path):
    job = await _rendered_job(store, tmp_path, "locked")
    clock.advance(days=10)

    async def refuse(paths):
        raise PermissionError("read-only disk")

    assert await sweep_outputs(store, 7, remove=refuse) == 0
    assert (await store.get_job(job.id)).outputs == job.outputs
    (tmp_path / "outputs" / "locked-0.mp3").unlink()  # already gone is fine for the default remover
    assert await sweep_outputs(store, 7) == 1


async def test_the_periodic_task_sweeps_until_cancelled(store, clock, tmp_path):
    job = await _rendered_job(store, tmp_path, "periodic")
    clock.advance(days=8)
    task = asyncio.create_task(run_retention(store, 7, interval=0.01))
    try:
        for _ in range(500):
            if (await store.get_job(job.id)).outputs == []:
                break
            await asyncio.sleep(0.01)
        assert (await store.get_job(job.id)).outputs == []
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
