"""One model generate call for a group of compatible requests.

:func:`run_call` drives audiocraft's ``MusicGen.generate*`` (conditions, long-form windows,
prompts, the codec) with jamgen's decode loop in place of ``LMModel.generate``
(:mod:`bot.engine.worker.decode`: preallocated KV cache, cross-attention keys and values once
per window, CUDA graphs on a GPU; the same tokens as audiocraft's loop).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from audiocraft.data.audio_utils import convert_audio
from audiocraft.models import MusicGen

from bot.engine.decoding import DecodeOptions
from bot.engine.types import GenerationRequest, Mode
from bot.engine.worker.decode import jamgen_decoding
from bot.engine.worker.kernels import autocast_for
from bot.engine.worker.models import EXTEND_STRIDE_RATIO, seed_everything
from bot.engine.worker.runtime import CallOutput, StepCallback


def extend_stride(model: MusicGen) -> float:
    """Seconds each extra window of a long take moves forward (18 s for a 30 s window)."""
    return model.max_duration * EXTEND_STRIDE_RATIO


def count_decode_steps(model: MusicGen, duration: float, prompt_frames: int = 0) -> int:
    """Decoding steps audiocraft will take for ``duration`` seconds, windows of a long take included.

    Mirrors ``MusicGen._generate_tokens``: one window when the take fits ``max_duration``,
    else windows of ``max_duration`` that advance by the extend stride, each primed with the
    previous window's tail.

    Args:
        duration: requested seconds (the continuation prompt included).
        prompt_frames: frames of a continuation prompt.
    """
    frame_rate = model.frame_rate
    total_len = int(duration * frame_rate)
    windows: list[tuple[int, int]] = []
    if duration <= model.max_duration:
        windows.append((prompt_frames, total_len))
    else:
        stride = int(frame_rate * extend_stride(model))
        offset, prompt_len = 0, prompt_frames
        while offset + prompt_len < total_len:
            chunk = min(duration - offset / frame_rate, model.max_duration)
            gen_len = int(chunk * frame_rate)
            windows.append((prompt_len, gen_len))
            prompt_len = gen_len - stride
            offset += stride
    steps = 0
    for prompt_len, gen_len in windows:
        pattern = model.lm.pattern_provider.get_pattern(gen_len)
        first = pattern.get_first_step_with_timesteps(prompt_len) or 0
        steps += len(pattern.layout) - first
    return steps


def _reference_audio(model: MusicGen, rows: Sequence[GenerationRequest]) -> list[torch.Tensor]:
    """Each row's conditioning audio at the model's rate and channels, [channels, samples]."""
    wavs = []
    for row in rows:
        # Both checked by validate_request.
        assert row.audio is not None
        assert row.audio_sample_rate
        wav = torch.from_numpy(np.ascontiguousarray(row.audio, dtype=np.float32))
        wavs.append(convert_audio(wav, row.audio_sample_rate, model.sample_rate, model.audio_channels))
    return wavs


def _audio_only(out: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """audiocraft's ``generate*`` output without ``return_tokens``: the audio alone."""
    assert isinstance(out, torch.Tensor)
    return out


