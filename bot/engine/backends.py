"""Build the engine jamgen's settings describe: one local child, a pool of them, or Ray actors.

With the defaults (one engine, local backend) this is exactly the single :class:`EngineClient`
of earlier versions, and Ray is never imported (``tests/bot/engine/test_pool.py`` checks).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from bot.engine.client import EngineClient
from bot.engine.config import EngineConfig
from bot.engine.pool import EnginePool, local_pool
from bot.engine.protocol import EngineFaults
from bot.errors import ConfigError

if TYPE_CHECKING:
    from bot.config import Settings


def engine_from_settings(settings: Settings, *, faults: EngineFaults | None = None) -> EngineClient | EnginePool:
    """The engine for ``jamgen run``: an :class:`EngineClient`, or an :class:`EnginePool` of several.

    Args:
        settings: validated settings (``JAMGEN_ENGINES``, ``JAMGEN_ENGINE_BACKEND``, ``JAMGEN_RAY_*``).
        faults: test-only fault injection for every engine; never set in production.
    """
    config = EngineConfig.from_settings(settings)
    if settings.engine_backend == "ray":
        try:
            from bot.engine.ray_backend import RayEnginePool  # Ray is imported only when asked for
        except ImportError as exc:
            raise ConfigError(
                "JAMGEN_ENGINE_BACKEND=ray needs Ray: .venv/bin/pip install -r requirements/ray.txt "
                f"-c requirements/runtime.txt ({exc})."
            ) from exc

        return RayEnginePool(
            config,
            address=settings.ray_address,
            target=settings.engines,
            claim_timeout_s=settings.ray_wait_s,
            faults=faults,
        )
    if settings.engines <= 1:
        # Exactly today's engine (and the same constructor, which tests may wrap).
        return EngineClient.from_settings(settings) if faults is None else EngineClient(config, faults=faults)
    return local_engine_pool(config, settings.engines, faults=faults)


def local_engine_pool(config: EngineConfig, count: int, *, faults: EngineFaults | None = None) -> EnginePool:
    """``count`` local child engines; on a GPU host child ``i`` sees only GPU ``i`` (``CUDA_VISIBLE_DEVICES``).

    Args:
        config: the engine configuration shared by the children.
        count: how many children.
        faults: test-only fault injection.
    """
    gpus = config.device != "cpu"
    engines = [EngineClient(_for_child(config, index, gpus), faults=faults) for index in range(count)]
    return local_pool(engines, gpus)


def _for_child(config: EngineConfig, index: int, gpus: bool) -> EngineConfig:
    return replace(config, visible_devices=str(index)) if gpus else config
