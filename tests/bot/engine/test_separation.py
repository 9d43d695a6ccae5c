"""Stem separation through the real worker process (``debug-stems``: htdemucs' real shape, random weights).

One worker serves the module (it starts in about 8 s); the crash test comes last so that nobody
pays for a restart. The acceptance check rebuilds the same seeded HTDemucs here and runs demucs'
own ``apply_model`` with demucs' own normalisation: the worker's stems must match it, stem by stem.
"""

import asyncio
import dataclasses
import time

import numpy as np
import pytest
import pytest_asyncio
import torch
from demucs.apply import apply_model
from demucs.htdemucs import HTDemucs

from bot.engine.client import EngineClient
from bot.engine.protocol import EngineFaults
from bot.engine.types import (
    STEM_NAMES,
    EngineError,
    GenerationCancelledError,
    GenerationRequest,
    GenerationResult,
    Mode,
    RequestRejectedError,
)
from bot.engine.validation import validate_request
from bot.engine.worker import DEBUG_WEIGHTS_SEED
from bot.engine.worker.htdemucs import DEBUG_SEGMENT, htdemucs_kwargs
from bot.errors import UserInputError
from tests.bot.engine.conftest import TEST_CONFIG

RATE = 44100
FAULTS = EngineFaults(crash_prefix="crash", error_prefix="error", slow_prefix="slow", slow_step_s=0.2)
# Two threads: the forward passes of a real-size htdemucs dominate these tests.
CONFIG = dataclasses.replace(TEST_CONFIG, memory_budget_gb=1.0, cpu_threads=2)


def music(seconds: float, seed: int, rate: int = RATE, channels: int = 2) -> np.ndarray:
    """A music-like float32 [channels, samples] signal: bass, a gated chord, kick clicks and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate)) / rate
    root = rng.uniform(45.0, 70.0)
    bass = 0.3 * np.sin(2 * np.pi * root * t)
    chord = sum(np.sin(2 * np.pi * root * ratio * 4 * t) for ratio in (1.0, 1.26, 1.5)) / 3
    gate = np.sin(2 * np.pi * rng.uniform(1.5, 3.0) * t) > 0
    kicks = np.exp(-40 * (t % 0.5)) * np.sin(2 * np.pi * 60 * t)
    mono = bass + 0.2 * chord * gate + 0.4 * kicks
    wide = [mono * (1.0 - 0.2 * c) + 0.02 * rng.standard_normal(t.size) for c in range(channels)]
    return (0.5 * np.stack(wide)).astype(np.float32)


def stems_request(job: str, audio: np.ndarray, rate: int = RATE, take: int = 0) -> GenerationRequest:
    return GenerationRequest(
        job, take, "debug-stems", Mode.STEMS, "", audio.shape[-1] / rate, audio=audio, audio_sample_rate=rate
    )


def demucs_stems(audio: np.ndarray) -> np.ndarray:
    """What demucs itself makes of ``audio`` with the same seeded model (its CLI's normalisation, no shifts)."""
    torch.manual_seed(DEBUG_WEIGHTS_SEED)
    model = HTDemucs(**htdemucs_kwargs(DEBUG_SEGMENT)).eval()
    wav = torch.from_numpy(audio)
    ref = wav.mean(0)
    mix = (wav - ref.mean()) / ref.std()
    with torch.no_grad():
        out = apply_model(model, mix[None], shifts=0, split=True, overlap=0.25, progress=False)[0]
    assert list(model.sources) == list(STEM_NAMES)
    return (out * ref.std() + ref.mean()).numpy()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stems_engine():
    client = EngineClient(CONFIG, faults=FAULTS)
    await client.start()
    yield client
    await client.close()


async def _wait_for(progress, predicate, limit_s=60.0):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if any(predicate(p) for p in progress):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"no such progress from the engine: {progress}")


# ---------------------------------------------------------------- no worker needed


def test_only_separators_split_and_a_separation_says_its_audio_length():
    audio = music(1.0, seed=3)
    for model, mode in (("debug-stems", Mode.TEXT), ("debug", Mode.STEMS), ("htdemucs", Mode.MELODY)):
        with pytest.raises(UserInputError, match="cannot make"):
            validate_request(dataclasses.replace(stems_request("x", audio), model=model, mode=mode), max_duration=30)
    with pytest.raises(UserInputError, match="audio to split"):
        validate_request(dataclasses.replace(stems_request("x", audio), duration=2.0), max_duration=30)
    with pytest.raises(UserInputError, match="audio to split"):
        validate_request(dataclasses.replace(stems_request("x", audio), audio=None), max_duration=30)
    # A track longer than a take may be: the separator's own limit (600 s) counts, not the engine's 30 s.
    long_track = stems_request("x", np.zeros((2, 45 * RATE), np.float32))
    assert validate_request(long_track, max_duration=30).name == "debug-stems"
    too_long = dataclasses.replace(long_track, duration=601.0, audio=np.zeros((2, 601 * RATE), np.float32))
    with pytest.raises(UserInputError, match="at most 600 seconds"):
        validate_request(too_long, max_duration=30)


