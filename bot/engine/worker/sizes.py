"""Real-size MusicGen models with random weights, built from audiocraft's own configuration (no download).

For benchmarks: the decode speed of a model depends on its shape, not on its weights, so a model of
the released configuration with random weights runs exactly as fast as the released one. The LM is
built by audiocraft's ``builders.get_lm_model`` from the values of audiocraft's
``config/model/lm/musicgen_lm.yaml`` and ``model_scale/{small,medium,large}.yaml``; the codec by
``builders.get_compression_model`` from ``config/model/encodec/encodec_large_nq4_s640.yaml``
(EnCodec 32 kHz, 4 codebooks of 2048, 50 frames/s).

Two stand-ins, because the real parts are downloads:

* the T5 text encoder (``t5-base``) is a lookup-table conditioner with hidden size 768 (T5-base's)
  and audiocraft's ``noop`` tokenizer: one condition token per description instead of T5's ten or
  so. The LM sees a condition tensor of the right width; it is shorter, which makes the cross
  attention that stock audiocraft recomputes every step cheaper than with T5, not dearer;
* the melody model's demucs (``htdemucs``) is demucs' tiny random test model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from audiocraft.models import MusicGen, builders
from audiocraft.models.lm import LMModel
from audiocraft.modules.conditioners import ChromaStemConditioner
from omegaconf import OmegaConf

from bot.engine.worker.models import _patched, _start_from_random_codes


@dataclass(frozen=True)
class ModelShape:
    """The transformer size of one MusicGen release.

    Args:
        name: ``tiny``, ``small``, ``medium``, ``large`` or ``melody``.
        dim: model width.
        num_heads: attention heads.
        num_layers: transformer layers.
        melody: chroma conditioning prepended (the melody model) instead of text cross-attention.
    """

    name: str
    dim: int
    num_heads: int
    num_layers: int
    melody: bool = False


# audiocraft's config/model/lm/model_scale/*.yaml; "melody" is musicgen-melody (medium + chroma);
# "tiny" has the released structure at a size that runs in seconds on a CPU.
MODEL_SHAPES: dict[str, ModelShape] = {
    "tiny": ModelShape("tiny", dim=128, num_heads=8, num_layers=4),
    "small": ModelShape("small", dim=1024, num_heads=16, num_layers=24),
    "medium": ModelShape("medium", dim=1536, num_heads=24, num_layers=48),
    "large": ModelShape("large", dim=2048, num_heads=32, num_layers=48),
    "melody": ModelShape("melody", dim=1536, num_heads=24, num_layers=48, melody=True),
}

# T5-base's hidden size: the width of the text condition before the LM's output projection.
T5_BASE_DIM = 768


def _lm_config(shape: ModelShape, device: torch.device) -> dict[str, object]:
    """The OmegaConf tree audiocraft's builder reads, with the released MusicGen values."""
    description = {"model": "lut", "lut": {"n_bins": 1024, "dim": T5_BASE_DIM, "tokenizer": "noop"}}
    conditioners: dict[str, object] = {"description": description}
    if shape.melody:
        conditioners["self_wav"] = {
            "model": "chroma_stem",
            "chroma_stem": {
                "sample_rate": 32000,
                "n_chroma": 12,
                "radix2_exp": 14,
                "argmax": True,
                "match_len_on_eval": True,
                "eval_wavs": None,
                "n_eval_wavs": 100,
            },
        }
        fuser = {"sum": [], "cross": [], "prepend": ["self_wav", "description"], "input_interpolate": []}
    else:
        fuser = {"sum": [], "cross": ["description"], "prepend": [], "input_interpolate": []}
    return {
        "device": device.type,
        # audiocraft's loader keeps the LM in float16 on a GPU and float32 on the CPU.
        "dtype": "float16" if device.type == "cuda" else "float32",
        "lm_model": "transformer_lm",
        "dataset": {"segment_duration": 30.0},
        "codebooks_pattern": {
            "modeling": "delay",
            "delay": {"delays": [0, 1, 2, 3], "flatten_first": 0, "empty_initial": 0},
        },
        "classifier_free_guidance": {"training_dropout": 0.3, "inference_coef": 3.0},
        "attribute_dropout": {},
        "fuser": {"cross_attention_pos_emb": False, "cross_attention_pos_emb_scale": 1, **fuser},
        "conditioners": conditioners,
        "transformer_lm": {
            "dim": shape.dim,
            "num_heads": shape.num_heads,
            "num_layers": shape.num_layers,
            "hidden_scale": 4,
            "n_q": 4,
            "card": 2048,
            "dropout": 0.0,
            "emb_lr": None,
            "activation": "gelu",
            "norm_first": True,
            "bias_ff": False,
            "bias_attn": False,
            "bias_proj": False,
            "past_context": None,
            "causal": True,
            "custom": False,
            "memory_efficient": True,
            "attention_as_float32": False,
            "layer_scale": None,
            "positional_embedding": "sin",
            "xpos": False,
            "checkpointing": "none",
            "weight_init": "gaussian",
            "depthwise_init": "current",
            "zero_bias_init": True,
            "norm": "layer_norm",
            "cross_attention": False,
            "qk_layer_norm": False,
            "qk_layer_norm_cross": False,
            "attention_dropout": None,
            "kv_repeat": 1,
            "two_step_cfg": False,
        },
    }


