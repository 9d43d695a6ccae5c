"""`make gpu-check`: every GPU figure jamgen still owes, in one short run on a freshly lent CUDA machine.

In this order, each part a subprocess with its own time limit (a part that runs over is killed,
keeps the figures it had printed and is recorded ``"timed_out": true``; the next part still runs):

0. ``install``: ``scripts/install.sh --dev`` (idempotent; the same pinned torch 2.11.0 wheel runs on
   CPU and CUDA). Its time is recorded but is not part of the budget below.
1. ``tests``: the CUDA-only tests: graph replay = static step = audiocraft's tokens, the autocast choice;
2. ``engine-small``, ``engine-medium``: ``bench/engine.py`` at batch 1, 4, 8 and 16, 10 s of audio,
   stock audiocraft against jamgen, with the bandwidth-floor fraction;
3. ``batching``: ``bench/batching.py`` on the GPU (four takes in one call against one at a time);
4. ``generate``: one ``jamgen generate`` take through the real CLI and its engine worker process, on a
   real-size model with random weights (``bench/generate_take.py``).

The parts share a wall-time budget (default 470 s, under 8 minutes): a part's limit is cut to what
is left. Results go to ``bench/results/gpu-<date>-<gpu>.json``, rewritten after every part (so an
interrupted run still leaves what it had), then a summary table and where each figure goes in
docs/PERFORMANCE.md are printed. Without CUDA it says so in one line, runs the CPU-checkable parts
with ``--quick`` and exits 0. The exit status is 1 only when a part (or the install) failed; a part
cut by its time limit is recorded, not a failure; 130 when stopped (SIGTERM, Ctrl-C), JSON written.

This file imports only the standard library: it runs before the virtual environment exists, and
every part runs in the environment's own Python.

    make gpu-check                                     # = python3 bench/gpu_check.py
    python3 bench/gpu_check.py --no-install --parts engine-small,generate
    python3 bench/gpu_check.py --limit batching=120 --budget 600
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = 1
# Under 8 minutes of parts, so that install (3-4 min on a fresh machine) and the run fit a 15-minute loan.
BUDGET_S = 470.0
INSTALL_LIMIT_S = 540.0
PROBE_LIMIT_S = 120.0
# A killed part gets this long to exit after SIGTERM before SIGKILL.
KILL_GRACE_S = 3.0
# How often a running part checks for a stop request.
POLL_S = 0.2
# Set by SIGTERM or Ctrl-C: the running part is killed and recorded, then the JSON is written.
STOP = threading.Event()
TAIL_LINES = 40
PART_NAMES = ("tests", "engine-small", "engine-medium", "batching", "generate")
LIMITS_S: dict[str, float] = {
    "tests": 60,
    "engine-small": 100,
    "engine-medium": 140,
    "batching": 90,
    "generate": 60,
}
# --quick on a (possibly shared, two-core) CPU: the real codec shape makes even tiny takes take a while.
QUICK_LIMITS_S: dict[str, float] = {
    "tests": 120,
    "engine-small": 150,
    "engine-medium": 150,  # skipped unless --command gives it something to run
    "batching": 150,
    "generate": 150,
}
CUDA_TESTS = [
    "tests/bot/engine/worker/test_decode.py",
    "tests/bot/engine/worker/test_kernels.py",
    "tests/bot/engine/test_decoding.py",
]
FIGURE_LINE = re.compile(r"^([A-Za-z_][\w.]*)=(\S.*)$")
PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|skipped|errors?|deselected|xfailed|xpassed)")

# Where each figure goes: (row of the "GPU figures" table in docs/PERFORMANCE.md, part, its figures).
FLOORS = (
    "b1_jamgen_floor_fraction",
    "b4_jamgen_floor_fraction",
    "b8_jamgen_floor_fraction",
    "b16_jamgen_floor_fraction",
)
BATCH_RATIOS = ("b4_jamgen_vs_stock", "b8_jamgen_vs_stock", "b16_jamgen_vs_stock")
REALTIME = ("b1_stock_x_realtime", "b1_jamgen_x_realtime")
DOC_ROWS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("CUDA tests: passed, skipped (must be 0), failed", "tests", ("tests_passed", "tests_skipped", "tests_failed")),
    ("`b1_jamgen_vs_stock` (goal ≥ 2)", "engine-small", ("b1_jamgen_vs_stock",)),
    ("`b1_jamgen_vs_stock` (goal ≥ 2)", "engine-medium", ("b1_jamgen_vs_stock",)),
    ("`b8_aggregate_vs_stock_sequential` (goal ≥ 6)", "engine-small", ("b8_aggregate_vs_stock_sequential",)),
    ("`b8_aggregate_vs_stock_sequential` (goal ≥ 6)", "engine-medium", ("b8_aggregate_vs_stock_sequential",)),
    ("`b*_jamgen_vs_stock` at 4, 8, 16", "engine-small", BATCH_RATIOS),
    ("`b*_jamgen_vs_stock` at 4, 8, 16", "engine-medium", BATCH_RATIOS),
    ("`b*_jamgen_floor_fraction` at 1, 4, 8, 16", "engine-small", FLOORS),
    ("`b*_jamgen_floor_fraction` at 1, 4, 8, 16", "engine-medium", FLOORS),
    ("`b1_stock_x_realtime`, `b1_jamgen_x_realtime`", "engine-small", REALTIME),
    ("`b1_stock_x_realtime`, `b1_jamgen_x_realtime`", "engine-medium", REALTIME),
    (
        "`batch4_vs_sequential`, `batch4_vs_stock_sequential`",
        "batching",
        ("batch4_vs_sequential", "batch4_vs_stock_sequential"),
    ),
    (
        "`jamgen generate`, one cold take: `generate_x_realtime`, `cli_wall_s`",
        "generate",
        ("generate_x_realtime", "cli_wall_s"),
    ),
)
DOC_SECTION = "docs/PERFORMANCE.md, section 'The GPU path', table 'GPU figures'"

# Asks the environment's torch what it sees; one JSON line.
PROBE = """
import json, torch
info = {"torch": torch.__version__, "torch_cuda": torch.version.cuda, "cuda": torch.cuda.is_available()}
if info["cuda"]:
    p = torch.cuda.get_device_properties(0)
    info.update(name=p.name, capability=f"{p.major}.{p.minor}", memory_gb=round(p.total_memory / 2**30, 1),
                bf16=torch.cuda.is_bf16_supported())
