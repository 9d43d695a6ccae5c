"""The one harness for tests that run jamgen's parts together (tests/README.md says which suite uses what).

- **Engines.** :class:`FakeEngine` stands in for the engine client without torch or a worker: it checks each
  request as ``EngineClient`` does and makes a quiet sine per request. :class:`GatedEngine` puts any engine
  behind a gate a test can close (to catch jobs queued or running), records the calls and can fail them;
  :class:`PlannedEngine` adds faults per job through the real worker's fault hooks. :func:`start_debug_engine`
  starts the real worker with the debug models; ``bot.engine.client`` is imported only when it is called.
- **The service room.** :class:`RecordingDeliverer`, :func:`make_config` and :func:`build_harness`: a real
  store and service around an engine and a deliverer that records what would be posted.
- **The whole bot.** :func:`world_env` and :class:`JamWorld`: settings, store, service and the bot from the
  production factory ``build_bot``, connected to the fake Discord; ``restart`` keeps the database.
- **Helpers** for scenarios: attachments, waiting for job states and takes, reading job ids off messages.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import os
import re
import subprocess
import wave
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.config import Settings
from bot.engine.registry import get_model_spec
from bot.engine.types import (
    STEM_NAMES,
    Engine,
    EngineError,
    EngineHealth,
    GenerationCancelledError,
    GenerationRequest,
    GenerationResult,
    Mode,
    Progress,
    ProgressCallback,
    RequestRejectedError,
)
from bot.engine.validation import validate_request
from bot.errors import UserInputError
from bot.service import Delivery, JamService, ServiceConfig
from bot.store import JobState, JobStore

if TYPE_CHECKING:
    from bot.discord import JamBot
    from bot.engine.client import EngineClient
    from bot.engine.protocol import EngineFaults
    from tests.fakediscord import BotRun, FakeDiscord

# ---------------------------------------------------------------------- engines


@dataclass
class FakeEngine:
    """The engine client's stand-in: no torch, no worker process, a quiet sine per request.

    Like ``EngineClient`` it first checks every request with the engine's ``validate_request`` (a request it
    would refuse is answered :class:`RequestRejectedError`, and its message kept in ``refused``), honours a cancel
    only for a request of a call in progress, and a continuation's take starts with its prompt (audiocraft
    keeps the prompt at the start of the output).

    Args:
        hold: when set, every generate call waits for ``release`` before answering.
        steps: decoding steps a call reports (progress goes 1..steps).
        step_delay: seconds between progress reports (a call lasts about steps x step_delay).
        max_duration: the longest take accepted, as the engine's ``max_duration``.
        fail_next: the answer of the next calls, one per call in order: an error for every request of
            the call, or None for a call that goes well.
    """

    hold: bool = False
    steps: int = 10
    step_delay: float = 0.0
    max_duration: float = 120.0
    calls: list[list[GenerationRequest]] = field(default_factory=list)
    fail_next: list[EngineError | None] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: set[str] = field(default_factory=set)
    _running: set[str] = field(default_factory=set)
    _stop: set[str] = field(default_factory=set)

    async def generate(
        self, batch: Sequence[GenerationRequest], on_progress: ProgressCallback | None = None
    ) -> list[GenerationResult | EngineError]:
        self.calls.append(list(batch))
        rejections = [self._check(request) for request in batch]
        live = [r for r, rejection in zip(batch, rejections, strict=True) if rejection is None]
        ids = {r.request_id for r in live}
        self._running |= ids
        self.started.set()
        try:
            for step in range(1, self.steps + 1) if live else ():
                if ids <= self._stop:
                    break
                if on_progress is not None:
                    for request in live:
                        result = on_progress(Progress(request.request_id, step, self.steps))
                        if asyncio.iscoroutine(result):
                            await result
                await asyncio.sleep(self.step_delay)
            if self.hold:
                await self.release.wait()
        finally:
            self.started.clear()
            self._running -= ids
            stopped = self._stop & ids
            self._stop -= ids
        failure = self.fail_next.pop(0) if self.fail_next and live else None
        out: list[GenerationResult | EngineError] = []
        for request, rejection in zip(batch, rejections, strict=True):
            if rejection is not None:
                out.append(rejection)
            elif request.request_id in stopped:
                out.append(GenerationCancelledError())
            elif failure is not None:
                out.append(failure)
            else:
                # Like the worker: an explicit seed is used as given; otherwise each call draws a new one.
                seed = request.seed if request.seed is not None else 1000 + len(self.calls)
                spec = get_model_spec(request.model)
                made, stems = (
                    (fake_stems(request), STEM_NAMES) if request.mode == Mode.STEMS else (sine_take(request), ())
                )
                out.append(
                    GenerationResult(
                        request.request_id, made, spec.sample_rate, seed, 0.5, self.steps, len(batch), stems=stems
                    )
                )
        return out

    def _check(self, request: GenerationRequest) -> RequestRejectedError | None:
        try:
            validate_request(request, max_duration=self.max_duration)
        except UserInputError as error:
            self.refused.append(error.message)
            return RequestRejectedError(error.message)
        return None

    async def cancel(self, request_id: str) -> None:
        if request_id in self._running:
            self._stop.add(request_id)
            self.cancelled.add(request_id)

    async def health(self) -> EngineHealth:
        return EngineHealth(alive=True, device="fake", loaded_models=(), restarts=0, pid=None)

    async def close(self) -> None:
        self.release.set()


def sine_take(request: GenerationRequest) -> np.ndarray:
    """What the fake engine makes for a request: a quiet 220 Hz sine, after the prompt of a continuation."""
    spec = get_model_spec(request.model)
    n = round(request.duration * spec.sample_rate)
    t = np.arange(n, dtype=np.float32) / spec.sample_rate
    audio = np.stack([(0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)] * spec.channels)
    if request.mode == Mode.CONTINUATION and request.audio is not None:
        prompt = np.broadcast_to(request.audio, (spec.channels, request.audio.shape[-1]))[:, :n]
        audio[:, : prompt.shape[-1]] = prompt
    return audio


# The fake separator's stems are shares of the track (they add up to it), each a different loudness.
FAKE_STEM_SHARES = (0.4, 0.3, 0.2, 0.1)


def fake_stems(request: GenerationRequest) -> np.ndarray:
    """What the fake engine makes of a track to split: [stems, channels, samples], shares that add up to it."""
    assert request.audio is not None
    track = np.asarray(request.audio, dtype=np.float32)
    return np.stack([track * share for share in FAKE_STEM_SHARES]).astype(np.float32)


@dataclass
class GatedEngine:
    """Any engine behind a gate the test can close, to catch jobs while they are queued or running.

    Args:
        engine: the engine underneath (a :class:`FakeEngine`, or the shared real worker that outlives the test).
        open: the gate; a generate call waits for it before reaching ``engine``.
        entered: set when a generate call arrives (before the gate).
        calls: the request ids of every generate call, in order.
        fail_with: when set, every call (once through the gate) answers this error for each request.
    """

    engine: Engine
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

    async def health(self) -> EngineHealth:
        return await self.engine.health()

    async def close(self) -> None:
        """The engine underneath outlives each bot (a restart keeps it)."""


# The worker's fault prefixes (bot/engine/protocol.py EngineFaults), keyed by the prompt tag.
FAULT_PREFIXES = {"oom": "oom-", "error": "err-", "hang": "hang-", "crash": "crash-", "slow": "slow-"}
FAULT_TAG = re.compile(r"\[(oom|error|hang|crash|slow)(-once)?\]")


@dataclass
class PlannedEngine(GatedEngine):
    """The real worker (its fault hooks armed) with faults picked per job by a tag in its prompt.

    ``/generate prompt:"boom [crash]"`` renames that job's request ids with the worker's crash prefix, so one
    shared worker serves healthy and faulty jobs side by side; ``[crash-once]`` (and the like) fault only the
    job's first attempt.

    Args:
        faulted: how many requests were given each fault.
        attempts: generate calls per job id.
        stems_fault: the fault tag given to every stems request (they have no prompt to carry one),
            e.g. ``"[crash-once]"``.
    """

    faulted: Counter[str] = field(default_factory=Counter)
    attempts: Counter[str] = field(default_factory=Counter)
    stems_fault: str = ""
    _renamed: dict[str, str] = field(default_factory=dict)

    def _rename(self, request: GenerationRequest) -> GenerationRequest:
        job_id = request.request_id.split(":")[0]
        match = FAULT_TAG.search(self.stems_fault if request.mode == Mode.STEMS else request.prompt)
        if match is None or (match.group(2) and self.attempts[job_id] > 1):
            return request
        self.faulted[match.group(1)] += 1
        renamed = dataclasses.replace(request, job_id=FAULT_PREFIXES[match.group(1)] + request.job_id)
        self._renamed[request.request_id] = renamed.request_id
        return renamed

    async def generate(
        self, batch: Sequence[GenerationRequest], on_progress: ProgressCallback | None = None
    ) -> list[GenerationResult | EngineError]:
        self.calls.append([r.request_id for r in batch])
        self.entered.set()
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


async def start_debug_engine(faults: EngineFaults | None = None, **config: Any) -> EngineClient:
    """Start the real engine worker on the CPU with the debug models (torch lives in its child process).

    Args:
        faults: fault hooks to arm in the worker.
        config: EngineConfig fields to set.
    """
    from bot.engine.client import EngineClient  # only the real-engine fixtures come here
    from bot.engine.config import EngineConfig

    values: dict[str, Any] = {"device": "cpu", "warmup_model": "debug", "allow_debug_models": True, "cpu_threads": 1}
    engine = EngineClient(EngineConfig(**{**values, **config}), faults=faults)
    await engine.start()
    warm = {**values, **config}["warmup_model"]
    if warm:
        # The worker imports audiocraft with its first MusicGen model: tests start from a warm worker.
        await engine.load_model(warm)
    return engine


# ---------------------------------------------------------------------- the service room


@dataclass
class RecordingDeliverer:
    """Records what would be posted; can fail a number of times or hold deliveries.

    Args:
        fail_times: how many deliveries fail (ConnectionError) before they succeed.
        hold: deliveries wait for ``release``.
        delivered: the deliveries that succeeded.
        tries: every delivery asked for, failed ones included, in order.
        failures: (job id, message) of every failure notice.
    """

    fail_times: int = 0
    hold: bool = False
    delivered: list[Delivery] = field(default_factory=list)
    tries: list[Delivery] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    attempts: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def deliver(self, delivery: Delivery) -> list[int]:
        self.attempts += 1
        self.tries.append(delivery)
        if self.hold:
            await self.release.wait()
        if self.fail_times > 0:
            self.fail_times -= 1
            raise ConnectionError("discord is down")
        self.delivered.append(delivery)
        return [1000 + len(self.delivered)]

    async def notify_failure(self, job: Any, message: str) -> None:
        self.failures.append((job.id, message))

    def delivered_ids(self) -> list[str]:
        return [d.job.id for d in self.delivered]


def make_config(data_dir: Path, **overrides: Any) -> ServiceConfig:
    """A service config for tests: debug models, 1-s takes, generous caps, quick delivery retries."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "max_batch": 4,
        "progress_interval": 0.0,
        "default_model": "debug",
        "debug_models": True,
        "default_duration": 1,
        "max_pending_per_user": 20,
        "max_pending_per_guild": 500,
        "daily_budget_seconds": 10_000,
        "shutdown_grace": 2.0,
        "delivery_retry_s": 5.0,
        "delivery_backoff_s": 0.01,
        "stems_model": "debug-stems",
    }
    values.update(overrides)
    return ServiceConfig(**values)