def _codec_config(device: torch.device) -> dict[str, object]:
    """EnCodec 32 kHz as MusicGen uses it: SEANet 64 filters, strides 8·5·4·4, 4 codebooks of 2048."""
    return {
        "device": device.type,
        "compression_model": "encodec",
        "encodec": {
            "autoencoder": "seanet",
            "quantizer": "rvq",
            "sample_rate": 32000,
            "channels": 1,
            "causal": False,
            "renormalize": False,
        },
        "seanet": {
            "dimension": 128,
            "channels": 1,
            "causal": False,
            "n_filters": 64,
            "n_residual_layers": 1,
            "ratios": [8, 5, 4, 4],
            "activation": "ELU",
            "activation_params": {"alpha": 1.0},
            "norm": "weight_norm",
            "norm_params": {},
            "kernel_size": 7,
            "residual_kernel_size": 3,
            "last_kernel_size": 7,
            "dilation_base": 2,
            "pad_mode": "constant",
            "true_skip": True,
            "compress": 2,
            "lstm": 2,
            "disable_norm_outer_blocks": 0,
            "decoder": {"trim_right_ratio": 1.0, "final_activation": None, "final_activation_params": None},
            "encoder": {},
        },
        "rvq": {
            "n_q": 4,
            "q_dropout": False,
            "bins": 2048,
            "decay": 0.99,
            "kmeans_init": True,
            "kmeans_iters": 50,
            "threshold_ema_dead_code": 2,
            "orthogonal_reg_weight": 0.0,
            "orthogonal_reg_active_codes_only": False,
        },
    }


def lm_parameter_bytes(lm: LMModel) -> int:
    """Bytes of the LM weights one decoding step reads (everything but the embedding tables and conditioners).

    An embedding lookup reads one row per codebook, and the conditioners run once per call, so
    neither counts toward the per-step memory traffic.

    Args:
        lm: the language model.
    """
    skip = {id(p) for p in lm.condition_provider.parameters()} | {id(p) for p in lm.emb.parameters()}
    return sum(p.numel() * p.element_size() for p in lm.parameters() if id(p) not in skip)


def memory_bandwidth_gbs(device: torch.device, megabytes: int = 512, repeats: int = 5) -> float:
    """Measured memory bandwidth of a device in GB/s: a large copy, read and write bytes counted, best of ``repeats``.

    Args:
        megabytes: size of the copied buffer.
        repeats: copies timed.
    """
    source = torch.ones(megabytes * 2**20 // 4, dtype=torch.float32, device=device)
    target = torch.empty_like(source)
    target.copy_(source)  # touch the pages first
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            target.copy_(source)
            end.record()
            end.synchronize()
            seconds = begin.elapsed_time(end) / 1000
        else:
            started = time.perf_counter()
            target.copy_(source)
            seconds = time.perf_counter() - started
        best = min(best, seconds)
    return 2 * source.numel() * source.element_size() / best / 1e9


def build_sized_lm(shape: ModelShape | str, device: torch.device) -> LMModel:
    """The LM of a released size with random weights, as audiocraft's builder makes it.

    Args:
        shape: a :class:`ModelShape` or a key of :data:`MODEL_SHAPES`.
        device: where it runs (``meta`` builds it without memory, to count parameters).
    """
    shape = MODEL_SHAPES[shape] if isinstance(shape, str) else shape
    lm_cfg = OmegaConf.create(_lm_config(shape, device))
    if shape.melody:
        import demucs.pretrained

        # The chroma conditioner loads htdemucs (a download) to keep the melody stem; the tiny test model stands in.
        with _patched(demucs.pretrained, "get_model", lambda name, *a, **k: demucs.pretrained.demucs_unittest()):
            lm = builders.get_lm_model(lm_cfg)
    else:
        lm = builders.get_lm_model(lm_cfg)
    lm = lm.to(device).eval()
    # The adjustments MusicGen.get_pretrained makes to a melody model (its self_wav is the chroma conditioner).
    conditioners = lm.condition_provider.conditioners
    if "self_wav" in conditioners and isinstance(self_wav := conditioners["self_wav"], ChromaStemConditioner):
        self_wav.match_len_on_eval = True
        self_wav._use_masking = False
    return lm


def build_sized_model(shape: ModelShape | str, device: torch.device, seed: int = 0) -> MusicGen:
    """A MusicGen of a released size with random weights and the real codec shape.

    Args:
        shape: a :class:`ModelShape` or a key of :data:`MODEL_SHAPES`.
        device: where it runs.
        seed: weight seed (the same seed gives the same weights).

    Raises:
        KeyError: unknown size.
    """
    shape = MODEL_SHAPES[shape] if isinstance(shape, str) else shape
    torch.manual_seed(seed)
    codec = builders.get_compression_model(OmegaConf.create(_codec_config(device)))
    _start_from_random_codes(codec)
    codec = codec.to(device).eval()
    lm = build_sized_lm(shape, device)
    return MusicGen(f"random-{shape.name}", codec, lm, max_duration=30.0)


__all__ = [
    "MODEL_SHAPES",
    "ModelShape",
    "build_sized_lm",
    "build_sized_model",
    "lm_parameter_bytes",
    "memory_bandwidth_gbs",
]
