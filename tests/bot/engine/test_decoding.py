"""The decode options are plain data, checked when made."""

import pytest

from bot.engine.decoding import AUTOCAST_CHOICES, CPU_MATMUL_CHOICES, DecodeOptions


def test_the_defaults_are_jamgens_loop_with_graphs_audiocrafts_precision_and_onednn_on_the_cpu():
    options = DecodeOptions()
    assert options.fast
    assert options.cuda_graphs
    assert options.autocast == "auto"
    assert options.graph_bucket >= 1
    assert options.cpu_matmul == "onednn"


@pytest.mark.parametrize("choice", AUTOCAST_CHOICES)
def test_every_autocast_choice_is_accepted(choice):
    assert DecodeOptions(autocast=choice).autocast == choice


@pytest.mark.parametrize("choice", CPU_MATMUL_CHOICES)
def test_every_cpu_matmul_choice_is_accepted(choice):
    assert DecodeOptions(cpu_matmul=choice).cpu_matmul == choice


@pytest.mark.parametrize(("field", "value"), [("autocast", "fp8"), ("graph_bucket", 0), ("cpu_matmul", "blas")])
def test_nonsense_is_refused(field, value):
    with pytest.raises(ValueError, match=field):
        DecodeOptions(**{field: value})
