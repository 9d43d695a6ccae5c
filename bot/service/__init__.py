"""The jam service: queue, fairness, batching, progress, delivery (no Discord, no torch)."""

from bot.engine.types import Mode, SamplingParams
from bot.service.jam import Deliverer, Delivery, DeliveryError, JamService, RenderedTake, ServiceConfig
from bot.service.requests import (
    AudioInput,
    JamRequest,
    JobNotFoundError,
    JobUpdate,
    NotYourJobError,
    Phase,
    QueueFullError,
    Receipt,
    ServiceClosingError,
)
from bot.store import Job, JobState

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
    "Phase",
    "QueueFullError",
    "Receipt",
    "RenderedTake",
    "SamplingParams",
    "ServiceClosingError",
    "ServiceConfig",
]