def _loop_to(wav: torch.Tensor, length: int) -> torch.Tensor:
    """Repeat a reference to ``length`` samples (audiocraft would pad shorter rows of a batch with silence)."""
    if wav.shape[-1] >= length:
        return wav
    repeats = -(-length // wav.shape[-1])
    return wav.repeat(1, repeats)[..., :length]


@contextlib.contextmanager
def _autocast_choice(model: MusicGen, choice: str) -> Iterator[None]:
    """Use another autocast dtype than audiocraft's for one call (``auto`` keeps audiocraft's)."""
    if choice == "auto":
        yield
        return
    stock = model.autocast
    model.autocast = autocast_for(model.device, choice)
    try:
        yield
    finally:
        model.autocast = stock


def run_call(
    model: MusicGen,
    rows: Sequence[GenerationRequest],
    seed: int,
    on_step: StepCallback,
    options: DecodeOptions | None = None,
) -> CallOutput:
    """Generate one take per row in a single model call.

    The rows share model, mode, duration and sampling parameters (their batch key); prompts and
    conditioning audio differ. ``on_step(done, total)`` runs after every decoding step; raising
    in it interrupts the call (that is how cancel and the test faults work).

    Reproducibility: the call seeds torch, Python's ``random`` and numpy with ``seed`` first, so
    the same rows with the same seed give the same samples on the same machine and software.
    Every row of a call draws from that one random stream, so a row's audio also depends on the
    other rows: rerunning one row of a batch alone with the batch's seed gives a different take.

    Args:
        model: the loaded model (its generation settings are overwritten).
        rows: the requests, all with the same batch key.
        seed: the seed of this call.
        on_step: progress callback, (steps done, steps in all).
        options: decode switches (None: the defaults, jamgen's loop).
    """
    options = options or DecodeOptions()
    first = rows[0]
    sampling, mode, duration = first.sampling, first.mode, first.duration
    model.set_generation_params(
        use_sampling=sampling.use_sampling,
        top_k=sampling.top_k,
        top_p=sampling.top_p,
        temperature=sampling.temperature,
        duration=duration,
        cfg_coef=sampling.cfg_coef,
        # Double CFG pushes the text against the style excerpt: only meaningful for style takes.
        cfg_coef_beta=sampling.cfg_coef_beta if mode == Mode.STYLE else None,
        extend_stride=extend_stride(model),
    )
    if mode == Mode.STYLE:
        model.set_style_conditioner_params(eval_q=sampling.eval_q, excerpt_length=sampling.excerpt_length)
    descriptions: list[str | None] = [
        None if mode == Mode.UNCONDITIONAL or not row.prompt.strip() else row.prompt for row in rows
    ]

    prompt: torch.Tensor | None = None
    references: list[torch.Tensor | None] = []
    prompt_frames = 0
    if mode == Mode.CONTINUATION:
        wavs = _reference_audio(model, rows)
        # Rows share a batch key that includes the prompt length; trim rounding differences.
        shortest = min(w.shape[-1] for w in wavs)
        prompt = torch.stack([w[..., :shortest] for w in wavs])
        prompt_frames = int(np.ceil(shortest * model.frame_rate / model.sample_rate))
    elif mode in (Mode.MELODY, Mode.STYLE):
        wavs = _reference_audio(model, rows)
        longest = max(w.shape[-1] for w in wavs)
        references = [_loop_to(w, longest) for w in wavs]

    total = count_decode_steps(model, duration, prompt_frames)
    done = 0

    def step(_generated: int, _to_generate: int) -> None:
        nonlocal done, total
        done += 1
        total = max(total, done)
        on_step(done, total)

    model.set_custom_progress_callback(step)
    seed_everything(seed)
    started = time.monotonic()
    with torch.no_grad(), _autocast_choice(model, options.autocast), jamgen_decoding(model, options):
        if mode == Mode.CONTINUATION:
            assert prompt is not None
            out = model.generate_continuation(prompt, model.sample_rate, descriptions, progress=True)
        elif mode in (Mode.MELODY, Mode.STYLE):
            out = model.generate_with_chroma(
                descriptions,  # type: ignore[arg-type]  # audiocraft says list[str]; None is "no text" there too
                references,
                model.sample_rate,
                progress=True,
            )
        else:
            out = model.generate(descriptions, progress=True)  # type: ignore[arg-type]  # the same list[str] gap
    elapsed = time.monotonic() - started
    if done < total:
        on_step(total, total)
    audio = _audio_only(out).detach().float().cpu().numpy()
    return CallOutput(
        audio=[np.ascontiguousarray(audio[i], dtype=np.float32) for i in range(audio.shape[0])],
        sample_rate=model.sample_rate,
        steps=max(done, total),
        elapsed_s=elapsed,
    )
