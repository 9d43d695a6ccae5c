"""The reliability world: the real bot (production factory), service, store and audio, one real engine
worker with the debug models and every fault hook armed, and the fake Discord.

Faults are chosen per job by a tag in its prompt, e.g. ``/generate prompt:"boom [crash]"``:
:class:`PlannedEngine` renames that job's request ids with the worker's fault prefix, so one
shared worker serves healthy and faulty jobs side by side. ``[crash-once]`` (and the like) fault
only the job's first attempt.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot.client import JamBot, build_bot
from bot.config import Settings
from bot.engine.client import EngineClient
from bot.engine.config import EngineConfig
from bot.engine.protocol import EngineFaults
from bot.engine.types import EngineError, EngineHealth, GenerationRequest, GenerationResult, Progress, ProgressCallback
from bot.service import JamService, ServiceConfig
from bot.store import JobState, JobStore
from tests.fakediscord import FakeDiscord
from tests.fakediscord.runner import BotRun
from tests.reliability.secrets_watch import BOT_TOKEN, debug_log_file, fake_discord  # noqa: F401

# The worker's fault prefixes (bot/engine/protocol.py EngineFaults), keyed by the prompt tag.
FAULT_PREFIXES = {"oom": "oom-", "error": "err-", "hang": "hang-", "crash": "crash-", "slow": "slow-"}
TAG = re.compile(r"\[(oom|error|hang|crash|slow)(-once)?\]")
# The watchdog allows base + factor x duration per generate call: a hung 1-s take is killed after 6 s.
WATCHDOG_BASE_S = 5.0
WATCHDOG_FACTOR = 1.0
SLOW_STEP_S = 0.05


@pytest.fixture
def fake_discord_options() -> dict[str, Any]:
    """Every fake of this suite accepts a bot token of Discord's real shape (see secrets_watch)."""
    return {"token": BOT_TOKEN}


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def fault_engine() -> AsyncIterator[EngineClient]:
    """One real worker with the debug models and every fault hook armed (each fires only on its prefix)."""
    faults = EngineFaults(
        oom_prefix=FAULT_PREFIXES["oom"],
        oom_min_batch=2,
        error_prefix=FAULT_PREFIXES["error"],
        hang_prefix=FAULT_PREFIXES["hang"],
        crash_prefix=FAULT_PREFIXES["crash"],
        slow_prefix=FAULT_PREFIXES["slow"],
        slow_step_s=SLOW_STEP_S,
    )
    config = EngineConfig(
        device="cpu",
        warmup_model="debug",
        allow_debug_models=True,
        cpu_threads=1,
        watchdog_base_s=WATCHDOG_BASE_S,
        watchdog_factor=WATCHDOG_FACTOR,
        max_duration=30.0,
    )
    engine = EngineClient(config, faults=faults)
    await engine.start()
    yield engine
    await engine.close()


@dataclass
class PlannedEngine:
    """The real engine, with faults picked per job from tags in its prompt, and a gate to hold batches.

    Args:
        engine: the shared worker client.
    """

    engine: EngineClient
    open: asyncio.Event = field(default_factory=asyncio.Event)
    calls: list[list[str]] = field(default_factory=list)
    faulted: Counter[str] = field(default_factory=Counter)
    attempts: Counter[str] = field(default_factory=Counter)
    _renamed: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.open.set()

    def _rename(self, request: GenerationRequest) -> GenerationRequest:
        job_id = request.request_id.split(":")[0]
        match = TAG.search(request.prompt)
        if match is None or (match.group(2) and self.attempts[job_id] > 1):
            return request
        self.faulted[match.group(1)] += 1
        renamed = FAULT_PREFIXES[match.group(1)] + request.request_id
        self._renamed[request.request_id] = renamed
        return dataclasses.replace(request, request_id=renamed)

    async def generate(
        self, batch: Sequence[GenerationRequest], on_progress: ProgressCallback | None = None
    ) -> list[GenerationResult | EngineError]:
        self.calls.append([r.request_id for r in batch])
        await self.open.wait()
        for job_id in {r.request_id.split(":")[0] for r in batch}:
            self.attempts[job_id] += 1
        renamed = [self._rename(r) for r in batch]
        original = {new.request_id: old.request_id for old, new in zip(batch, renamed, strict=True)}

        def relay(progress: Progress) -> Any:
            if on_progress is None:
                return None
            return on_progress(dataclasses.replace(progress, request_id=original.get(progress.request_id, "?")))

        results = await self.engine.generate(renamed, relay)
        return [
            dataclasses.replace(r, request_id=original[r.request_id]) if isinstance(r, GenerationResult) else r
            for r in results
        ]

    async def cancel(self, request_id: str) -> None:
        await self.engine.cancel(self._renamed.get(request_id, request_id))

    async def health(self) -> EngineHealth:
        return await self.engine.health()

    async def close(self) -> None:
        """The shared worker outlives each test."""


def reliability_settings(tmp_path: Path, **overrides: str) -> Settings:
    """Settings of a test bot: debug models, short takes, fast progress, the realistic test token."""
    env = {
        "DISCORD_TOKEN": BOT_TOKEN,
        "JAMGEN_DATA_DIR": str(tmp_path / "data"),
        "JAMGEN_DB_PATH": str(tmp_path / "data" / "jamgen.db"),
        "JAMGEN_DEBUG_MODELS": "true",
        "JAMGEN_DEFAULT_MODEL": "debug",
        "JAMGEN_ENABLED_MODELS": "debug,debug-melody,debug-style",
        "JAMGEN_DEFAULT_DURATION": "1",
        "JAMGEN_PROGRESS_INTERVAL": "0.2",
        "JAMGEN_DAILY_BUDGET_SECONDS": "600",
        "JAMGEN_LOG_LEVEL": "DEBUG",
        "JAMGEN_CPU_THREADS": "1",
    }
    env.update(overrides)
    return Settings.from_env(env)