async def final_jobs(store: JobStore) -> list[Any]:
    """Jobs that are delivered, failed or cancelled."""
    jobs = []
    for state in (JobState.DELIVERED, JobState.FAILED, JobState.CANCELLED):
        jobs += await store.jobs_in_state(state)
    return jobs


@dataclass
class Harness:
    """A real store and service around an engine and a recording deliverer."""

    tmp_path: Path
    store: JobStore
    engine: Any
    deliverer: RecordingDeliverer
    service: JamService

    async def wait_settled(self, count: int, timeout: float = 15.0) -> None:
        """Wait until ``count`` jobs are delivered, failed or cancelled."""

        async def settled() -> None:
            while len(await final_jobs(self.store)) < count:
                await asyncio.sleep(0.02)

        await asyncio.wait_for(settled(), timeout)

    async def close(self) -> None:
        """Stop the service (it drains within its grace) and close the store."""
        await self.service.close()
        await self.store.close()


async def build_harness(
    tmp_path: Path, engine: Any = None, deliverer: RecordingDeliverer | None = None, **config: Any
) -> Harness:
    """A service on ``tmp_path/jamgen.db`` (not started); ``config`` overrides :func:`make_config`."""
    store = await JobStore.open(tmp_path / "jamgen.db")
    engine = engine or FakeEngine()
    deliverer = deliverer or RecordingDeliverer()
    service = JamService(make_config(tmp_path / "data", **config), store, engine, deliverer)
    return Harness(tmp_path, store, engine, deliverer, service)


