"""The kernels a decoding step computes with: its precision, and whose matrix products on the CPU."""

import pytest
import torch

from bot.engine.registry import get_model_spec
from bot.engine.worker import kernels
from bot.engine.worker.models import build_debug_model


@pytest.mark.parametrize(
    ("device", "requested", "bf16", "expected"),
    [
        ("cuda", "auto", True, torch.float16),  # audiocraft's choice, the checkpoints' dtype
        ("cpu", "auto", False, None),
        ("cuda", "bfloat16", True, torch.bfloat16),
        ("cuda", "float32", True, None),
        ("cpu", "bfloat16", False, torch.bfloat16),
        ("cuda", "float16", False, torch.float16),
    ],
)
def test_autocast_dtype_choice(device, requested, bf16, expected):
    assert kernels.select_autocast_dtype(device, requested, bf16) == expected


@pytest.mark.parametrize(
    ("device", "requested", "bf16"),
    [("cuda", "bfloat16", False), ("cpu", "float16", False), ("cuda", "float64", True)],
)
def test_autocast_dtype_refuses_what_the_device_cannot_do(device, requested, bf16):
    with pytest.raises(ValueError):
        kernels.select_autocast_dtype(device, requested, bf16)


def test_onednn_is_left_out_where_it_would_change_the_arithmetic():
    """Under autocast (oneDNN's op would compute in float32), or when asked for audiocraft's kernels: F.linear."""
    lm = build_debug_model(get_model_spec("debug"), torch.device("cpu")).lm
    assert kernels.step_linear(lm, "onednn") is kernels._onednn_linear
    assert kernels.step_linear(lm, "mkl") is torch.nn.functional.linear
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert kernels.step_linear(lm, "onednn") is torch.nn.functional.linear
