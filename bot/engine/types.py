"""Plain-data messages between the bot and the engine worker (no torch here).

Everything that crosses the process boundary is one of these dataclasses,
holding numbers, strings and float32 numpy arrays, never torch objects.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import numpy as np

from bot.errors import InternalError, UserInputError


class Mode(StrEnum):
    """How a take is conditioned."""

    TEXT = "text"
    MELODY = "melody"
    CONTINUATION = "continuation"
    STYLE = "style"
    UNCONDITIONAL = "unconditional"
    # Not a take: a separator splits the request's audio into stems (see GenerationResult.stems).
    STEMS = "stems"


# The stems a separator makes, in htdemucs' own source order.
STEM_NAMES: tuple[str, ...] = ("drums", "bass", "other", "vocals")


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings that apply to a whole batch (requests share them to batch together).

    Args:
        top_k: sample among the k most likely tokens (0 = off).
        top_p: sample among tokens whose probabilities add up to p (0 = off; overrides top_k).
        temperature: softmax temperature; higher is wilder.
        cfg_coef: classifier-free guidance strength (how closely the prompt is followed).
        cfg_coef_beta: second guidance coefficient of MusicGen-Style's double CFG (None = single CFG).
        use_sampling: False for greedy decoding (deterministic).
        eval_q: style models: codebooks of the style excerpt used (1-6; fewer = looser).
        excerpt_length: style models: seconds of the reference the conditioner looks at.
    """

    top_k: int = 250
    top_p: float = 0.0
    temperature: float = 1.0
    cfg_coef: float = 3.0
    cfg_coef_beta: float | None = None
    use_sampling: bool = True
    eval_q: int = 3
    excerpt_length: float = 3.0

    @classmethod
    def for_mode(cls, mode: Mode, **overrides: object) -> SamplingParams:
        """The model card's defaults for ``mode``: style takes get double CFG (cfg 3, beta 5).

        Args:
            mode: how the take is conditioned.
            overrides: fields to set instead of the defaults (None values are ignored).
        """
        values: dict[str, object] = {"cfg_coef_beta": STYLE_CFG_COEF_BETA} if mode == Mode.STYLE else {}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


# MusicGen-Style's model card: double CFG with cfg_coef 3 and cfg_coef_beta 5.
STYLE_CFG_COEF_BETA = 5.0


def batch_key(
    model: str,
    mode: Mode | str,
    duration: float,
    sampling: SamplingParams,
    *,
    prompt_seconds: float = 0.0,
    seed: int | None = None,
) -> tuple[object, ...] | None:
    """The one rule for which takes may share a generate call (the service's queue and the engine's planner).

    Takes with equal keys may share a call; None means the take must run alone (an explicit seed alone
    decides its audio). Continuation prompts of one call must be equally long, so their length is part of
    the key.

    Args:
        duration: seconds the engine generates (a continuation's prompt included).
        prompt_seconds: a continuation's prompt length (ignored for other modes).
    """
    if seed is not None:
        return None
    key: tuple[object, ...] = (model, Mode(mode), round(duration, 3), sampling)
    if mode == Mode.CONTINUATION:
        key += (round(prompt_seconds, 2),)
    return key


def wire_id(job_id: str, take: int) -> str:
    """The id of take ``take`` of a job on the wire to the worker: ``<job id>:<take>``."""
    return f"{job_id}:{take}"


@dataclass
class GenerationRequest:
    """One take to generate, or one track to split into stems (``Mode.STEMS``).

    Args:
        job_id: the job it belongs to (``cli`` for `jamgen generate`).
        take: 0-based take of that job.
        model: registry name (``small``, ``debug-style`` …).
        mode: how the take is conditioned.
        prompt: text description ('' = unconditional for text mode).
        duration: seconds of audio wanted (may exceed the model's 30 s window); for stems, the length of ``audio``.
        seed: explicit seed (runs alone, reproducible) or None for a fresh one.
        audio: conditioning audio for melody/continuation/style, or the track to split (stems), float32
            [channels, samples].
        audio_sample_rate: sample rate of ``audio``.
    """

    job_id: str
    take: int
    model: str
    mode: Mode
    prompt: str
    duration: float
    sampling: SamplingParams = field(default_factory=SamplingParams)
    seed: int | None = None
    audio: np.ndarray | None = None
    audio_sample_rate: int | None = None

    @property
    def request_id(self) -> str:
        """The id on the wire to the worker, in progress reports and results (see :func:`wire_id`)."""
        return wire_id(self.job_id, self.take)

    def batch_key(self) -> tuple[object, ...] | None:
        """Requests with equal keys may share one generate call; None = must run alone (see :func:`batch_key`)."""
        return batch_key(
            self.model, self.mode, self.duration, self.sampling, prompt_seconds=self.audio_seconds, seed=self.seed
        )

    @property
    def audio_seconds(self) -> float:
        """Length of the conditioning audio in seconds (0 when there is none)."""
        if self.audio is None or not self.audio_sample_rate:
            return 0.0
        return self.audio.shape[-1] / self.audio_sample_rate


