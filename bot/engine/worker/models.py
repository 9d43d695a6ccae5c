"""MusicGen models inside the worker: real checkpoints through audiocraft's loaders, debug models in code.

Devices and the model cache live in :mod:`bot.engine.worker.runtime`; separators (demucs) are built and
loaded in :mod:`bot.engine.worker.separate`.

Only the worker process imports this module (it imports torch and audiocraft).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import mmap
import pickle
import random
from collections.abc import Iterator
from pathlib import Path
from typing import TypedDict

import numpy as np
import torch
from audiocraft.models import MusicGen
from audiocraft.models.encodec import CompressionModel, EncodecModel, InterleaveStereoCompressionModel
from audiocraft.models.lm import LMModel
from audiocraft.modules import SEANetDecoder, SEANetEncoder
from audiocraft.modules.codebooks_patterns import DelayedPatternProvider
from audiocraft.modules.conditioners import (
    BaseConditioner,
    ChromaStemConditioner,
    ConditionFuser,
    ConditioningProvider,
    LUTConditioner,
    StyleConditioner,
)
from audiocraft.quantization import ResidualVectorQuantizer
from audiocraft.quantization.core_vq import EuclideanCodebook

from bot.engine.registry import ModelSpec
from bot.engine.types import Mode
from bot.engine.weights import WEIGHT_FILES, hf_cache_dir, local_model_dir, missing_weights_error
from bot.engine.worker import DEBUG_WEIGHTS_SEED
from bot.engine.worker.runtime import is_unavailable

log = logging.getLogger("jamgen.engine.worker")

# Long takes are made in windows that overlap by 40%: audiocraft's 18 s stride for its 30 s window.
EXTEND_STRIDE_RATIO = 0.6
# A transparent huge page on x86-64 and arm64 (4 KiB base pages); smaller weights stay where they are.
HUGE_PAGE_BYTES = 2 << 20


def seed_everything(seed: int) -> None:
    """Seed every random source a generation draws from (torch, CUDA, Python's random, numpy).

    Python's ``random`` picks the style excerpt and demucs' shift, numpy is there for safety.
    """
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


# ---------------------------------------------------------------- debug models


def _start_from_random_codes(module: torch.nn.Module) -> None:
    """Mark every codebook as initialised with random codes.

    Otherwise each quantizer runs k-means on the first batch it sees (seconds on a CPU).
    """
    for codebook in module.modules():
        if isinstance(codebook, EuclideanCodebook):
            embed = codebook.get_buffer("embed")
            embed.data.copy_(torch.randn_like(embed))
            codebook.get_buffer("embed_avg").data.copy_(embed.data)
            codebook.get_buffer("inited").data.fill_(1.0)


class _SeanetArgs(TypedDict):
    n_filters: int
    n_residual_layers: int
    dimension: int
    ratios: list[int]


def _debug_compression_model(device: torch.device) -> EncodecModel:
    """audiocraft's debug codec (32 kHz, 25 frames/s, 4 codebooks of 400), without its k-means warm-up."""
    seanet: _SeanetArgs = {"n_filters": 4, "n_residual_layers": 1, "dimension": 32, "ratios": [10, 8, 16]}
    quantizer = ResidualVectorQuantizer(dimension=32, bins=400, n_q=4)
    _start_from_random_codes(quantizer)
    model = EncodecModel(
        SEANetEncoder(**seanet), SEANetDecoder(**seanet), quantizer, frame_rate=25, sample_rate=32000, channels=1
    )
    return model.to(device).eval()


def _debug_lm(n_q: int, device: torch.device, wav_conditioner: BaseConditioner | None = None) -> LMModel:
    """The tiny LM of audiocraft's unit tests, with a tokenizer that needs no spaCy model."""
    dim = 16
    conditioners: dict[str, BaseConditioner] = {
        "description": LUTConditioner(n_bins=128, dim=dim, output_dim=dim, tokenizer="noop"),
    }
    prepend = []
    if wav_conditioner is not None:
        conditioners["self_wav"] = wav_conditioner
        prepend = ["self_wav"]
    fuser = ConditionFuser({"cross": ["description"], "prepend": prepend, "sum": [], "input_interpolate": []})
    lm = LMModel(
        DelayedPatternProvider(n_q=n_q),
        ConditioningProvider(conditioners, device=device),
        fuser,
        n_q=n_q,
        card=400,
        dim=dim,
        num_heads=4,
        custom=True,
        num_layers=2,
        cross_attention=True,
        causal=True,
    )
    return lm.to(device).eval()


@contextlib.contextmanager
def _patched(owner: object, name: str, replacement: object) -> Iterator[None]:
    """Swap an attribute for the duration of a block (to keep a constructor from downloading)."""
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


def _debug_chroma_conditioner(device: torch.device, max_duration: float) -> ChromaStemConditioner:
    """Chroma conditioner with demucs' tiny random test model instead of htdemucs (a download)."""
    import demucs.pretrained

    with _patched(demucs.pretrained, "get_model", lambda name, *a, **k: demucs.pretrained.demucs_unittest()):
        return ChromaStemConditioner(
            output_dim=16,
            sample_rate=32000,
            n_chroma=12,
            radix2_exp=12,
            duration=max_duration,
            match_len_on_eval=True,
            device=device.type,
        )


def _debug_style_conditioner(device: torch.device) -> StyleConditioner:
    """Style conditioner with a random one-layer HuBERT (hidden size 768) standing in for MERT."""
    import transformers

    def stand_in(*args: object, **kwargs: object) -> torch.nn.Module:
        # MERT's interface (24 kHz in, 768 features at 75 frames/s out) with narrow convolutions.
        config = transformers.HubertConfig(
            hidden_size=768,
            num_hidden_layers=1,
            num_attention_heads=12,
            intermediate_size=256,
            conv_dim=(32,) * 7,
            num_conv_pos_embeddings=16,
        )
        return transformers.HubertModel(config)

    with _patched(transformers.AutoModel, "from_pretrained", stand_in):
        conditioner = StyleConditioner(
            transformer_scale="xsmall",
            ds_factor=15,
            encodec_n_q=4,
            n_q_out=6,
            eval_q=3,
            bins=64,
            model_name="mert",
            sample_rate=32000,
            encodec_checkpoint="",
            length=3.0,
            output_dim=16,
            device=device.type,
        )
    _start_from_random_codes(conditioner)
    return conditioner.to(device).eval()


def build_debug_model(spec: ModelSpec, device: torch.device) -> MusicGen:
    """A tiny random model of the spec's family, the same in every process.

    Args:
        spec: a ``debug*`` model.
        device: where it runs.
    """
    torch.manual_seed(DEBUG_WEIGHTS_SEED)
    compression: CompressionModel = _debug_compression_model(device)
    wav_conditioner: BaseConditioner | None = None
    if Mode.MELODY in spec.modes:
        wav_conditioner = _debug_chroma_conditioner(device, spec.max_duration)
    elif Mode.STYLE in spec.modes:
        wav_conditioner = _debug_style_conditioner(device)
    n_q = 4
    if spec.stereo:
        compression = InterleaveStereoCompressionModel(compression).to(device)
        n_q = 8
    lm = _debug_lm(n_q, device, wav_conditioner)
    # MusicGen asserts that max_duration exceeds its default 18 s stride: shrink the window afterwards.
    model = MusicGen(spec.name, compression, lm, max_duration=30.0)
    model.max_duration = spec.max_duration
    model.set_generation_params(duration=spec.max_duration, extend_stride=spec.max_duration * EXTEND_STRIDE_RATIO)
    return model


# ---------------------------------------------------------------- real models


def _load_checkpoints(source: str, device: torch.device) -> MusicGen:
    from audiocraft.models.loaders import load_compression_model, load_lm_model

    cache_dir = str(hf_cache_dir())
    lm = load_lm_model(source, device=device.type, cache_dir=cache_dir)
    compression = load_compression_model(source, device=device.type, cache_dir=cache_dir)
    # The same adjustments as MusicGen.get_pretrained makes.
    if "self_wav" in lm.condition_provider.conditioners:
        lm.condition_provider.conditioners["self_wav"].match_len_on_eval = True
        lm.condition_provider.conditioners["self_wav"]._use_masking = False
    return MusicGen(source, compression, lm)


@contextlib.contextmanager
def _trusting_torch_load() -> Iterator[None]:
    """Let audiocraft's loaders unpickle full checkpoints (torch >= 2.6 loads weights only by default)."""
    with _patched(torch, "load", functools.partial(torch.load, weights_only=False)):
        yield


def load_real_model(spec: ModelSpec, model_dir: Path, device: torch.device) -> MusicGen:
    """Load a pretrained model with audiocraft's loaders: the local folder first, else the HF cache/hub.

    Args:
        spec: a real model.
        model_dir: ``JAMGEN_MODEL_DIR``.
        device: where it runs.

    Raises:
        ModelUnavailableError: the weights are missing and could not be downloaded.
    """
    local = local_model_dir(model_dir, spec.name)
    source = str(local) if all((local / f).is_file() for f in WEIGHT_FILES) else str(spec.checkpoint)
    log.info("loading model %s from %s", spec.name, source)
    try:
        try:
            model = _load_checkpoints(source, device)
        except pickle.UnpicklingError:
            # Checkpoints from facebook/* (or the admin's own folder) are trusted files.
            log.warning("checkpoint of %s needs full unpickling; loading it with weights_only=False", spec.name)
            with _trusting_torch_load():
                model = _load_checkpoints(source, device)
    except Exception as exc:
        if is_unavailable(exc):
            reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise missing_weights_error(spec, model_dir, reason=reason) from exc
        raise
    if model.max_duration != spec.max_duration:
        log.info(
            "model %s has a %.0f s window (registry says %.0f s)", spec.name, model.max_duration, spec.max_duration
        )
    return model


def place_on_huge_pages(module: torch.nn.Module, min_bytes: int = HUGE_PAGE_BYTES) -> int:
    """Move a module's CPU weights onto memory that the kernel backs with transparent huge pages.

    On the CPU a decoding step reads every weight of the LM once (1.6 GB for musicgen-small).
    With 4 KiB pages that walk misses the TLB about 400,000 times per step; with 2 MiB pages,
    about 800, and a step is about a fifth faster (docs/PERFORMANCE.md). The values are copied
    unchanged, so the arithmetic and the tokens are the same. Each weight gets its own private
    anonymous mapping, advised ``MADV_HUGEPAGE`` and freed with the weight; the old storage is
    freed as each one moves, so loading never holds two copies of the model. Non-contiguous
    weights stay where they are.

    Args:
        module: the module; its parameters are replaced in place.
        min_bytes: weights smaller than this stay where they are (a huge page would mostly be empty).

    Returns:
        The bytes moved: 0 on a GPU, or where the kernel has no transparent huge pages.
    """
    if not hasattr(mmap, "MADV_HUGEPAGE"):
        return 0
    moved = 0
    for parameter in module.parameters():
        nbytes = parameter.numel() * parameter.element_size()
        # A non-contiguous weight would come back contiguous, and a product over another layout may round differently.
        if parameter.device.type != "cpu" or nbytes < min_bytes or nbytes == 0 or not parameter.is_contiguous():
            continue
        span = -(-nbytes // HUGE_PAGE_BYTES) * HUGE_PAGE_BYTES
        # One huge page more than needed, so that the weight can start on a 2 MiB boundary.
        area = mmap.mmap(-1, span + HUGE_PAGE_BYTES, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        raw = torch.frombuffer(area, dtype=torch.uint8)  # its storage keeps the mapping alive
        start = -raw.data_ptr() % HUGE_PAGE_BYTES
        try:
            area.madvise(mmap.MADV_HUGEPAGE, start, span)
        except OSError as exc:  # a kernel built without transparent huge pages
            log.info("weights stay on normal pages: the kernel refused huge pages (%s)", exc)
            return moved
        placed = raw[start : start + nbytes].view(parameter.dtype).view(parameter.shape)
        placed.copy_(parameter.data)
        parameter.data = placed
        moved += nbytes
    return moved