print(json.dumps(info))
"""


@dataclass
class Part:
    """One step of the check: a command and how long it may take."""

    name: str
    command: list[str]
    limit_s: float
    # Set instead of running: why the part does not run in this mode.
    skip_reason: str | None = None


@dataclass
class PartResult:
    """What one part did; ``figures`` are its ``name=value`` lines, ``headline`` the last of them."""

    name: str
    command: list[str]
    limit_s: float
    status: str  # ok | failed | timed_out | skipped | interrupted
    returncode: int | None = None
    timed_out: bool = False
    elapsed_s: float = 0.0
    figures: dict[str, float | str] = field(default_factory=dict)
    headline: dict[str, float | str] | None = None
    skip_reason: str | None = None
    output_tail: list[str] = field(default_factory=list)


def venv_python() -> str:
    """The environment's Python (scripts/install.sh makes it), or this one where there is none."""
    candidate = ROOT / os.environ.get("JAMGEN_VENV", ".venv") / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def parse_figures(lines: Sequence[str]) -> tuple[dict[str, float | str], dict[str, float | str] | None]:
    """The ``name=value`` lines of a bench script (numbers where they parse) and the last one, its headline.

    Args:
        lines: the output lines.
    """
    figures: dict[str, float | str] = {}
    headline = None
    for line in lines:
        match = FIGURE_LINE.match(line.strip())
        if not match:
            continue
        name, text = match.groups()
        value: float | str
        try:
            value = float(text)
        except ValueError:
            value = text
        figures[name] = value
        headline = {"name": name, "value": value}
    return figures, headline


