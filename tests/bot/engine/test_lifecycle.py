"""An engine built from jamgen's settings: warm-up, restart, close (its own worker, not the shared one)."""

import asyncio
import logging

import pytest

from bot.config import Settings
from bot.engine.client import CPU_WARNING, EngineClient
from bot.engine.types import EngineError, GenerationRequest, Mode

pytestmark = pytest.mark.slow


async def _warm(engine, model):
    # The worker imports audiocraft when it loads its first MusicGen model (about 9 s here), within this wait.
    for _ in range(600):
        health = await engine.health()
        if model in health.loaded_models:
            return health
        await asyncio.sleep(0.05)
    raise AssertionError(f"{model} was not warmed up")


async def test_warmup_restart_and_close(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="jamgen.engine")
    settings = Settings.from_env(
        {
            "JAMGEN_DEVICE": "cpu",
            "JAMGEN_DEFAULT_MODEL": "debug-stereo",
            "JAMGEN_DEBUG_MODELS": "true",
            "JAMGEN_WARMUP": "true",
            "JAMGEN_MODEL_DIR": str(tmp_path),
        }
    )
    engine = EngineClient.from_settings(settings)
    assert engine.config.warmup_model == "debug-stereo"
    assert not (await engine.health()).alive  # nothing started yet
    await engine.start()
    first = await _warm(engine, "debug-stereo")
    assert (first.alive, first.device, first.restarts) == (True, "cpu", 0)

    await engine.restart()
    second = await _warm(engine, "debug-stereo")
    assert second.restarts == 1
    assert second.pid != first.pid
    assert [r.getMessage() for r in caplog.records].count(CPU_WARNING) == 1

    await engine.close()
    assert not (await engine.health()).alive
    with pytest.raises(EngineError, match="shut down"):
        await engine.generate([GenerationRequest("late", 0, "debug", Mode.TEXT, "x", 1.0)])


async def test_debug_models_are_refused_when_settings_hide_them(tmp_path):
    engine = EngineClient.from_settings(Settings.from_env({"JAMGEN_MODEL_DIR": str(tmp_path)}))
    results = await engine.generate([GenerationRequest("hidden", 0, "debug", Mode.TEXT, "x", 1.0)])
    assert "switched off" in str(results[0])
    assert not (await engine.health()).alive  # a rejected batch starts no worker
    await engine.close()
