import numpy as np
import pytest

from bot.engine.registry import get_model_spec
from bot.engine.types import GenerationRequest, Mode, ModelUnavailableError, SamplingParams
from bot.engine.validation import (
    CLI_OPTIONS,
    DISCORD_OPTIONS,
    continuation_cut_note,
    continuation_prompt_seconds,
    fit_style_to_clip,
    resolve_model,
    style_seconds_heard,
    validate_request,
)
from bot.errors import UserInputError


def _audio(seconds, rate=32000, channels=1):
    return np.zeros((channels, int(seconds * rate)), dtype=np.float32)


def _req(mode=Mode.TEXT, model="debug", duration=2.0, audio=None, sampling=None, seed=None):
    return GenerationRequest(
        "r",
        0,
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


def test_a_style_excerpt_under_the_models_minimum_is_explained():
    request = _req(Mode.STYLE, "debug-style", audio=_audio(1.0))
    with pytest.raises(UserInputError, match=r"style excerpt is 1\.00 s long; the style model needs at least 1\.5 s"):
        validate_request(request, max_duration=120)


@pytest.mark.parametrize(("clip", "heard"), [(2.0, 2.0), (1.5, 1.5), (2.349, 2.34), (3.0, 3.0), (5.0, 3.0)])
def test_the_style_model_listens_to_the_excerpt_length_or_all_a_shorter_clip_has(clip, heard):
    assert style_seconds_heard(3.0, clip) == heard


def test_a_short_style_clip_is_fitted_with_a_note_in_the_words_of_each_surface():
    asked = SamplingParams.for_mode(Mode.STYLE)
    bot = fit_style_to_clip(asked, 2.0, DISCORD_OPTIONS)
    assert bot.sampling == SamplingParams.for_mode(Mode.STYLE, excerpt_length=2.0)
    assert bot.note == (
        "This clip has 2.0 s of audio, so the style model listens to the 2.0 s it has "
        "(`excerpt_length:` asked for 3 s)."
    )
    assert "(--excerpt-length asked for 3 s)" in fit_style_to_clip(asked, 2.0, CLI_OPTIONS).note
    # The fitted request passes the engine's own check: the rule and the check agree.
    validate_request(_req(Mode.STYLE, "debug-style", audio=_audio(2.0), sampling=bot.sampling), max_duration=120)
    assert fit_style_to_clip(asked, 4.0, DISCORD_OPTIONS) == fit_style_to_clip(asked, 3.0, DISCORD_OPTIONS)
    assert fit_style_to_clip(asked, 4.0, DISCORD_OPTIONS).note == ""


def test_an_unfitted_short_style_clip_is_refused_naming_the_option_of_the_surface():
    request = _req(Mode.STYLE, "debug-style", audio=_audio(2.0))
    with pytest.raises(UserInputError, match=r"set `excerpt_length:` to 2 or less"):
        validate_request(request, max_duration=120)
    with pytest.raises(UserInputError, match=r"set --excerpt-length to 2 or less"):
        validate_request(request, max_duration=120, names=CLI_OPTIONS)


@pytest.mark.parametrize(
    ("overrides", "bot_message", "cli_message"),
    [
        ({"eval_q": 7}, "`eval_q:` must be 1-6", "--eval-q must be 1-6"),
        ({"excerpt_length": 5.0}, "`excerpt_length:` must be 1.5-4.5", "--excerpt-length must be 1.5-4.5"),
        ({"top_k": -1}, "`top_k:` must be 0 or more", "--top-k must be 0 or more"),
    ],
)
def test_style_parameters_are_range_checked_naming_the_option(overrides, bot_message, cli_message):
    request = _req(
        Mode.STYLE, "debug-style", audio=_audio(5.0), sampling=SamplingParams.for_mode(Mode.STYLE, **overrides)
    )
    with pytest.raises(UserInputError, match=bot_message):
        validate_request(request, max_duration=120)
    with pytest.raises(UserInputError, match=cli_message):
        validate_request(request, max_duration=120, names=CLI_OPTIONS)


def test_an_excerpt_length_out_of_range_is_left_for_the_check_not_fitted_to_a_short_clip():
    asked = SamplingParams.for_mode(Mode.STYLE, excerpt_length=5.0)
    assert fit_style_to_clip(asked, 2.0, CLI_OPTIONS) == fit_style_to_clip(asked, 9.0, CLI_OPTIONS)
    assert fit_style_to_clip(asked, 2.0, CLI_OPTIONS).sampling.excerpt_length == 5.0


def test_a_mode_the_model_cannot_do_names_what_it_can():
    with pytest.raises(ModelUnavailableError, match="cannot make melody takes; it can do: continuation, text"):
        validate_request(_req(Mode.MELODY, audio=_audio(2.0)), max_duration=120)


def test_duration_above_the_limit_is_refused():
    with pytest.raises(UserInputError, match="at most 30 seconds"):
        validate_request(_req(duration=31), max_duration=30)
    with pytest.raises(UserInputError, match="^--duration must be more than 0"):
        validate_request(_req(duration=31), max_duration=30, names=CLI_OPTIONS)


def test_continuation_prompt_must_leave_room_for_new_audio():
    with pytest.raises(UserInputError, match=r"the take \(2 s, the prompt included\) must be longer"):
        validate_request(_req(Mode.CONTINUATION, audio=_audio(2.5)), max_duration=120)


def test_a_continuation_prompt_fits_three_quarters_of_the_models_window():
    debug, small = get_model_spec("debug"), get_model_spec("small")
    assert continuation_prompt_seconds(debug) == 3.0
    assert continuation_prompt_seconds(small) == 10.0
    validate_request(_req(Mode.CONTINUATION, duration=8.0, audio=_audio(3.0)), max_duration=120)
    with pytest.raises(UserInputError, match=r"model 'debug' continues from at most 3 s"):
        validate_request(_req(Mode.CONTINUATION, duration=8.0, audio=_audio(3.5)), max_duration=120)


def test_a_continuation_cut_to_the_window_says_so_and_only_then():
    debug, small = get_model_spec("debug"), get_model_spec("small")
    assert continuation_cut_note(debug, 6.0, 3.0) == (
        "Model 'debug' hears 4 s at a time, so it continues from the last 3.0 s of your 6.0 s, leaving room in "
        "that window for new music."
    )
    assert continuation_cut_note(debug, 2.5, 2.5) == ""
    assert continuation_cut_note(small, 40.0, 10.0) == ""  # the usual last 10 s


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
