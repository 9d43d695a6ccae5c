import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from bot.cli import main

ROOT = Path(__file__).resolve().parents[3]
_PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"

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


def _jamgen(*args, cwd, timeout=300, **env):
    return subprocess.run(
        [sys.executable, "-c", _NO_TORCH, "--env-file", str(cwd / "none.env"), *args],
        capture_output=True,
        text=True,
        env=_env(**env),
        cwd=cwd,
        timeout=timeout,
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


def test_a_style_excerpt_that_is_too_short_is_refused_before_anything_runs(clean_env, tmp_path, no_engine, capsys):
    _write_reference(tmp_path / "short.wav", 1.0)
    code = main([*clean_env, "generate", "jazz", "--model", "debug-style", "--style", "short.wav", "-o", "y.wav"])
    assert code == 2
    assert capsys.readouterr().err == "error: Style needs at least 1.5 s of audio; this file has 1.0 s.\n"
    assert no_engine == []


def test_a_style_excerpt_shorter_than_the_asked_length_is_heard_whole_with_a_note(clean_env, tmp_path):
    _write_reference(tmp_path / "two.wav", 2.0)
    requests, _, notes = _build(["jazz", "--model", "debug-style", "--style", "two.wav", "-o", "y.wav"], tmp_path)
    (request,) = requests
    assert request.sampling.excerpt_length == 2.0
    assert request.audio.shape == (1, 64000)
    assert notes == (
        "This clip has 2.0 s of audio, so the style model listens to the 2.0 s it has "
        "(--excerpt-length asked for 3 s).",
    )


def test_an_excerpt_length_out_of_range_is_refused_naming_the_cli_option(clean_env, tmp_path, no_engine, capsys):
    _write_reference(tmp_path / "two.wav", 2.0)
    argv = ["jazz", "--model", "debug-style", "--style", "two.wav", "--excerpt-length", "5", "-o", "y.wav"]
    code = main([*clean_env, "generate", *argv])
    assert code == 2
    assert capsys.readouterr().err.startswith("error: --excerpt-length must be 1.5-4.5 seconds")
    assert no_engine == []


def test_a_mode_the_model_cannot_do_exits_2_before_reading_the_file(clean_env, tmp_path, no_engine, capsys):
    (tmp_path / "tune.wav").write_bytes(_PNG)  # not audio: the model is refused before the file is read
    code = main([*clean_env, "generate", "x", "--model", "debug", "--melody", "tune.wav", "-o", "y.wav"])
    assert code == 2
    assert "cannot make melody takes" in capsys.readouterr().err


@pytest.fixture
def no_engine(monkeypatch):
    """Fails the test if the CLI starts the engine (which would load a model)."""
    started = []

    class _NoEngine:
        def __init__(self, config):
            started.append(config)
            raise AssertionError("the engine was started")

    monkeypatch.setattr("bot.cli.generate.EngineClient", _NoEngine)
    return started


@pytest.mark.parametrize("name", ["x.ogg", "x", "x.mp3.txt"])
def test_an_unsupported_output_extension_exits_2_before_anything_runs(clean_env, no_engine, capsys, name):
    code = main([*clean_env, "generate", "x", "--model", "debug", "--duration", "1", "-o", name])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: Cannot write ")
    assert err.endswith("use an output name ending in .mp3, .wav or .flac.\n")
    assert no_engine == []


def test_an_output_folder_that_cannot_be_made_exits_2_before_anything_runs(clean_env, tmp_path, no_engine, capsys):
    (tmp_path / "afile").write_text("not a folder")
    code = main([*clean_env, "generate", "x", "--model", "debug", "--duration", "1", "-o", "afile/sub/x.mp3"])
    assert code == 2
    expected = f"error: Cannot write afile/sub/x.mp3: {tmp_path.resolve() / 'afile'} is a file, not a folder.\n"
    assert capsys.readouterr().err == expected
    assert no_engine == []


_REJECTED_INPUTS = [
    pytest.param("--continue", _PNG, "PNG image, not audio", id="png-named-wav"),
    pytest.param("--style", b"", "empty (0 bytes)", id="empty"),
    pytest.param("--melody", b"RIFF\xff\xff\x00\x00WAVEfmt ", "WAV file is damaged or cut off", id="cut-wav-header"),
]


@pytest.mark.parametrize(("option", "data", "says"), _REJECTED_INPUTS)
def test_a_rejected_input_is_one_error_line_and_exit_2_without_the_engine(tmp_path, option, data, says):
    model = {"--continue": "debug", "--style": "debug-style", "--melody": "debug-melody"}[option]
    (tmp_path / "riff.wav").write_bytes(data)
    result = _jamgen(
        "generate",
        "x",
        "--model",
        model,
        option,
        "riff.wav",
        "-o",
        "y.mp3",
        cwd=tmp_path,
        timeout=20,
        JAMGEN_LOG_LEVEL="INFO",
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert says in lines[0]
    # At INFO the engine logs "engine worker <pid> ready": its absence shows no worker was started.
    assert "jamgen.engine" not in result.stderr
    assert not (tmp_path / "y.mp3").exists()


@pytest.mark.parametrize(("option", "data", "says"), _REJECTED_INPUTS)
def test_a_rejected_input_never_starts_the_engine(clean_env, tmp_path, no_engine, capsys, option, data, says):
    model = {"--continue": "debug", "--style": "debug-style", "--melody": "debug-melody"}[option]
    (tmp_path / "riff.wav").write_bytes(data)
    code = main([*clean_env, "generate", "x", "--model", model, option, "riff.wav", "-o", "y.wav"])
    assert code == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert no_engine == []


def test_a_missing_input_file_is_named(clean_env, no_engine, capsys):
    code = main([*clean_env, "generate", "x", "--model", "debug", "--continue", "gone.wav", "-o", "y.wav"])
    assert code == 2
    assert capsys.readouterr().err == "error: Cannot open 'gone.wav': there is no such file.\n"


@pytest.fixture
def twelve_seconds(tmp_path):
    """12 s at 44.1 kHz stereo: quiet, then a loud stretch at 6-9 s, then quiet again."""
    rate = 44100
    t = np.arange(12 * rate) / rate
    mono = 0.05 * np.sin(2 * np.pi * 220 * t)
    mono[6 * rate : 9 * rate] *= 12
    path = tmp_path / "long.flac"
    soundfile.write(str(path), np.stack([mono, mono], axis=1).astype(np.float32), rate)
    return path


@pytest.mark.parametrize(
    ("mode", "model", "seconds", "loud_from"),
    [
        pytest.param("melody", "debug", 2.0, None, id="melody-first-duration-seconds"),
        pytest.param("style", "debug", 3.0, 0.0, id="style-loudest-window"),
        pytest.param("continuation", "small", 10.0, 4.0, id="continuation-last-10-s"),
    ],
)
def test_conditioning_is_decoded_at_the_models_rate_and_cut_as_the_bot_does(
    twelve_seconds, mode, model, seconds, loud_from
):
    from bot.audio import AudioLimits
    from bot.cli.generate import load_conditioning
    from bot.engine.registry import get_model_spec
    from bot.engine.types import Mode, SamplingParams

    spec = get_model_spec(model)
    sampling = SamplingParams.for_mode(Mode(mode))
    wav, warnings = asyncio.run(
        load_conditioning(twelve_seconds, Mode(mode), spec, 2.0, sampling, AudioLimits(timeout_s=20))
    )
    assert wav.dtype == np.float32
    assert wav.shape == (spec.channels, round(seconds * spec.sample_rate))
    assert warnings == ()
    if loud_from is not None:
        # Where the loud stretch (6-9 s of the file) begins inside the excerpt: style picks exactly that
        # window; a continuation keeps 2-12 s, so it begins 4 s in.
        loud = np.flatnonzero(np.abs(wav[0]) > 0.3)
        assert abs(loud[0] / spec.sample_rate - loud_from) < 0.06


def test_a_continuation_longer_than_the_debug_window_is_cut_to_its_last_3_s_with_a_note(clean_env, tmp_path):
    # What `jamgen generate --continue six_seconds.wav --model debug` used to refuse (the debug window is 4 s).
    _write_reference(tmp_path / "six_seconds.wav", 6.0)
    requests, _, notes = _build(["go on", "--model", "debug", "--continue", "six_seconds.wav", "-o", "y.wav"], tmp_path)
    (request,) = requests
    assert request.audio.shape == (1, 3 * 32000)
    assert request.duration == pytest.approx(3.0 + 10.0)  # the prompt, then the default 10 s of new music
    reference, _ = soundfile.read(str(tmp_path / "six_seconds.wav"), dtype="float32")
    np.testing.assert_allclose(request.audio[0], reference[-3 * 32000 :], atol=1e-4)
    assert notes == (
        "Model 'debug' hears 4 s at a time, so it continues from the last 3.0 s of your 6.0 s, leaving room in "
        "that window for new music.",
    )


@pytest.mark.slow
def test_generate_continues_a_file_longer_than_the_window_and_says_what_it_kept(tmp_path):
    _write_reference(tmp_path / "six_seconds.wav", 6.0)
    argv = ["generate", "go on", "--continue", "six_seconds.wav", "--model", "debug", "--duration", "1", "-o", "x.wav"]
    result = _jamgen(*argv, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "note: Model 'debug' hears 4 s at a time, so it continues from the last 3.0 s of your 6.0 s" in (
        result.stderr
    )
    info = soundfile.info(str(tmp_path / "x.wav"))
    assert abs(info.frames / info.samplerate - 4.0) < 0.1  # 3 s kept, then 1 s of new music


def _build(argv, tmp_path):
    from bot.cli import build_parser
    from bot.cli.generate import build_requests
    from bot.config import Settings

    args = build_parser().parse_args(["generate", *argv])
    return asyncio.run(build_requests(args, Settings.from_env(dotenv=tmp_path / "none.env")))


def test_a_continuation_adds_new_music_after_its_prompt_as_the_bot_does(clean_env, tmp_path):
    _write_reference(tmp_path / "riff.wav", 2.5)
    requests, input_path, warnings = _build(
        ["go on", "--model", "debug", "--continue", "riff.wav", "--duration", "1.5", "-o", "y.mp3"], tmp_path
    )
    (request,) = requests
    assert input_path == Path("riff.wav")
    assert warnings == ()
    assert request.audio.shape == (1, 80000)
    assert request.duration == pytest.approx(4.0)


def test_a_continuation_longer_than_the_limit_is_refused(clean_env, tmp_path):
    from bot.errors import UserInputError

    _write_reference(tmp_path / "riff.wav", 2.5)
    argv = ["go on", "--model", "debug", "--continue", "riff.wav", "--duration", "119", "-o", "y.mp3"]
    with pytest.raises(
        UserInputError, match=r"would be 122 s long; the limit is 120 s\. Ask for at most 117 s \(--duration\)\."
    ):
        _build(argv, tmp_path)


@pytest.mark.slow
def test_generate_mp3_carries_the_printed_recipe(tmp_path):
    from bot.audio import read_recipe

    result = _jamgen("generate", "test", "--model", "debug", "--duration", "2", "-o", "x.mp3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "wrote x.mp3 (2.00 s, 32000 Hz, 1 ch)" in result.stdout
    printed_seed = int(re.search(r" seed=(\d+) ", result.stdout).group(1))
    assert (tmp_path / "x.mp3").read_bytes()[:3] == b"ID3"
    recipe = asyncio.run(read_recipe(tmp_path / "x.mp3"))
    assert recipe["seed"] == printed_seed
    assert (recipe["model"], recipe["prompt"], recipe["mode"]) == ("debug", "test", "text")
    info = soundfile.info(str(tmp_path / "x.mp3"))
    assert abs(info.frames / info.samplerate - 2.0) < 0.1


@pytest.mark.slow
def test_style_takes_with_a_seed_print_a_json_recipe(clean_env, tmp_path, capsys):
    from bot.audio import read_recipe

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
        assert info.format == "FLAC"
        assert abs(info.frames - 32000) <= 1280
        written = asyncio.run(read_recipe(tmp_path / item["output"]))
        assert (written["seed"], written["eval_q"], written["input"]) == (item["seed"], 2, "ref.wav")


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
