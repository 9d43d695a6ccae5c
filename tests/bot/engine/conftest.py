"""One real engine (worker process, tiny random models) shared by the engine tests of this session.

Starting a worker imports torch and audiocraft (about 8 s), so the tests share one and the
fault tests that kill it pay for one restart each.
"""

import numpy as np
import pytest
import pytest_asyncio

from bot.engine.client import EngineClient
from bot.engine.config import EngineConfig
from bot.engine.protocol import EngineFaults

# Fault prefixes: a request whose id starts with one of these triggers the fault (tests only).
TEST_FAULTS = EngineFaults(
    oom_prefix="oom",
    oom_min_batch=4,
    error_prefix="error",
    hang_prefix="hang",
    slow_prefix="slow",
    slow_step_s=0.05,
)

# Three debug models fit (0.1 GB each): using four families exercises the LRU.
TEST_CONFIG = EngineConfig(
    device="cpu",
    memory_budget_gb=0.35,
    max_batch=4,
    watchdog_factor=10.0,
    watchdog_base_s=60.0,
    allow_debug_models=True,
    max_duration=30.0,
    cpu_threads=1,
    log_level="WARNING",
)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def engine():
    client = EngineClient(TEST_CONFIG, faults=TEST_FAULTS)
    await client.start()
    yield client
    await client.close()


@pytest.fixture
def noise():
    """Reference audio: seconds -> float32 [1, samples] at 32 kHz (a fixed random signal)."""

    def make(seconds, rate=32000, channels=1):
        rng = np.random.default_rng(7)
        return (0.1 * rng.standard_normal((channels, int(seconds * rate)))).astype(np.float32)

    return make
