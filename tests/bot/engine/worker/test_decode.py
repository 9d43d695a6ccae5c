"""jamgen's decode loop makes exactly audiocraft's tokens, faster (tiny random models on the CPU; no timings).

With audiocraft's kernels (``cpu_matmul="mkl"``) the tokens are bit-identical; with oneDNN's (the
CPU default) every step's logits are audiocraft's to within rounding.
"""

import functools

import numpy as np
import pytest
import torch
from audiocraft.models.lm import LMModel

from bot.engine.decoding import DecodeOptions
from bot.engine.registry import get_model_spec
from bot.engine.types import GenerationRequest, Mode, SamplingParams
from bot.engine.worker import decode, kernels
from bot.engine.worker.generate import run_call
from bot.engine.worker.models import build_debug_model, seed_everything
from bot.engine.worker.sizes import ModelShape, build_sized_model

CPU = torch.device("cpu")
RATE = 32000
# audiocraft's own kernels for the step's products: what bit-identity is checked with.
EXACT = DecodeOptions(cpu_matmul="mkl")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Kernels (and so the last bits of a float) can depend on the thread count: keep it fixed."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model():
    """Models by name, built once per module: the debug families, and real configurations at tiny size."""
    built = {}
    shapes = {
        # The released MusicGen configuration (SDPA attention, pre-norm, no biases, text by cross-attention) ...
        "tiny-text": ModelShape("tiny-text", dim=64, num_heads=4, num_layers=2),
        # ... and musicgen-melody's (chroma and text both prepended, no cross-attention).
        "tiny-melody": ModelShape("tiny-melody", dim=64, num_heads=4, num_layers=2, melody=True),
    }

    def get(name):
        if name not in built:
            built[name] = (
                build_sized_model(shapes[name], CPU) if name in shapes else build_debug_model(get_model_spec(name), CPU)
            )
        return built[name]

    return get


@pytest.fixture
def step_calls(monkeypatch):
    """How many one-token steps jamgen's loop computed (so that a silent fallback cannot pass a test)."""
    calls = []
    original = decode._StepModel.logits

    def counted(self, tokens):
        calls.append(tokens.shape)
        return original(self, tokens)

    monkeypatch.setattr(decode._StepModel, "logits", counted)
    return calls


def reference(seconds, channels=1, seed=7):
    rng = np.random.default_rng(seed)
    return torch.from_numpy((0.1 * rng.standard_normal((channels, int(seconds * RATE)))).astype(np.float32))


def make_tokens(model, mode, descriptions, *, loop=None, **params):
    """Tokens of one MusicGen call, through audiocraft's loop (loop=None) or a replacement of LMModel.generate.

    What ``MusicGen.generate*`` does up to the codec (which would only turn equal tokens into equal audio).
    """
    model.set_generation_params(extend_stride=model.max_duration * 0.6, **params)
    if mode == Mode.STYLE:
        model.set_style_conditioner_params(eval_q=3, excerpt_length=1.5)
    seed_everything(0)
    references = prompt = None
    if mode in (Mode.MELODY, Mode.STYLE):
        references = [reference(2.0, seed=i) for i in range(len(descriptions))]
    elif mode == Mode.CONTINUATION:
        prompt = torch.stack([reference(1.0, seed=i) for i in range(len(descriptions))])
    if loop is not None:
        model.lm.generate = functools.partial(loop, model.lm)
    try:
        with torch.no_grad():
            attributes, prompt_tokens = model._prepare_tokens_and_attributes(descriptions, prompt, references)
            return model._generate_tokens(attributes, prompt_tokens, progress=False)
    finally:
        if loop is not None:
            del model.lm.generate


CASES = [
    # name, mode, seconds (the debug models' window is 4 s: 6 s takes two windows), descriptions
    pytest.param("debug", Mode.TEXT, 6.0, ["lofi piano", "rock", None], id="text-long-form"),
    pytest.param("debug-stereo", Mode.TEXT, 2.0, ["lofi piano", "dub"], id="stereo"),
    pytest.param("debug", Mode.CONTINUATION, 3.0, ["lofi piano", "dub"], id="continuation"),
    pytest.param("debug-melody", Mode.MELODY, 2.0, ["lofi piano", None], id="melody"),
    pytest.param("debug-style", Mode.STYLE, 3.0, ["lofi piano", "dub"], id="style-double-cfg"),
    pytest.param("tiny-text", Mode.TEXT, 2.0, ["lofi piano", "dub"], id="released-text-config"),
    pytest.param("tiny-melody", Mode.MELODY, 2.0, ["lofi piano", "dub"], id="released-melody-config"),
]