@dataclass
class GenerationResult:
    """One generated take, or the stems of one track.

    Args:
        request_id: the request it answers.
        audio: float32 [channels, samples]; for a separation [stems, channels, samples], in the order of ``stems``.
        sample_rate: of ``audio``.
        seed: the seed actually used (for the recipe). Every row of one generate call shares it and
            draws from the same random stream, so rerunning a request alone with this seed reproduces
            the take only when it was made alone (``batch_size == 1``, as explicit seeds always are);
            a batched take is reproduced only by the same batch (same rows, same order) with this seed.
            Reproduction holds on the same machine and software (GPU kernels may differ elsewhere).
            A separation is deterministic and draws nothing: its seed is 0.
        elapsed_s: wall time of the generate call that made it.
        steps: decoding steps of that call (for ETA estimates); for a separation, progress units
            (``ModelSpec.frame_rate`` per second of audio).
        batch_size: how many requests shared the call.
        stems: the stem names of a separation (:data:`STEM_NAMES` for htdemucs); empty for a take.
    """

    request_id: str
    audio: np.ndarray
    sample_rate: int
    seed: int
    elapsed_s: float
    steps: int
    batch_size: int
    stems: tuple[str, ...] = ()

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return self.audio.shape[-1] / self.sample_rate


@dataclass(frozen=True)
class Progress:
    """Decoding progress of one request.

    Args:
        done_steps: steps done so far (over all windows of a long generation).
        total_steps: steps in all.
    """

    request_id: str
    done_steps: int
    total_steps: int

    @property
    def fraction(self) -> float:
        """0..1."""
        return 0.0 if self.total_steps <= 0 else min(1.0, self.done_steps / self.total_steps)


class EngineError(InternalError):
    """The engine could not make a take. ``retriable`` says whether trying again may work.

    Args:
        message: user-facing sentence.
        retriable: True when the worker crashed/was restarted, or memory ran out.
    """

    def __init__(self, message: str, *, retriable: bool = False) -> None:
        super().__init__(message)
        self.retriable = retriable


class RequestRejectedError(EngineError):
    """The request cannot be served as asked (the member's mistake, never charged).

    Returned in place of a result for a request with a bad parameter, a mode its model
    cannot do, or a model whose weights are missing; ``str()`` says what to change.

    Args:
        message: user-facing sentence.
    """

    user_error = True

    def __init__(self, message: str) -> None:
        super().__init__(message, retriable=False)


class GenerationCancelledError(EngineError):
    """The request was cancelled before it finished."""

    def __init__(self, message: str = "The take was cancelled.") -> None:
        super().__init__(message, retriable=False)


class ModelUnavailableError(UserInputError):
    """The model is unknown, disabled, cannot do the mode, or its weights are missing."""


@dataclass(frozen=True)
class EngineHealth:
    """What ``/jam status`` and ``jamgen doctor`` show about the engine.

    Args:
        alive: the worker answers.
        device: ``cuda:0 (NVIDIA H100, 80 GB)`` or ``cpu``.
        loaded_models: names of models in memory.
        restarts: how many times the worker was restarted.
        pid: the worker's process id.
        generate_calls: model generate calls the current worker has made (failed ones included).
        busy: the worker is running a batch.
    """

    alive: bool
    device: str
    loaded_models: tuple[str, ...]
    restarts: int
    pid: int | None
    generate_calls: int = 0
    busy: bool = False


ProgressCallback = Callable[[Progress], Awaitable[None] | None]


class Engine(Protocol):
    """What the service needs from an engine (the real worker client, or a fake in tests)."""

    async def generate(
        self, batch: Sequence[GenerationRequest], on_progress: ProgressCallback | None = None
    ) -> list[GenerationResult | EngineError]:
        """Run one batch; one result or error per request, in order."""
        ...

    async def cancel(self, request_id: str) -> None:
        """Cancel one request (its result becomes GenerationCancelledError)."""
        ...

    async def health(self) -> EngineHealth:
        """Current state of the worker."""
        ...

    async def close(self) -> None:
        """Stop the worker."""
        ...