def pytest_counts(lines: Sequence[str]) -> dict[str, float | str]:
    """``tests_passed``, ``tests_skipped``, ... from pytest's last summary line."""
    for line in reversed(lines):
        counts = PYTEST_COUNT.findall(line)
        if counts and (" in " in line or line.startswith("=")):
            found: dict[str, float | str] = {"tests_passed": 0.0, "tests_skipped": 0.0, "tests_failed": 0.0}
            for number, kind in counts:
                found["tests_errors" if kind.startswith("error") else f"tests_{kind}"] = float(number)
            return found
    return {}


def run_part(part: Part, limit_s: float, echo: Callable[[str], None]) -> PartResult:
    """Run one part in its own process group; kill the group when it runs past ``limit_s``.

    Output lines are echoed as they come (progress) and kept; a killed part keeps the figures it had printed.

    Args:
        part: the part.
        limit_s: its time limit (its own, or less when the budget is nearly spent).
        echo: where progress lines go.
    """
    started = time.monotonic()
    lines: list[str] = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # figures arrive as they are printed, not at exit
    try:
        process = subprocess.Popen(
            part.command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            start_new_session=True,  # its own group: engine workers and pytest's children die with it
        )
    except OSError as exc:
        return PartResult(part.name, part.command, limit_s, "failed", elapsed_s=0.0, output_tail=[str(exc)])

    def read() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            echo(f"  [{part.name} {time.monotonic() - started:5.0f}s] {line}")

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    timed_out = interrupted = False
    deadline = started + limit_s
    # Short waits, so that a stop request (SIGTERM, Ctrl-C) is seen within a fraction of a second.
    while process.poll() is None:
        if STOP.is_set():
            interrupted = True  # the part must not outlive the check; what it printed is kept
            _kill_group(process)
        elif time.monotonic() >= deadline:
            timed_out = True
            _kill_group(process)
        else:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=min(POLL_S, max(deadline - time.monotonic(), 0.0)))
    # Whatever the part left behind in its group (a worker process, a pytest child) goes with it.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    reader.join(timeout=KILL_GRACE_S)
    elapsed = time.monotonic() - started
    figures, headline = parse_figures(lines)
    if part.name == "tests":
        figures.update(pytest_counts(lines))
    if timed_out or interrupted or process.returncode != 0:
        headline = None  # the last line of a run that did not finish is not its headline
    if interrupted:
        status = "interrupted"
    elif timed_out:
        status = "timed_out"
    elif process.returncode == 0:
        status = "ok"
    else:
        status = "failed"
    return PartResult(
        part.name,
        part.command,
        limit_s,
        status,
        returncode=process.returncode,
        timed_out=timed_out,
        elapsed_s=round(elapsed, 2),
        figures=figures,
        headline=headline,
        output_tail=lines[-TAIL_LINES:],
    )


