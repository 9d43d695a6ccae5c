"""`jamgen generate`: make a track on this machine, without Discord.

Examples::

    jamgen generate "lofi hip hop, mellow piano" --model small --duration 10 -o take.wav
    jamgen generate "jazz trio" --style ref.wav --model style -o jazz.wav
    jamgen generate "" --model debug --duration 2 -o noise.wav        # unconditional, test model

The recipe (everything needed to ask for the same take again, seed included) is printed on
stdout; ``--json`` prints it as JSON. A progress bar goes to stderr when it is a terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bot.config import Settings
from bot.engine.client import EngineClient
from bot.engine.config import EngineConfig
from bot.engine.types import (
    EngineError,
    GenerationRequest,
    GenerationResult,
    Mode,
    Progress,
    SamplingParams,
)
from bot.engine.validation import validate_request
from bot.errors import UserInputError

MAX_TAKES = 16


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this subcommand's options.

    Args:
        parser: the subcommand's parser.
    """
    parser.add_argument("prompt", nargs="?", default="", help="what the music is like ('' = unconditional)")
    parser.add_argument("--model", help="model name (default: JAMGEN_DEFAULT_MODEL); see `jamgen models`")
    parser.add_argument("--duration", type=float, help="seconds of audio (default: JAMGEN_DEFAULT_DURATION)")
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
    parser.add_argument("--excerpt-length", type=float, help="style takes: seconds of the excerpt used (default 3)")
    parser.add_argument("--greedy", action="store_true", help="greedy decoding instead of sampling (deterministic)")
    parser.add_argument("--takes", type=int, default=1, help=f"how many takes (1-{MAX_TAKES}, share one batch)")
    parser.add_argument(
        "-o", "--output", type=Path, required=True, help="output file (.wav or .flac; takes get -1, -2, ...)"
    )
    parser.add_argument("--json", action="store_true", help="print the recipe as JSON")


def load_audio(path: Path) -> tuple[np.ndarray, int]:
    """Read a conditioning file as float32 [channels, samples].

    Kept apart so that ffmpeg decoding (bot/audio) can replace it.

    Args:
        path: WAV, FLAC or another format libsndfile reads.

    Raises:
        UserInputError: the file is missing or unreadable.
    """
    import soundfile

    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (OSError, RuntimeError, soundfile.LibsndfileError) as exc:
        raise UserInputError(f"Cannot read the audio file {path}: {exc}") from None
    return np.ascontiguousarray(data.T), int(rate)


def write_audio(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write a take ([channels, samples] float32) to ``path``; the suffix picks the format.

    Kept apart so that MP3 encoding (bot/audio) can replace it.

    Args:
        path: output file (.wav is written as 32-bit float, .flac as 24-bit).
        audio: the samples.
        sample_rate: their rate.

    Raises:
        UserInputError: the format is not supported or the file cannot be written.
    """
    import soundfile

    suffix = path.suffix.lower()
    subtype = {".wav": "FLOAT", ".flac": "PCM_24"}.get(suffix)
    if subtype is None:
        raise UserInputError(
            f"Cannot write '{suffix or path.name}' files yet: use an output name ending in .wav or .flac."
        )
    samples = audio.T if subtype == "FLOAT" else np.clip(audio.T, -1.0, 1.0)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(str(path), samples, sample_rate, subtype=subtype)
    except (OSError, RuntimeError, soundfile.LibsndfileError) as exc:
        raise UserInputError(f"Cannot write {path}: {exc}") from None


def _mode_and_input(args: argparse.Namespace) -> tuple[Mode, Path | None]:
    if args.melody is not None:
        return Mode.MELODY, args.melody
    if args.style is not None:
        return Mode.STYLE, args.style
    if args.continue_from is not None:
        return Mode.CONTINUATION, args.continue_from
    return (Mode.TEXT if args.prompt.strip() else Mode.UNCONDITIONAL), None


def build_requests(args: argparse.Namespace, settings: Settings) -> tuple[list[GenerationRequest], Path | None]:
    """The requests the command line asks for (validated).

    Args:
        args: parsed arguments.
        settings: jamgen's settings.

    Raises:
        UserInputError: a bad option, naming it.
    """
    if not 1 <= args.takes <= MAX_TAKES:
        raise UserInputError(f"--takes must be 1-{MAX_TAKES}.")
    mode, input_path = _mode_and_input(args)
    audio, rate = load_audio(input_path) if input_path is not None else (None, None)
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
    requests = [
        GenerationRequest(
            request_id=f"cli:{take}",
            model=args.model or settings.default_model,
            mode=mode,
            prompt=args.prompt,
            duration=args.duration if args.duration is not None else float(settings.default_duration),
            sampling=sampling,
            seed=None if args.seed is None else args.seed + take - 1,
            audio=audio,
            audio_sample_rate=rate,
        )
        for take in range(1, args.takes + 1)
    ]
    for request in requests:
        validate_request(request, max_duration=float(settings.max_duration), allow_debug=True)
    return requests, input_path


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
    request: GenerationRequest, result: GenerationResult, output: Path, input_path: Path | None
) -> dict[str, Any]:
    """Everything needed to ask for this take again.

    Args:
        request: what was asked.
        result: what came back.
        output: where it was written.
        input_path: the melody/style/continuation file, if any.
    """
    sampling = dataclasses.asdict(request.sampling)
    if request.mode != Mode.STYLE:
        for key in ("cfg_coef_beta", "eval_q", "excerpt_length"):
            sampling.pop(key)
    return {
        "output": str(output),
        "model": request.model,
        "mode": request.mode.value,
        "prompt": request.prompt,
        "input": None if input_path is None else str(input_path),
        "duration": round(result.duration, 3),
        "sample_rate": result.sample_rate,
        "channels": int(result.audio.shape[0]),
        "seed": result.seed,
        "reproducible_alone": result.batch_size == 1,
        "batch_size": result.batch_size,
        **sampling,
        "elapsed_s": round(result.elapsed_s, 2),
    }


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Generate, write the takes, print their recipes.

    Args:
        args: parsed arguments.
        settings: jamgen's settings.

    Returns:
        0 on success (errors are raised as JamgenError: exit 2 for the user's, 1 for ours).
    """
    requests, input_path = build_requests(args, settings)
    config = dataclasses.replace(EngineConfig.from_settings(settings, warmup=False), allow_debug_models=True)
    outcomes = asyncio.run(_generate(config, requests))
    for outcome in outcomes:
        if isinstance(outcome, EngineError):
            raise outcome
    recipes = []
    for request, result, path in zip(requests, outcomes, output_paths(args.output, len(requests)), strict=True):
        assert isinstance(result, GenerationResult)
        write_audio(path, result.audio, result.sample_rate)
        recipes.append(recipe(request, result, path, input_path))
    if args.json:
        print(json.dumps(recipes if len(recipes) > 1 else recipes[0], indent=2))
    else:
        for item in recipes:
            print(f"wrote {item['output']} ({item['duration']:.2f} s, {item['sample_rate']} Hz, {item['channels']} ch)")
            print("  " + " ".join(f"{k}={json.dumps(v)}" for k, v in item.items() if k != "output"))
    return 0
