"""Fixtures of the service room: a real store and service around the fake engine (built by tests/harness.py)."""

from __future__ import annotations

import pytest

from tests.harness import build_harness


@pytest.fixture
async def harness(tmp_path):
    """A started service with a fake engine and a recording deliverer."""
    h = await build_harness(tmp_path)
    await h.service.start()
    yield h
    h.engine.release.set()
    await h.close()
