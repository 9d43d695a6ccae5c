"""`jamgen generate`: make a track on this machine, without Discord.

Examples::

    jamgen generate "lofi hip hop, mellow piano" --model small --duration 10 -o take.mp3
    jamgen generate "jazz trio" --style ref.m4a --model style -o jazz.flac
    jamgen generate "" --model debug --duration 2 -o noise.wav        # unconditional, test model

Input files go through the audio room exactly as Discord attachments do (probed, decoded
safely, hostile files refused with one ``error:`` line and exit 2) before any model loads.
Takes are written by the audio room too: levelled (JAMGEN_NORMALIZATION), tagged with the
prompt and the recipe (``bot.audio.read_recipe`` reads it back), as MP3, WAV or FLAC after
the -o extension. The recipe has the bot's own shape (``bot.service.recipes``, job id ``cli``)
plus where and how the take was made. The recipe (everything needed to ask for the same take again, seed
included) is also printed on stdout; ``--json`` prints it as JSON. A progress bar goes to
stderr when it is a terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np

from bot import audio
from bot.audio import OutputFormat
from bot.audio.limits import MIB
from bot.config import Settings
from bot.engine.client import EngineClient
from bot.engine.config import EngineConfig
from bot.engine.registry import ModelSpec
from bot.engine.types import (
    EngineError,
    GenerationRequest,
    GenerationResult,
    Mode,
    ModelUnavailableError,
    Progress,
    SamplingParams,
)
from bot.engine.validation import (
    CLI_OPTIONS,
    continuation_cut_note,
    continuation_prompt_seconds,
    fit_style_to_clip,
    resolve_model,
    validate_request,
)
from bot.errors import UserInputError
from bot.service.recipes import Recipe

MAX_TAKES = 16
CLI_JOB_ID = "cli"  # the job id of `jamgen generate`'s requests and recipes
# The CLI writes to a disk, not to Discord: no upload limit, only a guard against absurd sizes.
OUTPUT_BYTE_LIMIT = 1024 * MIB


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this subcommand's options."""
    parser.add_argument("prompt", nargs="?", default="", help="what the music is like ('' = unconditional)")
    parser.add_argument("--model", help="model name (default: JAMGEN_DEFAULT_MODEL); see `jamgen models`")
    parser.add_argument(
        "--duration",
        type=float,
        help="seconds of new music (default: JAMGEN_DEFAULT_DURATION); a continuation adds its prompt (the last "
        "10 s, less when the model's window is shorter)",
    )
    audio = parser.add_mutually_exclusive_group()
    audio.add_argument("--melody", type=Path, metavar="FILE", help="follow the melody of this audio file")
    audio.add_argument("--style", type=Path, metavar="FILE", help="make music in the style of this excerpt")
    audio.add_argument(
        "--continue", dest="continue_from", type=Path, metavar="FILE", help="continue this audio (kept at the start)"
    )
    parser.add_argument("--seed", type=int, help="seed for a reproducible take (takes get seed, seed+1, ...)")
    parser.add_argument("--top-k", type=int, help="sample among the k most likely tokens (default 250)")
    parser.add_argument("--top-p", type=float, help="nucleus sampling threshold, 0 = off (default 0)")
    parser.add_argument("--temperature", type=float, help="softmax temperature (default 1.0)")
    parser.add_argument("--cfg", type=float, help="classifier-free guidance (default 3.0)")
    parser.add_argument("--cfg-beta", type=float, help="style takes: double-CFG beta (default 5.0)")
    parser.add_argument("--eval-q", type=int, help="style takes: codebooks of the excerpt used, 1-6 (default 3)")
    parser.add_argument(
        "--excerpt-length",
        type=float,
        help="style takes: seconds of the excerpt used (default 3; a shorter file gives all it has, from 1.5 s)",
    )
    parser.add_argument("--greedy", action="store_true", help="greedy decoding instead of sampling (deterministic)")
    parser.add_argument("--takes", type=int, default=1, help=f"how many takes (1-{MAX_TAKES}, share one batch)")
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="output file: .mp3, .wav or .flac (takes get -1, -2, ...)"
    )
    parser.add_argument("--json", action="store_true", help="print the recipe as JSON")


