"""Conditioning audio that does not match what was asked: fitted before anything is charged, said on the receipt.

A style clip shorter than the excerpt length is heard whole; audio to continue that does not fit the model's
window is cut to its last seconds that do. The engine here is the fake one, which checks every request the
service sends it with the real engine's ``validate_request``, as ``EngineClient`` does.
"""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from bot.engine.types import Mode, SamplingParams
from bot.service import AudioInput, JamRequest
from tests.harness import FakeEngine, build_harness

GUILD = 77
CHANNEL = 88
RATE = 32000


def wav_bytes(*parts: tuple[float, float]) -> bytes:
    """A mono 16-bit WAV of consecutive sines, each (seconds, frequency)."""
    pieces = []
    for seconds, freq in parts:
        t = np.arange(round(seconds * RATE)) / RATE
        pieces.append(0.4 * np.sin(2 * np.pi * freq * t))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((np.concatenate(pieces) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def _peak_hz(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio[0]))
    return float(np.argmax(spectrum) * RATE / audio.shape[-1])


@pytest.fixture
async def service(tmp_path):
    h = await build_harness(tmp_path, engine=FakeEngine())
    await h.service.start()
    yield h
    await h.service.close()
    await h.store.close()


async def test_a_style_clip_shorter_than_the_excerpt_length_is_heard_whole_charged_and_delivered(service):
    receipt = await service.service.submit(
        JamRequest(
            user_id=1,
            guild_id=GUILD,
            channel_id=CHANNEL,
            mode=Mode.STYLE,
            prompt="same vibe",
            model="debug-style",
            duration=2,
            sampling=SamplingParams.for_mode(Mode.STYLE),  # excerpt_length 3 s
            audio=AudioInput(data=wav_bytes((2.0, 330.0)), filename="short.wav"),
            interaction_id=555,  # /style, whose option is excerpt_length:
        )
    )
    assert receipt.cost > 0
    assert any("listens to the 2.0 s it has" in w and "`excerpt_length:` asked for 3 s" in w for w in receipt.warnings)
    job = await service.store.get_job(receipt.job_id)
    assert job.params["excerpt_length"] == 2.0
    await service.wait_settled(1)
    assert service.engine.refused == []
    assert service.deliverer.delivered_ids() == [receipt.job_id]
    (call,) = service.engine.calls
    assert call[0].sampling.excerpt_length == 2.0
    assert call[0].audio_seconds == pytest.approx(2.0)


async def test_a_style_reply_without_options_is_told_without_naming_one(service):
    receipt = await service.service.submit(
        JamRequest(
            user_id=1,
            guild_id=GUILD,
            channel_id=CHANNEL,
            mode=Mode.STYLE,
            model="debug-style",
            duration=2,
            audio=AudioInput(data=wav_bytes((2.0, 330.0))),
            reply_to_message_id=999,
        )
    )
    assert receipt.warnings == (
        "This clip has 2.0 s of audio, so the style model listens to the 2.0 s it has "
        "(it listens to 3 s of a longer one).",
    )


async def test_a_style_clip_long_enough_changes_nothing(service):
    receipt = await service.service.submit(
        JamRequest(
            user_id=1,
            guild_id=GUILD,
            channel_id=CHANNEL,
            mode=Mode.STYLE,
            model="debug-style",
            duration=2,
            sampling=SamplingParams.for_mode(Mode.STYLE),
            audio=AudioInput(data=wav_bytes((5.0, 330.0))),
        )
    )
    assert receipt.warnings == ()
    assert (await service.store.get_job(receipt.job_id)).params["excerpt_length"] == 3.0


async def test_a_continuation_longer_than_the_models_window_is_cut_to_its_last_seconds_that_fit(service):
    # The debug model hears 4 s at a time: of 6 s (4 s at 220 Hz, then 2 s at 660 Hz) it keeps the last 3 s.
    receipt = await service.service.submit(
        JamRequest(
            user_id=1,
            guild_id=GUILD,
            channel_id=CHANNEL,
            mode=Mode.CONTINUATION,
            prompt="and then",
            model="debug",
            duration=2,
            audio=AudioInput(data=wav_bytes((4.0, 220.0), (2.0, 660.0)), filename="six.wav"),
        )
    )
    assert receipt.cost == 2
    (note,) = receipt.warnings
    assert "continues from the last 3.0 s of your 6.0 s" in note
    assert "hears 4 s at a time" in note
    job = await service.store.get_job(receipt.job_id)
    assert job.params["prompt_seconds"] == pytest.approx(3.0)
    await service.wait_settled(1)
    assert service.engine.refused == []
    assert service.deliverer.delivered_ids() == [receipt.job_id]
    (call,) = service.engine.calls
    prompt = call[0].audio
    assert prompt.shape[-1] == 3 * RATE
    assert call[0].duration == pytest.approx(5.0)  # the prompt, then 2 s of new music
    # The last seconds: 1 s of the 220 Hz part, then all 2 s of the 660 Hz part.
    assert _peak_hz(prompt[:, : RATE // 2]) == pytest.approx(220, abs=3)
    assert _peak_hz(prompt[:, -RATE:]) == pytest.approx(660, abs=3)


async def test_a_continuation_on_a_30_s_model_keeps_its_last_10_s_without_a_note(service):
    receipt = await service.service.submit(
        JamRequest(
            user_id=1,
            guild_id=GUILD,
            channel_id=CHANNEL,
            mode=Mode.CONTINUATION,
            model="small",
            duration=5,
            audio=AudioInput(data=wav_bytes((25.0, 220.0))),
        )
    )
    assert receipt.warnings == ()
    assert (await service.store.get_job(receipt.job_id)).params["prompt_seconds"] == pytest.approx(10.0)
    await service.wait_settled(1)
    assert service.engine.refused == []
