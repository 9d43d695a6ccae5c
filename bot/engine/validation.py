"""Checks a request before it reaches the worker, with messages written for the member (no torch)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields

import numpy as np

from bot.engine.registry import ModelSpec, get_model_spec
from bot.engine.types import GenerationRequest, Mode, ModelUnavailableError, SamplingParams
from bot.errors import UserInputError

# MusicGen-Style was trained on excerpts of 1.5-4.5 s and 1-6 quantizer streams.
STYLE_EXCERPT_RANGE = (1.5, 4.5)
STYLE_EVAL_Q_RANGE = (1, 6)
# A continuation starts from the last 10 s of its audio, and from at most this share of the model's window, so
# that the window that holds the prompt still has room for new music.
CONTINUATION_PROMPT_S = 10.0
CONTINUATION_WINDOW_SHARE = 0.75
# Resampling may lose a sample; lengths within this of a limit count as meeting it.
_LENGTH_TOLERANCE_S = 1e-3
# A separation's duration is its audio's length; rows of one call must be equally long (the batch key).
STEMS_LENGTH_TOLERANCE_S = 0.01
_AUDIO_MODES = {Mode.MELODY, Mode.CONTINUATION, Mode.STYLE, Mode.STEMS}


@dataclass(frozen=True)
class OptionNames:
    """How one surface spells the options a member can change, so a message names the one to change."""

    duration: str
    top_k: str
    top_p: str
    temperature: str
    cfg: str
    cfg_beta: str
    seed: str
    eval_q: str
    excerpt_length: str


_OPTION_FIELDS = [option.name for option in fields(OptionNames)]
DISCORD_OPTIONS = OptionNames(**{name: f"`{name}:`" for name in _OPTION_FIELDS})
# A reply to a message ("style: jazzier") has no options: messages then say what happened without naming one.
MESSAGE_OPTIONS = OptionNames(**dict.fromkeys(_OPTION_FIELDS, ""))
CLI_OPTIONS = OptionNames(**{name: "--" + name.replace("_", "-") for name in _OPTION_FIELDS})


def style_seconds_heard(excerpt_length: float, clip_seconds: float) -> float:
    """How much of a style clip the style model listens to: ``excerpt_length``, or all the clip has.

    The one rule for short style clips: a clip shorter than the excerpt length asked for (but at least 1.5 s,
    which the audio room checks) gives all it has. Rounded down to 10 ms so the conditioner never asks for a
    sample more than the clip holds.

    Args:
        excerpt_length: seconds asked for (``SamplingParams.excerpt_length``).
        clip_seconds: seconds of the clip cut from the member's audio.
    """
    return min(excerpt_length, math.floor(clip_seconds * 100 + 1e-6) / 100)


@dataclass(frozen=True)
class StyleFit:
    """The sampling a style take runs with once fitted to its clip, and the note for the member if it changed.

    Args:
        sampling: the parameters with ``excerpt_length`` set to what the model listens to.
        note: one sentence for the receipt or the terminal, "" when the clip was long enough.
    """

    sampling: SamplingParams
    note: str = ""


def fit_style_to_clip(sampling: SamplingParams, clip_seconds: float, names: OptionNames) -> StyleFit:
    """Apply :func:`style_seconds_heard` before a take is charged or started, and say so when it changes anything.

    Args:
        sampling: what the member asked for.
        clip_seconds: seconds of the style clip cut from their audio.
        names: how the member's surface spells the options.
    """
    low, high = STYLE_EXCERPT_RANGE
    heard = style_seconds_heard(sampling.excerpt_length, clip_seconds)
    if heard >= sampling.excerpt_length or not low <= sampling.excerpt_length <= high:
        return StyleFit(sampling)  # long enough, or a length out of range that validate_request refuses
    asked = (
        f"{names.excerpt_length} asked for {sampling.excerpt_length:g} s"
        if names.excerpt_length
        else f"it listens to {sampling.excerpt_length:g} s of a longer one"
    )
    note = f"This clip has {heard:.1f} s of audio, so the style model listens to the {heard:.1f} s it has ({asked})."
    return StyleFit(dataclasses.replace(sampling, excerpt_length=heard), note)


def continuation_prompt_seconds(spec: ModelSpec, wanted_s: float = CONTINUATION_PROMPT_S) -> float:
    """The longest prompt a continuation on ``spec`` keeps: the last ``wanted_s``, within the model's window.

    Args:
        wanted_s: how much of the end the continuation would like to hear.
    """
    return min(wanted_s, spec.max_duration * CONTINUATION_WINDOW_SHARE)


def continuation_cut_note(spec: ModelSpec, available_s: float, kept_s: float) -> str:
    """The note for a member whose audio to continue was cut to fit the model's window ("" when it was not).

    Args:
        available_s: seconds of audio the member gave (after their own start/end).
        kept_s: seconds kept as the prompt.
    """
    if kept_s >= min(available_s, CONTINUATION_PROMPT_S) - _LENGTH_TOLERANCE_S:
        return ""
    return (
        f"Model '{spec.name}' hears {spec.max_duration:g} s at a time, so it continues from the last "
        f"{kept_s:.1f} s of your {available_s:.1f} s, leaving room in that window for new music."
    )


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


def validate_request(
    request: GenerationRequest,
    *,
    max_duration: float,
    allow_debug: bool = True,
    names: OptionNames = DISCORD_OPTIONS,
) -> ModelSpec:
    """Check everything about a request that can be checked without the model.

    Args:
        request: the take to check.
        max_duration: longest take allowed, in seconds (a separation's limit is its separator's ``max_duration``:
            the length of a member's track, not of a take).
        allow_debug: whether the ``debug*`` models are allowed.
        names: how the member's surface spells the options (the bot's slash options by default).

    Returns:
        the model's spec.

    Raises:
        UserInputError: (or ModelUnavailableError) saying what to change.
    """
    spec = resolve_model(request.model, allow_debug=allow_debug)
    if not spec.supports(request.mode):
        can = ", ".join(sorted(m.value for m in spec.modes))
        raise ModelUnavailableError(f"Model '{spec.name}' cannot make {request.mode.value} takes; it can do: {can}.")
    if request.mode == Mode.STEMS:
        if not (math.isfinite(request.duration) and 0 < request.duration <= spec.max_duration):
            raise UserInputError(
                f"Model '{spec.name}' splits tracks of more than 0 and at most {spec.max_duration:g} seconds; "
                f"this one is {request.duration:g} s."
            )
    elif not (math.isfinite(request.duration) and 0 < request.duration <= max_duration):
        raise UserInputError(f"{names.duration} must be more than 0 and at most {max_duration:g} seconds.")
    _check_sampling(request, names)
    if request.mode in _AUDIO_MODES:
        _check_audio(request, spec, names)
    return spec


def _check_sampling(request: GenerationRequest, names: OptionNames) -> None:
    s = request.sampling
    if s.top_k < 0:
        raise UserInputError(f"{names.top_k} must be 0 or more.")
    if not 0.0 <= s.top_p <= 1.0:
        raise UserInputError(f"{names.top_p} must be between 0 and 1.")
    if not (math.isfinite(s.temperature) and s.temperature > 0):
        raise UserInputError(f"{names.temperature} (the temperature) must be more than 0.")
    if not (math.isfinite(s.cfg_coef) and s.cfg_coef >= 0):
        raise UserInputError(f"{names.cfg} (the guidance) must be 0 or more.")
    if s.cfg_coef_beta is not None and not (math.isfinite(s.cfg_coef_beta) and s.cfg_coef_beta >= 0):
        raise UserInputError(f"{names.cfg_beta} (the style guidance beta) must be 0 or more.")
    if request.seed is not None and not 0 <= request.seed < 2**63:
        raise UserInputError(f"{names.seed} must be a whole number from 0 to 2^63-1.")
    if request.mode == Mode.STYLE:
        low_q, high_q = STYLE_EVAL_Q_RANGE
        if not low_q <= s.eval_q <= high_q:
            raise UserInputError(f"{names.eval_q} must be {low_q}-{high_q} (fewer follows the style more loosely).")
        low, high = STYLE_EXCERPT_RANGE
        if not low <= s.excerpt_length <= high:
            raise UserInputError(
                f"{names.excerpt_length} must be {low:g}-{high:g} seconds (the style excerpt length the model "
                "listens to)."
            )


def _check_audio(request: GenerationRequest, spec: ModelSpec, names: OptionNames) -> None:
    audio, rate = request.audio, request.audio_sample_rate
    what = {
        Mode.MELODY: "melody",
        Mode.CONTINUATION: "audio to continue",
        Mode.STYLE: "style excerpt",
        Mode.STEMS: "audio to split",
    }[request.mode]
    if audio is None or not rate or rate <= 0:
        raise UserInputError(f"A {request.mode.value} take needs the {what} as audio.")
    if audio.ndim != 2 or audio.shape[0] not in (1, 2) or audio.shape[1] == 0:
        raise UserInputError(f"The {what} must be mono or stereo audio.")
    if audio.dtype != np.float32 or not np.isfinite(audio).all():
        raise UserInputError(f"The {what} must be float32 samples without NaN or infinity.")
    seconds = request.audio_seconds
    if request.mode == Mode.STEMS and abs(seconds - request.duration) > STEMS_LENGTH_TOLERANCE_S:
        raise UserInputError(
            f"The audio to split is {seconds:.3f} s long but the request says {request.duration:.3f} s; "
            "a separation's duration is the length of its audio."
        )
    if request.mode == Mode.STYLE:
        low = STYLE_EXCERPT_RANGE[0]
        if seconds < low - _LENGTH_TOLERANCE_S:
            raise UserInputError(
                f"The style excerpt is {seconds:.2f} s long; the style model needs at least {low:g} s of it."
            )
        # Callers fit the excerpt length to the clip first (fit_style_to_clip); this only guards the rule.
        if request.sampling.excerpt_length > seconds + _LENGTH_TOLERANCE_S:
            heard = style_seconds_heard(request.sampling.excerpt_length, seconds)
            raise UserInputError(
                f"The style excerpt is {seconds:.2f} s long but the style model was asked to listen to "
                f"{request.sampling.excerpt_length:g} s of it: set {names.excerpt_length} to {heard:g} or less, "
                "or attach a longer clip."
            )
    if request.mode == Mode.CONTINUATION:
        # audiocraft keeps the prompt at the start of the output: it must leave room for new audio.
        if seconds >= request.duration:
            raise UserInputError(
                f"The audio to continue is {seconds:.1f} s long; the take ({request.duration:g} s, the prompt "
                "included) must be longer than that."
            )
        limit = continuation_prompt_seconds(spec, wanted_s=spec.max_duration)
        if seconds > limit + _LENGTH_TOLERANCE_S:
            raise UserInputError(
                f"The audio to continue is {seconds:.1f} s long; model '{spec.name}' continues from at most "
                f"{limit:g} s (it hears {spec.max_duration:g} s at a time and needs room for new music)."
            )
