"""The engine's worker process: the only place torch and audiocraft are imported.

This package's ``__init__`` imports nothing heavy, so the bot's process can name
:func:`run_worker` as the target of a spawned process without importing torch.
"""

from __future__ import annotations

from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.engine.config import EngineConfig
    from bot.engine.protocol import EngineFaults


# Debug models are built from this seed so that every process builds the same weights (here, light, so that
# tests and benchmarks can rebuild a debug model without importing audiocraft).
DEBUG_WEIGHTS_SEED = 1234


def run_worker(conn: Connection, config: EngineConfig, faults: EngineFaults | None = None) -> None:
    """Entry point of the spawned worker process.

    Args:
        conn: the worker's end of the pipe to the client.
        config: engine configuration.
        faults: test-only fault injection (None in production).
    """
    from bot.engine.worker.server import serve

    serve(conn, config, faults)