def _kill_group(process: subprocess.Popen[str]) -> None:
    """SIGTERM the part's process group, then SIGKILL what is left after a short grace."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=KILL_GRACE_S)
            # The leader is gone; make sure nothing it started outlives it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            return
        except subprocess.TimeoutExpired:
            continue
    process.wait()


def probe_device(python: str) -> dict[str, Any]:
    """What torch in the environment sees, and the driver nvidia-smi reports (when there is one)."""
    info: dict[str, Any] = {"cuda": False}
    try:
        done = subprocess.run(
            [python, "-c", PROBE], capture_output=True, text=True, timeout=PROBE_LIMIT_S, cwd=ROOT, check=False
        )
        if done.returncode == 0 and done.stdout.strip():
            info.update(json.loads(done.stdout.strip().splitlines()[-1]))
        else:
            info["probe_error"] = (done.stderr.strip().splitlines() or ["no output"])[-1]
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
        info["probe_error"] = f"{type(exc).__name__}: {exc}"
    smi = shutil.which("nvidia-smi")
    if smi:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            query = [smi, "--query-gpu=name,driver_version", "--format=csv,noheader"]
            out = subprocess.run(query, capture_output=True, text=True, timeout=30, check=False).stdout.strip()
            if out:
                name, _, driver = out.splitlines()[0].partition(",")
                info["nvidia_smi_name"], info["driver"] = name.strip(), driver.strip()
    return info


def no_cuda_line(info: dict[str, Any]) -> str:
    """The one line that says why this run is the CPU's ``--quick`` one."""
    if info.get("nvidia_smi_name"):
        return (
            f"gpu-check: torch {info.get('torch', '?')} (CUDA {info.get('torch_cuda')}) cannot use the "
            f"{info['nvidia_smi_name']} (driver {info.get('driver')}; CUDA 13 wheels need a 580-series driver "
            "or newer): running the CPU-checkable parts with --quick"
        )
    reason = info.get("note") or info.get("probe_error") or f"torch {info.get('torch', '?')} sees no CUDA GPU"
    return f"gpu-check: no CUDA GPU ({reason}): running the CPU-checkable parts with --quick"


def default_parts(python: str, quick: bool) -> list[Part]:
    """The parts in their order, with the GPU commands or the CPU's ``--quick`` ones."""

    def bench(script: str, options: str) -> list[str]:
        return [python, "-u", f"bench/{script}", *shlex.split(options)]

    tests = [python, "-m", "pytest", *CUDA_TESTS, "-q", "-p", "no:cacheprovider", "-k", "cuda or autocast"]
    if quick:
        limits = QUICK_LIMITS_S
        return [
            Part("tests", tests, limits["tests"]),
            Part("engine-small", bench("engine.py", "--quick --repeats 1"), limits["engine-small"]),
            Part("engine-medium", [], limits["engine-medium"], skip_reason="--quick: the tiny model only"),
            Part("batching", bench("batching.py", "--quick"), limits["batching"]),
            Part("generate", bench("generate_take.py", "--quick"), limits["generate"]),
        ]
    engine = "--duration 10 --batch 1,4,8,16 --device cuda"
    return [
        Part("tests", tests, LIMITS_S["tests"]),
        # Best of two for small; medium's stock calls take twice as long, so one each (after a warm-up call).
        Part("engine-small", bench("engine.py", f"--model-size small {engine} --repeats 2"), LIMITS_S["engine-small"]),
        Part(
            "engine-medium", bench("engine.py", f"--model-size medium {engine} --repeats 1"), LIMITS_S["engine-medium"]
        ),
        Part(
            "batching",
            bench("batching.py", "--model-size small --duration 10 --batch 4 --device cuda --repeats 1"),
            LIMITS_S["batching"],
        ),
        Part(
            "generate",
            bench("generate_take.py", "--model-size small --duration 10 --device cuda"),
            LIMITS_S["generate"],
        ),
    ]


def results_path(folder: Path, date: str, device_name: str) -> Path:
    """``gpu-<date>-<device>.json`` in ``folder``; ``-2``, ``-3`` ... when a run of the same day is there."""
    slug = re.sub(r"[^a-z0-9]+", "-", device_name.lower()).strip("-") or "unknown"
    path = folder / f"gpu-{date}-{slug}.json"
    number = 2
    while path.exists():
        path = folder / f"gpu-{date}-{slug}-{number}.json"
        number += 1
    return path


