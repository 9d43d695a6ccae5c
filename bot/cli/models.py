"""`jamgen models`: list the models and whether their weights are here; `jamgen models pull NAME` fetches one.

Listing reads files only (no torch import, no network).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
from typing import Any

from bot.config import Settings
from bot.engine.client import EngineClient
from bot.engine.config import EngineConfig
from bot.engine.registry import MODELS, ModelSpec, get_model_spec
from bot.engine.weights import WeightsLocation, find_weights
from bot.errors import UserInputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this subcommand's options.

    Args:
        parser: the subcommand's parser.
    """
    parser.add_argument(
        "action", nargs="?", choices=("list", "pull"), default="list", help="list (default) or pull NAME"
    )
    parser.add_argument("name", nargs="?", help="model to pull (downloads its weights into the Hugging Face cache)")
    parser.add_argument("--json", action="store_true", help="print the list as JSON")


def describe(spec: ModelSpec, where: WeightsLocation) -> dict[str, Any]:
    """One row of the listing.

    Args:
        spec: the model.
        where: where its weights are.
    """
    return {
        "name": spec.name,
        "checkpoint": spec.checkpoint,
        "modes": sorted(m.value for m in spec.modes),
        "stereo": spec.stereo,
        "max_duration": spec.max_duration,
        "cost_weight": spec.cost_weight,
        "vram_gb": spec.vram_gb,
        "test_model": spec.debug,
        "weights": where.source,
        "weights_path": None if where.path is None else str(where.path),
    }


def _table(rows: list[dict[str, Any]]) -> str:
    header = ("model", "modes", "ch", "window", "cost", "vram", "weights")
    lines = [
        (
            row["name"] + (" (test)" if row["test_model"] else ""),
            ",".join(row["modes"]),
            "2" if row["stereo"] else "1",
            f"{row['max_duration']:g}s",
            f"{row['cost_weight']:g}x",
            f"{row['vram_gb']:g}GB",
            row["weights"] + (f" {row['weights_path']}" if row["weights_path"] else ""),
        )
        for row in rows
    ]
    widths = [max(len(str(c)) for c in column) for column in zip(header, *lines, strict=False)]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in [header, *lines]
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """List the models or pull one.

    Args:
        args: parsed arguments.
        settings: jamgen's settings.

    Returns:
        0 on success (errors are raised as JamgenError).
    """
    if args.action == "pull":
        return _pull(args.name, settings)
    rows = [describe(spec, find_weights(spec, settings.model_dir)) for spec in MODELS.values()]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(_table(rows))
        print(
            f"\nweights: local = {settings.model_dir}/<model>/, hf-cache = Hugging Face cache, "
            "built-in = test model made in code. Fetch one with `jamgen models pull NAME`."
        )
    return 0


def _pull(name: str | None, settings: Settings) -> int:
    if not name:
        raise UserInputError("Say which model to pull, e.g. `jamgen models pull small`.")
    spec = get_model_spec(name)
    if spec.debug:
        print(f"{spec.name} is a test model built in code; nothing to download.")
        return 0
    config = dataclasses.replace(EngineConfig.from_settings(settings, warmup=False), allow_debug_models=True)

    async def load() -> None:
        engine = EngineClient(config)  # started by load_model, after its offline check
        try:
            await engine.load_model(spec.name)
        finally:
            await engine.close()

    # Loading through the engine fetches exactly what audiocraft needs (checkpoint, text encoder, codec).
    asyncio.run(load())
    where = find_weights(spec, settings.model_dir)
    print(f"{spec.name} is ready ({where.source}{': ' + str(where.path) if where.path else ''}).")
    return 0
