from pathlib import Path

import pytest

from bot.engine.registry import get_model_spec
from bot.engine.weights import find_weights, hf_cache_dir, missing_weights_error


@pytest.fixture
def empty_hf(tmp_path, monkeypatch):
    for key in ("HF_HUB_CACHE", "AUDIOCRAFT_CACHE_DIR", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return tmp_path / "hf" / "hub"


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def test_hf_cache_follows_hf_home(empty_hf):
    assert hf_cache_dir() == empty_hf


def test_missing_everywhere(empty_hf, tmp_path):
    where = find_weights(get_model_spec("small"), tmp_path / "models")
    assert (where.source, where.present) == ("missing", False)


def test_local_folder_needs_both_files(empty_hf, tmp_path):
    _touch(tmp_path / "models" / "small" / "state_dict.bin")
    assert find_weights(get_model_spec("small"), tmp_path / "models").source == "missing"
    _touch(tmp_path / "models" / "small" / "compression_state_dict.bin")
    where = find_weights(get_model_spec("small"), tmp_path / "models")
    assert (where.source, where.path) == ("local", (tmp_path / "models" / "small").absolute())


def test_hf_cache_snapshot_is_found(empty_hf, tmp_path):
    repo = empty_hf / "models--facebook--musicgen-melody"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    for name in ("state_dict.bin", "compression_state_dict.bin"):
        _touch(repo / "snapshots" / "abc123" / name)
    where = find_weights(get_model_spec("melody"), tmp_path / "models")
    assert where.source == "hf-cache"
    assert where.path == repo / "snapshots" / "abc123"
    assert find_weights(get_model_spec("small"), tmp_path / "models").source == "missing"


def test_debug_models_are_built_in(empty_hf, tmp_path):
    assert find_weights(get_model_spec("debug-style"), tmp_path).source == "built-in"


def test_missing_weights_error_says_what_where_and_how(empty_hf, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    error = missing_weights_error(get_model_spec("small"), tmp_path / "models")
    text = str(error)
    assert error.user_error
    assert "'small' (facebook/musicgen-small)" in text
    assert "HF_HUB_OFFLINE" in text
    assert str(empty_hf) in text
    assert str((tmp_path / "models" / "small").absolute()) in text
    assert "jamgen models pull small" in text
    assert "HF_HOME" in text


def test_htdemucs_is_found_locally_in_the_hf_cache_or_in_torch_hub(empty_hf, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    spec = get_model_spec("htdemucs")
    assert find_weights(spec, tmp_path / "models").source == "missing"
    _touch(tmp_path / "torch" / "hub" / "checkpoints" / "955717e8-8726e21a.th")
    where = find_weights(spec, tmp_path / "models")
    assert (where.source, where.path) == ("torch-cache", tmp_path / "torch" / "hub" / "checkpoints")
    repo = empty_hf / "models--adefossez--HTDemucs"
    _touch(repo / "snapshots" / "abc" / "htdemucs.yaml")
    assert find_weights(spec, tmp_path / "models").source == "torch-cache"  # the checkpoint is still missing there
    _touch(repo / "snapshots" / "abc" / "955717e8.safetensors")
    assert find_weights(spec, tmp_path / "models").source == "hf-cache"
    local = tmp_path / "models" / "htdemucs"
    _touch(local / "htdemucs.yaml")
    _touch(local / "955717e8-8726e21a.th")
    assert (find_weights(spec, tmp_path / "models").source, find_weights(spec, tmp_path / "models").path) == (
        "local",
        local.absolute(),
    )
    assert find_weights(get_model_spec("debug-stems"), tmp_path).source == "built-in"


def test_missing_separator_weights_name_demucs_files_and_the_pull(empty_hf, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    text = str(missing_weights_error(get_model_spec("htdemucs"), tmp_path / "models"))
    assert text.startswith("The weights of model 'htdemucs' (demucs htdemucs) are not on this machine")
    assert "HF_HUB_OFFLINE" in text
    assert "jamgen models pull htdemucs" in text
    assert "htdemucs.yaml" in text
    assert "955717e8-8726e21a.th" in text
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in text
    assert str((tmp_path / "models" / "htdemucs").absolute()) in text
    assert "state_dict.bin" not in text
