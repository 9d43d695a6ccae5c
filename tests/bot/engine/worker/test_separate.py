"""Loading separators in the worker (bot/engine/worker/separate.py), without a download."""

import demucs.pretrained
import pytest
import torch
from demucs.apply import BagOfModels
from demucs.htdemucs import HTDemucs

from bot.engine.registry import get_model_spec
from bot.engine.types import ModelUnavailableError
from bot.engine.worker.htdemucs import HTDEMUCS_KWARGS, htdemucs_kwargs
from bot.engine.worker.separate import count_segments, load_real_separator, normalise

CPU = torch.device("cpu")


@pytest.fixture
def caches(tmp_path, monkeypatch):
    for key in ("HF_HUB_CACHE", "AUDIOCRAFT_CACHE_DIR", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


@pytest.fixture
def demucs_loads(monkeypatch):
    """demucs' get_model, recorded, returning a small bag instead of downloading."""
    calls = []

    def get_model(name, repo=None):
        calls.append((name, repo))
        return HTDemucs(sources=["drums", "bass", "other", "vocals"], channels=4, depth=2, t_layers=1)

    monkeypatch.setattr(demucs.pretrained, "get_model", get_model)
    return calls


def test_offline_without_weights_says_how_to_get_them_and_tries_no_download(caches, demucs_loads, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as caught:
        load_real_separator(get_model_spec("htdemucs"), caches / "models", CPU)
    assert "jamgen models pull htdemucs" in str(caught.value)
    assert "HF_HUB_OFFLINE" in str(caught.value)
    assert demucs_loads == []


def test_a_failed_download_is_reported_as_missing_weights(caches, monkeypatch):
    def unreachable(name, repo=None):
        raise OSError("<urlopen error [Errno -2] Name or service not known>")

    monkeypatch.setattr(demucs.pretrained, "get_model", unreachable)
    with pytest.raises(ModelUnavailableError, match=r"could not be fetched: <urlopen error .*pull htdemucs"):
        load_real_separator(get_model_spec("htdemucs"), caches / "models", CPU)


def test_the_local_folder_is_demucs_repo_else_demucs_fetches_it(caches, demucs_loads):
    spec = get_model_spec("htdemucs")
    model = load_real_separator(spec, caches / "models", CPU)
    assert isinstance(model, BagOfModels)  # a single model is wrapped as demucs' bags are
    local = caches / "models" / "htdemucs"
    local.mkdir(parents=True)
    for name in ("htdemucs.yaml", "955717e8-8726e21a.th"):
        (local / name).write_bytes(b"x")
    load_real_separator(spec, caches / "models", CPU)
    assert demucs_loads == [("htdemucs", None), ("htdemucs", local.absolute())]


def test_normalisation_is_demucs_and_silence_stays_finite():
    wav = torch.tensor([[0.5, -0.25, 1.0], [0.0, 0.25, -1.0]])
    normalised, mean, std = normalise(wav)
    ref = wav.mean(0)
    assert torch.allclose(normalised, (wav - ref.mean()) / ref.std())
    assert torch.allclose(normalised * std + mean, wav)
    silent, mean, std = normalise(torch.zeros(2, 100))
    assert torch.equal(silent, torch.zeros(2, 100))
    assert (float(mean), float(std)) == (0.0, 0.0)


def test_segments_follow_apply_model_arithmetic():
    bag = BagOfModels([HTDemucs(**htdemucs_kwargs())])  # the release's 7.8 s window: 343980 samples, stride 257985
    assert HTDEMUCS_KWARGS["segment"] == htdemucs_kwargs()["segment"]
    assert count_segments(bag, 1) == 1
    assert count_segments(bag, 257985) == 1
    assert count_segments(bag, 257986) == 2
    assert count_segments(bag, 600 * 44100) == 103
