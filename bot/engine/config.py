"""How the engine runs: device, memory, batch size, watchdog (plain data, no torch)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.config import Settings

# A generation may take this long before the watchdog looks at its length (loading, warm-up, decode).
WATCHDOG_BASE_S = 60.0


@dataclass(frozen=True)
class EngineConfig:
    """Settings the engine worker needs; build from jamgen's settings with :meth:`from_settings`.

    Args:
        device: ``auto`` (CUDA when present, else CPU), ``cuda`` or ``cpu``.
        model_dir: local weights, ``<model_dir>/<name>/state_dict.bin`` + ``compression_state_dict.bin``.
        memory_budget_gb: GiB that loaded models may take together (0 = 80% of the device's memory).
        max_batch: most requests in one generate call (0 = 4 on CPU, 8 on GPU).
        watchdog_factor: a generate call is killed after ``watchdog_base_s + factor × duration`` seconds.
        watchdog_base_s: the fixed part of that timeout.
        warmup_model: model loaded as soon as the worker starts (None = load on first use).
        allow_debug_models: whether the tiny random ``debug*`` models may be used.
        max_duration: longest take in seconds (long form is made in windows up to this).
        start_timeout_s: how long the worker may take to start (imports torch and audiocraft).
        load_timeout_s: how long loading (or downloading) one model may take.
        log_level: the worker's log level.
        cpu_threads: torch threads on the CPU (0 = torch's default, every core); 1 keeps a shared machine calm.
        huge_pages: on the CPU, keep the LM's weights on transparent huge pages (faster decoding).
        cpu_matmul: on the CPU, the kernels of the decoding step's products (``DecodeOptions.cpu_matmul``).
        visible_devices: ``CUDA_VISIBLE_DEVICES`` for the worker (``"1"``: it sees only GPU 1, as ``cuda``);
            None = inherit the bot's. Set per child by a pool of local engines.
    """

    device: str = "auto"
    model_dir: Path = Path("./models")
    memory_budget_gb: float = 0.0
    max_batch: int = 0
    watchdog_factor: float = 30.0
    watchdog_base_s: float = WATCHDOG_BASE_S
    warmup_model: str | None = None
    allow_debug_models: bool = True
    max_duration: float = 120.0
    start_timeout_s: float = 180.0
    load_timeout_s: float = 1800.0
    log_level: str = "INFO"
    cpu_threads: int = 0
    huge_pages: bool = True
    cpu_matmul: str = "onednn"
    visible_devices: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, warmup: bool | None = None) -> EngineConfig:
        """The engine configuration jamgen's settings describe.

        Args:
            settings: validated settings.
            warmup: override ``settings.warmup`` (the CLI loads only the model it needs).
        """
        do_warmup = settings.warmup if warmup is None else warmup
        return cls(
            device=settings.device,
            model_dir=settings.model_dir,
            memory_budget_gb=settings.model_memory_gb,
            max_batch=settings.max_batch,
            watchdog_factor=settings.watchdog_factor,
            warmup_model=settings.default_model if do_warmup else None,
            allow_debug_models=settings.debug_models,
            max_duration=float(settings.max_duration),
            log_level=settings.log_level,
            cpu_threads=settings.cpu_threads,
            huge_pages=settings.huge_pages,
            cpu_matmul=settings.cpu_matmul,
        )

    def batch_limit(self, on_gpu: bool) -> int:
        """Most requests in one generate call on this device.

        Args:
            on_gpu: whether the worker runs on CUDA.
        """
        if self.max_batch > 0:
            return self.max_batch
        return 8 if on_gpu else 4

    def watchdog_timeout(self, duration: float) -> float:
        """Seconds one generate call of ``duration`` seconds of audio may take before it is killed.

        Args:
            duration: requested seconds of audio.
        """
        return self.watchdog_base_s + self.watchdog_factor * duration