@dataclass
class World:
    """Everything a scenario touches; ``restart`` rebuilds the bot's parts on the same database."""

    tmp_path: Path
    engine: PlannedEngine
    fake: FakeDiscord
    start_bot: Any
    overrides: dict[str, str]
    run_options: dict[str, Any] = field(default_factory=dict)
    settings: Settings = field(init=False)
    store: JobStore = field(init=False)
    service: JamService = field(init=False)
    bot: JamBot = field(init=False)
    run: BotRun = field(init=False)

    async def boot(self) -> None:
        """Build store, service and bot (the production factory) and connect to the fake Discord."""
        self.settings = reliability_settings(self.tmp_path, **self.overrides)
        self.store = await JobStore.open(self.settings.db_path)
        config = ServiceConfig.from_settings(self.settings)
        self.service = JamService(config, self.store, self.engine, deliverer=None)  # type: ignore[arg-type]
        self.bot = build_bot(self.settings, self.service, guild_ready_timeout=0.05)
        self.run = await self.start_bot(self.bot, ready_timeout=60, **self.run_options)

    async def shutdown(self) -> None:
        """Stop the bot (which drains the service) and close the store."""
        self.engine.open.set()
        await self.run.stop()
        await self.store.close()

    async def restart(self) -> None:
        """A bot restart: everything but the database (and the shared engine worker) is new."""
        await self.shutdown()
        await self.boot()

    async def job_states(self) -> dict[str, str]:
        """Every job's state, by id."""
        return {job.id: job.state.value for job in await self.all_jobs()}

    async def all_jobs(self) -> list[Any]:
        """Every job in the store, in submission order."""
        jobs = []
        for state in JobState:
            jobs += await self.store.jobs_in_state(state)
        return sorted(jobs, key=lambda j: j.seq)


@pytest.fixture
def world_overrides() -> dict[str, str]:
    """Settings overrides for the ``world`` fixture (override in a module)."""
    return {}


@pytest.fixture
def world_run_options() -> dict[str, Any]:
    """Options for start_bot (override in a module, e.g. ``fail_on_logged_errors``)."""
    return {}


@pytest.fixture
async def world(
    tmp_path,
    fault_engine,
    fake_discord,  # noqa: F811 - the fixture imported above
    start_bot,
    world_overrides,
    world_run_options,
) -> AsyncIterator[World]:
    w = World(
        tmp_path, PlannedEngine(fault_engine), fake_discord, start_bot, dict(world_overrides), dict(world_run_options)
    )
    await w.boot()
    yield w
    await w.shutdown()


# ---------------------------------------------------------------------- helpers


async def wait_state(store: JobStore, job_id: str, *states: str, timeout: float = 30.0) -> Any:
    """Wait until a job is in one of ``states``; returns the job."""

    async def reached() -> Any:
        while True:
            job = await store.get_job(job_id)
            if job is not None and job.state.value in states:
                return job
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(reached(), timeout)


def footer_job_id(message: Any) -> str | None:
    """The job id in a result message's embed footer ("job <id> · take 1/1 · by jamgen")."""
    for embed in message.embeds:
        text = (embed.get("footer") or {}).get("text", "")
        if text.startswith("job "):
            return text.split()[1]
    return None


def track_posts(fake: FakeDiscord, job_id: str) -> list[Any]:
    """The bot's live (not deleted) messages that carry an MP3 of ``job_id``."""
    return [
        m
        for m in fake.bot_messages(include_deleted=False)
        if any(a.filename.startswith(f"{job_id}-") and a.filename.endswith(".mp3") for a in m.attachments)
    ]


def rss_mib() -> float:
    """Resident memory of this process in MiB (from /proc; psutil is not installed)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


async def refunded(store: JobStore, job_id: str) -> bool:
    """Whether a job's ledger nets to zero: one debit and one refund of the same amount."""
    rows = await store.job_ledger(job_id)
    kinds = Counter(r.kind for r in rows)
    return kinds == Counter({"debit": 1, "refund": 1}) and abs(sum(r.amount for r in rows)) < 1e-9


QUEUED = re.compile(r"Queued `([a-z0-9]+)`")


def receipt_job_id(interaction: Any) -> str | None:
    """The job id of the receipt an interaction's private message showed at some point, if any."""
    original = interaction.original
    for version in original.versions if original is not None else ():
        match = QUEUED.search(version.content)
        if match:
            return match.group(1)
    return None


async def submit(
    world: World, prompt: str, *, user: Any = None, channel: Any = None, **options: Any
) -> tuple[Any, str]:
    """/generate through the fake; returns the interaction and the job id from its receipt."""
    interaction = await world.fake.slash(
        "generate", {"prompt": prompt, "duration": 1, **options}, user=user, channel=channel
    )
    await interaction.wait_until(receipt_job_id, timeout=15)
    job_id = receipt_job_id(interaction)
    assert job_id is not None
    return interaction, job_id


def told(interaction: Any, *words: str) -> bool:
    """Whether the member's private message said all of ``words`` at some point."""
    original = interaction.original
    texts = [v.content for v in original.versions] if original is not None else []
    texts += [m.content for m in interaction.followups]
    return any(all(w in text for w in words) for text in texts)
