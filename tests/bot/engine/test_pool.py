"""The engine pool's choices and bookkeeping with fake engines (no worker, no Ray)."""

from __future__ import annotations

import ast
import asyncio
import json
import multiprocessing
import multiprocessing.queues
import os
import subprocess
import sys
from pathlib import Path

from bot.config import Settings
from bot.engine.backends import engine_from_settings
from bot.engine.client import EngineClient, _start_process
from bot.engine.pool import EnginePool
from bot.engine.types import EngineError, GenerationCancelledError, GenerationRequest, Mode
from tests.harness import FakeEngine

ROOT = Path(__file__).resolve().parents[3]


def requests(model: str, *names: str) -> list[GenerationRequest]:
    """Take 0 of job ``name`` (or the take a ``job:take`` name says) for each name."""
    made = []
    for name in names:
        job_id, _, take = name.rpartition(":") if ":" in name else (name, "", "0")
        made.append(
            GenerationRequest(job_id=job_id, take=int(take), model=model, mode=Mode.TEXT, prompt="x", duration=0.1)
        )
    return made


def pool_of(count: int) -> tuple[EnginePool, list[FakeEngine]]:
    engines = [FakeEngine(steps=1) for _ in range(count)]
    return EnginePool([(engine, f"fake {i}") for i, engine in enumerate(engines)]), engines


def ran_on(engines: list[FakeEngine], name: str) -> int:
    return next(i for i, e in enumerate(engines) if any(name in (r.job_id, r.request_id) for c in e.calls for r in c))


async def test_a_batch_goes_to_the_engine_that_holds_its_model_else_to_the_coldest():
    pool, engines = pool_of(2)
    # One at a time: a pool that always took the first free engine, or went round-robin, places these otherwise.
    for request_id, model in [
        ("a", "debug"),
        ("b", "debug"),
        ("c", "debug-stereo"),
        ("d", "debug"),
        ("e", "debug-stereo"),
    ]:
        await pool.generate(requests(model, request_id))
    assert [ran_on(engines, i) for i in "abcde"] == [0, 0, 1, 0, 1]
    # A third model evicts from the engine whose most recent model is the older one (engine 1: debug-stereo
    # ran last, so engine 0's debug is the least recently used).
    await pool.generate(requests("debug-melody", "f"))
    assert ran_on(engines, "f") == 0


async def test_claims_never_outnumber_engines_and_busy_engines_are_skipped():
    pool, engines = pool_of(2)
    engines[0].hold = engines[1].hold = True
    first = await pool.claim()
    second = pool.claim_now()  # an engine is free: promised at once
    assert second is not None
    assert pool.claim_now() is None  # none left to promise at once
    third = asyncio.ensure_future(pool.claim())
    running = asyncio.ensure_future(first.generate(requests("debug", "x")))
    await asyncio.sleep(0.05)
    assert not third.done()  # both engines are promised
    other = asyncio.ensure_future(second.generate(requests("debug", "y")))
    await asyncio.sleep(0.05)
    # The engine holding the model is busy: the second batch of the same model takes the other one.
    assert {ran_on(engines, "x"), ran_on(engines, "y")} == {0, 1}
    for engine in engines:
        engine.release.set()
    await asyncio.gather(running, other)
    first.release()
    claim = await asyncio.wait_for(third, 1)
    assert claim.available
    claim.release()
    second.release()


async def test_cancel_reaches_the_engine_running_the_request_or_waits_for_it():
    pool, engines = pool_of(2)
    engines[0].hold = engines[1].hold = True
    claim_a, claim_b = await pool.claim(), await pool.claim()
    run_a = asyncio.ensure_future(claim_a.generate(requests("debug", "a:0")))
    run_b = asyncio.ensure_future(claim_b.generate(requests("debug-stereo", "b:0")))
    await asyncio.sleep(0.05)
    await pool.cancel("b:0")
    holder = ran_on(engines, "b:0")
    assert engines[holder].cancelled == {"b:0"}
    assert engines[1 - holder].cancelled == set()
    await pool.cancel("later:0")  # not dispatched yet: answered cancelled when it arrives, never sent
    for engine in engines:
        engine.release.set()
    assert not isinstance((await run_a)[0], EngineError)
    assert isinstance((await run_b)[0], GenerationCancelledError)
    claim_a.release()
    late = await pool.generate(requests("debug", "later:0", "later:1"))
    assert isinstance(late[0], GenerationCancelledError)
    assert not isinstance(late[1], EngineError)
    claim_b.release()


async def test_an_empty_pool_gives_up_after_its_wait_and_a_joining_engine_is_used():
    pool = EnginePool(claim_timeout_s=0.05)
    claim = await pool.claim()
    assert not claim.available
    [answer] = await claim.generate(requests("debug", "z"))
    assert isinstance(answer, EngineError)
    assert not answer.retriable
    waiting = asyncio.ensure_future(EnginePool(claim_timeout_s=None).claim())
    pool2 = EnginePool(claim_timeout_s=5)
    later = asyncio.ensure_future(pool2.claim())
    await asyncio.sleep(0.02)
    pool2.add(FakeEngine(steps=1), "joined")
    assert (await asyncio.wait_for(later, 1)).available
    waiting.cancel()


async def test_pool_health_lists_every_engine():
    pool, _ = pool_of(3)
    members = await pool.members_health()
    assert [m.where for m in members] == ["fake 0", "fake 1", "fake 2"]
    assert [m.number for m in members] == [1, 2, 3]


def test_defaults_build_one_engine_client_and_several_engines_a_pool():
    assert isinstance(engine_from_settings(Settings.from_env({})), EngineClient)
    pool = engine_from_settings(Settings.from_env({"JAMGEN_ENGINES": "2", "JAMGEN_DEVICE": "cuda"}))
    assert isinstance(pool, EnginePool)
    assert [m.engine.config.visible_devices for m in pool.members] == ["0", "1"]  # type: ignore[attr-defined]
    cpu_pool = engine_from_settings(Settings.from_env({"JAMGEN_ENGINES": "2", "JAMGEN_DEVICE": "cpu"}))
    assert [m.engine.config.visible_devices for m in cpu_pool.members] == [None, None]  # type: ignore[attr-defined]


def test_run_and_generate_do_not_import_ray_without_ray_settings():
    code = (
        "import json, sys\n"
        "from bot.config import Settings\n"
        "import bot.cli.run, bot.cli.generate, bot.service.runtime, bot.discord\n"
        "from bot.engine.backends import engine_from_settings\n"
        "engine_from_settings(Settings.from_env({'JAMGEN_ENGINES': '2'}))\n"
        "print(json.dumps('ray' in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) is False


def test_only_the_ray_backend_imports_ray():
    importers = []
    for path in sorted((ROOT / "bot").rglob("*.py")) + sorted((ROOT / "cogs").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            if any(name.split(".")[0] == "ray" for name in names):
                importers.append(path.relative_to(ROOT).as_posix())
    assert sorted(set(importers)) == ["bot/engine/ray_backend.py"]


def _report_visible_devices(answers: multiprocessing.queues.Queue) -> None:
    answers.put(os.environ.get("CUDA_VISIBLE_DEVICES"))


def test_a_local_child_sees_only_its_own_gpu():
    context = multiprocessing.get_context("spawn")
    answers = context.Queue()
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    child = context.Process(target=_report_visible_devices, args=(answers,))
    _start_process(child, "1")
    assert answers.get(timeout=60) == "1"
    child.join(10)
    assert os.environ.get("CUDA_VISIBLE_DEVICES") == before  # the bot's own environment is untouched