@pytest.mark.parametrize(("name", "mode", "seconds", "descriptions"), CASES)
@pytest.mark.parametrize("static", [False, True], ids=["eager", "static-shapes"])
def test_greedy_tokens_are_audiocrafts(model, step_calls, name, mode, seconds, descriptions, static):
    """Greedy: LMModel.generate's tokens, from the eager step and from the CUDA-graph step run eagerly."""
    mdl = model(name)
    beta = 5.0 if mode == Mode.STYLE else None
    params = {"use_sampling": False, "duration": seconds, "cfg_coef": 3.0, "cfg_coef_beta": beta}
    stock = make_tokens(mdl, mode, descriptions, **params)
    # A bucket of 8 positions makes the static step change shape several times per window.
    options = DecodeOptions(graph_bucket=8, cpu_matmul="mkl")
    loop = functools.partial(decode.fast_generate, options=options, static=static)
    ours = make_tokens(mdl, mode, descriptions, loop=loop, **params)
    assert step_calls, "jamgen's loop did not run"
    assert ours.shape == stock.shape
    assert torch.equal(ours, stock), f"{int((ours != stock).sum())} of {ours.numel()} tokens differ"


@pytest.mark.parametrize(
    "params",
    [{"top_k": 250}, {"top_p": 0.9, "temperature": 0.8}],
    ids=["top-k", "top-p"],
)
def test_sampling_draws_the_same_tokens_from_the_same_seed(model, step_calls, params):
    mdl = model("debug")
    settings = {"use_sampling": True, "duration": 2.0, "cfg_coef": 3.0, **params}
    stock = make_tokens(mdl, Mode.TEXT, ["lofi piano", "rock"], **settings)
    loop = functools.partial(decode.fast_generate, options=EXACT)
    ours = make_tokens(mdl, Mode.TEXT, ["lofi piano", "rock"], loop=loop, **settings)
    assert step_calls
    assert torch.equal(ours, stock)


