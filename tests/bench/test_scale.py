"""bench/scale.py's simulation: the real scheduler and store feeding simulated engines, small and fast."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "scale.py"


def load_scale():
    spec = importlib.util.spec_from_file_location("bench_scale", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_scale"] = module
    spec.loader.exec_module(module)
    return module


async def test_the_simulation_runs_every_job_once_and_reports_each_goal():
    scale = load_scale()
    figures, record = await scale.simulate(jobs=120, members=30, newcomers=5, engines=6, time_scale=400.0)
    ran = [job_id for _, _, _, jobs in record.runs for job_id in jobs]
    assert len(ran) == len(set(ran)) == 120  # every accepted job ran, none twice
    assert not record.first_round  # every backlog member's first job started
    assert {number for number, _, _, _ in record.runs} == set(range(6))  # every engine was used
    for number in range(6):  # an engine runs one batch at a time
        mine = sorted((start, end) for n, start, end, _ in record.runs if n == number)
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(mine))
    assert figures["sim_batches"] == len(record.runs)
    assert 0 < figures["sim_utilisation"] <= 1
    assert 0 <= figures["sim_dispatch_ms_p50"] <= figures["sim_dispatch_ms_p99"]
    assert figures["sim_newcomer_first_wait_max_batches"] >= figures["sim_newcomer_first_wait_p50_batches"] >= 0
