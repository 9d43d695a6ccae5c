"""The bot's side of the engine: an asyncio client that supervises the worker process.

:class:`EngineClient` implements :class:`bot.engine.types.Engine`. It never imports torch:
it spawns a child process (``multiprocessing`` 'spawn' context) that owns the device and the
loaded models, and talks to it with the plain-data messages of :mod:`bot.engine.protocol`.

Supervision:

* **crash** — a reader thread blocks on the pipe and the process sentinel is watched by the
  event loop; either notices a dead worker at once (kill -9, segfault). Requests in flight come
  back as ``EngineError(retriable=True)`` and the next call starts a fresh worker.
* **hang** — a watchdog kills a worker whose generate call runs longer than
  ``watchdog_base_s + watchdog_factor × duration`` (model loading has ``load_timeout_s``).
* **cancel** — a cancelled request is answered ``GenerationCancelledError`` at once; the worker drops
  its row, and stops the running call at the next decoding step when every row is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from bot.engine.config import EngineConfig
from bot.engine.protocol import (
    ERROR_CANCELLED,
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
from bot.engine.types import (
    EngineError,
    EngineHealth,
    GenerationCancelledError,
    GenerationRequest,
    GenerationResult,
    ModelUnavailableError,
    Progress,
    ProgressCallback,
    RequestRejectedError,
)
from bot.engine.validation import resolve_model, validate_request
from bot.engine.weights import find_weights, hf_offline, missing_weights_error
from bot.engine.worker import run_worker
from bot.errors import UserInputError

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger("jamgen.engine")

HEALTH_TIMEOUT_S = 2.0
SHUTDOWN_GRACE_S = 5.0
WATCHDOG_TICK_S = 0.2
# Starting a worker sets CUDA_VISIBLE_DEVICES for that child only: one start at a time in this process.
_ENV_LOCK = threading.Lock()
CPU_WARNING = "The engine runs on the CPU: generation works but is slow (minutes per take with real models)."

Outcome = GenerationResult | EngineError


@dataclass(eq=False)
class _Worker:
    """One worker process and what the client knows about it."""

    process: BaseProcess
    conn: Connection
    number: int
    ready: asyncio.Future[Ready]
    pid: int | None = None
    device: str = "starting"
    on_gpu: bool = False
    gone: bool = False
    kill_reason: str | None = None
    reader: threading.Thread | None = None


@dataclass(eq=False)
class _Batch:
    """The batch the worker is running."""

    batch_id: int
    futures: dict[str, asyncio.Future[Outcome]]
    progress: asyncio.Queue[Progress | None]
    deadline: float
    timeout_s: float
    done: asyncio.Event = field(default_factory=asyncio.Event)


class EngineClient:
    """Runs generations in a supervised worker process (see the module docstring).

    Args:
        faults: test-only fault injection passed to the worker (see docs/ENGINE.md); never set in production.
    """

    def __init__(self, config: EngineConfig, *, faults: EngineFaults | None = None) -> None:
        self.config = config
        self._faults = faults
        self._worker: _Worker | None = None
        self._started = 0
        self._start_lock = asyncio.Lock()
        self._batch_lock = asyncio.Lock()
        self._send_lock = threading.Lock()
        self._batch: _Batch | None = None
        self._queued: set[str] = set()
        self._precancelled: set[str] = set()
        self._queries: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._closed = False
        self._warned_cpu = False
        self._last_device = config.device
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, warmup: bool | None = None) -> EngineClient:
        """An engine configured from jamgen's settings (no fault injection, ever).

        Args:
            warmup: override ``settings.warmup``.
        """
        return cls(EngineConfig.from_settings(settings, warmup=warmup))

    async def __aenter__(self) -> EngineClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ public API

    async def start(self) -> None:
        """Start the worker (and warm the default model when configured); returns once it is ready.

        Raises:
            EngineError: the worker could not start.
        """
        await self._ensure_worker()

    async def generate(
        self, batch: Sequence[GenerationRequest], on_progress: ProgressCallback | None = None
    ) -> list[Outcome]:
        """Run a batch; one result or error per request, in order.

        Requests sharing a batch key share one model call (up to the batch limit); requests with an
        explicit seed run alone. A request the engine cannot serve as asked comes back as
        :class:`RequestRejectedError` (the member's mistake); a cancelled one as :class:`GenerationCancelledError`;
        one lost to a worker crash, watchdog kill or full memory as ``EngineError(retriable=True)``.

        Args:
            batch: the requests (distinct request ids).
            on_progress: called with each request's decoding progress (may be a coroutine function).

        Raises:
            EngineError: the engine was closed before the call (a worker that cannot start is
                reported per request instead).
        """
        if self._closed:
            raise EngineError("The engine is shut down.")
        results: list[Outcome | None] = [None] * len(batch)
        live: list[GenerationRequest] = []
        seen: set[str] = set()
        for index, request in enumerate(batch):
            rejection = self._check(request, seen)
            seen.add(request.request_id)
            if rejection is not None:
                results[index] = rejection
            else:
                live.append(request)
        self._queued.update(r.request_id for r in live)
        try:
            async with self._batch_lock:
                outcomes = await self._run_batch(live, on_progress)
        finally:
            ids = {r.request_id for r in live}
            self._queued.difference_update(ids)
            self._precancelled.difference_update(ids)
        for index, request in enumerate(batch):
            if results[index] is None:
                results[index] = outcomes[request.request_id]
        return results  # type: ignore[return-value]

    async def cancel(self, request_id: str) -> None:
        """Cancel one request: it is answered :class:`GenerationCancelledError` at once.

        A running call stops at its next decoding step once every row of it is cancelled;
        otherwise the cancelled row is dropped from what the call delivers.
        """
        await self._cancel([request_id])

    async def cancel_batch(self) -> None:
        """Cancel every running and waiting request."""
        ids = list(self._queued)
        if self._batch is not None:
            ids += list(self._batch.futures)
        await self._cancel(ids)

    async def load_model(self, name: str) -> None:
        """Load a model in the worker, downloading its weights when missing and allowed.

        Args:
            name: registry name.

        Raises:
            ModelUnavailableError: unknown model or weights missing and not downloadable.
            EngineError: loading failed otherwise.
        """
        spec = resolve_model(name, allow_debug=self.config.allow_debug_models)
        self._check_weights_offline(spec.name)
        worker = await self._ensure_worker()
        reply: ModelLoaded = await self._query(
            worker, lambda qid: LoadModel(qid, spec.name), self.config.load_timeout_s
        )
        if reply.error_kind == ERROR_REJECTED:
            raise ModelUnavailableError(reply.error or f"Model '{name}' is not available.")
        if reply.error_kind is not None:
            raise EngineError(reply.error or f"Loading model '{name}' failed.")

    async def health(self) -> EngineHealth:
        """The worker's state (does not start a worker)."""
        worker = self._worker
        if worker is None or worker.gone or not worker.ready.done() or worker.ready.exception() is not None:
            return EngineHealth(False, self._last_device, (), self.restarts, None)
        try:
            reply: HealthReply = await self._query(worker, HealthQuery, HEALTH_TIMEOUT_S)
        except EngineError:
            return EngineHealth(False, worker.device, (), self.restarts, worker.pid)
        return EngineHealth(
            alive=True,
            device=reply.device,
            loaded_models=reply.loaded_models,
            restarts=self.restarts,
            pid=worker.pid,
            generate_calls=reply.generate_calls,
            busy=reply.busy,
        )

    async def restart(self) -> None:
        """Stop the worker (requests in flight come back retriable) and start a fresh one."""
        async with self._start_lock:
            if self._worker is not None:
                await self._stop_worker(self._worker, "The engine was restarted; try again.")
        await self._ensure_worker()

    async def close(self) -> None:
        """Stop the worker; requests in flight come back retriable."""
        self._closed = True
        async with self._start_lock:
            if self._worker is not None:
                await self._stop_worker(self._worker, "The engine was shut down; try again later.")

    async def wait_idle(self, limit_s: float | None = None) -> bool:
        """Wait until the worker has finished its batch (also a cancelled one that is still unwinding).

        Args:
            limit_s: seconds to wait at most (None = no limit).

        Returns:
            whether the worker is idle.
        """
        batch = self._batch
        if batch is None:
            return True
        try:
            await asyncio.wait_for(batch.done.wait(), limit_s)
        except TimeoutError:
            return False
        return True

    @property
    def restarts(self) -> int:
        """Workers started after the first."""
        return max(0, self._started - 1)

    @property
    def worker_pid(self) -> int | None:
        """Process id of the running worker (None when there is none)."""
        worker = self._worker
        return None if worker is None or worker.gone else worker.pid

    # ------------------------------------------------------------ requests

    def _check(self, request: GenerationRequest, seen: set[str]) -> EngineError | None:
        if request.request_id in seen:
            return RequestRejectedError(f"Request id '{request.request_id}' appears twice in one batch.")
        try:
            validate_request(request, max_duration=self.config.max_duration, allow_debug=self.config.allow_debug_models)
            self._check_weights_offline(request.model)
        except UserInputError as exc:
            return RequestRejectedError(exc.message)
        return None

    def _check_weights_offline(self, name: str) -> None:
        """Fail fast, without starting a worker, when weights are missing and downloads are off."""
        spec = resolve_model(name, allow_debug=self.config.allow_debug_models)
        if not spec.debug and hf_offline() and not find_weights(spec, self.config.model_dir).present:
            raise missing_weights_error(spec, self.config.model_dir)

    async def _run_batch(
        self, requests: list[GenerationRequest], on_progress: ProgressCallback | None
    ) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        live = []
        for request in requests:
            if request.request_id in self._precancelled:
                outcomes[request.request_id] = GenerationCancelledError()
            else:
                live.append(request)
        if not live:
            return outcomes
        try:
            await self._wait_for_previous_batch()
            worker = await self._ensure_worker()
        except EngineError as exc:
            # No worker (start failed, engine closed): every request gets the reason, in order.
            outcomes.update(dict.fromkeys((r.request_id for r in live), exc))
            return outcomes
        loop = asyncio.get_running_loop()
        batch = _Batch(
            batch_id=next(self._ids),
            futures={r.request_id: loop.create_future() for r in live},
            progress=asyncio.Queue(),
            deadline=loop.time() + self.config.load_timeout_s,
            timeout_s=self.config.load_timeout_s,
        )
        self._batch = batch
        consumer = asyncio.create_task(self._deliver_progress(batch.progress, on_progress))
        watchdog = asyncio.create_task(self._watchdog(worker, batch))
        try:
            # Conditioning audio can be megabytes: pickling and writing it must not block the loop.
            await asyncio.to_thread(self._send, worker, SubmitBatch(batch.batch_id, tuple(live)))
        except (OSError, EOFError, ValueError):
            self._on_worker_gone(worker)
        try:
            # asyncio.wait, unlike gather, leaves the futures alone when the caller is cancelled.
            await asyncio.wait(list(batch.futures.values()))
        except asyncio.CancelledError:
            # The caller gave up: stop the worker's call instead of letting it run on.
            ids = [i for i, f in batch.futures.items() if not f.done()]
            for future in batch.futures.values():
                if not future.done():
                    future.set_result(GenerationCancelledError())
            with contextlib.suppress(Exception):
                await asyncio.shield(asyncio.to_thread(self._send, worker, CancelRequests(tuple(ids))))
            raise
        finally:
            batch.progress.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
            if batch.done.is_set():
                watchdog.cancel()
        for request_id, future in batch.futures.items():
            outcomes[request_id] = future.result()
        return outcomes

    async def _wait_for_previous_batch(self) -> None:
        """A cancelled batch may still be unwinding in the worker: the next one waits (watchdog applies)."""
        previous = self._batch
        if previous is not None and not previous.done.is_set():
            await previous.done.wait()

    async def _cancel(self, request_ids: Sequence[str]) -> None:
        batch = self._batch
        running = []
        for request_id in request_ids:
            future = batch.futures.get(request_id) if batch is not None else None
            if future is not None:
                if not future.done():
                    future.set_result(GenerationCancelledError())
                if not batch.done.is_set():  # type: ignore[union-attr]
                    running.append(request_id)
            elif request_id in self._queued:
                self._precancelled.add(request_id)
        worker = self._worker
        if running and worker is not None and not worker.gone:
            with contextlib.suppress(OSError, EOFError, ValueError):
                await asyncio.to_thread(self._send, worker, CancelRequests(tuple(running)))

    async def _deliver_progress(self, queue: asyncio.Queue[Progress | None], callback: ProgressCallback | None) -> None:
        while (progress := await queue.get()) is not None:
            if callback is None:
                continue
            try:
                result = callback(progress)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("progress callback failed")

    async def _watchdog(self, worker: _Worker, batch: _Batch) -> None:
        loop = asyncio.get_running_loop()
        while not batch.done.is_set() and not worker.gone:
            if loop.time() > batch.deadline:
                worker.kill_reason = (
                    f"The engine did not finish within {batch.timeout_s:.0f} s and was stopped; it restarts by itself."
                )
                log.error("watchdog: worker %s exceeded %.0f s, killing it", worker.pid, batch.timeout_s)
                with contextlib.suppress(OSError, ValueError):
                    worker.process.kill()
                return
            await asyncio.sleep(WATCHDOG_TICK_S)

    # ------------------------------------------------------------ worker lifecycle

    async def _ensure_worker(self) -> _Worker:
        if self._closed:
            raise EngineError("The engine is shut down.")
        async with self._start_lock:
            worker = self._worker
            if worker is None or worker.gone:
                worker = await self._spawn()
            elif not worker.ready.done():
                await asyncio.shield(worker.ready)
            return worker

    async def _spawn(self) -> _Worker:
        loop = asyncio.get_running_loop()
        self._loop = loop
        context = multiprocessing.get_context("spawn")
        parent_conn, child_conn = context.Pipe(duplex=True)
        process = context.Process(
            target=run_worker,
            args=(child_conn, self.config, self._faults),
            name="jamgen-engine",
            daemon=True,
        )
        await asyncio.to_thread(_start_process, process, self.config.visible_devices)
        child_conn.close()  # our copy: the pipe must report EOF when the child dies
        self._started += 1
        worker = _Worker(process=process, conn=parent_conn, number=self._started, ready=loop.create_future())
        worker.pid = process.pid
        self._worker = worker
        worker.reader = threading.Thread(
            target=self._read_forever, args=(worker, loop), name=f"jamgen-engine-pipe-{worker.number}", daemon=True
        )
        worker.reader.start()
        loop.add_reader(process.sentinel, self._on_worker_gone, worker)
        try:
            ready = await asyncio.wait_for(asyncio.shield(worker.ready), self.config.start_timeout_s)
        except TimeoutError:
            worker.kill_reason = f"The engine did not start within {self.config.start_timeout_s:.0f} s."
            process.kill()
            raise EngineError(worker.kill_reason, retriable=True) from None
        except EngineError:
            self._on_worker_gone(worker)
            raise
        worker.device = ready.device
        worker.on_gpu = ready.on_gpu
        self._last_device = ready.device
        log.info("engine worker %s ready on %s (batches of up to %d)", ready.pid, ready.device, ready.max_batch)
        if not ready.on_gpu and not self._warned_cpu:
            self._warned_cpu = True
            log.warning(CPU_WARNING)
        return worker

    def _read_forever(self, worker: _Worker, loop: asyncio.AbstractEventLoop) -> None:
        """Reader thread: hand every message to the event loop; report the end of the pipe."""
        while True:
            try:
                message = worker.conn.recv()
            except (EOFError, OSError, ValueError):
                # The pipe closes as the process dies; wait (here, off the loop) until it can be reaped.
                worker.process.join(timeout=1.0)
                self._call_in_loop(loop, self._on_worker_gone, worker)
                return
            except Exception:
                log.exception("unreadable message from the engine worker")
                continue
            self._call_in_loop(loop, self._on_message, worker, message)

    @staticmethod
    def _call_in_loop(loop: asyncio.AbstractEventLoop, function: Any, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            loop.call_soon_threadsafe(function, *args)

    def _send(self, worker: _Worker, message: object) -> None:
        with self._send_lock:
            worker.conn.send(message)

    def _on_message(self, worker: _Worker, message: object) -> None:
        if worker is not self._worker or worker.gone:
            return
        if isinstance(message, Ready):
            if not worker.ready.done():
                worker.ready.set_result(message)
        elif isinstance(message, StartFailed):
            if not worker.ready.done():
                worker.ready.set_exception(EngineError(message.message))
        elif isinstance(message, StepProgress | RowResult | RowError | Stage | BatchDone):
            self._on_batch_message(message)
        elif isinstance(message, ModelLoaded) and message.query_id == 0:
            if message.error:
                log.warning("warm-up of model %s failed: %s", message.model, message.error)
            else:
                log.info("model %s is warm", message.model)
        elif isinstance(message, HealthReply | ModelLoaded):
            future = self._queries.pop(message.query_id, None)
            if future is not None and not future.done():
                future.set_result(message)

    def _on_batch_message(self, message: StepProgress | RowResult | RowError | Stage | BatchDone) -> None:
        batch = self._batch
        if batch is None or message.batch_id != batch.batch_id:
            return
        if isinstance(message, StepProgress):
            for request_id in message.request_ids:
                future = batch.futures.get(request_id)
                if future is not None and not future.done():
                    batch.progress.put_nowait(Progress(request_id, message.done_steps, message.total_steps))
        elif isinstance(message, RowResult):
            self._resolve(
                batch,
                message.request_id,
                GenerationResult(
                    request_id=message.request_id,
                    audio=message.audio,
                    sample_rate=message.sample_rate,
                    seed=message.seed,
                    elapsed_s=message.elapsed_s,
                    steps=message.steps,
                    batch_size=message.batch_size,
                    stems=message.stems,
                ),
            )
        elif isinstance(message, RowError):
            self._resolve(batch, message.request_id, _error_for(message))
        elif isinstance(message, Stage):
            loop = asyncio.get_running_loop()
            if message.stage == "generating":
                batch.timeout_s = self.config.watchdog_timeout(message.duration)
            else:
                batch.timeout_s = self.config.load_timeout_s
            batch.deadline = loop.time() + batch.timeout_s
        elif isinstance(message, BatchDone):
            for future in batch.futures.values():
                if not future.done():
                    future.set_result(EngineError("The engine gave no answer for this take.", retriable=True))
            batch.done.set()
            self._batch = None  # generate() holds its own reference; drop the audio here

    @staticmethod
    def _resolve(batch: _Batch, request_id: str, outcome: Outcome) -> None:
        future = batch.futures.get(request_id)
        if future is not None and not future.done():
            future.set_result(outcome)

    def _on_worker_gone(self, worker: _Worker) -> None:
        """The worker exited (crash, kill, watchdog or shutdown): fail what it held, forget it."""
        if worker.gone:
            return
        worker.gone = True
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(Exception):
                loop.remove_reader(worker.process.sentinel)
        # The pipe and sentinel close a moment before the dead process can be reaped: poll briefly.
        for _ in range(20):
            worker.process.join(timeout=0)
            if worker.process.exitcode is not None:
                break
            time.sleep(0.005)
        code = worker.process.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        reason = worker.kill_reason or f"The engine stopped unexpectedly ({how}); it restarts by itself."
        if worker.kill_reason is None:
            log.error("engine worker %s died (%s)", worker.pid, how)
        error = EngineError(reason, retriable=True)
        if not worker.ready.done():
            worker.ready.set_exception(error)
            worker.ready.exception()  # retrieved: a start failure is reported by _spawn
        batch = self._batch
        if batch is not None and worker is self._worker:
            for future in batch.futures.values():
                if not future.done():
                    future.set_result(EngineError(reason, retriable=True))
            batch.done.set()
            self._batch = None
        for query_id, future in list(self._queries.items()):
            if not future.done():
                future.set_exception(EngineError(reason, retriable=True))
            self._queries.pop(query_id, None)
        with contextlib.suppress(OSError):
            worker.conn.close()
        if self._worker is worker:
            self._worker = None

    async def _stop_worker(self, worker: _Worker, reason: str) -> None:
        worker.kill_reason = reason
        with contextlib.suppress(OSError, EOFError, ValueError):
            await asyncio.to_thread(self._send, worker, Shutdown())
        process = worker.process
        await asyncio.to_thread(process.join, SHUTDOWN_GRACE_S)
        if process.is_alive():
            process.kill()
            await asyncio.to_thread(process.join, SHUTDOWN_GRACE_S)
        self._on_worker_gone(worker)

    async def _query(self, worker: _Worker, make: Any, limit_s: float) -> Any:
        query_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queries[query_id] = future
        try:
            await asyncio.to_thread(self._send, worker, make(query_id))
            async with asyncio.timeout(limit_s):  # not wait_for: on 3.11 it can swallow a caller's cancel
                return await future
        except (OSError, EOFError, ValueError):
            raise EngineError("The engine is not answering.", retriable=True) from None
        except TimeoutError:
            raise EngineError("The engine did not answer in time.", retriable=True) from None
        finally:
            self._queries.pop(query_id, None)


def _start_process(process: BaseProcess, visible_devices: str | None) -> None:
    """Start ``process``; with ``visible_devices`` it sees only those GPUs (spawn copies the environment)."""
    if visible_devices is None:
        process.start()
        return
    with _ENV_LOCK:
        saved = os.environ.get("CUDA_VISIBLE_DEVICES")
        os.environ["CUDA_VISIBLE_DEVICES"] = visible_devices
        try:
            process.start()
        finally:
            if saved is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = saved


def _error_for(message: RowError) -> EngineError:
    if message.kind == ERROR_CANCELLED:
        return GenerationCancelledError(message.message)
    if message.kind == ERROR_REJECTED:
        return RequestRejectedError(message.message)
    if message.kind == ERROR_OUT_OF_MEMORY:
        return EngineError(message.message, retriable=True)
    return EngineError(message.message, retriable=message.retriable)


__all__ = ["EngineClient", "EngineConfig", "EngineFaults"]
