"""Acceptance tests of the engine on CPU with the tiny random debug models."""

import asyncio
import dataclasses
import os
import signal
import time

import numpy as np
import pytest

from bot.engine.protocol import CancelRequests
from bot.engine.types import (
    EngineError,
    GenerationCancelledError,
    GenerationRequest,
    GenerationResult,
    Mode,
    RequestRejectedError,
    SamplingParams,
)

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

SAMPLE_RATE = 32000
FRAME = 1280  # samples per frame of the debug codec (25 frames/s at 32 kHz)


def request(name, *, model="debug", mode=Mode.TEXT, prompt="lofi piano", duration=2.0, seed=None, **kw):
    """A request for take 0 of job ``name`` (or the take a ``job:take`` name says)."""
    sampling = kw.pop("sampling", None) or SamplingParams.for_mode(mode)
    job_id, _, take = name.rpartition(":") if ":" in name else (name, "", "0")
    return GenerationRequest(job_id, int(take), model, mode, prompt, duration, sampling, seed, **kw)


def assert_take(result, *, duration, channels=1):
    assert isinstance(result, GenerationResult), result
    assert result.sample_rate == SAMPLE_RATE
    assert result.audio.dtype == np.float32
    assert result.audio.ndim == 2
    assert result.audio.shape[0] == channels
    assert abs(result.audio.shape[1] - duration * SAMPLE_RATE) <= FRAME
    assert np.isfinite(result.audio).all()
    assert np.abs(result.audio).max() > 0


async def calls(engine):
    return (await engine.health()).generate_calls


async def test_four_prompts_make_four_takes_in_one_generate_call(engine):
    before = await calls(engine)
    progress = []
    batch = [request(f"batch-{i}", prompt=f"prompt number {i}") for i in range(4)]
    results = await engine.generate(batch, progress.append)
    assert await calls(engine) == before + 1
    assert [r.request_id for r in results] == [r.request_id for r in batch]
    for result in results:
        assert_take(result, duration=2.0)
        assert result.batch_size == 4
    assert len({r.seed for r in results}) == 1  # one call, one seed
    assert not np.array_equal(results[0].audio, results[1].audio)
    for r in batch:
        last = [p for p in progress if p.request_id == r.request_id][-1]
        assert last.done_steps == last.total_steps == results[0].steps


@pytest.mark.parametrize(
    ("model", "mode", "channels", "reference_s"),
    [
        ("debug-stereo", Mode.TEXT, 2, None),
        ("debug-melody", Mode.MELODY, 1, 2.0),
        ("debug-style", Mode.STYLE, 1, 3.5),
        ("debug", Mode.CONTINUATION, 1, 1.0),
        ("debug-stereo", Mode.CONTINUATION, 2, 1.0),
        ("debug", Mode.UNCONDITIONAL, 1, None),
    ],
)
async def test_every_mode_and_model_family_makes_audio_of_the_right_shape(
    engine, noise, model, mode, channels, reference_s
):
    audio = None if reference_s is None else noise(reference_s)
    prompt = "" if mode == Mode.UNCONDITIONAL else "dreamy synth"
    rows = [
        request(
            f"{model}-{mode}-{i}",
            model=model,
            mode=mode,
            prompt=prompt,
            duration=2.0,
            audio=audio,
            audio_sample_rate=None if audio is None else SAMPLE_RATE,
        )
        for i in range(2)
    ]
    results = await engine.generate(rows)
    for result in results:
        assert_take(result, duration=2.0, channels=channels)
        assert result.batch_size == 2


async def test_memory_budget_keeps_at_most_three_debug_models(engine):
    health = await engine.health()
    assert health.alive
    assert health.device == "cpu"
    assert 1 <= len(health.loaded_models) <= 3
    assert health.loaded_models[-1] == "debug"  # the most recently used stays


async def test_long_form_beyond_the_model_window(engine, noise):
    # Debug models have a 4 s window: 6 s needs windows (extend_stride), for text and style alike.
    text, style = (
        await engine.generate([request("long-text", duration=6.0)]),
        await engine.generate(
            [
                request(
                    "long-style",
                    model="debug-style",
                    mode=Mode.STYLE,
                    duration=6.0,
                    audio=noise(3.0),
                    audio_sample_rate=SAMPLE_RATE,
                )
            ]
        ),
    )
    assert_take(text[0], duration=6.0)
    assert_take(style[0], duration=6.0)


async def test_an_explicit_seed_reproduces_the_take_and_the_used_seed_is_returned(engine):
    first, second, other = [
        (await engine.generate([request(f"seed-{i}", seed=seed)]))[0] for i, seed in enumerate((42, 42, 43))
    ]
    assert first.seed == second.seed == 42
    np.testing.assert_array_equal(first.audio, second.audio)
    assert not np.array_equal(first.audio, other.audio)
    unseeded = (await engine.generate([request("seed-random")]))[0]
    again = (await engine.generate([request("seed-again", seed=unseeded.seed)]))[0]
    np.testing.assert_array_equal(unseeded.audio, again.audio)


