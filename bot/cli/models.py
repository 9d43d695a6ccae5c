"""`jamgen models`: list the models and whether their weights are here; `jamgen models pull NAME...` fetches them.

Listing reads files only (no torch import, no network). Pulling loads each model once through the engine,
which downloads exactly what audiocraft needs (checkpoint, codec, text encoder, melody/style helpers) into
the Hugging Face cache, and for a separator (``htdemucs``) what demucs' own loader fetches (its Hugging Face
repository, else its checkpoint into torch's hub cache); it first checks that the hub can be reached, so a
machine without network gets one clear sentence at once instead of minutes of retries.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import socket
import sys
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from bot.config import Settings
from bot.engine.client import EngineClient
from bot.engine.config import EngineConfig
from bot.engine.registry import MODELS, ModelSpec, get_model_spec
from bot.engine.weights import WeightsLocation, find_weights, hf_cache_dir, hf_offline, missing_weights_error
from bot.errors import JamgenError, UserInputError

HUB_CONNECT_TIMEOUT_S = 5.0
DEFAULT_HUB = "https://huggingface.co"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register this subcommand's options.

    Args:
        parser: the subcommand's parser.
    """
    parser.add_argument(
        "action", nargs="?", choices=("list", "pull"), default="list", help="list (default) or pull NAME..."
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help="models to pull (downloads their weights into the Hugging Face cache)"
    )
    parser.add_argument("--json", action="store_true", help="print the list as JSON")


def describe(spec: ModelSpec, where: WeightsLocation) -> dict[str, Any]:
    """One row of the listing.

    Args:
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
        "separator": spec.separator,
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
        return pull(args.names, settings)
    if args.names:
        raise UserInputError(
            f"`jamgen models` lists every model; to fetch some, say `jamgen models pull {args.names[0]}`."
        )
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


class HubUnreachableError(JamgenError):
    """The Hugging Face hub cannot be reached from this machine (no network, a firewall, a proxy)."""


def hub_endpoint() -> str:
    """The hub that downloads come from (``HF_ENDPOINT``, as huggingface_hub reads it)."""
    return os.environ.get("HF_ENDPOINT", "").strip() or DEFAULT_HUB


def check_hub_reachable(timeout_s: float = HUB_CONNECT_TIMEOUT_S) -> None:
    """Open (and close) one TCP connection to the hub, so that no network fails in seconds, not minutes.

    Args:
        timeout_s: seconds to wait for the connection.

    Raises:
        HubUnreachableError: with what to do instead.
    """
    endpoint = hub_endpoint()
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    port = parts.port or (80 if parts.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise HubUnreachableError(
            f"Cannot reach {endpoint} to download weights ({exc.strerror or exc}). This machine seems to have no "
            f"network. Run `jamgen models pull` on a machine that has one and copy its Hugging Face cache "
            f"({hf_cache_dir()}) here (same path, or point HF_HOME at it), or put the weight files into "
            "JAMGEN_MODEL_DIR/<model>/ (README: Offline weights)."
        ) from None


def pull(names: Sequence[str], settings: Settings) -> int:
    """Fetch the weights of several models into the cache, one after the other, through one engine.

    Args:
        names: registry names (at least one).
        settings: jamgen's settings.

    Returns:
        0 when every model is ready, else the worst exit status of the failures (each printed as it happens).

    Raises:
        UserInputError: no name, or a name jamgen does not know (nothing is fetched then).
    """
    if not names:
        raise UserInputError("Say which models to pull, e.g. `jamgen models pull small melody`.")
    specs = list(dict.fromkeys(get_model_spec(name) for name in names))
    todo = []
    for spec in specs:
        where = find_weights(spec, settings.model_dir)
        if spec.debug:
            print(f"{spec.name} is a test model built in code; nothing to download.")
        elif hf_offline() and not where.present:
            print(f"error: {missing_weights_error(spec, settings.model_dir).message}", file=sys.stderr)
        else:
            todo.append(spec)
    failed = sum(1 for s in specs if not s.debug and s not in todo)
    status = 2 if failed else 0
    if todo and not hf_offline() and any(not find_weights(s, settings.model_dir).present for s in todo):
        check_hub_reachable()
    if todo:
        status = max(status, asyncio.run(_load_all(todo, settings)))
    return status


async def _load_all(specs: Sequence[ModelSpec], settings: Settings) -> int:
    config = dataclasses.replace(EngineConfig.from_settings(settings, warmup=False), allow_debug_models=True)
    engine = EngineClient(config)  # started by the first load_model
    status = 0
    try:
        for spec in specs:
            # Loading through the engine fetches exactly what audiocraft (or demucs, for a separator) needs.
            try:
                await engine.load_model(spec.name)
            except JamgenError as exc:
                print(f"error: {exc.message}", file=sys.stderr)
                status = max(status, exc.exit_code)
                continue
            where = find_weights(spec, settings.model_dir)
            print(f"{spec.name} is ready ({where.source}{': ' + str(where.path) if where.path else ''}).")
    finally:
        await engine.close()
    return status
