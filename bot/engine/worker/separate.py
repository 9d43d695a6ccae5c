"""Stem separation in the worker: demucs' htdemucs run exactly as ``demucs.separate`` runs it.

A separation is a generate call of ``Mode.STEMS`` rows: each row's track is normalised the way
demucs' command line does it (``(wav - mean) / std`` of its mono mix), split by demucs' own
``apply_model`` in overlapping segments (no random shifts, so it is deterministic), and scaled
back. Rows of equal length share one ``apply_model`` call; progress and cancel go through
``apply_model``'s per-segment callback.

Only the worker process imports this module (it imports torch and demucs, not audiocraft).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from demucs.apply import BagOfModels, apply_model
from demucs.audio import convert_audio

from bot.engine.registry import ModelSpec, get_model_spec
from bot.engine.types import GenerationRequest
from bot.engine.weights import demucs_weights, find_weights, hf_offline, local_model_dir, missing_weights_error
from bot.engine.worker import DEBUG_WEIGHTS_SEED
from bot.engine.worker.htdemucs import build_random_separator
from bot.engine.worker.runtime import CallOutput, StepCallback, is_unavailable

log = logging.getLogger("jamgen.engine.worker")

# demucs.separate's defaults, without its random time shifts (shifts=0): the same track gives the same stems.
OVERLAP = 0.25


def build_debug_separator(spec: ModelSpec, device: torch.device) -> BagOfModels:
    """``debug-stems``: the released htdemucs' shape, random weights from the debug seed, a 1 s window."""
    log.info("building the random separator %s", spec.name)
    return build_random_separator(device, seed=DEBUG_WEIGHTS_SEED)


def load_real_separator(spec: ModelSpec, model_dir: Path, device: torch.device) -> BagOfModels:
    """Load a pretrained separator with demucs' own loader: the local folder first, else demucs' caches/download.

    Args:
        spec: a real separator (``htdemucs``).
        model_dir: ``JAMGEN_MODEL_DIR``.
        device: where it runs.

    Raises:
        ModelUnavailableError: the weights are missing and could not be downloaded.
    """
    from demucs.pretrained import get_model

    name = demucs_weights(spec).name
    local = local_model_dir(model_dir, spec.name)
    found = find_weights(spec, model_dir)
    if not found.present and hf_offline():
        # demucs would still try its non-Hugging-Face download: offline means no download at all.
        raise missing_weights_error(spec, model_dir)
    log.info("loading separator %s from %s", spec.name, found.path or "demucs' download")
    try:
        model = get_model(name, repo=local) if found.source == "local" else get_model(name)
    except Exception as exc:
        if is_unavailable(exc):
            reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise missing_weights_error(spec, model_dir, reason=reason) from exc
        raise
    if not isinstance(model, BagOfModels):
        model = BagOfModels([model])
    return model.to(device).eval()


def count_segments(model: BagOfModels, samples: int) -> int:
    """How many forward passes ``apply_model(split=True)`` makes for one call on ``samples`` samples."""
    total = 0
    sub_model: Any  # an HTDemucs (ModuleList items are typed as plain modules)
    for sub_model in model.models:
        # apply_model's own arithmetic, exact with the Fraction segment: the window in samples, then the stride.
        length = int(sub_model.samplerate * sub_model.segment)
        total += len(range(0, samples, int((1 - OVERLAP) * length)))
    return total


def normalise(wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """demucs.separate's normalisation: the track over its mono mix's mean and standard deviation.

    Returns:
        the normalised track, and the mean and deviation that undo it (``stems * std + mean``). Silence has no
        deviation: it is divided by 1 instead of 0, and its stems come back as its (constant) mean.
    """
    ref = wav.mean(0)
    mean, std = ref.mean(), ref.std()
    safe = std if bool(std > 0) else torch.ones_like(std)  # no division by zero (nor NaN for one sample)
    return (wav - mean) / safe, mean, torch.nan_to_num(std)


def prepare(row: GenerationRequest, model: BagOfModels) -> torch.Tensor:
    """A row's track at the separator's rate and channels (mono is duplicated), float32 [channels, samples]."""
    assert row.audio is not None  # checked by validate_request
    assert row.audio_sample_rate
    wav = torch.from_numpy(np.ascontiguousarray(row.audio, dtype=np.float32))
    return convert_audio(wav, row.audio_sample_rate, model.samplerate, model.audio_channels).contiguous()


def run_separation(model: BagOfModels, rows: Sequence[GenerationRequest], on_step: StepCallback) -> CallOutput:
    """Split each row's track into stems in as few ``apply_model`` calls as the lengths allow.

    ``on_step(done, total)`` runs before and after every segment (``done`` in progress units,
    ``frame_rate`` per second of audio, so a call reports about as many as its spec promises);
    raising in it stops the call (cancel, test faults).

    Args:
        model: the loaded separator.
        rows: requests of one call (same model and, by the batch key, the same duration).
        on_step: progress callback.
    """
    device = next(model.parameters()).device
    tracks = [normalise(prepare(row, model)) for row in rows]
    by_length: dict[int, list[int]] = {}
    for index, (wav, _, _) in enumerate(tracks):
        by_length.setdefault(wav.shape[-1], []).append(index)
    segments = sum(count_segments(model, length) for length in by_length)
    units = max(1, round(rows[0].duration * get_model_spec(rows[0].model).frame_rate))
    finished = 0

    def callback(info: dict[str, Any]) -> None:
        nonlocal finished
        if info.get("state") == "end":
            finished += 1
        on_step(units * min(finished, segments) // max(1, segments), units)

    stems: list[np.ndarray | None] = [None] * len(rows)
    started = time.monotonic()
    with torch.inference_mode():
        for indices in by_length.values():
            mix = torch.stack([tracks[i][0] for i in indices])
            out = apply_model(
                model, mix, shifts=0, split=True, overlap=OVERLAP, progress=False, device=device, callback=callback
            )
            for position, index in enumerate(indices):
                _, mean, std = tracks[index]
                separated = out[position].to("cpu") * std + mean
                stems[index] = np.ascontiguousarray(separated.numpy(), dtype=np.float32)
    elapsed = time.monotonic() - started
    if finished < segments:
        on_step(units, units)
    return CallOutput(
        audio=[s for s in stems if s is not None],
        sample_rate=int(model.samplerate),
        steps=units,
        elapsed_s=elapsed,
        stems=tuple(model.sources),
    )


__all__ = [
    "OVERLAP",
    "build_debug_separator",
    "count_segments",
    "load_real_separator",
    "normalise",
    "run_separation",
]
