"""An attachment is read once: probed once while it is saved, decoded once at submit; its excerpt is kept
for the run and removed once the job is done."""

from __future__ import annotations

import asyncio

import bot.audio
import bot.audio.inputs
from bot.engine.types import Mode
from bot.service import AudioInput, JamRequest
from tests.harness import FakeEngine, build_harness, wav_bytes


async def test_a_melody_attachment_is_probed_and_decoded_once_from_submit_to_delivery(tmp_path, monkeypatch):
    calls = {"probe": 0, "decode": 0}
    real_probe, real_decode = bot.audio.inputs.probe, bot.audio.decode

    async def counted_probe(*args, **kwargs):
        calls["probe"] += 1
        return await real_probe(*args, **kwargs)

    async def counted_decode(*args, **kwargs):
        calls["decode"] += 1
        return await real_decode(*args, **kwargs)

    monkeypatch.setattr(bot.audio.inputs, "probe", counted_probe)
    monkeypatch.setattr(bot.audio, "decode", counted_decode)
    h = await build_harness(tmp_path, engine=FakeEngine(hold=True))
    await h.service.start()
    try:
        receipt = await h.service.submit(
            JamRequest(
                user_id=1,
                guild_id=5,
                channel_id=6,
                mode=Mode.MELODY,
                prompt="the same tune on strings",
                model="debug-melody",
                duration=2,
                audio=AudioInput(data=wav_bytes(3.0), filename="tune.wav"),
            )
        )
        await asyncio.wait_for(h.engine.started.wait(), 10)
        assert h.service.paths.excerpt(receipt.job_id).exists()  # kept for the run, not decoded again
        h.engine.release.set()
        await h.wait_settled(1)
        assert h.deliverer.delivered_ids() == [receipt.job_id]
        (call,) = h.engine.calls
        assert call[0].audio is not None
        assert calls == {"probe": 1, "decode": 1}
        assert not h.service.paths.excerpt(receipt.job_id).exists()
    finally:
        await h.close()
