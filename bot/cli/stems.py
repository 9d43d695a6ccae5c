"""`jamgen stems`: split a track into drums, bass, other and vocals on this machine, without Discord.

Examples::

    jamgen stems take.mp3 -o stems/                          # stems/drums.mp3, bass.mp3, other.mp3, vocals.mp3
    jamgen stems song.flac -o parts/ --format wav
    jamgen stems take.mp3 -o stems/ --model debug-stems      # random test separator (noise), no download

The file goes through the audio room exactly as a Discord attachment does (probed, decoded safely
to 44.1 kHz stereo, hostile files refused with one ``error:`` line and exit 2) before the engine
starts. The separation runs in the engine's worker process, as the bot runs it; each stem is written
by the audio room, levelled like `jamgen generate`'s takes (JAMGEN_NORMALIZATION), one line per file.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from pathlib import Path
from typing import cast

from bot import audio
from bot.cli.generate import CLI_JOB_ID, OUTPUT_BYTE_LIMIT, _quiet_audio_logs, check_output_folder
from bot.config import Settings
from bot.engine.client import EngineClient
from bot.engine.config import EngineConfig
from bot.engine.registry import MODELS, ModelSpec
from bot.engine.types import EngineError, GenerationRequest, GenerationResult, Mode, ModelUnavailableError, Progress
from bot.engine.validation import CLI_OPTIONS, resolve_model, validate_request
from bot.errors import UserInputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this subcommand's options."""
    parser.add_argument("input", type=Path, help="the audio file to split (any format the bot accepts)")
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="folder for the stems (<stem>.mp3 each; made when missing)"
    )
    separators = ", ".join(name for name, spec in MODELS.items() if spec.separator)
    parser.add_argument(
        "--model", default=None, help=f"separator ({separators}; default: JAMGEN_STEMS_MODEL, htdemucs unless set)"
    )
    parser.add_argument("--format", choices=audio.OUTPUT_FORMATS, default="mp3", help="file format (default mp3)")


def resolve_separator(name: str) -> ModelSpec:
    """The spec of a model that splits tracks.

    Raises:
        ModelUnavailableError: unknown, or a model that makes music instead.
    """
    spec = resolve_model(name, allow_debug=True)
    if not spec.separator:
        known = ", ".join(n for n, s in MODELS.items() if s.separator and not s.debug)
        raise ModelUnavailableError(f"Model '{spec.name}' makes music; it does not split tracks. Use: {known}.")
    return spec


async def build_request(args: argparse.Namespace, settings: Settings) -> tuple[GenerationRequest, tuple[str, ...]]:
    """The separation the command line asks for, checked and decoded before the engine starts.

    Returns:
        the request and notes about the input for the terminal (silent audio).

    Raises:
        UserInputError: a bad option or input file, naming it.
    """
    spec = resolve_separator(args.model or settings.stems_model)
    check_output_folder(args.output / f"drums.{args.format}")
    limits = audio.AudioLimits.from_settings(settings)
    limits = dataclasses.replace(limits, max_duration_s=min(limits.max_duration_s, spec.max_duration))
    with _quiet_audio_logs():
        loaded = await audio.load_input(args.input, spec.sample_rate, spec.channels, limits)
    request = GenerationRequest(
        job_id=CLI_JOB_ID,
        take=0,
        model=spec.name,
        mode=Mode.STEMS,
        prompt="",
        duration=loaded.duration_s,
        audio=loaded.audio,
        audio_sample_rate=loaded.sample_rate,
    )
    validate_request(request, max_duration=float(settings.max_duration), allow_debug=True, names=CLI_OPTIONS)
    return request, loaded.warnings


class _ProgressBar:
    """One line on stderr, redrawn in place (only used on a terminal)."""

    def __init__(self) -> None:
        self.shown = -1

    def __call__(self, progress: Progress) -> None:
        percent = int(100 * progress.fraction)
        if percent != self.shown:
            self.shown = percent
            filled = percent * 30 // 100
            sys.stderr.write(f"\rsplitting [{'#' * filled}{'.' * (30 - filled)}] {percent:3d}%")
            sys.stderr.flush()

    def finish(self) -> None:
        if self.shown >= 0:
            sys.stderr.write("\n")
            sys.stderr.flush()


async def _separate(config: EngineConfig, request: GenerationRequest) -> GenerationResult:
    bar = _ProgressBar() if sys.stderr.isatty() else None
    # Not `async with`: a request rejected up front (weights missing offline) never starts a worker.
    engine = EngineClient(config)
    try:
        (outcome,) = await engine.generate([request], bar)
    finally:
        if bar is not None:
            bar.finish()
        await engine.close()
    if isinstance(outcome, EngineError):
        raise outcome
    return outcome


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Check and decode the input, split it, write one file per stem.

    Returns:
        0 on success (errors are raised as JamgenError: exit 2 for the user's, 1 for ours).
    """
    return asyncio.run(_run(args, settings))


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    request, notes = await build_request(args, settings)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    config = dataclasses.replace(EngineConfig.from_settings(settings, warmup=False), allow_debug_models=True)
    result = await _separate(config, request)
    fmt = cast(audio.OutputFormat, args.format)
    try:
        args.output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"Cannot make the folder {args.output}: {exc.strerror or exc}.") from None
    for name, stem in zip(result.stems, result.audio, strict=True):
        path = args.output / f"{name}.{fmt}"
        recipe = {"job_id": CLI_JOB_ID, "kind": "stems", "model": request.model, "stem": name, "input": args.input.name}
        try:
            await audio.encode(
                stem,
                result.sample_rate,
                path,
                fmt=fmt,
                tags=audio.TrackTags(title=f"{args.input.stem} ({name})", recipe=recipe),
                byte_limit=OUTPUT_BYTE_LIMIT,
                normalization=cast(audio.Normalization, settings.normalization),
                loudness_target=settings.loudness_target,
            )
        except OSError as exc:  # the folder cannot be written: the user's path
            raise UserInputError(f"Cannot write {path}: {exc.strerror or exc}.") from None
        seconds = stem.shape[-1] / result.sample_rate
        print(f"wrote {path} ({name}, {seconds:.2f} s, {result.sample_rate} Hz, {stem.shape[0]} ch)")
    return 0
