"""The fast loop, ``pytest tests/cogs -m "not engine"``, runs every scenario on the fake engine: torch stays out.

A session of the fast loop checks itself at its end (``_the_fast_loop_imports_no_torch`` in conftest.py); any
other session (``make test``, or all of tests/cogs) runs one quick scenario as the fast loop would, in a child
pytest, and reads what that check found.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import TORCH_REPORT_ENV

ROOT = Path(__file__).resolve().parents[2]
QUICK = "test_a_take_is_a_channel_message_and_the_private_receipt_links_to_it"


def test_the_fast_loop_imports_no_torch(fast_loop, tmp_path):
    if fast_loop or TORCH_REPORT_ENV in os.environ:
        pytest.skip("this session is the fast loop: its own check at the end covers it")
    report = tmp_path / "torch-modules.txt"
    child = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/cogs", "-m", "not engine", "-k", QUICK, "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env={**os.environ, TORCH_REPORT_ENV: str(report)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = child.stdout[-6000:] + child.stderr[-3000:]
    assert child.returncode == 0, output
    assert "1 passed" in child.stdout, output
    assert report.exists(), "the fast loop's own check did not run"
    assert report.read_text() == "", output
