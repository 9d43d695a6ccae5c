"""The worker's generate call, in process: what it hands the decode loop."""

import dataclasses
import multiprocessing

import numpy as np
import pytest
import torch

from bot.engine.config import EngineConfig
from bot.engine.registry import get_model_spec
from bot.engine.types import GenerationRequest, Mode, SamplingParams
from bot.engine.worker import generate
from bot.engine.worker.models import build_debug_model
from bot.engine.worker.server import Worker


@pytest.mark.parametrize("kernels", ["onednn", "mkl"])
def test_the_generate_call_decodes_with_the_configured_cpu_kernels(monkeypatch, kernels):
    options = []
    run_call = generate.run_call

    def recorded(model, rows, seed, on_step, given=None):
        options.append(given)
        return run_call(model, rows, seed, on_step, given)

    monkeypatch.setattr(generate, "run_call", recorded)
    ours, theirs = multiprocessing.Pipe()
    config = dataclasses.replace(EngineConfig(device="cpu"), cpu_matmul=kernels)
    worker = Worker(ours, config, faults=None)
    model = build_debug_model(get_model_spec("debug"), torch.device("cpu"))
    rows = [GenerationRequest("job", 0, "debug", Mode.TEXT, "lofi", 0.5, SamplingParams(), seed=1)]

    worker._generate(1, model, rows, answered=set())

    assert [o.cpu_matmul for o in options] == [kernels]
    sent = []
    while theirs.poll():
        sent.append(theirs.recv())
    made = [m for m in sent if hasattr(m, "audio")]
    assert len(made) == 1
    assert np.isfinite(made[0].audio).all()
