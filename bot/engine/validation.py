"""Checks a request before it reaches the worker, with messages written for the member (no torch)."""

from __future__ import annotations

import math

import numpy as np

from bot.engine.registry import ModelSpec, get_model_spec
from bot.engine.types import GenerationRequest, Mode, ModelUnavailableError
from bot.errors import UserInputError

# MusicGen-Style was trained on excerpts of 1.5-4.5 s and 1-6 quantizer streams.
STYLE_EXCERPT_RANGE = (1.5, 4.5)
STYLE_EVAL_Q_RANGE = (1, 6)
_AUDIO_MODES = {Mode.MELODY, Mode.CONTINUATION, Mode.STYLE}


def resolve_model(name: str, *, allow_debug: bool) -> ModelSpec:
    """The spec of a model members may use.

    Args:
        name: registry name.
        allow_debug: whether the tiny ``debug*`` test models are allowed.

    Raises:
        ModelUnavailableError: unknown or disabled model.
    """
    spec = get_model_spec(name)
    if spec.debug and not allow_debug:
        raise ModelUnavailableError(f"The test model '{name}' is switched off here (JAMGEN_DEBUG_MODELS).")
    return spec


def validate_request(request: GenerationRequest, *, max_duration: float, allow_debug: bool = True) -> ModelSpec:
    """Check everything about a request that can be checked without the model.

    Args:
        request: the take to check.
        max_duration: longest take allowed, in seconds.
        allow_debug: whether the ``debug*`` models are allowed.

    Returns:
        the model's spec.

    Raises:
        UserInputError: (or ModelUnavailableError) saying what to change.
    """
    spec = resolve_model(request.model, allow_debug=allow_debug)
    if not spec.supports(request.mode):
        can = ", ".join(sorted(m.value for m in spec.modes))
        raise ModelUnavailableError(f"Model '{spec.name}' cannot make {request.mode.value} takes; it can do: {can}.")
    if not (math.isfinite(request.duration) and 0 < request.duration <= max_duration):
        raise UserInputError(f"The duration must be more than 0 and at most {max_duration:g} seconds.")
    _check_sampling(request)
    if request.mode in _AUDIO_MODES:
        _check_audio(request, spec)
    return spec


def _check_sampling(request: GenerationRequest) -> None:
    s = request.sampling
    if s.top_k < 0:
        raise UserInputError("top_k must be 0 or more.")
    if not 0.0 <= s.top_p <= 1.0:
        raise UserInputError("top_p must be between 0 and 1.")
    if not (math.isfinite(s.temperature) and s.temperature > 0):
        raise UserInputError("The temperature must be more than 0.")
    if not (math.isfinite(s.cfg_coef) and s.cfg_coef >= 0):
        raise UserInputError("The guidance (cfg) must be 0 or more.")
    if s.cfg_coef_beta is not None and not (math.isfinite(s.cfg_coef_beta) and s.cfg_coef_beta >= 0):
        raise UserInputError("The style guidance beta must be 0 or more.")
    if request.seed is not None and not 0 <= request.seed < 2**63:
        raise UserInputError("The seed must be a whole number from 0 to 2^63-1.")
    if request.mode == Mode.STYLE:
        low_q, high_q = STYLE_EVAL_Q_RANGE
        if not low_q <= s.eval_q <= high_q:
            raise UserInputError(f"eval_q must be {low_q}-{high_q} (fewer follows the style more loosely).")
        low, high = STYLE_EXCERPT_RANGE
        if not low <= s.excerpt_length <= high:
            raise UserInputError(f"The style excerpt length must be {low:g}-{high:g} seconds.")


def _check_audio(request: GenerationRequest, spec: ModelSpec) -> None:
    audio, rate = request.audio, request.audio_sample_rate
    what = {Mode.MELODY: "melody", Mode.CONTINUATION: "audio to continue", Mode.STYLE: "style excerpt"}[request.mode]
    if audio is None or not rate or rate <= 0:
        raise UserInputError(f"A {request.mode.value} take needs the {what} as audio.")
    if audio.ndim != 2 or audio.shape[0] not in (1, 2) or audio.shape[1] == 0:
        raise UserInputError(f"The {what} must be mono or stereo audio.")
    if audio.dtype != np.float32 or not np.isfinite(audio).all():
        raise UserInputError(f"The {what} must be float32 samples without NaN or infinity.")
    seconds = request.audio_seconds
    if request.mode == Mode.STYLE and seconds < request.sampling.excerpt_length:
        raise UserInputError(
            f"The style excerpt is {seconds:.1f} s long but the style model listens to "
            f"{request.sampling.excerpt_length:g} s of it: attach a longer clip or ask for a shorter excerpt length."
        )
    if request.mode == Mode.CONTINUATION:
        # audiocraft keeps the prompt at the start of the output: it must leave room for new audio.
        room = min(request.duration, spec.max_duration)
        if seconds >= room:
            raise UserInputError(
                f"The audio to continue is {seconds:.1f} s long; it must be shorter than {room:g} s "
                f"(the take's length, at most the model's {spec.max_duration:g} s window)."
            )