def _pairs(values: Sequence[str], option: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or name not in (*PART_NAMES, "install"):
            raise SystemExit(f"gpu-check: {option} {value!r}: expected PART=..., PART one of install, {PART_NAMES}")
        pairs[name] = rest
    return pairs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto", help="cpu: the --quick run")
    parser.add_argument("--quick", action="store_true", help="the CPU-checkable parts only, in seconds")
    parser.add_argument("--no-install", action="store_true", help="skip scripts/install.sh --dev")
    parser.add_argument("--parts", help=f"a comma-separated subset, run in this order: {','.join(PART_NAMES)}")
    parser.add_argument("--budget", type=float, default=BUDGET_S, help=f"seconds for all parts (default {BUDGET_S:g})")
    parser.add_argument(
        "--limit", action="append", default=[], metavar="PART=SECONDS", help="a part's own time limit (repeatable)"
    )
    parser.add_argument(
        "--command",
        action="append",
        default=[],
        metavar="PART=COMMAND",
        help="run this command line (shell words) for a part instead of its own (repeatable; install too)",
    )
    parser.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results", help="where the JSON goes")
    return parser


def say(line: str) -> None:
    """A progress line, at once (the output may be a pipe to a remote terminal)."""
    print(line, flush=True)


def interrupted(report: dict[str, Any], save: Callable[[], None], path: Path) -> int:
    """Record that the run was stopped (SIGTERM, Ctrl-C), write what it has, exit 130."""
    report["interrupted"] = True
    save()
    say(f"gpu-check: stopped; what was done is in {path}")
    return 130


def _request_stop(signum: int, frame: object) -> None:
    # Only a flag: the running part is killed and recorded by run_part, the JSON written by main.
    STOP.set()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {name: shlex.split(text) for name, text in _pairs(args.command, "--command").items()}
    limits = {}
    for name, text in _pairs(args.limit, "--limit").items():
        try:
            limits[name] = float(text)
        except ValueError:
            raise SystemExit(f"gpu-check: --limit {name}={text}: not a number of seconds") from None
    chosen = PART_NAMES if not args.parts else tuple(p.strip() for p in args.parts.split(",") if p.strip())
    unknown = [p for p in chosen if p not in PART_NAMES]
    if unknown:
        raise SystemExit(f"gpu-check: unknown part(s) {unknown}; parts: {', '.join(PART_NAMES)}")

    run_started = time.monotonic()
    # timezone.utc, not 3.11's UTC: an older system python3 must get as far as install.sh, which says what it needs.
    now = dt.datetime.now(dt.timezone.utc)  # noqa: UP017
    day = now.strftime("%Y-%m-%d")
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "date": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "mode": None,
        "host": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "device": None,
        "budget_s": args.budget,
        "elapsed_s": 0.0,
        "ok": False,
        "interrupted": False,
        "install": None,
        "parts": [],
        "docs": DOC_SECTION,
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    # The device names the file; until it is known (during the install) the file is ...-pending.json.
    path = results_path(args.results_dir, day, "pending")

    def save() -> None:
        report["elapsed_s"] = round(time.monotonic() - run_started, 2)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(report, indent=2) + "\n")
        temporary.replace(path)

    # A SIGTERM (a machine's own time limit) still leaves the JSON with what was done.
    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)
    if not args.no_install:
        install = Part(
            "install",
            commands.get("install", ["bash", "scripts/install.sh", "--dev"]),
            limits.get("install", INSTALL_LIMIT_S),
        )
        say(f"gpu-check: install: {' '.join(install.command)} (up to {install.limit_s:.0f} s, outside the budget)")
        result = run_part(install, install.limit_s, say)
        report["install"] = asdict(result)
        save()
        if STOP.is_set():
            return interrupted(report, save, path)
        if result.status != "ok":
            say(f"gpu-check: install {result.status} after {result.elapsed_s:.0f} s; see {path}")
            return 1
    python = venv_python()
    budget_started = time.monotonic()
    if args.device == "cpu":
        info: dict[str, Any] = {"cuda": False, "name": "cpu", "note": "--device cpu: torch not asked"}
    else:
        info = probe_device(python)
    quick = args.quick or not info.get("cuda")
    report["device"] = info
    report["mode"] = "quick" if quick else "gpu"
    provisional = path
    path = results_path(args.results_dir, day, "cpu" if quick else str(info.get("name", "gpu")))
    save()
    provisional.unlink(missing_ok=True)
    if not info.get("cuda"):
        if args.device == "cuda":
            say(no_cuda_line(info).replace("running the CPU-checkable parts with --quick", "stopping"))
            report["mode"] = None
            save()
            return 1
        say(no_cuda_line(info))
    elif quick:
        say("gpu-check: --quick: the CPU-checkable parts only")
    else:
        torch_text = f"torch {info.get('torch')} with CUDA {info.get('torch_cuda')}"
        say(f"gpu-check: {info['name']} ({info.get('memory_gb')} GiB), {torch_text}")

    parts = [p for p in default_parts(python, quick) if p.name in chosen]
    for part in parts:
        if part.name in commands:
            part.command, part.skip_reason = commands[part.name], None
        part.limit_s = limits.get(part.name, part.limit_s)
    for part in parts:
        if STOP.is_set():
            return interrupted(report, save, path)
        left = args.budget - (time.monotonic() - budget_started)
        if part.skip_reason or left < 1:
            reason = part.skip_reason or f"no time left of the {args.budget:g} s budget"
            say(f"gpu-check: {part.name}: skipped ({reason})")
            report["parts"].append(asdict(PartResult(part.name, part.command, 0.0, "skipped", skip_reason=reason)))
            save()
            continue
        limit = min(part.limit_s, left)
        say(f"gpu-check: {part.name}: {' '.join(part.command)} (limit {limit:.0f} s; {left:.0f} s of budget left)")
        result = run_part(part, limit, say)
        if part.name == "tests" and not quick and result.status == "ok" and result.figures.get("tests_skipped"):
            # On a GPU nothing may be skipped: a skip there is a CUDA test that did not run.
            result.status = "failed"
        say(f"gpu-check: {part.name}: {result.status} in {result.elapsed_s:.0f} s")
        report["parts"].append(asdict(result))
        save()
        if STOP.is_set():
            return interrupted(report, save, path)
    # ok: every figure is in. The exit status fails only for a part that failed: a part cut by its time
    # limit is the budget's doing, recorded with what it had (a shared CPU's --quick run often is).
    report["ok"] = all(p["status"] in ("ok", "skipped") for p in report["parts"])
    save()
    for line in summary(report):
        say(line)
    say(f"gpu-check: wrote {path}")
    return 1 if any(p["status"] == "failed" for p in report["parts"]) else 0


