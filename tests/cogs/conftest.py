"""End-to-end world for cog tests: the real bot (same factory as production), the real service, store,
audio and engine (debug models, one warm worker for the whole session), and the fake Discord."""

from __future__ import annotations

import asyncio
import io
import re
import subprocess
import wave
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from bot.client import JamBot, build_bot
from bot.config import Settings
from bot.engine.client import EngineClient
from bot.engine.config import EngineConfig
from bot.engine.types import EngineError, GenerationRequest, GenerationResult, ProgressCallback
from bot.service import JamService, ServiceConfig
from bot.store import JobStore
from tests.fakediscord import FakeDiscord
from tests.fakediscord.runner import BotRun


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def debug_engine() -> AsyncIterator[EngineClient]:
    """One real engine worker with the debug models, shared by every end-to-end test."""
    engine = EngineClient(EngineConfig(device="cpu", warmup_model="debug", allow_debug_models=True, cpu_threads=1))
    await engine.start()
    yield engine
    await engine.close()


@dataclass
class GatedEngine:
    """The real engine behind a gate the test can close, to catch jobs while they run."""

    engine: EngineClient
    open: asyncio.Event = field(default_factory=asyncio.Event)
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    calls: list[list[str]] = field(default_factory=list)
    fail_with: EngineError | None = None

    def __post_init__(self) -> None:
        self.open.set()

    async def generate(
        self, batch: Sequence[GenerationRequest], on_progress: ProgressCallback | None = None
    ) -> list[GenerationResult | EngineError]:
        self.calls.append([r.request_id for r in batch])
        self.entered.set()
        await self.open.wait()
        if self.fail_with is not None:
            return [self.fail_with for _ in batch]
        return await self.engine.generate(batch, on_progress)

    async def cancel(self, request_id: str) -> None:
        await self.engine.cancel(request_id)

    async def health(self):
        return await self.engine.health()

    async def close(self) -> None:
        """The shared worker outlives each test."""


def test_settings(tmp_path: Path, **overrides: str) -> Settings:
    env = {
        "DISCORD_TOKEN": "fake-token",
        "JAMGEN_DATA_DIR": str(tmp_path / "data"),
        "JAMGEN_DB_PATH": str(tmp_path / "data" / "jamgen.db"),
        "JAMGEN_DEBUG_MODELS": "true",
        "JAMGEN_DEFAULT_MODEL": "debug",
        "JAMGEN_DEFAULT_DURATION": "2",
        "JAMGEN_PROGRESS_INTERVAL": "0.05",
        "JAMGEN_DAILY_BUDGET_SECONDS": "600",
        "JAMGEN_ENABLED_MODELS": "debug,debug-stereo,debug-melody,debug-style",
    }
    env.update(overrides)
    return Settings.from_env(env)


@dataclass
class JamWorld:
    """Everything a scenario touches; ``restart`` rebuilds the bot's parts on the same database."""

    tmp_path: Path
    engine: GatedEngine
    fake: FakeDiscord
    start_bot: Any
    overrides: dict[str, str]
    settings: Settings = field(init=False)
    store: JobStore = field(init=False)
    service: JamService = field(init=False)
    bot: JamBot = field(init=False)
    run: BotRun = field(init=False)

    async def boot(self) -> None:
        """Build store, service and bot (the production factory) and connect to the fake Discord."""
        self.settings = test_settings(self.tmp_path, **self.overrides)
        self.store = await JobStore.open(self.settings.db_path)
        config = ServiceConfig.from_settings(self.settings)
        self.service = JamService(config, self.store, self.engine, deliverer=None)  # type: ignore[arg-type]
        self.bot = build_bot(self.settings, self.service, guild_ready_timeout=0.05)
        self.run = await self.start_bot(self.bot, ready_timeout=60)

    async def shutdown(self) -> None:
        """Stop the bot (which drains the service) and close the store."""
        self.engine.open.set()
        await self.run.stop()
        await self.store.close()

    async def restart(self) -> None:
        """A bot restart: everything but the database (and the shared engine worker) is new."""
        await self.shutdown()
        await self.boot()


@pytest.fixture
def world_overrides() -> dict[str, str]:
    """Settings overrides for the ``jam`` fixture (override in a module)."""
    return {}


@pytest.fixture
async def jam(tmp_path, debug_engine, fake_discord, start_bot, world_overrides) -> AsyncIterator[JamWorld]:
    world = JamWorld(tmp_path, GatedEngine(debug_engine), fake_discord, start_bot, dict(world_overrides))
    await world.boot()
    yield world
    await world.shutdown()


def wav_bytes(seconds: float = 3.0, sample_rate: int = 32000, freq: float = 330.0) -> bytes:
    """A short sine as 16-bit WAV, for attachments."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    samples = (0.4 * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


def ffprobe_duration(data: bytes, tmp_path: Path) -> float:
    """Duration of an uploaded file, read by ffprobe."""
    path = tmp_path / "probe.bin"
    path.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip())


async def wait_state(store: JobStore, job_id: str, state: str, timeout: float = 30.0) -> None:
    """Wait until a job reaches ``state`` in the store."""

    async def reached() -> None:
        while (job := await store.get_job(job_id)) is None or job.state.value != state:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(reached(), timeout)


READY_LINK = re.compile(r"is ready: \S*/channels/\d+/(\d+)/(\d+)")


async def wait_for_take(interaction, timeout: float = 60.0):
    """The take an interaction asked for: jamgen posts it in the channel (or, where it may not post
    there, as a followup) and turns the member's private progress message into a link to it."""
    done = await interaction.wait_for_original(lambda m: READY_LINK.search(m.content), timeout=timeout)
    message_id = int(READY_LINK.search(done.content).group(2))
    return interaction._fake.messages[message_id]


def job_id_of(message) -> str:
    """The job id in a result message's embed footer."""
    return message.embeds[0]["footer"]["text"].split()[1]


ACK_LOG: list[tuple[str, str, float]] = []


@pytest.fixture(autouse=True)
def _every_interaction_is_acknowledged_within_3s(request, fake_discord):
    """Record each interaction's time to first callback and fail the scenario if any took 3 s or more."""
    yield
    for interaction in fake_discord.interactions.values():
        if interaction.callbacks:
            ACK_LOG.append((request.node.name, interaction.name or str(interaction.type), interaction.ack_latency))
            assert interaction.ack_latency < 3, f"{interaction} acknowledged after {interaction.ack_latency:.2f} s"


def pytest_sessionfinish(session, exitstatus):  # pragma: no cover - reporting only
    if ACK_LOG:
        worst = max(ACK_LOG, key=lambda row: row[2])
        print(
            f"\ninteraction acknowledgements: {len(ACK_LOG)}, slowest {worst[2] * 1000:.0f} ms ({worst[0]}: {worst[1]})"
        )