def test_equal_lengths_share_a_batch_key_and_other_lengths_do_not():
    a, b, c = (stems_request(j, music(s, seed=1)) for j, s in (("a", 2.0), ("b", 2.0), ("c", 2.5)))
    assert a.batch_key() == b.batch_key() != c.batch_key()
    assert a.batch_key()[:2] == ("debug-stems", Mode.STEMS)


# ---------------------------------------------------------------- the real worker


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="session")
async def test_stems_are_demucs_own_stem_for_stem_in_one_batched_call(stems_engine):
    track = music(2.0, seed=1)
    silence = np.zeros((2, 2 * RATE), np.float32)
    mono = music(1.0, seed=4, rate=22050, channels=1)
    rows = [stems_request("accept", track), stems_request("silence", silence), stems_request("mono", mono, rate=22050)]
    before = (await stems_engine.health()).generate_calls
    progress = []
    results = await stems_engine.generate(rows, progress.append)

    # The two 2 s tracks share one call (one stacked apply_model); the mono 22.05 kHz one is another length.
    assert (await stems_engine.health()).generate_calls == before + 2
    for result in results:
        assert isinstance(result, GenerationResult), result
        assert result.stems == STEM_NAMES
        assert result.sample_rate == RATE
        assert result.audio.dtype == np.float32
        assert result.seed == 0
    assert [r.batch_size for r in results] == [2, 2, 1]
    assert [r.audio.shape for r in results] == [(4, 2, 2 * RATE), (4, 2, 2 * RATE), (4, 2, RATE)]
    assert [r.duration for r in results] == [2.0, 2.0, 1.0]
    assert not np.any(results[1].audio)  # silence in, silence out (no division by its zero deviation)
    assert np.isfinite(results[2].audio).all()
    assert np.abs(results[2].audio).max() > 0

    expected = demucs_stems(track)
    # The check can tell the stems apart and notices a shift of one sample.
    assert min(np.abs(expected[i] - expected[j]).max() for i in range(4) for j in range(4) if i != j) > 1e-2
    assert min(np.abs(expected[i, :, 1:] - expected[i, :, :-1]).max() for i in range(4)) > 1e-2
    for index, name in enumerate(STEM_NAMES):
        got = results[0].audio[results[0].stems.index(name)]
        assert got.shape == expected[index].shape, name
        np.testing.assert_allclose(got, expected[index], rtol=0, atol=1e-4, err_msg=name)

    # Progress: every row's reports, in tenths of a second of audio, up to the step count of its result.
    for row, result in zip(rows, results, strict=True):
        mine = [p for p in progress if p.request_id == row.request_id]
        assert mine, row.request_id
        assert mine[-1].done_steps == mine[-1].total_steps == result.steps == round(row.duration * 10)
        assert [p.done_steps for p in mine] == sorted(p.done_steps for p in mine)


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="session")
async def test_a_separation_is_cancelled_between_segments(stems_engine):
    progress = []
    request = stems_request("slow-stems", music(6.0, seed=5))  # 8 segments of 1 s, 0.2 s extra around each
    task = asyncio.create_task(stems_engine.generate([request], progress.append))
    await _wait_for(progress, lambda p: p.done_steps > 0)
    cancelled_at = time.monotonic()
    await stems_engine.cancel(request.request_id)
    results = await task
    assert time.monotonic() - cancelled_at < 1.0
    assert isinstance(results[0], GenerationCancelledError)
    # The worker stopped at its next segment, long before the seven still to do.
    assert await stems_engine.wait_idle(4.0)
    assert max(p.done_steps for p in progress) < progress[-1].total_steps == 60


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="session")
async def test_an_error_in_a_separation_fails_it_clearly_and_the_worker_stays(stems_engine):
    pid = stems_engine.worker_pid
    results = await stems_engine.generate([stems_request("error-stems", music(1.0, seed=7))])
    assert isinstance(results[0], EngineError)
    assert not results[0].retriable
    assert str(results[0]) == "The separation failed on the engine's side (RuntimeError: injected failure)."
    assert stems_engine.worker_pid == pid


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="session")
async def test_a_worker_crash_mid_separation_is_retriable(stems_engine):
    pid = stems_engine.worker_pid
    results = await stems_engine.generate([stems_request("crash-stems", music(2.0, seed=6))])
    assert isinstance(results[0], EngineError)
    assert not isinstance(results[0], RequestRejectedError)
    assert results[0].retriable
    assert "signal 9" in str(results[0])
    assert stems_engine.worker_pid != pid
