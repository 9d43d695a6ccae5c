"""Ray engines on a real multi-node cluster on this machine (CPU nodes, debug models).

One cluster for the module: a head with no CPUs (so engines land on worker nodes only) and two
nodes of one CPU each, so each node holds exactly one engine. Every decoding step sleeps a little
(the test-only ``slow`` fault with an empty prefix), so batches overlap, can be cancelled and can
lose their node in the middle.
"""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio
import ray  # requirements/ray.txt, installed by `scripts/install.sh --dev`: a missing Ray fails here
from ray.cluster_utils import Cluster

from bot.engine.config import EngineConfig
from bot.engine.protocol import EngineFaults
from bot.engine.ray_backend import RayEnginePool
from bot.engine.types import Mode, SamplingParams
from bot.service import JamRequest, JobState, JobUpdate, Phase
from tests.harness import build_harness

pytestmark = pytest.mark.asyncio(loop_scope="module")

SLOW = EngineFaults(slow_prefix="", slow_step_s=0.02)
CONFIG = EngineConfig(
    device="cpu",
    max_batch=4,
    allow_debug_models=True,
    max_duration=30.0,
    cpu_threads=1,
    log_level="WARNING",
    huge_pages=False,
)


@pytest.fixture(scope="module")
def cluster():
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, namespace="jamgen-test", log_to_driver=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pool(cluster):
    pool = RayEnginePool(CONFIG, address=cluster.address, target=0, claim_timeout_s=120, faults=SLOW, poll_s=0.5)
    await pool.start()
    await until(lambda: pool.capacity == 2)
    yield pool
    await pool.close()


async def until(condition, limit_s: float = 120.0) -> None:
    async with asyncio.timeout(limit_s):
        while not condition():
            await asyncio.sleep(0.05)


def node_of(member) -> str:
    return member.where.split("ray node ")[1].split(" ")[0]


def request(user: int, *, duration: int = 1, temperature: float = 1.0) -> JamRequest:
    return JamRequest(
        user_id=user,
        guild_id=7,
        channel_id=8,
        mode=Mode.TEXT,
        prompt="ray",
        model="debug",
        duration=duration,
        sampling=SamplingParams(temperature=temperature),
    )


def watch(h, job_id: str, log: list[tuple[str, Phase]], fractions: list[float] | None = None) -> None:
    def record(update: JobUpdate) -> None:
        if not log or log[-1] != (job_id, update.phase):
            log.append((job_id, update.phase))
        if fractions is not None and update.phase == Phase.RUNNING and update.fraction is not None:
            fractions.append(update.fraction)

    h.service.subscribe(job_id, record)


async def test_batches_spread_over_nodes_and_cancel_reaches_the_right_actor(tmp_path, pool):
    h = await build_harness(tmp_path, engine=pool, max_duration=30)
    await h.service.start()
    try:
        events: list[tuple[str, Phase]] = []
        short = await h.service.submit(request(1, duration=2))
        long = await h.service.submit(request(2, duration=8, temperature=0.9))  # another batch key
        steps: list[float] = []
        watch(h, short.job_id, events, steps)
        watch(h, long.job_id, events)
        await until(lambda: all(m.busy for m in pool.members))
        assert len({node_of(m) for m in pool.members}) == 2  # one engine per node, both running
        await until(lambda: (long.job_id, Phase.RUNNING) in events)
        await h.service.cancel(long.job_id, 2)
        await h.wait_settled(2, timeout=120)
        assert (await h.store.get_job(long.job_id)).state == JobState.CANCELLED
        assert h.deliverer.delivered_ids() == [short.job_id]  # the other actor's batch was not touched
        assert any(0 < f < 1 for f in steps)  # step progress streamed back from the actor
        # The cancel stopped the long batch on its actor: it ended before the short one was delivered.
        finals = [e for e in events if e[1] in (Phase.CANCELLED, Phase.RENDERING)]
        assert finals[0] == (long.job_id, Phase.CANCELLED), events
    finally:
        await h.service.close()
        await h.store.close()


async def test_a_lost_node_requeues_its_batch_once_and_a_new_node_is_used(tmp_path, cluster, pool):
    h = await build_harness(tmp_path, engine=pool, max_attempts=2, max_duration=30)
    await h.service.start()
    try:
        job = await h.service.submit(request(3, duration=6))
        await until(lambda: any(m.busy for m in pool.members))
        member = next(m for m in pool.members if m.busy)
        doomed = node_of(member)
        await asyncio.sleep(0.5)  # well into the batch (its steps take 0.02 s each)
        node = next(n for n in cluster.worker_nodes if n.node_id.startswith(doomed))
        await asyncio.to_thread(cluster.remove_node, node, False)
        await h.wait_settled(1, timeout=120)
        stored = await h.store.get_job(job.job_id)
        assert stored.state == JobState.DELIVERED
        assert stored.attempts == 2
        assert h.deliverer.delivered_ids() == [job.job_id]
        assert [entry.kind for entry in await h.store.job_ledger(job.job_id)] == ["debit"]
        assert doomed not in {node_of(m) for m in pool.members}

        survivors = {node_of(m) for m in pool.members}
        cluster.add_node(num_cpus=1)  # Ray sets signal handlers: main thread only (blocks the loop briefly)
        await until(lambda: pool.capacity == 2)
        new_member = next(m for m in pool.members if node_of(m) not in survivors)
        jobs = [await h.service.submit(request(10 + i, temperature=0.5 + i / 10)) for i in range(2)]
        await h.wait_settled(3, timeout=120)
        assert sorted(h.deliverer.delivered_ids()[1:]) == sorted(j.job_id for j in jobs)
        assert new_member.batches >= 1
    finally:
        await h.service.close()
        await h.store.close()


async def test_an_unreachable_cluster_fails_batches_refunded_and_the_bot_keeps_serving(tmp_path, monkeypatch):
    def unreachable(self) -> None:
        raise ConnectionError("no cluster at 10.9.9.9:6379")

    monkeypatch.setattr(RayEnginePool, "_init_ray", unreachable)
    lonely = RayEnginePool(CONFIG, address="10.9.9.9:6379", claim_timeout_s=0.5, poll_s=0.2)
    await lonely.start()
    h = await build_harness(tmp_path, engine=lonely)
    await h.service.start()
    try:
        first = await h.service.submit(request(5))
        await h.wait_settled(1, timeout=30)
        failed = await h.store.get_job(first.job_id)
        assert failed.state == JobState.FAILED
        assert "No generation engine is reachable" in (failed.error or "")
        assert sum(entry.amount for entry in await h.store.job_ledger(first.job_id)) == 0  # refunded
        second = await h.service.submit(request(6))  # still serving
        assert second.job_id
        status = await h.service.status()
        assert status.engines == []
        assert not status.engine.alive
        assert lonely.last_error is not None
    finally:
        await h.service.close()
        await h.store.close()
        await lonely.close()
