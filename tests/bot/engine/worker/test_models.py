"""Model weights on transparent huge pages (bot/engine/worker/models.py: place_on_huge_pages, ModelCache)."""

import gc
import re
from pathlib import Path

import pytest
import torch

from bot.config import Settings
from bot.engine.config import EngineConfig
from bot.engine.registry import get_model_spec
from bot.engine.worker import models
from bot.engine.worker.generate import extend_stride
from bot.engine.worker.models import HUGE_PAGE_BYTES, build_debug_model, place_on_huge_pages
from bot.engine.worker.runtime import ModelCache

needs_thp = pytest.mark.skipif(
    not Path("/sys/kernel/mm/transparent_hugepage/enabled").exists(), reason="the kernel has no transparent huge pages"
)


def advised_onto_huge_pages(tensor: torch.Tensor) -> bool:
    """Whether the mapping that holds ``tensor`` is advised MADV_HUGEPAGE (VmFlags "hg" in /proc/self/smaps)."""
    address, inside = tensor.data_ptr(), False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        span = re.match(r"([0-9a-f]+)-([0-9a-f]+) ", line)
        if span:
            inside = int(span[1], 16) <= address < int(span[2], 16)
        elif inside and line.startswith("VmFlags:"):
            return "hg" in line.split()
    raise AssertionError("no mapping holds the tensor")


def mapped(address: int) -> bool:
    """Whether ``address`` lies in any mapping of this process."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        low, high = (int(part, 16) for part in line.split()[0].split("-"))
        if low <= address < high:
            return True
    return False


def greedy_tokens(model) -> torch.Tensor:
    torch.manual_seed(0)
    model.set_generation_params(use_sampling=False, duration=0.5, cfg_coef=3.0, extend_stride=extend_stride(model))
    with torch.no_grad():
        _, tokens = model.generate(["warm piano", "fast drums"], return_tokens=True)
    return tokens


@needs_thp
def test_large_weights_move_onto_huge_pages_with_their_values() -> None:
    torch.manual_seed(1)
    module = torch.nn.Sequential(torch.nn.Linear(1024, 2048), torch.nn.Linear(16, 16))
    big, small = module[0].weight, module[1].weight
    before_big, before_small, small_address = big.detach().clone(), small.detach().clone(), small.data_ptr()
    # (No check that ``big`` starts off huge pages: the allocator may hand it memory an earlier test advised.)

    moved = place_on_huge_pages(module)

    assert moved == 1024 * 2048 * 4  # the 8 MiB weight; its 8 KiB bias and the small layer stay
    assert advised_onto_huge_pages(big)
    assert big.data_ptr() % HUGE_PAGE_BYTES == 0
    assert torch.equal(big, before_big)
    assert small.data_ptr() == small_address
    assert torch.equal(small, before_small)
    assert isinstance(module[0].weight, torch.nn.Parameter)


@needs_thp
def test_a_weight_in_another_layout_stays_as_it_is() -> None:
    module = torch.nn.Linear(1024, 2048, bias=False)
    module.weight = torch.nn.Parameter(torch.randn(1024, 2048).t())  # a transposed view
    address = module.weight.data_ptr()

    assert place_on_huge_pages(module) == 0

    assert module.weight.data_ptr() == address
    assert not module.weight.is_contiguous()


@needs_thp
def test_the_mapping_goes_with_the_weight() -> None:
    module = torch.nn.Linear(1024, 1024, bias=False)
    place_on_huge_pages(module)
    address = module.weight.data_ptr()
    assert mapped(address)

    del module
    gc.collect()

    assert not mapped(address)


@needs_thp
def test_weights_on_huge_pages_make_the_same_tokens() -> None:
    model = build_debug_model(get_model_spec("debug"), torch.device("cpu"))
    expected = greedy_tokens(model)

    # The debug model's weights are all small: move every one of them.
    assert place_on_huge_pages(model.lm, min_bytes=1) > 0

    assert all(advised_onto_huge_pages(p) for p in model.lm.parameters() if p.numel())
    assert torch.equal(greedy_tokens(model), expected)


@needs_thp
@pytest.mark.parametrize("huge_pages", [True, False])
def test_the_model_cache_places_lm_weights_when_configured(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, huge_pages: bool
) -> None:
    placed: list[torch.nn.Module] = []

    def place_every_weight(module: torch.nn.Module) -> int:
        placed.append(module)
        return place_on_huge_pages(module, min_bytes=1)  # the debug model's weights are all small

    monkeypatch.setattr(models, "place_on_huge_pages", place_every_weight)
    cache = ModelCache(torch.device("cpu"), budget_gb=1.0, model_dir=tmp_path, huge_pages=huge_pages)

    model = cache.get("debug")

    # (Not "the weight is outside any huge-page mapping" when off: numpy advises its own large
    # buffers onto huge pages, so memory torch allocates later can sit in an advised range.)
    assert placed == ([model.lm] if huge_pages else [])
    if huge_pages:
        assert advised_onto_huge_pages(model.lm.transformer.layers[0].linear1.weight)


@pytest.mark.parametrize(("value", "expected"), [(None, True), ("false", False)])
def test_the_setting_reaches_the_engine(value: str | None, expected: bool) -> None:
    env = {} if value is None else {"JAMGEN_HUGE_PAGES": value}
    assert EngineConfig.from_settings(Settings.from_env(env, dotenv=None)).huge_pages is expected


@pytest.mark.parametrize(("value", "expected"), [(None, "onednn"), ("mkl", "mkl")])
def test_the_cpu_matmul_setting_reaches_the_engine(value: str | None, expected: str) -> None:
    env = {} if value is None else {"JAMGEN_CPU_MATMUL": value}
    assert EngineConfig.from_settings(Settings.from_env(env, dotenv=None)).cpu_matmul == expected
