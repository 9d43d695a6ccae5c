"""What the worker needs before it knows its models: devices, the model cache, what one call returns.

Imports torch but not audiocraft (about 10 s on a CPU machine): audiocraft is imported with the first
MusicGen model, so a worker that only splits stems starts in about a third of the time.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
import torch

from bot.engine.registry import get_model_spec
from bot.engine.worker.lru import ModelLRU

if TYPE_CHECKING:
    from audiocraft.models import MusicGen
    from demucs.apply import BagOfModels

log = logging.getLogger("jamgen.engine.worker")

# What the cache holds: a MusicGen, or a demucs bag of models for a separator.
LoadedModel: TypeAlias = "MusicGen | BagOfModels"
StepCallback = Callable[[int, int], None]


@dataclass
class CallOutput:
    """What one generate call (or separation) made.

    Args:
        audio: one float32 [channels, samples] array per row, in row order ([stems, channels, samples] for stems).
        sample_rate: of the audio.
        steps: decoding steps the call took (a separation's progress units).
        elapsed_s: wall time of the call.
        stems: a separation's stem names; empty for takes.
    """

    audio: list[np.ndarray]
    sample_rate: int
    steps: int
    elapsed_s: float
    stems: tuple[str, ...] = ()


def select_device(requested: str) -> torch.device:
    """The device to run on.

    Args:
        requested: ``auto``, ``cuda`` or ``cpu``.

    Raises:
        RuntimeError: ``cuda`` was asked for but there is no usable GPU.
    """
    if requested == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        # Plain "cuda" (not "cuda:0"): audiocraft's conditioners pass the device string to autocast.
        return torch.device("cuda")
    if requested == "cuda":
        raise RuntimeError("JAMGEN_DEVICE is 'cuda' but torch sees no usable CUDA GPU (set it to 'auto' or 'cpu').")
    return torch.device("cpu")


def describe_device(device: torch.device) -> str:
    """``cuda:0 (NVIDIA H100 80GB HBM3, 79 GB)`` or ``cpu``."""
    if device.type != "cuda":
        return "cpu"
    props = torch.cuda.get_device_properties(device)
    return f"cuda:{device.index or 0} ({props.name}, {props.total_memory / 2**30:.0f} GB)"


def device_memory_gb(device: torch.device) -> float:
    """Total memory of the device in GiB (RAM for the CPU)."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory / 2**30
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return 16.0


def device_free_gb(device: torch.device) -> float | None:
    """Free memory on a CUDA device in GiB (None for the CPU)."""
    return torch.cuda.mem_get_info(device)[0] / 2**30 if device.type == "cuda" else None


def free_memory(device: torch.device) -> None:
    """Give cached device memory back after a model leaves or memory ran out."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether an exception means the device (or RAM) ran out of memory."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def is_unavailable(exc: BaseException) -> bool:
    """Whether a loading error means 'weights missing and not downloadable' (network, offline, 404)."""
    module = type(exc).__module__ or ""
    return isinstance(exc, OSError | ConnectionError | TimeoutError) or module.startswith(
        ("huggingface_hub", "requests", "httpx", "urllib3")
    )


class ModelCache:
    """Loaded models, least recently used evicted first when the memory budget would be exceeded.

    Args:
        device: where models run.
        budget_gb: GiB for models (0 = 80% of the device's memory).
        model_dir: ``JAMGEN_MODEL_DIR``.
        huge_pages: on the CPU, move each loaded LM's weights onto huge pages (``models.place_on_huge_pages``;
            not a separator's: demucs is compute-bound, the decode loop is not).
    """

    def __init__(self, device: torch.device, budget_gb: float, model_dir: Path, huge_pages: bool = False) -> None:
        self.device = device
        self.model_dir = model_dir
        self.huge_pages = huge_pages
        budget = budget_gb if budget_gb > 0 else 0.8 * device_memory_gb(device)
        self.lru: ModelLRU[LoadedModel] = ModelLRU(budget, on_evict=self._evicted)

    def _evicted(self, name: str, model: LoadedModel) -> None:
        log.info("unloading model %s to make room", name)
        del model
        free_memory(self.device)

    @property
    def names(self) -> tuple[str, ...]:
        """Loaded models, least recently used first."""
        return self.lru.names

    def get(self, name: str) -> LoadedModel:
        """The loaded model (a separator's demucs bag for ``Mode.STEMS``), loading it (and evicting others) when needed.

        Args:
            name: registry name.

        Raises:
            ModelUnavailableError: unknown model, or weights missing and not downloadable.
        """
        loaded = self.lru.get(name)
        if loaded is not None:
            return loaded
        spec = get_model_spec(name)
        self.lru.make_room(spec.vram_gb)
        if self.lru.used_gb + spec.vram_gb > self.lru.budget_gb:
            log.warning("model %s (%.1f GB) is larger than the memory budget; loading it anyway", name, spec.vram_gb)
        model: LoadedModel
        if spec.separator:
            from bot.engine.worker.separate import build_debug_separator, load_real_separator

            model = (
                build_debug_separator(spec, self.device)
                if spec.debug
                else load_real_separator(spec, self.model_dir, self.device)
            )
        else:
            # audiocraft is imported here, on the first MusicGen model: a worker that only splits stems starts
            # in a third of the time.
            from bot.engine.worker import models

            musicgen = (
                models.build_debug_model(spec, self.device)
                if spec.debug
                else models.load_real_model(spec, self.model_dir, self.device)
            )
            if self.huge_pages:
                moved = models.place_on_huge_pages(musicgen.lm)
                if moved:
                    log.info("model %s: %.2f GB of weights on huge pages", name, moved / 1e9)
            model = musicgen
        self.lru.put(name, model, spec.vram_gb)
        return model


__all__ = [
    "CallOutput",
    "LoadedModel",
    "ModelCache",
    "StepCallback",
    "describe_device",
    "device_free_gb",
    "device_memory_gb",
    "free_memory",
    "is_out_of_memory",
    "is_unavailable",
    "select_device",
]
