"""The jam service: queue, fairness, batching, progress, delivery (no Discord, no torch).

The names below are imported on first use, so that importing one part (``bot.service.sessions``,
``bot.service.recipes`` …) does not load the whole service.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.engine.types import Mode, SamplingParams
    from bot.service.config import Paths, ServiceConfig
    from bot.service.delivery import Deliverer, Delivery, DeliveryError, RenderedTake
    from bot.service.jam import JamService
    from bot.service.recipes import Recipe
    from bot.service.requests import (
        AudioInput,
        JamRequest,
        JobUpdate,
        NotYourJobError,
        Phase,
        QueueFullError,
        Receipt,
        ServiceClosingError,
    )
    from bot.store import Job, JobNotFoundError, JobState

_HOMES = {
    "AudioInput": "bot.service.requests",
    "Deliverer": "bot.service.delivery",
    "Delivery": "bot.service.delivery",
    "DeliveryError": "bot.service.delivery",
    "JamRequest": "bot.service.requests",
    "JamService": "bot.service.jam",
    "Job": "bot.store",
    "JobNotFoundError": "bot.store",
    "JobState": "bot.store",
    "JobUpdate": "bot.service.requests",
    "Mode": "bot.engine.types",
    "NotYourJobError": "bot.service.requests",
    "Paths": "bot.service.config",
    "Phase": "bot.service.requests",
    "QueueFullError": "bot.service.requests",
    "Receipt": "bot.service.requests",
    "Recipe": "bot.service.recipes",
    "RenderedTake": "bot.service.delivery",
    "SamplingParams": "bot.engine.types",
    "ServiceClosingError": "bot.service.requests",
    "ServiceConfig": "bot.service.config",
}

__all__ = [
    "AudioInput",
    "Deliverer",
    "Delivery",
    "DeliveryError",
    "JamRequest",
    "JamService",
    "Job",
    "JobNotFoundError",
    "JobState",
    "JobUpdate",
    "Mode",
    "NotYourJobError",
    "Paths",
    "Phase",
    "QueueFullError",
    "Receipt",
    "Recipe",
    "RenderedTake",
    "SamplingParams",
    "ServiceClosingError",
    "ServiceConfig",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'bot.service' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