# ---------------------------------------------------------------------- the whole bot

# Where a fast-loop session writes the torch modules it found imported (tests/cogs/test_fast_loop.py sets it).
TORCH_REPORT_ENV = "JAMGEN_TEST_TORCH_REPORT"

# Settings of the end-to-end scenarios (tests/cogs): debug models, 2-s takes, fast progress.
COGS_ENV = {
    "DISCORD_TOKEN": "fake-token",
    "JAMGEN_DEBUG_MODELS": "true",
    "JAMGEN_DEFAULT_MODEL": "debug",
    "JAMGEN_DEFAULT_DURATION": "2",
    "JAMGEN_PROGRESS_INTERVAL": "0.05",
    "JAMGEN_DAILY_BUDGET_SECONDS": "600",
    "JAMGEN_ENABLED_MODELS": "debug,debug-stereo,debug-melody,debug-style",
    "JAMGEN_STEMS_MODEL": "debug-stems",
}


def world_env(tmp_path: Path, base: dict[str, str], overrides: dict[str, str] | None = None) -> dict[str, str]:
    """A bot's environment: ``base``, its data under ``tmp_path/data``, then ``overrides``."""
    data = tmp_path / "data"
    return {**base, "JAMGEN_DATA_DIR": str(data), "JAMGEN_DB_PATH": str(data / "jamgen.db"), **(overrides or {})}


