import json
import os
import socket
import subprocess
import sys

from bot.engine.registry import MODELS

_NO_TORCH = (
    "import sys\n"
    "from bot.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "assert 'torch' not in sys.modules, 'torch in the CLI process'\n"
    "sys.exit(code)\n"
)


def _jamgen(*args, cwd, **env):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("JAMGEN_", "DISCORD_", "HF_"))}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", _NO_TORCH, "--env-file", str(cwd / "none.env"), *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=120,
    )


def test_models_lists_every_model_with_abilities_and_weights_without_torch(tmp_path):
    local = tmp_path / "weights" / "stereo-small"
    local.mkdir(parents=True)
    for name in ("state_dict.bin", "compression_state_dict.bin"):
        (local / name).write_bytes(b"x")
    result = _jamgen(
        "models", "--json", cwd=tmp_path, JAMGEN_MODEL_DIR=str(tmp_path / "weights"), HF_HOME=str(tmp_path / "hf")
    )
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(rows) == set(MODELS)
    assert rows["stereo-small"]["weights"] == "local"
    assert rows["stereo-small"]["weights_path"] == str(local)
    assert rows["stereo-small"]["stereo"] is True
    assert rows["small"]["weights"] == "missing"
    assert rows["style"]["modes"] == ["continuation", "style", "text", "unconditional"]
    assert rows["large"]["vram_gb"] == 16
    assert rows["large"]["cost_weight"] == 4.0
    assert rows["debug-melody"]["weights"] == "built-in"
    assert rows["debug-melody"]["test_model"] is True


def test_models_table_is_readable(tmp_path):
    result = _jamgen("models", cwd=tmp_path, HF_HOME=str(tmp_path / "hf"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["model", "modes", "ch", "window", "cost", "vram", "weights"]
    melody = next(line for line in lines if line.startswith("stereo-melody "))
    assert melody.split()[1:] == ["continuation,melody,text,unconditional", "2", "30s", "3x", "10GB", "missing"]


def test_pull_of_a_test_model_needs_nothing(tmp_path):
    result = _jamgen("models", "pull", "debug", cwd=tmp_path)
    assert result.returncode == 0
    assert "nothing to download" in result.stdout


def test_pull_offline_without_weights_explains_and_exits_2(tmp_path):
    result = _jamgen("models", "pull", "melody", cwd=tmp_path, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    assert result.returncode == 2
    assert result.stderr.startswith("error: The weights of model 'melody'")
    assert "Traceback" not in result.stderr


def test_pull_of_an_unknown_model_lists_the_real_ones(tmp_path):
    result = _jamgen("models", "pull", "tiny", cwd=tmp_path)
    assert result.returncode == 2
    assert "There is no model called 'tiny'" in result.stderr


def test_pull_takes_several_names_and_reports_each_offline(tmp_path):
    result = _jamgen(
        "models", "pull", "debug", "melody", "small", cwd=tmp_path, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf")
    )
    assert result.returncode == 2
    assert "debug is a test model built in code; nothing to download." in result.stdout
    errors = result.stderr.splitlines()
    assert [line.split("'")[1] for line in errors] == ["melody", "small"]
    assert all(line.startswith("error: The weights of model") for line in errors)
    assert "HF_HUB_OFFLINE" in errors[0]
    assert "jamgen models pull melody" in errors[0]
    assert str(tmp_path / "hf" / "hub") in errors[0]
    assert "Traceback" not in result.stderr


def test_pull_without_network_fails_at_once_with_what_to_do(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{closed_port}"
    result = _jamgen("models", "pull", "small", cwd=tmp_path, HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: Cannot reach {endpoint} to download weights")
    assert "no network" in result.stderr
    assert "README: Offline weights" in result.stderr
    assert "Traceback" not in result.stderr


def test_pull_checks_every_name_before_fetching_anything(tmp_path):
    result = _jamgen("models", "pull", "debug", "tiny", cwd=tmp_path)
    assert result.returncode == 2
    assert "There is no model called 'tiny'" in result.stderr
    assert result.stdout == ""


def test_pull_needs_a_name_and_list_takes_none(tmp_path):
    result = _jamgen("models", "pull", cwd=tmp_path)
    assert result.returncode == 2
    assert "Say which models to pull" in result.stderr
    listed = _jamgen("models", "list", "small", cwd=tmp_path)
    assert listed.returncode == 2
    assert "jamgen models pull small" in listed.stderr


def test_the_separators_are_listed_with_their_one_mode(tmp_path):
    result = _jamgen("models", "--json", cwd=tmp_path, HF_HOME=str(tmp_path / "hf"), TORCH_HOME=str(tmp_path / "t"))
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["htdemucs"]["modes"] == ["stems"]
    assert (rows["htdemucs"]["separator"], rows["htdemucs"]["stereo"], rows["htdemucs"]["weights"]) == (
        True,
        True,
        "missing",
    )
    assert (rows["debug-stems"]["weights"], rows["debug-stems"]["test_model"]) == ("built-in", True)
    assert rows["small"]["separator"] is False


def test_pull_htdemucs_offline_without_weights_explains_and_exits_2(tmp_path):
    result = _jamgen(
        "models",
        "pull",
        "htdemucs",
        cwd=tmp_path,
        HF_HUB_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf"),
        TORCH_HOME=str(tmp_path / "torch"),
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: The weights of model 'htdemucs' (demucs htdemucs) are not on this machine")
    assert "HF_HUB_OFFLINE" in result.stderr
    assert "jamgen models pull htdemucs" in result.stderr
    assert "955717e8-8726e21a.th" in result.stderr
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in result.stderr
    assert "Traceback" not in result.stderr


def test_pull_htdemucs_without_network_fails_at_once_with_what_to_do(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{closed_port}"
    result = _jamgen(
        "models", "pull", "htdemucs", cwd=tmp_path, HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf"), TORCH_HOME="t"
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: Cannot reach {endpoint} to download weights")
    assert "Traceback" not in result.stderr