def test_the_engine_call_decodes_with_jamgens_loop_and_makes_the_same_audio(model, step_calls):
    mdl = model("debug")
    sampling = SamplingParams(use_sampling=False)
    rows = [GenerationRequest(f"r{i}", 0, "debug", Mode.TEXT, p, 2.0, sampling) for i, p in enumerate(["a", "b c"])]
    progress = []
    fast = run_call(mdl, rows, seed=5, on_step=lambda done, total: progress.append((done, total)), options=EXACT)
    steps_fast = len(step_calls)
    stock = run_call(mdl, rows, seed=5, on_step=lambda done, total: None, options=DecodeOptions(fast=False))
    assert steps_fast == fast.steps - 1  # every step but the first (audiocraft's own prefill)
    assert len(step_calls) == steps_fast  # fast=False: audiocraft's loop only
    assert progress[-1] == (fast.steps, fast.steps)
    for ours, theirs in zip(fast.audio, stock.audio, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert "generate" not in vars(mdl.lm)  # the swap is undone


def guided_logits_of_each_step(monkeypatch, mdl, options, forced=None):
    """The guided logits jamgen's loop picks each token from, and the tokens picked.

    With ``forced`` (the tokens of another run), those are picked instead (teacher forcing): both
    runs then see the same history, so their logits differ only by how the products round.
    """
    seen, picked = [], []
    pick = decode._pick

    def recorded(logits, *args):
        seen.append(logits.clone())
        picked.append(pick(logits, *args) if forced is None else forced[len(picked)])
        return picked[-1]

    monkeypatch.setattr(decode, "_pick", recorded)
    loop = functools.partial(decode.fast_generate, options=options)
    make_tokens(mdl, Mode.TEXT, ["lofi piano", "dub"], loop=loop, use_sampling=False, duration=6.0, cfg_coef=3.0)
    monkeypatch.setattr(decode, "_pick", pick)
    return seen, picked


@pytest.fixture
def onednn_calls(monkeypatch):
    """The products computed by oneDNN (so that a silent fall back to F.linear cannot pass a test)."""
    calls = []
    original = kernels._onednn_linear

    def counted(x, weight, bias):
        calls.append(weight.shape)
        return original(x, weight, bias)

    monkeypatch.setattr(kernels, "_onednn_linear", counted)
    return calls


@pytest.mark.parametrize("name", ["debug", "tiny-text", "tiny-melody"])
def test_onednn_products_give_audiocrafts_logits_to_within_rounding(model, monkeypatch, onednn_calls, name):
    """The CPU default: each step's logits are those of audiocraft's kernels, to a millionth of their size."""
    mdl = model(name)
    exact, tokens = guided_logits_of_each_step(monkeypatch, mdl, EXACT)
    assert onednn_calls == []
    fast, _ = guided_logits_of_each_step(monkeypatch, mdl, DecodeOptions(), forced=tokens)
    assert onednn_calls, "the default decoded without oneDNN"
    assert len(fast) == len(exact) > 100  # two windows of the 4 s debug window (6 s takes)
    for step, (ours, theirs) in enumerate(zip(fast, exact, strict=True)):
        scale = float(theirs.abs().max())
        error = float((ours - theirs).abs().max())
        assert error <= 1e-5 * scale, f"step {step}: logits differ by {error:.3g} (largest {scale:.3g})"


def test_the_engine_call_uses_onednn_on_the_cpu_by_default(model, onednn_calls, step_calls):
    mdl = model("debug")
    rows = [GenerationRequest("r", 0, "debug", Mode.TEXT, "a", 1.0, SamplingParams())]
    run_call(mdl, rows, seed=3, on_step=lambda d, t: None)
    per_step = len(onednn_calls) / len(step_calls)
    layers = len(mdl.lm.transformer.layers)
    # Per layer: self-attention in and out, cross-attention query and out, two feed-forward; one per codebook.
    assert per_step == 6 * layers + mdl.lm.num_codebooks


def test_cuda_graphs_are_not_attempted_on_the_cpu(model, monkeypatch, step_calls):
    def no_graphs(*args, **kwargs):
        raise AssertionError("graph capture on the CPU")

    monkeypatch.setattr(decode, "_GraphedSteps", no_graphs)
    mdl = model("debug")
    with decode.jamgen_decoding(mdl, DecodeOptions(cuda_graphs=True)) as used:
        assert used
        make_tokens(mdl, Mode.TEXT, ["lofi"], use_sampling=False, duration=1.0)
    assert step_calls


def _rope_lm():
    """A tiny LM with rotary embeddings, which jamgen's loop leaves to audiocraft."""
    from audiocraft.modules.codebooks_patterns import DelayedPatternProvider
    from audiocraft.modules.conditioners import ConditionFuser, ConditioningProvider, LUTConditioner

    torch.manual_seed(0)
    conditioners = {"description": LUTConditioner(n_bins=64, dim=16, output_dim=16, tokenizer="noop")}
    fuser = ConditionFuser({"cross": ["description"], "prepend": [], "sum": [], "input_interpolate": []})
    return LMModel(
        DelayedPatternProvider(n_q=4),
        ConditioningProvider(conditioners, device="cpu"),
        fuser,
        n_q=4,
        card=32,
        dim=16,
        num_heads=2,
        num_layers=1,
        custom=True,
        cross_attention=True,
        causal=True,
        positional_embedding="rope",
    ).eval()


def test_models_outside_the_loop_fall_back_to_audiocraft(model, step_calls):
    assert decode.unsupported_reason(model("debug").lm) is None
    lm = _rope_lm()
    assert "rope" in decode.unsupported_reason(lm)
    from audiocraft.modules.conditioners import ConditioningAttributes

    conditions = [ConditioningAttributes(text={"description": "x"})]
    seed_everything(0)
    stock = lm.generate(None, conditions, max_gen_len=6, use_sampling=False)
    seed_everything(0)
    ours = decode.fast_generate(lm, None, conditions, max_gen_len=6, use_sampling=False)
    assert torch.equal(ours, stock)
    assert step_calls == []


def test_two_step_cfg_is_left_to_audiocraft(model, step_calls):
    from audiocraft.modules.conditioners import ConditioningAttributes

    lm = model("debug").lm
    conditions = [ConditioningAttributes(text={"description": "x"})]
    seed_everything(0)
    stock = lm.generate(None, conditions, max_gen_len=8, use_sampling=False, two_step_cfg=True)
    seed_everything(0)
    ours = decode.fast_generate(lm, None, conditions, max_gen_len=8, use_sampling=False, two_step_cfg=True)
    assert torch.equal(ours, stock)
    assert step_calls == []


def test_switched_off_or_unsupported_the_block_says_so(model):
    mdl = model("debug")
    with decode.jamgen_decoding(mdl, DecodeOptions(fast=False)) as used:
        assert used is False
        assert "generate" not in vars(mdl.lm)
    with decode.jamgen_decoding(mdl) as used:
        assert used is True
        assert "generate" in vars(mdl.lm)
    assert "generate" not in vars(mdl.lm)


def test_full_precision_on_the_cpu_changes_nothing(model, step_calls):
    """The engine call with autocast float32 on the CPU is audiocraft's default there: same audio."""
    mdl = model("debug")
    rows = [GenerationRequest("r", 0, "debug", Mode.TEXT, "a", 1.0, SamplingParams(use_sampling=False))]
    default = run_call(mdl, rows, seed=3, on_step=lambda d, t: None)
    chosen = run_call(mdl, rows, seed=3, on_step=lambda d, t: None, options=DecodeOptions(autocast="float32"))
    np.testing.assert_array_equal(default.audio[0], chosen.audio[0])
    assert mdl.autocast.autocast is None  # audiocraft's own setting is back


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graphs_replay_the_eager_static_step():
    """On a GPU: graphs give the static step's tokens, and the eager step audiocraft's (never run on the CPU CI)."""
    device = torch.device("cuda")
    mdl = build_sized_model(ModelShape("tiny-text", dim=64, num_heads=4, num_layers=2), device)
    params = {"use_sampling": False, "duration": 2.0, "cfg_coef": 3.0}
    stock = make_tokens(mdl, Mode.TEXT, ["a", "b"], **params)
    eager_dynamic = functools.partial(decode.fast_generate, static=False)
    eager = make_tokens(mdl, Mode.TEXT, ["a", "b"], loop=eager_dynamic, **params)
    eager_static = functools.partial(decode.fast_generate, options=DecodeOptions(cuda_graphs=False), static=True)
    static = make_tokens(mdl, Mode.TEXT, ["a", "b"], loop=eager_static, **params)
    graphed = make_tokens(mdl, Mode.TEXT, ["a", "b"], loop=decode.fast_generate, **params)
    assert torch.equal(eager, stock)
    assert torch.equal(graphed, static)