@dataclass
class JamWorld:
    """Everything a scenario touches; ``restart`` rebuilds the bot's parts on the same database.

    Args:
        tmp_path: the test's folder (the bot's data is in ``data/``).
        engine: the engine behind the test's gate; it outlives restarts.
        fake: the fake Discord.
        start_bot: the ``start_bot`` fixture.
        env: the settings' environment (see :func:`world_env`).
        run_options: options for ``start_bot`` (e.g. ``fail_on_logged_errors``).
    """

    tmp_path: Path
    engine: GatedEngine
    fake: FakeDiscord
    start_bot: Any
    env: dict[str, str]
    run_options: dict[str, Any] = field(default_factory=dict)
    settings: Settings = field(init=False)
    store: JobStore = field(init=False)
    service: JamService = field(init=False)
    bot: JamBot = field(init=False)
    run: BotRun = field(init=False)

    async def boot(self) -> None:
        """Build store, service and bot (the production factory) and connect to the fake Discord."""
        from bot.discord import build_bot

        self.settings = Settings.from_env(self.env)
        self.store = await JobStore.open(self.settings.db_path)
        config = ServiceConfig.from_settings(self.settings)
        self.service = JamService(config, self.store, self.engine, deliverer=None)  # type: ignore[arg-type]
        self.bot = build_bot(self.settings, self.service, guild_ready_timeout=0.05)
        self.run = await self.start_bot(self.bot, **{"ready_timeout": 60, **self.run_options})

    async def shutdown(self) -> None:
        """Open the gate, stop the bot (which drains the service) and close the store."""
        self.engine.open.set()
        await self.run.stop()
        await self.store.close()

    async def restart(self) -> None:
        """A bot restart: everything but the database (and the engine) is new."""
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


