"""One take the way a user makes it: ``jamgen generate`` on a real-size model with random weights.

The other benches call the engine's generate function in their own process; this one goes through
the bot's own path: the CLI, its engine worker process (spawned, warmed, supervised), the model
cache and audiocraft's checkpoint loaders, then the audio room's encoder. No product switch is
needed for random weights: the script writes checkpoint files in audiocraft's format
(``{"xp.cfg": ..., "best_state": ...}``, the layout of facebook/musicgen-*) for a model of a
released shape (``bot/engine/worker/sizes.py``: the LUT text conditioner and the real codec shape,
so nothing is downloaded) into a temporary ``JAMGEN_MODEL_DIR/<name>/``, where jamgen looks for
local weights first, and runs ``jamgen generate --model <name>`` with ``HF_HUB_OFFLINE=1``.

Prints ``name=value`` lines; the headline ``generate_x_realtime`` (seconds of audio per second of
the engine's generate call, as the CLI's recipe reports it) comes last.

    python bench/generate_take.py --quick                                   # tiny shape, 1 s, CPU
    python bench/generate_take.py --model-size small --duration 10 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch

from bot.engine.worker.sizes import MODEL_SHAPES, _codec_config, _lm_config, build_sized_model

PROMPT = "lofi hip hop with warm piano"


def write_checkpoint(folder: Path, size: str, device: torch.device) -> int:
    """Write ``state_dict.bin`` and ``compression_state_dict.bin`` for a random model of ``size``.

    audiocraft's loaders rebuild each model from ``xp.cfg`` with its builders and then load
    ``best_state`` (``audiocraft.models.loaders``), so the files hold the same configuration that
    ``build_sized_model`` builds from. Weights are stored in the dtype the device runs them in
    (float16 on CUDA: half the bytes to write and read).

    Args:
        folder: ``<model dir>/<name>``; made when missing.
        size: a key of ``MODEL_SHAPES``.
        device: where the weights are made (CUDA makes a large model's random weights faster).

    Returns:
        The bytes written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    model = build_sized_model(size, device)
    shape = MODEL_SHAPES[size]
    cpu = torch.device("cpu")  # the loaders set device and dtype themselves
    files = {
        "state_dict.bin": (_lm_config(shape, cpu), model.lm.state_dict()),
        "compression_state_dict.bin": (_codec_config(cpu), model.compression_model.state_dict()),
    }
    written = 0
    for name, (config, state) in files.items():
        # Plain containers and tensors only: loadable with torch.load's weights_only default.
        package = {"xp.cfg": config, "best_state": {k: v.detach().cpu() for k, v in state.items()}}
        torch.save(package, folder / name)
        written += (folder / name).stat().st_size
    return written


def cli_environment(model_dir: Path, device: str) -> dict[str, str]:
    """This environment without jamgen's, Discord's or Hugging Face's settings, pointed at ``model_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAMGEN_", "DISCORD_", "HF_"))}
    env.update(
        JAMGEN_MODEL_DIR=str(model_dir),
        JAMGEN_DEVICE=device,
        JAMGEN_LOG_LEVEL="WARNING",
        HF_HUB_OFFLINE="1",  # a download attempt would be a bug here: fail instead
    )
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-size", choices=sorted(MODEL_SHAPES), default="small", help="the shape (default small)")
    parser.add_argument(
        "--name", default="small", help="the registry name the weights are loaded as (default small: 30 s window)"
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of audio (default 10)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds the CLI may take (default 600)")
    parser.add_argument("--keep", type=Path, help="keep the checkpoint and the take here (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="tiny shape, 1 s, CPU (seconds)")
    args = parser.parse_args(argv)
    if args.quick:
        args.model_size, args.duration, args.device = "tiny", 1.0, "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA GPU")

    with tempfile.TemporaryDirectory(prefix="jamgen-take-") as scratch:
        work = args.keep or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        written = write_checkpoint(work / "models" / args.name, args.model_size, torch.device(args.device))
        checkpoint_s = time.perf_counter() - started
        if args.device == "cuda":
            torch.cuda.empty_cache()  # the worker needs the memory, not this process
        output = work / "take.wav"
        command = [sys.executable, "-m", "bot.cli", "--env-file", str(work / "none.env"), "generate", PROMPT]
        command += ["--model", args.name, "--duration", f"{args.duration:g}", "-o", str(output), "--json"]
        started = time.perf_counter()
        done = subprocess.run(
            command,
            cwd=ROOT,
            env=cli_environment(work / "models", args.device),
            capture_output=True,
            text=True,
            timeout=args.timeout,
            check=False,
        )
        cli_s = time.perf_counter() - started
        if done.returncode != 0:
            sys.stderr.write(done.stdout + done.stderr)
            print(f"generate: jamgen generate exited {done.returncode}", file=sys.stderr)
            return 1
        take = json.loads(done.stdout)
        print(f"# random {args.model_size} ({MODEL_SHAPES[args.model_size]}) as '{args.name}'; jamgen generate")
        print(f"device={args.device}")
        print(f"model_size={args.model_size}")
        print(f"checkpoint_bytes={written}")
        print(f"checkpoint_write_s={checkpoint_s:.2f}")
        print(f"take_duration_s={take['duration']:g}")
        print(f"take_bytes={output.stat().st_size}")
        print(f"cli_wall_s={cli_s:.2f}")
        print(f"engine_call_s={take['elapsed_s']:.2f}")
        print(f"generate_x_realtime={take['duration'] / max(take['elapsed_s'], 1e-6):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
