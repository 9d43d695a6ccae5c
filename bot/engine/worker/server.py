"""The worker's main loop: receives batches, runs generate calls, streams progress and results back.

Two threads share the pipe. A reader thread receives every message: it records
cancellations at once (the running call checks them at each decoding step), answers
health queries even while a batch runs, and queues the rest for the main thread, which
loads models and generates. If the client's end of the pipe closes, the worker exits.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Protocol

from bot.engine.config import EngineConfig
from bot.engine.decoding import DecodeOptions
from bot.engine.planning import plan_calls, split_in_halves
from bot.engine.protocol import (
    ERROR_CANCELLED,
    ERROR_FAILED,
    ERROR_OUT_OF_MEMORY,
    ERROR_REJECTED,
    BatchDone,
    CancelRequests,
    EngineFaults,
    HealthQuery,
    HealthReply,
    LoadModel,
    ModelLoaded,
    Ready,
    RowError,
    RowResult,
    Shutdown,
    Stage,
    StartFailed,
    StepProgress,
    SubmitBatch,
)
from bot.engine.types import GenerationRequest, Mode
from bot.errors import UserInputError

if TYPE_CHECKING:  # imports torch, which the worker imports only in run()
    from bot.engine.worker.runtime import CallOutput, LoadedModel, ModelCache

log = logging.getLogger("jamgen.engine.worker")

PROGRESS_INTERVAL_S = 0.1
_seed_source = random.SystemRandom()


class CallCancelledError(Exception):
    """Every row of the running call was cancelled."""


class _Fail(Protocol):
    """Answers the rows not answered yet with one error."""

    def __call__(self, rows: Sequence[GenerationRequest], kind: str, text: str, retriable: bool = False) -> None: ...


class Worker:
    """State of the worker process.

    Args:
        conn: pipe to the client.
        config: engine configuration.
        faults: test-only fault injection.
    """

    def __init__(self, conn: Connection, config: EngineConfig, faults: EngineFaults | None) -> None:
        self.conn = conn
        self.config = config
        self.faults = faults
        self.send_lock = threading.Lock()
        self.inbox: queue.Queue[object] = queue.Queue()
        self.cancelled: set[str] = set()
        # Ids of the batches read from the pipe and not finished: a cancel for any other id is stale
        # (its batch ended before the cancel arrived) and must not hit a later retry with the same id.
        self.pending: set[str] = set()
        self.cancel_lock = threading.Lock()
        self.generate_calls = 0
        self.busy = False
        self.device_text = "starting"
        self.cache: ModelCache | None = None  # set in run() after torch is imported
        self.max_batch = 1

    # ------------------------------------------------------------ plumbing

    def send(self, message: object) -> None:
        """Send one message to the client (from either thread)."""
        with self.send_lock:
            self.conn.send(message)

    def read_forever(self) -> None:
        """Reader thread: route every incoming message; exit the process when the client is gone."""
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                log.info("the bot closed the pipe; worker exits")
                os._exit(0)
            if isinstance(message, CancelRequests):
                with self.cancel_lock:
                    self.cancelled.update(i for i in message.request_ids if i in self.pending)
            elif isinstance(message, HealthQuery):
                self.send(
                    HealthReply(
                        query_id=message.query_id,
                        device=self.device_text,
                        loaded_models=self.cache.names if self.cache is not None else (),
                        generate_calls=self.generate_calls,
                        busy=self.busy,
                    )
                )
            else:
                if isinstance(message, SubmitBatch):
                    with self.cancel_lock:
                        self.pending.update(r.request_id for r in message.requests)
                self.inbox.put(message)
                if isinstance(message, Shutdown):
                    return

    def is_cancelled(self, request_id: str) -> bool:
        """Whether the client cancelled this request."""
        with self.cancel_lock:
            return request_id in self.cancelled

    # ------------------------------------------------------------ main thread

    def run(self) -> None:
        """Import the libraries, pick the device, then serve until Shutdown."""
        reader = threading.Thread(target=self.read_forever, name="jamgen-engine-reader", daemon=True)
        reader.start()
        try:
            from bot.engine.worker.runtime import ModelCache, describe_device, select_device

            device = select_device(self.config.device)
            if device.type == "cpu" and self.config.cpu_threads > 0:
                import torch

                torch.set_num_threads(self.config.cpu_threads)
            self.device_text = describe_device(device)
            self.cache = ModelCache(
                device, self.config.memory_budget_gb, self.config.model_dir, huge_pages=self.config.huge_pages
            )
            self.max_batch = self.config.batch_limit(device.type == "cuda")
        except Exception as exc:
            log.exception("engine worker cannot start")
            self.send(StartFailed(f"The engine cannot start: {exc}"))
            return
        self.send(
            Ready(pid=os.getpid(), device=self.device_text, on_gpu=device.type == "cuda", max_batch=self.max_batch)
        )
        if self.config.warmup_model:
            self.load(LoadModel(query_id=0, model=self.config.warmup_model))
        while True:
            message = self.inbox.get()
            if isinstance(message, Shutdown):
                return
            if isinstance(message, SubmitBatch):
                self.busy = True
                try:
                    self.run_batch(message)
                finally:
                    self.busy = False
                    with self.cancel_lock:
                        ids = {r.request_id for r in message.requests}
                        self.cancelled -= ids
                        self.pending -= ids
                    self.send(BatchDone(message.batch_id))
            elif isinstance(message, LoadModel):
                self.load(message)

    def load(self, message: LoadModel) -> None:
        """Load a model into the cache and say how it went."""
        assert self.cache is not None
        try:
            self.cache.get(message.model)
        except UserInputError as exc:
            log.warning("model %s is not available: %s", message.model, exc)
            self.send(ModelLoaded(message.query_id, message.model, ERROR_REJECTED, str(exc)))
        except Exception as exc:
            log.exception("loading model %s failed", message.model)
            self.send(ModelLoaded(message.query_id, message.model, ERROR_FAILED, _describe_failure("Loading", exc)))
        else:
            self.send(ModelLoaded(message.query_id, message.model))

    def run_batch(self, message: SubmitBatch) -> None:
        """Serve every request of a batch, one generate call per compatible group."""
        batch_id = message.batch_id
        answered: set[str] = set()

        def fail(rows: Sequence[GenerationRequest], kind: str, text: str, retriable: bool = False) -> None:
            for row in rows:
                if row.request_id not in answered:
                    answered.add(row.request_id)
                    self.send(RowError(batch_id, row.request_id, kind, text, retriable))

        try:
            for call in plan_calls(message.requests, self.max_batch):
                live = self._drop_cancelled(batch_id, call, answered)
                if not live:
                    continue
                model = self._model_for(batch_id, live, fail)
                if model is None:
                    continue
                self._generate_with_oom_split(batch_id, model, live, answered, fail)
        except Exception as exc:  # a bug in the worker must not leave the batch unanswered
            log.exception("batch %s failed", batch_id)
            fail(message.requests, ERROR_FAILED, _describe_failure("The generation", exc))

    def _drop_cancelled(
        self, batch_id: int, rows: Sequence[GenerationRequest], answered: set[str]
    ) -> list[GenerationRequest]:
        live = []
        for row in rows:
            if row.request_id in answered:
                continue
            if self.is_cancelled(row.request_id):
                answered.add(row.request_id)
                self.send(RowError(batch_id, row.request_id, ERROR_CANCELLED, "The take was cancelled."))
            else:
                live.append(row)
        return live

    def _model_for(self, batch_id: int, rows: Sequence[GenerationRequest], fail: _Fail) -> LoadedModel | None:
        assert self.cache is not None
        name = rows[0].model
        if name not in self.cache.lru:
            self.send(Stage(batch_id, "loading"))
        try:
            return self.cache.get(name)
        except UserInputError as exc:
            fail(rows, ERROR_REJECTED, str(exc))
        except Exception as exc:
            log.exception("loading model %s failed", name)
            fail(rows, ERROR_FAILED, _describe_failure("Loading the model", exc))
        return None

    def _generate_with_oom_split(
        self,
        batch_id: int,
        model: LoadedModel,
        rows: list[GenerationRequest],
        answered: set[str],
        fail: _Fail,
    ) -> None:
        from bot.engine.worker.runtime import free_memory, is_out_of_memory

        try:
            self._generate(batch_id, model, rows, answered)
            return
        except CallCancelledError:
            self._drop_cancelled(batch_id, rows, answered)
            return
        except Exception as exc:
            if not is_out_of_memory(exc):
                log.exception("generate call failed (batch %s, %d rows)", batch_id, len(rows))
                fail(rows, ERROR_FAILED, _describe_failure(_call_name(rows), exc))
                return
            log.warning("out of memory with %d rows: %s", len(rows), exc)
        assert self.cache is not None
        self.cache.lru.evict_all_but(rows[0].model)
        free_memory(self.cache.device)
        halves = split_in_halves(rows)
        if not halves:
            fail(rows, ERROR_OUT_OF_MEMORY, _OOM_MESSAGE, True)
            return
        for half in halves:
            live = self._drop_cancelled(batch_id, half, answered)
            if not live:
                continue
            try:
                self._generate(batch_id, model, live, answered)
            except CallCancelledError:
                self._drop_cancelled(batch_id, live, answered)
            except Exception as exc:
                if is_out_of_memory(exc):
                    log.warning("out of memory again with %d rows", len(live))
                    free_memory(self.cache.device)
                    fail(live, ERROR_OUT_OF_MEMORY, _OOM_MESSAGE, True)
                else:
                    log.exception("generate call failed (batch %s, %d rows)", batch_id, len(live))
                    fail(live, ERROR_FAILED, _describe_failure(_call_name(live), exc))

    def _generate(self, batch_id: int, model: LoadedModel, rows: list[GenerationRequest], answered: set[str]) -> None:
        """One generate call (or separation); sends a result (or a cancellation) for each row."""
        ids = tuple(r.request_id for r in rows)
        faults = self._faults_for(rows)
        last_sent = 0.0
        reports = 0

        def on_step(done: int, total: int) -> None:
            nonlocal last_sent, reports
            reports += 1
            if faults:
                self._inject(faults, reports, len(rows))
            if all(self.is_cancelled(i) for i in ids):
                raise CallCancelledError
            now = time.monotonic()
            if done >= total or now - last_sent >= PROGRESS_INTERVAL_S:
                last_sent = now
                self.send(StepProgress(batch_id, ids, done, total))

        self.send(Stage(batch_id, "generating", ids, rows[0].duration))
        self.generate_calls += 1
        output, seed = self._run_model(model, rows, on_step, DecodeOptions(cpu_matmul=self.config.cpu_matmul))
        for row, audio in zip(rows, output.audio, strict=True):
            if row.request_id in answered:
                continue
            answered.add(row.request_id)
            if self.is_cancelled(row.request_id):
                self.send(RowError(batch_id, row.request_id, ERROR_CANCELLED, "The take was cancelled."))
                continue
            self.send(
                RowResult(
                    batch_id=batch_id,
                    request_id=row.request_id,
                    audio=audio,
                    sample_rate=output.sample_rate,
                    seed=seed,
                    elapsed_s=output.elapsed_s,
                    steps=output.steps,
                    batch_size=len(rows),
                    stems=output.stems,
                )
            )

    @staticmethod
    def _run_model(
        model: LoadedModel,
        rows: list[GenerationRequest],
        on_step: Callable[[int, int], None],
        options: DecodeOptions,
    ) -> tuple[CallOutput, int]:
        """Run the call with the model's own driver; returns what it made and the seed it used (0: none drawn)."""
        if rows[0].mode == Mode.STEMS:
            from demucs.apply import BagOfModels

            from bot.engine.worker.separate import run_separation

            assert isinstance(model, BagOfModels)
            return run_separation(model, rows, on_step), 0
        from audiocraft.models import MusicGen

        from bot.engine.worker.generate import run_call

        assert isinstance(model, MusicGen)
        seed = rows[0].seed if len(rows) == 1 and rows[0].seed is not None else _seed_source.randrange(2**31)
        return run_call(model, rows, seed, on_step, options), seed

    # ------------------------------------------------------------ test faults

    def _faults_for(self, rows: Sequence[GenerationRequest]) -> set[str]:
        f = self.faults
        if f is None:
            return set()
        found = set()
        for name in ("oom", "error", "hang", "crash", "slow"):
            prefix = getattr(f, f"{name}_prefix")
            if prefix is not None and any(r.request_id.startswith(prefix) for r in rows):
                found.add(name)
        return found

    def _inject(self, faults: set[str], step: int, rows: int) -> None:
        """Fire the call's faults; ``step`` counts the call's progress reports from 1 (the first fires most)."""
        assert self.faults is not None
        if "slow" in faults:
            time.sleep(self.faults.slow_step_s)
        if step != 1:
            return
        if "oom" in faults and rows >= self.faults.oom_min_batch:
            import torch

            raise torch.OutOfMemoryError(f"CUDA out of memory (injected by a test at {rows} rows)")
        if "error" in faults:
            raise RuntimeError("injected failure")
        if "crash" in faults:
            os.kill(os.getpid(), signal.SIGKILL)
        if "hang" in faults:
            while True:
                time.sleep(3600)