# ---------------------------------------------------------------------- helpers


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


async def wait_state(store: JobStore, job_id: str, *states: str, timeout: float = 30.0) -> Any:
    """Wait until a job is in one of ``states``; returns the job."""

    async def reached() -> Any:
        while True:
            job = await store.get_job(job_id)
            if job is not None and job.state.value in states:
                return job
            await asyncio.sleep(0.02)

    return await asyncio.wait_for(reached(), timeout)


READY_LINK = re.compile(r"is ready: \S*/channels/\d+/(\d+)/(\d+)")


async def wait_for_take(interaction: Any, timeout: float = 60.0) -> Any:
    """The take an interaction asked for: jamgen posts it in the channel (or, where it may not post
    there, as a followup) and turns the member's private progress message into a link to it."""
    done = await interaction.wait_for_original(lambda m: READY_LINK.search(m.content), timeout=timeout)
    message_id = int(READY_LINK.search(done.content).group(2))
    return interaction._fake.messages[message_id]


def form_values(modal: dict[str, Any], **by_label: Any) -> dict[str, Any]:
    """custom_id -> value for a modal's inputs, each picked by how its label starts (``prompt="…"``,
    ``mode="continue"``, ``duration="2"``, ``your_own_clip=attachment``; underscores stand for spaces)."""
    wanted = {key.replace("_", " "): value for key, value in by_label.items()}
    values: dict[str, Any] = {}
    for top in modal["components"]:
        if top.get("type") == 18:  # a Label around one input
            pairs = [(top["label"], top["component"])]
        else:  # a legacy action row of text inputs with their own labels
            pairs = [(child.get("label") or "", child) for child in top.get("components", [])]
        for label, component in pairs:
            key = next((k for k in wanted if label.lower().startswith(k)), None)
            if key is not None:
                values[component["custom_id"]] = wanted[key]
    return values


CARD_JOB_LINE = re.compile(r"^-# job ([a-z0-9]+) ", re.MULTILINE)


def job_id_of(message: Any) -> str | None:
    """The job id of a result message: its embed footer ("job <id> · take 1/1 · by jamgen"), or a take card's
    last "-# job <id> · …" line (Components V2)."""
    for embed in message.embeds:
        text = (embed.get("footer") or {}).get("text", "")
        if text.startswith("job "):
            return text.split()[1]
    texts = [c.get("content", "") for c in message.all_components() if c.get("type") == 10]
    found = CARD_JOB_LINE.findall("\n".join(texts))
    return found[-1] if found else None


def is_take(message: Any) -> bool:
    """Whether a message is a result message of a take (either card style)."""
    return bool(message.attachments) and job_id_of(message) is not None


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
    world: JamWorld, prompt: str, *, user: Any = None, channel: Any = None, **options: Any
) -> tuple[Any, str]:
    """/generate through the fake (1-s takes unless ``duration`` says); the interaction and its receipt's job id."""
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
