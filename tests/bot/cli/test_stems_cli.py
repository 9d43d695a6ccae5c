"""`jamgen stems`: a file in, one levelled file per stem out, through the real worker process."""

import asyncio
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from bot.audio import AudioLimits, probe
from bot.engine.types import STEM_NAMES

# Run the CLI like a user would, and prove the CLI's own process never imported torch.
_NO_TORCH = (
    "import sys\n"
    "from bot.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "assert 'torch' not in sys.modules and 'demucs' not in sys.modules, 'torch in the CLI process'\n"
    "sys.exit(code)\n"
)


def _jamgen(*args, cwd, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAMGEN_", "DISCORD_", "HF_"))}
    env.update(extra)
    return subprocess.run(
        [sys.executable, "-c", _NO_TORCH, "--env-file", str(cwd / "none.env"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture
def take(tmp_path):
    """A 2 s 44.1 kHz stereo WAV: a bass note, a gated chord and a little noise."""
    rate = 44100
    t = np.arange(2 * rate) / rate
    music = 0.3 * np.sin(2 * np.pi * 55 * t) + 0.15 * np.sin(2 * np.pi * 330 * t) * (np.sin(2 * np.pi * 2 * t) > 0)
    noise = 0.01 * np.random.default_rng(3).standard_normal((2, t.size))
    path = tmp_path / "take.wav"
    soundfile.write(str(path), (np.stack([music, 0.8 * music]) + noise).T.astype(np.float32), rate)
    return path


@pytest.mark.slow
def test_stems_writes_one_file_per_stem_as_long_as_the_input(tmp_path, take):
    result = _jamgen("stems", take.name, "-o", "parts", "--model", "debug-stems", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"wrote parts/{name}.mp3 ({name}, 2.00 s, 44100 Hz, 2 ch)" for name in STEM_NAMES
    ]
    for name in STEM_NAMES:
        info = asyncio.run(probe(tmp_path / "parts" / f"{name}.mp3", AudioLimits()))
        assert info.family == "mp3"
        assert (info.channels, info.sample_rate) == (2, 44100)
        assert abs(info.duration_s - 2.0) <= 0.05, (name, info.duration_s)
    assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == sorted(f"{n}.mp3" for n in STEM_NAMES)
    assert "Traceback" not in result.stderr


def test_a_music_model_does_not_split(tmp_path, take):
    result = _jamgen("stems", take.name, "-o", "parts", "--model", "debug", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: Model 'debug' makes music; it does not split tracks. Use: htdemucs.")
    assert not (tmp_path / "parts").exists()


def test_the_separator_defaults_to_the_bots_stems_model(tmp_path, take):
    result = _jamgen("stems", take.name, "-o", "parts", cwd=tmp_path, JAMGEN_STEMS_MODEL="debug")
    assert result.returncode == 2
    assert result.stderr.startswith("error: Model 'debug' makes music; it does not split tracks.")


def test_a_file_that_is_not_audio_is_refused_before_the_engine(tmp_path):
    (tmp_path / "notes.mp3").write_text("these are not sounds\n" * 50)
    result = _jamgen("stems", "notes.mp3", "-o", "parts", "--model", "debug-stems", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr
    assert "engine worker" not in result.stderr


def test_htdemucs_offline_without_weights_is_one_clear_line(tmp_path, take):
    result = _jamgen("stems", take.name, "-o", "parts", cwd=tmp_path, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    assert result.returncode == 2
    assert result.stderr.startswith("error: The weights of model 'htdemucs' (demucs htdemucs)")
    assert "jamgen models pull htdemucs" in result.stderr
    assert "Traceback" not in result.stderr