_OOM_MESSAGE = "The GPU ran out of memory for this take, even in a smaller batch. Try again later or ask for less."


def _call_name(rows: Sequence[GenerationRequest]) -> str:
    return "The separation" if rows and rows[0].mode == Mode.STEMS else "The generation"


def _describe_failure(what: str, exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return f"{what} failed on the engine's side ({type(exc).__name__}{': ' + text if text else ''})."


def _quiet_libraries() -> None:
    # xformers warns at import that its C++ kernels do not match; audiocraft uses PyTorch's attention instead.
    logging.getLogger("xformers").setLevel(logging.ERROR)
    # audiocraft logs every new codebook pattern at INFO.
    logging.getLogger("audiocraft").setLevel(logging.WARNING)
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning, module=r"(torch|audiocraft|torchaudio|julius)\b.*")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def serve(conn: Connection, config: EngineConfig, faults: EngineFaults | None) -> None:
    """Run the worker until the client sends Shutdown or goes away.

    Args:
        conn: the worker's end of the pipe.
        config: engine configuration.
        faults: test-only fault injection.
    """
    from bot.logs import configure_logging

    configure_logging(config.log_level)
    _quiet_libraries()
    # The bot handles Ctrl-C and stops us itself; a terminal's SIGINT to the process group must not.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    worker = Worker(conn, config, faults)
    try:
        worker.run()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