async def test_seeded_requests_run_alone_even_in_one_batch(engine):
    before = await calls(engine)
    results = await engine.generate([request("alone-1", seed=1), request("alone-2", seed=2)])
    assert await calls(engine) == before + 2
    assert [r.batch_size for r in results] == [1, 1]
    assert [r.seed for r in results] == [1, 2]


async def test_a_bad_request_is_rejected_without_sinking_its_batch(engine, noise):
    short_style = request(
        "bad-style", model="debug-style", mode=Mode.STYLE, audio=noise(1.0), audio_sample_rate=SAMPLE_RATE
    )
    results = await engine.generate([request("good"), short_style, request("good", prompt="twice")])
    assert_take(results[0], duration=2.0)
    assert isinstance(results[1], RequestRejectedError)
    assert results[1].user_error
    assert "excerpt" in str(results[1])
    assert isinstance(results[2], RequestRejectedError)
    assert "twice" in str(results[2])


async def _wait_for_progress(progress, count=1):
    for _ in range(600):
        if len(progress) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no progress from the engine")


async def test_cancelling_every_request_stops_the_running_batch(engine):
    progress = []
    rows = [request(f"slow-cancel-{i}", duration=4.0) for i in range(2)]  # about 5 s at 0.05 s a step
    task = asyncio.create_task(engine.generate(rows, progress.append))
    await _wait_for_progress(progress)
    cancelled_at = time.monotonic()
    await engine.cancel_batch()
    results = await task
    assert time.monotonic() - cancelled_at < 1.0
    assert all(isinstance(r, GenerationCancelledError) for r in results)
    # The worker really stopped: it is idle long before the 5 s the batch needed, at the last seen step.
    assert await engine.wait_idle(3.0)
    assert max(p.done_steps for p in progress) < progress[-1].total_steps
    assert_take((await engine.generate([request("after-cancel", duration=1.0)]))[0], duration=1.0)


async def test_cancelling_one_request_drops_only_its_row(engine):
    progress = []
    rows = [request(f"slow-one-{i}", duration=1.0) for i in range(2)]
    task = asyncio.create_task(engine.generate(rows, progress.append))
    await _wait_for_progress(progress)
    await engine.cancel(rows[0].request_id)
    results = await task
    assert isinstance(results[0], GenerationCancelledError)
    assert_take(results[1], duration=1.0)


async def test_a_cancel_that_reaches_the_worker_after_its_batch_does_not_hit_a_retry_with_the_same_id(engine):
    first = await engine.generate([request("retried-job:0", duration=1.0)])
    assert_take(first[0], duration=1.0)
    # A shutdown's cancel that arrives once the batch is over (the job is retried after the restart).
    await asyncio.to_thread(engine._send, engine._worker, CancelRequests(("retried-job:0",)))
    again = await engine.generate([request("retried-job:0", duration=1.0)])
    assert_take(again[0], duration=1.0)


async def test_out_of_memory_splits_the_batch_and_delivers_all_four(engine):
    before = await calls(engine)
    results = await engine.generate([request(f"oom-{i}", prompt=f"p{i}") for i in range(4)])
    for result in results:
        assert_take(result, duration=2.0)
        assert result.batch_size == 2
    assert await calls(engine) == before + 3  # the failed call of 4, then two halves


async def test_an_error_fails_the_batch_clearly_and_the_worker_stays(engine):
    pid = engine.worker_pid
    results = await engine.generate([request("error-1"), request("error-2")])
    for result in results:
        assert isinstance(result, EngineError)
        assert not result.retriable
        assert "injected failure" in str(result)
    assert_take((await engine.generate([request("after-error", duration=1.0)]))[0], duration=1.0)
    assert engine.worker_pid == pid


async def test_a_killed_worker_is_noticed_and_replaced(engine):
    restarts = engine.restarts
    progress = []
    task = asyncio.create_task(
        engine.generate([request(f"slow-kill-{i}", duration=4.0) for i in range(2)], progress.append)
    )
    await _wait_for_progress(progress)
    pid = engine.worker_pid
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    results = await task
    assert time.monotonic() - killed_at < 2.0
    for result in results:
        assert isinstance(result, EngineError)
        assert result.retriable
        assert "signal 9" in str(result)
    assert_take((await engine.generate([request("after-kill", duration=1.0)]))[0], duration=1.0)
    assert engine.worker_pid not in (None, pid)
    assert engine.restarts == restarts + 1


async def test_a_hung_worker_is_killed_by_the_watchdog(engine):
    saved = engine.config
    engine.config = dataclasses.replace(saved, watchdog_base_s=0.5, watchdog_factor=0.5)
    try:
        results = await engine.generate([request("hang-1", duration=1.0)])
    finally:
        engine.config = saved
    assert isinstance(results[0], EngineError)
    assert results[0].retriable
    assert "did not finish within 1 s" in str(results[0])
    assert_take((await engine.generate([request("after-hang", duration=1.0)]))[0], duration=1.0)


async def test_a_caller_that_gives_up_stops_the_worker_too(engine):
    progress = []
    task = asyncio.create_task(engine.generate([request("slow-abandoned", duration=4.0)], progress.append))
    await _wait_for_progress(progress)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await engine.wait_idle(3.0)
    assert_take((await engine.generate([request("after-abandon", duration=1.0)]))[0], duration=1.0)