def summary(report: dict[str, Any]) -> list[str]:
    """The summary table, then which figure goes where in docs/PERFORMANCE.md."""
    out = ["", f"{'part':<14} {'status':<10} {'seconds':>8} {'limit':>6}  headline"]
    for part in report["parts"]:
        head, figures = part["headline"], part["figures"]
        if head:
            shown = f"{head['name']}={head['value']}"
        elif "tests_passed" in figures:
            shown = ", ".join(f"{figures[f'tests_{kind}']:g} {kind}" for kind in ("passed", "skipped", "failed"))
        else:
            shown = part["skip_reason"] or ""
        timing = f"{part['elapsed_s']:>8.1f} {part['limit_s']:>6.0f}"
        out.append(f"{part['name']:<14} {part['status']:<10} {timing}  {shown}")
    out += ["", f"Where the figures go ({DOC_SECTION}):"]
    by_part = {p["name"]: p for p in report["parts"]}
    for row, part_name, figures in DOC_ROWS:
        found = by_part.get(part_name, {}).get("figures", {})
        values = ", ".join(f"{name}={found.get(name, '—')}" for name in figures)
        out.append(f"  {row} [{part_name}]: {values}")
    if report["mode"] == "quick":
        out.append("  (a --quick run on the CPU with tiny models: not the GPU figures; nothing goes in the table)")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
