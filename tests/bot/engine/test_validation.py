import numpy as np
import pytest

from bot.engine.types import GenerationRequest, Mode, ModelUnavailableError, SamplingParams
from bot.engine.validation import resolve_model, validate_request
from bot.errors import UserInputError


def _audio(seconds, rate=32000, channels=1):
    return np.zeros((channels, int(seconds * rate)), dtype=np.float32)


def _req(mode=Mode.TEXT, model="debug", duration=2.0, audio=None, sampling=None, seed=None):
    return GenerationRequest(
        "r",
        model,
        mode,
        "prompt",
        duration,
        sampling or SamplingParams.for_mode(mode),
        seed,
        audio,
        None if audio is None else 32000,
    )


def test_a_plain_request_passes_and_returns_its_spec():
    assert validate_request(_req(), max_duration=120).name == "debug"


def test_style_excerpt_shorter_than_the_excerpt_length_is_explained():
    request = _req(Mode.STYLE, "debug-style", audio=_audio(1.0))
    with pytest.raises(UserInputError, match=r"style excerpt is 1\.0 s long .* listens to 3 s"):
        validate_request(request, max_duration=120)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"eval_q": 7}, "eval_q must be 1-6"), ({"excerpt_length": 5.0}, "excerpt length must be 1.5-4.5")],
)
def test_style_parameters_are_range_checked(overrides, message):
    request = _req(
        Mode.STYLE, "debug-style", audio=_audio(5.0), sampling=SamplingParams.for_mode(Mode.STYLE, **overrides)
    )
    with pytest.raises(UserInputError, match=message):
        validate_request(request, max_duration=120)


def test_a_mode_the_model_cannot_do_names_what_it_can():
    with pytest.raises(ModelUnavailableError, match="cannot make melody takes; it can do: continuation, text"):
        validate_request(_req(Mode.MELODY, audio=_audio(2.0)), max_duration=120)


def test_duration_above_the_limit_is_refused():
    with pytest.raises(UserInputError, match="at most 30 seconds"):
        validate_request(_req(duration=31), max_duration=30)


def test_continuation_prompt_must_leave_room_for_new_audio():
    with pytest.raises(UserInputError, match="must be shorter than 2 s"):
        validate_request(_req(Mode.CONTINUATION, audio=_audio(2.5)), max_duration=120)


def test_audio_modes_need_audio():
    with pytest.raises(UserInputError, match="needs the melody"):
        validate_request(_req(Mode.MELODY, "debug-melody"), max_duration=120)


def test_bad_sampling_is_refused():
    with pytest.raises(UserInputError, match="temperature"):
        validate_request(_req(sampling=SamplingParams(temperature=0)), max_duration=120)


def test_debug_models_can_be_switched_off():
    with pytest.raises(ModelUnavailableError, match="switched off"):
        resolve_model("debug", allow_debug=False)
    assert resolve_model("small", allow_debug=False).checkpoint == "facebook/musicgen-small"


def test_style_defaults_use_double_cfg_from_the_model_card():
    style = SamplingParams.for_mode(Mode.STYLE)
    assert (style.cfg_coef, style.cfg_coef_beta) == (3.0, 5.0)
    assert SamplingParams.for_mode(Mode.TEXT).cfg_coef_beta is None
    assert SamplingParams.for_mode(Mode.STYLE, cfg_coef_beta=2.0, top_k=None).cfg_coef_beta == 2.0


def test_continuations_batch_only_with_equally_long_prompts():
    a = _req(Mode.CONTINUATION, audio=_audio(1.0))
    b = _req(Mode.CONTINUATION, audio=_audio(1.0))
    c = _req(Mode.CONTINUATION, audio=_audio(1.5))
    assert a.batch_key() == b.batch_key() != c.batch_key()
