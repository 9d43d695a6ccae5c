"""Messages between :class:`~bot.engine.client.EngineClient` and its worker process.

They are pickled through a ``multiprocessing`` pipe, so they hold plain data only:
strings, numbers, tuples, the request dataclasses and float32 numpy arrays, never
torch objects. Client → worker: :class:`SubmitBatch`, :class:`CancelRequests`,
:class:`LoadModel`, :class:`HealthQuery`, :class:`Shutdown`. Worker → client: everything else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bot.engine.types import GenerationRequest

# Kinds of RowError, mapped back to exceptions by the client.
ERROR_CANCELLED = "cancelled"
ERROR_OUT_OF_MEMORY = "oom"
ERROR_FAILED = "failed"
ERROR_REJECTED = "rejected"


@dataclass(frozen=True)
class EngineFaults:
    """Test-only fault injection (see docs/ENGINE.md). Production never builds one.

    It reaches the worker only as the ``faults`` argument of ``EngineClient(...)``;
    ``EngineClient.from_settings`` and the CLI never pass it, and the worker reads no
    environment variable for it, so nothing in a deployment can switch a fault on.
    Each fault fires in a generate call that contains a request whose ``request_id``
    starts with the fault's prefix (None = off), so one test engine can serve healthy
    and faulty requests.

    Args:
        oom_prefix: raise an out-of-memory error (as ``torch.OutOfMemoryError``) in calls of
            at least ``oom_min_batch`` rows; smaller calls succeed.
        oom_min_batch: smallest call that runs out of memory.
        error_prefix: raise ``RuntimeError('injected failure')`` at the first decoding step (a separation's
            first progress step, before its first segment, for this and the faults below).
        hang_prefix: stop responding at the first decoding step (sleep forever, ignoring cancel).
        crash_prefix: kill the worker with SIGKILL at the first decoding step.
        slow_prefix: sleep ``slow_step_s`` at every decoding step (to cancel or kill mid-batch).
        slow_step_s: that sleep.
    """

    oom_prefix: str | None = None
    oom_min_batch: int = 2
    error_prefix: str | None = None
    hang_prefix: str | None = None
    crash_prefix: str | None = None
    slow_prefix: str | None = None
    slow_step_s: float = 0.05


# Client -> worker


@dataclass(frozen=True)
class SubmitBatch:
    """Run these requests (the worker plans the generate calls)."""

    batch_id: int
    requests: tuple[GenerationRequest, ...]


@dataclass(frozen=True)
class CancelRequests:
    """Drop these requests; a call whose rows are all cancelled stops at its next decoding step."""

    request_ids: tuple[str, ...]


@dataclass(frozen=True)
class LoadModel:
    """Load (downloading if needed) a model into the cache, answered by :class:`ModelLoaded`."""

    query_id: int
    model: str


@dataclass(frozen=True)
class HealthQuery:
    """Ask for a :class:`HealthReply` (answered even while a batch runs)."""

    query_id: int


@dataclass(frozen=True)
class Shutdown:
    """Finish and exit."""


# Worker -> client


@dataclass(frozen=True)
class Ready:
    """The worker imported its libraries and chose the device."""

    pid: int
    device: str
    on_gpu: bool
    max_batch: int


@dataclass(frozen=True)
class StartFailed:
    """The worker cannot run (no usable device, broken install); it exits after sending this."""

    message: str


@dataclass(frozen=True)
class Stage:
    """What the worker does now, for the watchdog: ``loading`` a model or ``generating`` a call.

    Args:
        stage: ``loading`` or ``generating``.
        request_ids: rows of the call (generating).
        duration: requested seconds of audio of the call (generating).
    """

    batch_id: int
    stage: str
    request_ids: tuple[str, ...] = ()
    duration: float = 0.0


@dataclass(frozen=True)
class StepProgress:
    """Decoding progress of one generate call (shared by its rows)."""

    batch_id: int
    request_ids: tuple[str, ...]
    done_steps: int
    total_steps: int


@dataclass(frozen=True)
class RowResult:
    """One finished take ([channels, samples]), or the stems of one track ([stems, channels, samples])."""

    batch_id: int
    request_id: str
    audio: np.ndarray
    sample_rate: int
    seed: int
    elapsed_s: float
    steps: int
    batch_size: int
    stems: tuple[str, ...] = ()


@dataclass(frozen=True)
class RowError:
    """One request that did not produce a take; ``kind`` is one of the ERROR_* names."""

    batch_id: int
    request_id: str
    kind: str
    message: str
    retriable: bool = False


@dataclass(frozen=True)
class BatchDone:
    """Every row of the batch has been answered; the worker is idle again."""

    batch_id: int


@dataclass(frozen=True)
class ModelLoaded:
    """Answer to :class:`LoadModel` (``error_kind``/``error`` set when it failed)."""

    query_id: int
    model: str
    error_kind: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class HealthReply:
    """Answer to :class:`HealthQuery`."""

    query_id: int
    device: str
    loaded_models: tuple[str, ...]
    generate_calls: int
    busy: bool