def output_format(path: Path) -> OutputFormat:
    """The format the -o file's extension asks for.

    Args:
        path: the -o path.

    Raises:
        UserInputError: for any extension other than .mp3, .wav or .flac.
    """
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in audio.OUTPUT_FORMATS:
        shown = path.suffix or f"{path.name!r} (no extension)"
        raise UserInputError(f"Cannot write {shown} files: use an output name ending in .mp3, .wav or .flac.")
    return cast(OutputFormat, suffix)


def check_output_folder(path: Path) -> None:
    """Refuse an -o path whose folder cannot be made or written, before any model loads.

    Args:
        path: the -o path (its folder may not exist yet: it is made when the take is written).

    Raises:
        UserInputError: the nearest existing folder on the way is a file or not writable.
    """
    folder = path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UserInputError(f"Cannot write {path}: {folder} is a file, not a folder.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserInputError(f"Cannot write {path}: the folder {folder} is not writable.")


def _mode_and_input(args: argparse.Namespace) -> tuple[Mode, Path | None]:
    if args.melody is not None:
        return Mode.MELODY, args.melody
    if args.style is not None:
        return Mode.STYLE, args.style
    if args.continue_from is not None:
        return Mode.CONTINUATION, args.continue_from
    return (Mode.TEXT if args.prompt.strip() else Mode.UNCONDITIONAL), None


async def load_conditioning(
    path: Path, mode: Mode, spec: ModelSpec, duration: float, sampling: SamplingParams, limits: audio.AudioLimits
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Read a --melody/--style/--continue file safely and cut what the mode conditions on, as the bot does.

    Args:
        path: the user's file (only its bytes count, never its extension).
        mode: melody, style or continuation.
        spec: the model (its sample rate and channel count).
        duration: the take's length (how much melody is followed).
        sampling: the sampling parameters (the style excerpt length).
        limits: the limits the file is read under.

    Returns:
        float32 [channels, samples] at the model's rate, and notes for the user (silent input, a continuation
        cut to the part that fits the model's window).

    Raises:
        AudioInputError: the file is refused (missing, empty, not audio, damaged, too long, too short...).
    """
    loaded = await audio.load_input(path, spec.sample_rate, spec.channels, limits)
    sr = spec.sample_rate
    notes = loaded.warnings
    if mode == Mode.MELODY:
        excerpt = audio.melody_excerpt(loaded.audio, sr, duration)
    elif mode == Mode.STYLE:
        excerpt = audio.style_excerpt(loaded.audio, sr, length_s=sampling.excerpt_length)
    else:
        # As in the bot: the last 10 s, or less when the model's window is shorter (the rest is left out).
        excerpt = audio.continuation_prompt(loaded.audio, sr, seconds=continuation_prompt_seconds(spec))
        cut = continuation_cut_note(spec, loaded.duration_s, excerpt.duration_s)
        notes += (cut,) if cut else ()
    return excerpt.audio, notes


@contextlib.contextmanager
def _quiet_audio_logs() -> Iterator[None]:
    """Keep ffmpeg's own complaints about the input (INFO logs of the audio room) off the terminal.

    The user gets one ``error:`` line that says what is wrong; ffprobe's diagnostics (with server
    paths) are for operators and still show with JAMGEN_LOG_LEVEL=DEBUG.
    """
    audio_log = logging.getLogger("bot.audio")
    if audio_log.getEffectiveLevel() <= logging.DEBUG:
        yield
        return
    previous = audio_log.level
    audio_log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        audio_log.setLevel(previous)


async def build_requests(
    args: argparse.Namespace, settings: Settings
) -> tuple[list[GenerationRequest], Path | None, tuple[str, ...]]:
    """The requests the command line asks for, validated before any model is loaded.

    Cheap checks come first (options, output format, model and mode), then the input file is
    probed and decoded, so a bad option or file costs neither a decode nor a model load.

    Returns:
        the requests (one per take), the input file if any, and notes about it for the terminal.

    Raises:
        UserInputError: a bad option or input file, naming it.
    """
    if not 1 <= args.takes <= MAX_TAKES:
        raise UserInputError(f"--takes must be 1-{MAX_TAKES}.")
    output_format(args.output)
    check_output_folder(args.output)
    mode, input_path = _mode_and_input(args)
    spec = resolve_model(args.model or settings.default_model, allow_debug=True)
    if not spec.supports(mode):
        can = ", ".join(sorted(m.value for m in spec.modes))
        raise ModelUnavailableError(f"Model '{spec.name}' cannot make {mode.value} takes; it can do: {can}.")
    duration = args.duration if args.duration is not None else float(settings.default_duration)
    sampling = SamplingParams.for_mode(
        mode,
        top_k=args.top_k,
        top_p=args.top_p,
        temperature=args.temperature,
        cfg_coef=args.cfg,
        cfg_coef_beta=args.cfg_beta,
        eval_q=args.eval_q,
        excerpt_length=args.excerpt_length,
        use_sampling=False if args.greedy else None,
    )
    conditioning: np.ndarray | None = None
    warnings: tuple[str, ...] = ()
    if input_path is not None:
        limits = audio.AudioLimits.from_settings(settings)
        with _quiet_audio_logs():
            conditioning, warnings = await load_conditioning(input_path, mode, spec, duration, sampling, limits)
        if mode == Mode.STYLE:
            # A clip shorter than --excerpt-length gives all it has (the same rule as the bot's).
            fitted = fit_style_to_clip(sampling, conditioning.shape[-1] / spec.sample_rate, CLI_OPTIONS)
            sampling = fitted.sampling
            warnings += (fitted.note,) if fitted.note else ()
        if mode == Mode.CONTINUATION:
            # As in the bot: the prompt is kept at the start of the output and --duration counts the new music.
            prompt_s = conditioning.shape[-1] / spec.sample_rate
            if duration + prompt_s > settings.max_duration:
                raise UserInputError(
                    f"With the {prompt_s:.0f} s it continues from, the track would be {duration + prompt_s:.0f} s "
                    f"long; the limit is {settings.max_duration} s. Ask for at most "
                    f"{max(1, int(settings.max_duration - prompt_s))} s (--duration)."
                )
            duration += prompt_s
    requests = [
        GenerationRequest(
            job_id=CLI_JOB_ID,
            take=take,
            model=spec.name,
            mode=mode,
            prompt=args.prompt,
            duration=duration,
            sampling=sampling,
            seed=None if args.seed is None else args.seed + take,
            audio=conditioning,
            audio_sample_rate=spec.sample_rate if conditioning is not None else None,
        )
        for take in range(args.takes)
    ]
    for request in requests:
        validate_request(request, max_duration=float(settings.max_duration), allow_debug=True, names=CLI_OPTIONS)
    return requests, input_path, warnings


def output_paths(output: Path, takes: int) -> list[Path]:
    """Where each take is written: OUT for one take, OUT-1, OUT-2 ... for several.

    Args:
        output: the -o path.
        takes: how many takes.
    """
    if takes == 1:
        return [output]
    return [output.with_name(f"{output.stem}-{i}{output.suffix}") for i in range(1, takes + 1)]


class _ProgressBar:
    """One line on stderr, redrawn in place (only used on a terminal)."""

    def __init__(self, request_ids: list[str]) -> None:
        self.fractions = dict.fromkeys(request_ids, 0.0)
        self.shown = -1

    def __call__(self, progress: Progress) -> None:
        self.fractions[progress.request_id] = progress.fraction
        percent = int(100 * sum(self.fractions.values()) / len(self.fractions))
        if percent != self.shown:
            self.shown = percent
            filled = percent * 30 // 100
            sys.stderr.write(f"\rgenerating [{'#' * filled}{'.' * (30 - filled)}] {percent:3d}%")
            sys.stderr.flush()

    def finish(self) -> None:
        if self.shown >= 0:
            sys.stderr.write("\n")
            sys.stderr.flush()


async def _generate(config: EngineConfig, requests: list[GenerationRequest]) -> list[GenerationResult | EngineError]:
    bar = _ProgressBar([r.request_id for r in requests]) if sys.stderr.isatty() else None
    # Not `async with`: a request rejected up front (e.g. weights missing offline) never starts a worker.
    engine = EngineClient(config)
    try:
        return await engine.generate(requests, bar)
    finally:
        if bar is not None:
            bar.finish()
        await engine.close()


def recipe(
    request: GenerationRequest, result: GenerationResult, output: Path, input_path: Path | None, takes: int = 1
) -> dict[str, Any]:
    """Everything needed to ask for this take again: the bot's recipe (job ``cli``), then where and how it was made.

    Args:
        request: what was asked.
        result: what came back.
        output: where it was written.
        input_path: the melody/style/continuation file, if any.
        takes: how many takes were asked for.
    """
    made = Recipe.for_generation(request, filename=input_path.name if input_path else "")
    return {
        **made.describe(job_id=CLI_JOB_ID, takes=takes, seed=result.seed, take=request.take),
        "output": str(output),
        "input": None if input_path is None else str(input_path),
        "sample_rate": result.sample_rate,
        "channels": int(result.audio.shape[0]),
        "reproducible_alone": result.batch_size == 1,
        "batch_size": result.batch_size,
        "elapsed_s": round(result.elapsed_s, 2),
    }


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Check the inputs, generate, write the takes, print their recipes.

    Returns:
        0 on success (errors are raised as JamgenError: exit 2 for the user's, 1 for ours).
    """
    return asyncio.run(_run(args, settings))


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    # Everything about the inputs is checked before the engine worker (and its model) starts.
    requests, input_path, warnings = await build_requests(args, settings)
    fmt = output_format(args.output)
    for note in warnings:
        print(f"note: {note}", file=sys.stderr)
    config = dataclasses.replace(EngineConfig.from_settings(settings, warmup=False), allow_debug_models=True)
    outcomes = await _generate(config, requests)
    for outcome in outcomes:
        if isinstance(outcome, EngineError):
            raise outcome
    recipes = []
    lengths = []
    for request, result, path in zip(requests, outcomes, output_paths(args.output, len(requests)), strict=True):
        assert isinstance(result, GenerationResult)
        item = recipe(request, result, path, input_path, len(requests))
        try:
            await audio.encode(
                result.audio,
                result.sample_rate,
                path,
                fmt=fmt,
                tags=audio.TrackTags(title=request.prompt, recipe=item),
                byte_limit=OUTPUT_BYTE_LIMIT,
                normalization=cast(audio.Normalization, settings.normalization),
                loudness_target=settings.loudness_target,
            )
        except OSError as exc:  # the folder cannot be made or written: the user's path
            raise UserInputError(f"Cannot write {path}: {exc.strerror or exc}.") from None
        recipes.append(item)
        lengths.append(result.duration)
    if args.json:
        print(json.dumps(recipes if len(recipes) > 1 else recipes[0], indent=2))
    else:
        for item, seconds in zip(recipes, lengths, strict=True):
            print(f"wrote {item['output']} ({seconds:.2f} s, {item['sample_rate']} Hz, {item['channels']} ch)")
            print("  " + " ".join(f"{k}={json.dumps(v)}" for k, v in item.items() if k != "output"))
    return 0
