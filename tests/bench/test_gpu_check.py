"""`make gpu-check`'s plumbing, with fake parts through the script's own --command and --limit options.

The script runs as the user runs it (a subprocess, ``--no-install --device cpu``, so that torch is
never asked); every part is replaced by a small Python one-liner, so each test takes seconds.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "gpu_check.py"
PARTS = ("tests", "engine-small", "engine-medium", "batching", "generate")


def _load_module():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gpu_check = _load_module()


def py(code: str) -> str:
    """A --command value: this Python running ``code``."""
    return shlex.join([sys.executable, "-c", code])


def fake(*lines: str, exit_code: int = 0, sleep: float = 0.0) -> str:
    """A part that prints ``lines`` (flushed, as the benches' are), then sleeps, then exits."""
    code = f"import sys, time\nfor line in {list(lines)!r}:\n    print(line, flush=True)\n"
    code += f"time.sleep({sleep})\nsys.exit({exit_code})\n"
    return py(code)


def run_check(tmp_path: Path, *options: str, commands: dict[str, str] | None = None, install: bool = False):
    """Run gpu_check.py; every part not given in ``commands`` gets a quick passing fake."""
    commands = {name: fake(f"{name.replace('-', '_')}_figure=1") for name in PARTS} | (commands or {})
    argv = [sys.executable, str(SCRIPT), "--device", "cpu", "--results-dir", str(tmp_path / "results")]
    if not install:
        argv.append("--no-install")
    for name, command in commands.items():
        argv += ["--command", f"{name}={command}"]
    done = subprocess.run([*argv, *options], capture_output=True, text=True, timeout=120, check=False)
    files = sorted((tmp_path / "results").glob("gpu-*.json"))
    report = json.loads(files[-1].read_text()) if files else None
    return done, files, report


def by_name(report: dict) -> dict[str, dict]:
    return {part["name"]: part for part in report["parts"]}


def test_every_part_runs_in_order_and_its_figures_land_in_the_json(tmp_path):
    commands = {"engine-small": fake("# a comment", "device=cpu", "b1_jamgen_vs_stock=2.50", "jamgen_vs_stock_b1=2.5")}
    done, files, report = run_check(tmp_path, commands=commands)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [f.name for f in files] == [f"gpu-{report['date'][:10]}-cpu.json"]
    assert [p["name"] for p in report["parts"]] == list(PARTS)
    assert report["mode"] == "quick"
    assert report["ok"] is True
    engine = by_name(report)["engine-small"]
    assert engine["status"] == "ok"
    assert engine["returncode"] == 0
    assert engine["timed_out"] is False
    assert engine["figures"] == {"device": "cpu", "b1_jamgen_vs_stock": 2.5, "jamgen_vs_stock_b1": 2.5}
    assert engine["headline"] == {"name": "jamgen_vs_stock_b1", "value": 2.5}
    assert "b1_jamgen_vs_stock=2.50" in engine["output_tail"]
    # Progress lines as they come, then the summary table and where the figures go.
    assert "[engine-small" in done.stdout
    assert "Where the figures go" in done.stdout
    assert done.stdout.index("gpu-check: tests:") < done.stdout.index("gpu-check: generate:")


def test_the_json_has_the_documented_shape(tmp_path):
    done, _, report = run_check(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert set(report) == {
        "schema",
        "date",
        "mode",
        "host",
        "device",
        "budget_s",
        "elapsed_s",
        "ok",
        "interrupted",
        "install",
        "parts",
        "docs",
    }
    assert report["schema"] == 1
    assert report["install"] is None  # --no-install
    assert report["device"]["cuda"] is False
    for part in report["parts"]:
        assert set(part) == {
            "name",
            "command",
            "limit_s",
            "status",
            "returncode",
            "timed_out",
            "elapsed_s",
            "figures",
            "headline",
            "skip_reason",
            "output_tail",
        }


def test_a_part_that_overruns_is_killed_keeps_its_figures_and_the_next_part_runs(tmp_path):
    marker = tmp_path / "grandchild-survived"
    # The part starts a child of its own (as the CLI starts its engine worker): it must die with the part.
    grandchild = py(f"import time; time.sleep(3); open({str(marker)!r}, 'w')")
    slow = py(
        "import subprocess, sys, time\n"
        f"subprocess.Popen({shlex.split(grandchild)!r})\n"
        "print('b1_jamgen_vs_stock=2.0', flush=True)\n"
        "time.sleep(60)\n"
        "print('b4_jamgen_vs_stock=3.0', flush=True)\n"
    )
    started = time.monotonic()
    done, _, report = run_check(tmp_path, "--limit", "engine-small=2", commands={"engine-small": slow})
    assert time.monotonic() - started < 30
    assert done.returncode == 0, done.stdout + done.stderr  # cut by its limit: recorded, not a failure
    engine = by_name(report)["engine-small"]
    assert engine["status"] == "timed_out"
    assert engine["timed_out"] is True
    assert engine["limit_s"] == 2
    assert engine["figures"] == {"b1_jamgen_vs_stock": 2.0}
    assert engine["headline"] is None  # the last line printed is not the headline of an unfinished run
    assert by_name(report)["batching"]["status"] == "ok"
    assert report["ok"] is False
    time.sleep(3.5)
    assert not marker.exists()


def test_what_a_finished_part_started_does_not_outlive_it(tmp_path):
    marker = tmp_path / "left-behind"
    child = f"import time; time.sleep(1.5); open({str(marker)!r}, 'w')"
    leaver = py(f"import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', {child!r}])\nprint('done=1')\n")
    done, _, report = run_check(tmp_path, "--parts", "generate", commands={"generate": leaver})
    assert done.returncode == 0, done.stdout + done.stderr
    assert by_name(report)["generate"]["status"] == "ok"
    time.sleep(2.5)
    assert not marker.exists()


def test_the_budget_cuts_the_running_part_and_skips_the_rest(tmp_path):
    commands = {"tests": fake("tests_note=1", sleep=30)}
    done, _, report = run_check(tmp_path, "--budget", "2", commands=commands)
    assert done.returncode == 0, done.stdout + done.stderr
    parts = by_name(report)
    assert parts["tests"]["status"] == "timed_out"
    assert parts["tests"]["limit_s"] <= 2
    for name in PARTS[1:]:
        assert parts[name]["status"] == "skipped"
        assert "budget" in parts[name]["skip_reason"]


def test_a_failing_part_is_recorded_the_next_still_runs_and_the_check_fails(tmp_path):
    done, _, report = run_check(tmp_path, commands={"batching": fake("oops=1", exit_code=3)})
    assert done.returncode == 1
    parts = by_name(report)
    assert parts["batching"]["status"] == "failed"
    assert parts["batching"]["returncode"] == 3
    assert parts["batching"]["headline"] is None
    assert parts["generate"]["status"] == "ok"


def test_parts_can_be_chosen_and_keep_their_order(tmp_path):
    done, _, report = run_check(tmp_path, "--parts", "generate,tests")
    assert done.returncode == 0, done.stdout + done.stderr
    assert [p["name"] for p in report["parts"]] == ["tests", "generate"]


def test_without_cuda_it_says_so_in_one_line_and_skips_what_needs_a_gpu(tmp_path):
    commands = {name: fake("x=1") for name in PARTS if name != "engine-medium"}
    argv = [sys.executable, str(SCRIPT), "--device", "cpu", "--no-install", "--results-dir", str(tmp_path)]
    argv += [arg for name, command in commands.items() for arg in ("--command", f"{name}={command}")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [line for line in done.stdout.splitlines() if "no CUDA GPU" in line] == [done.stdout.splitlines()[0]]
    report = json.loads(next(tmp_path.glob("gpu-*-cpu.json")).read_text())
    assert by_name(report)["engine-medium"]["status"] == "skipped"
    assert by_name(report)["engine-medium"]["skip_reason"] == "--quick: the tiny model only"


def test_a_failed_install_stops_the_check_with_the_json_written(tmp_path):
    done, files, report = run_check(tmp_path, install=True, commands={"install": fake("pip=broken", exit_code=4)})
    assert done.returncode == 1
    assert len(files) == 1
    assert report["install"]["status"] == "failed"
    assert report["install"]["returncode"] == 4
    assert report["parts"] == []


def test_a_passing_install_is_recorded_outside_the_budget(tmp_path):
    done, _, report = run_check(tmp_path, "--budget", "60", install=True, commands={"install": fake("done=1")})
    assert done.returncode == 0, done.stdout + done.stderr
    assert report["install"]["status"] == "ok"
    assert report["install"]["command"][-1].endswith("sys.exit(0)\n")
    assert len(report["parts"]) == len(PARTS)


def test_a_terminated_check_kills_its_part_and_leaves_the_json(tmp_path):
    results = tmp_path / "results"
    argv = [sys.executable, str(SCRIPT), "--device", "cpu", "--no-install", "--results-dir", str(results)]
    argv += ["--parts", "tests,generate", "--command", f"tests={fake('tests_passed=3', sleep=60)}"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    for line in process.stdout:  # wait until the part has printed its figure (not the echo of its command)
        if line.startswith("  [tests") and "tests_passed=3" in line:
            break
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 130
    report = json.loads(next(results.glob("gpu-*.json")).read_text())
    assert report["interrupted"] is True
    assert [(p["name"], p["status"]) for p in report["parts"]] == [("tests", "interrupted")]
    assert report["parts"][0]["figures"]["tests_passed"] == 3


def test_bad_options_are_refused(tmp_path):
    for option in (["--limit", "nosuchpart=3"], ["--limit", "tests=soon"], ["--parts", "tests,gpu"]):
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--no-install", "--device", "cpu", "--results-dir", str(tmp_path), *option],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode != 0
        assert "gpu-check:" in done.stderr
    assert not list(tmp_path.glob("gpu-*.json"))


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["....s.", "5 passed, 1 skipped, 23 deselected in 2.10s"], {"passed": 5, "skipped": 1, "failed": 0}),
        (["===== 1 failed, 4 passed in 3.0s ====="], {"passed": 4, "skipped": 0, "failed": 1}),
        (["no summary here"], None),
    ],
)
def test_pytest_counts_come_from_its_summary_line(lines, expected):
    counts = gpu_check.pytest_counts(lines)
    if expected is None:
        assert counts == {}
    else:
        assert {k: counts[f"tests_{k}"] for k in expected} == expected


def test_a_second_run_of_the_day_does_not_overwrite_the_first(tmp_path):
    first = gpu_check.results_path(tmp_path, "2026-12-03", "NVIDIA H200")
    assert first.name == "gpu-2026-12-03-nvidia-h200.json"
    first.write_text("{}")
    assert gpu_check.results_path(tmp_path, "2026-12-03", "NVIDIA H200").name == "gpu-2026-12-03-nvidia-h200-2.json"


def test_the_gpu_commands_are_the_issues_runs():
    parts = {p.name: p for p in gpu_check.default_parts("python", quick=False)}
    assert list(parts) == list(PARTS)
    for size in ("small", "medium"):
        command = " ".join(parts[f"engine-{size}"].command)
        assert f"bench/engine.py --model-size {size} --duration 10 --batch 1,4,8,16 --device cuda" in command
    assert "--device cuda" in " ".join(parts["batching"].command)
    assert "--device cuda" in " ".join(parts["generate"].command)
    for part in parts.values():
        scripts = [arg for arg in part.command if arg.startswith(("bench/", "tests/"))]
        assert scripts
        assert all((ROOT / arg).exists() for arg in scripts)
    # The default limits fit the budget, and the budget is under 8 minutes.
    assert sum(p.limit_s for p in parts.values()) <= gpu_check.BUDGET_S < 8 * 60


def test_every_figure_has_its_row_in_docs_performance():
    doc = (ROOT / "docs" / "PERFORMANCE.md").read_text()
    table = doc.split("### GPU figures")[1].split("\n## ")[0]
    rows = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")]
    for row, part, _ in gpu_check.DOC_ROWS:
        assert row in rows, f"{row!r} ({part}) has no row in docs/PERFORMANCE.md's GPU figures table"
