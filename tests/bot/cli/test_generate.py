import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from bot.cli import main

ROOT = Path(__file__).resolve().parents[3]

# Run the CLI like a user would, and prove the CLI's own process never imported torch.
_NO_TORCH = (
    "import sys\n"
    "from bot.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "assert 'torch' not in sys.modules and 'audiocraft' not in sys.modules, 'torch in the CLI process'\n"
    "sys.exit(code)\n"
)


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAMGEN_", "DISCORD_", "HF_"))}
    env["OMP_NUM_THREADS"] = "1"  # a shared CI machine: one torch thread is faster than two fighting
    env.update(extra)
    return env


def _jamgen(*args, cwd, **env):
    return subprocess.run(
        [sys.executable, "-c", _NO_TORCH, "--env-file", str(cwd / "none.env"), *args],
        capture_output=True,
        text=True,
        env=_env(**env),
        cwd=cwd,
        timeout=300,
    )


@pytest.mark.slow
def test_generate_with_the_debug_model_writes_two_seconds(tmp_path):
    result = _jamgen("generate", "test", "--model", "debug", "--duration", "2", "-o", "x.wav", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    info = soundfile.info(str(tmp_path / "x.wav"))
    assert info.samplerate == 32000
    assert info.channels == 1
    assert abs(info.frames - 64000) <= 1280
    assert "wrote x.wav (2.00 s, 32000 Hz, 1 ch)" in result.stdout
    assert "seed=" in result.stdout
    assert "Traceback" not in result.stderr


def test_missing_weights_offline_is_one_clear_line_and_exit_2(tmp_path):
    (tmp_path / "empty").mkdir()
    result = _jamgen(
        "generate",
        "test",
        "--model",
        "small",
        "-o",
        "x.wav",
        cwd=tmp_path,
        HF_HUB_OFFLINE="1",
        HF_HOME=str(tmp_path / "empty"),
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: The weights of model 'small' (facebook/musicgen-small)")
    assert str(tmp_path / "empty" / "hub") in result.stderr
    assert str(tmp_path / "models" / "small") in result.stderr
    assert "jamgen models pull small" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.wav").exists()


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith(("JAMGEN_", "DISCORD_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.chdir(tmp_path)
    return ["--env-file", str(tmp_path / "none.env")]


def _write_reference(path, seconds):
    rng = np.random.default_rng(3)
    soundfile.write(str(path), (0.1 * rng.standard_normal(int(seconds * 32000))).astype(np.float32), 32000)


def test_a_style_excerpt_that_is_too_short_is_refused_before_anything_runs(clean_env, tmp_path, capsys):
    _write_reference(tmp_path / "short.wav", 1.0)
    code = main([*clean_env, "generate", "jazz", "--model", "debug-style", "--style", "short.wav", "-o", "y.wav"])
    assert code == 2
    assert "style excerpt is 1.0 s long" in capsys.readouterr().err


def test_a_mode_the_model_cannot_do_exits_2(clean_env, tmp_path, capsys):
    _write_reference(tmp_path / "tune.wav", 2.0)
    code = main([*clean_env, "generate", "x", "--model", "debug", "--melody", "tune.wav", "-o", "y.wav"])
    assert code == 2
    assert "cannot make melody takes" in capsys.readouterr().err


def test_an_unwritable_format_is_refused(clean_env, tmp_path, capsys):
    from bot.cli.generate import write_audio
    from bot.errors import UserInputError

    with pytest.raises(UserInputError, match=r"\.wav or \.flac"):
        write_audio(tmp_path / "x.mp3", np.zeros((1, 10), dtype=np.float32), 32000)


@pytest.mark.slow
def test_style_takes_with_a_seed_print_a_json_recipe(clean_env, tmp_path, capsys):
    _write_reference(tmp_path / "ref.wav", 3.5)
    argv = [*clean_env, "generate", "jazz trio", "--model", "debug-style", "--style", "ref.wav", "--duration", "1"]
    code = main([*argv, "--takes", "2", "--seed", "7", "--eval-q", "2", "--json", "-o", "out/take.flac"])
    assert code == 0
    recipes = json.loads(capsys.readouterr().out)
    assert [r["output"] for r in recipes] == ["out/take-1.flac", "out/take-2.flac"]
    assert [r["seed"] for r in recipes] == [7, 8]
    for item in recipes:
        assert (item["mode"], item["model"], item["input"]) == ("style", "debug-style", "ref.wav")
        assert (item["cfg_coef"], item["cfg_coef_beta"], item["eval_q"]) == (3.0, 5.0, 2)
        assert item["reproducible_alone"] is True
        info = soundfile.info(str(tmp_path / item["output"]))
        assert abs(info.frames - 32000) <= 1280


def test_progress_bar_draws_the_mean_of_every_take(capsys):
    from bot.cli.generate import _ProgressBar
    from bot.engine.types import Progress

    bar = _ProgressBar(["a", "b"])
    bar(Progress("a", 10, 10))
    bar(Progress("b", 5, 10))
    bar.finish()
    err = capsys.readouterr().err
    assert "[###############...............]  50%" in err
    assert "  75%" in err
    assert err.endswith("\n")
