"""The run engine: one asyncio loop per process that executes runs.

Agent runs spend nearly all their time waiting on a model, so a process executes hundreds of
them as asyncio tasks on one loop, with database work on the small pool of ``cosmos.db``
(``ASTEROS_DB_THREADS`` connections, whatever the number of runs). Celery tasks only hand a
run id to ``submit`` and wait; see docs/execution.md for why.

Per process the engine also:
- renews the leases of its runs in one UPDATE per tick, and learns of cancel flags there;
- listens for cancel signals on the bus, to stop a run within milliseconds;
- runs the reaper, so expired leases are recovered even without celery beat.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils import timezone

from . import metrics, tracing
from .bus import CANCEL_CHANNEL, get_bus
from .db import ProcessExiting, db_call
from .dispatch import set_local_executor
from .eventlog import EventSink, LostOwnership, RunWriter
from .kinds import DEFINITION_DELETED, ExecutionResult, get_kind
from .logging import run_id_var
from .models import Run, RunStatus, WorkerHeartbeat
from .retry import db_call_retrying
from .runtime.errors import RunFailed
from .runtime.events import EventType, make_event
from .runtime.interrupts import Resume, RunInterrupted
from .runtime.providers import preload_providers
from .services import checkpoints, costs, interrupts, leases
from .services import runs as run_services
from .services.errors import NotFound

logger = logging.getLogger(__name__)

CANCELLED_BY_USER = "cancelled"
LOST_LEASE = "lost"
TIMED_OUT = "timeout"
SHUTDOWN = "shutdown"

# The GIL switch interval of a process that runs an engine (CPython's default is 5 ms).
SWITCH_INTERVAL_SECONDS = 0.001


@dataclass
class LocalRun:
    run_id: str
    parent_id: str | None = None
    task: asyncio.Task | None = None
    stop_reason: str | None = None
    # Set once the final write has begun: the run can no longer be stopped, and its row stops
    # being "running" under a lease renewal that may be in flight at the same moment.
    finishing: bool = False
    # The attempt's span, with tracing on (cosmos.tracing).
    span: Any = None
    # Inserted claimed (the fast path): start_run announced it running already.
    announced: bool = False


@dataclass
class RunContext:
    """What an executor gets: the claimed run, an emitter, and a way to start child runs."""

    run: Run
    writer: RunWriter
    engine: RunEngine
    state: dict[str, Any] = field(default_factory=dict)
    # A run that paused for people: where it stopped and what they decided.
    resume: Resume | None = None
    # The run whose finished work this execution may reuse (cosmos.services.checkpoints): this
    # run, on a retry after its worker was lost; or the child run of a lost attempt this one
    # replaces. None for everything else.
    reuse_from: str | None = None

    @property
    def run_id(self) -> str:
        return str(self.run.id)

    @property
    def thread_id(self) -> str:
        return self.run.session_id or str(self.run.id)

    async def emit(self, event: dict) -> None:
        await self.writer.emit(event)

    async def run_child(
        self,
        kind: str,
        target: str,
        raw_input: Any,
        *,
        metadata: dict | None = None,
        timeout: float | None = None,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Run:
        """Create a child run and execute it here; returns it terminal (a timeout fails it).

        ``state`` reaches the child's ``RunContext.state`` in-process: e.g. ``extra_tools``
        (tools built for this run only, such as a star leader's ``delegate``).
        """
        child, _ = await db_call(
            run_services.start_run,
            kind,
            target,
            raw_input,
            parent=self.run,
            origin=self.run.kind,
            caller=self.run.caller,
            metadata=metadata,
            session_id=session_id,
            dispatch=False,
        )
        # Its own task, so that a timeout or cancel of the child never cancels this run.
        await asyncio.create_task(
            self.engine.execute(str(child.id), timeout=timeout, parent_id=self.run_id, state=state)
        )
        # A cancel of this run reaches the awaited child, which ends cancelled and returns
        # normally; asyncio then resumes this run as if nothing happened. Stop it here.
        if self.engine.stop_requested(self.run_id):
            raise asyncio.CancelledError
        return await db_call(Run.objects.get, id=child.id)


class RunEngine:
    def __init__(self, worker_id: str | None = None) -> None:
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_seconds = settings.ASTEROS.lease_seconds
        self.local: dict[str, LocalRun] = {}
        # Cancel signals for runs not (yet) registered here: a signal can land between a claim's
        # commit and the run's registration. Kept one tick, keyed by run id, valued by loop time.
        self._early_cancels: dict[str, float] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sink: EventSink | None = None
        self._started = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_at = timezone.now()
        self._background: list[asyncio.Task] = []
        # Slots taken by runs handed over on the fast path (cosmos.dispatch) and not yet
        # registered in ``local``; with ``local`` they are bounded by the worker's concurrency.
        self.concurrency = settings.ASTEROS.worker_concurrency
        self._reserved = 0
        self._reserved_lock = threading.Lock()

    # --- lifecycle

    def start(self) -> RunEngine:
        if self._thread is None:
            # The engine's loop parses model streams while its database and bus threads wait for
            # the GIL; with CPython's default 5 ms switch interval each of their steps could wait
            # that long, and a burst's first tokens were stored with its last (BENCHMARKS.md).
            sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
            self._thread = threading.Thread(target=self._serve, name="asteros-run-engine", daemon=True)
            self._thread.start()
            if not self._started.wait(timeout=10):
                raise RuntimeError("the run engine did not start")
        return self

    def _serve(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.sink = EventSink(on_lost=self._on_lost)
        self.sink.start(self.loop)
        self._background = [
            self.loop.create_task(self._tick_forever(), name="asteros-engine-tick"),
            self.loop.create_task(self._periodic_forever(), name="asteros-engine-periodic"),
        ]
        get_bus().add_listener(CANCEL_CHANNEL, self._on_cancel_signal)
        # Import the model SDKs now (seconds), not inside the first run.
        self.loop.run_in_executor(None, preload_providers)
        self._started.set()
        self.loop.run_forever()

    def stop_runs(self, timeout: float = 5.0) -> None:
        """The process is exiting: stop every run here without finishing it, as a crash would
        (its lease expires and a reaper re-queues it; the next attempt continues its events), so
        the worker threads waiting on them return. Thread-safe; waits until each run has been
        told, at most ``timeout`` seconds."""
        loop = self.loop
        if loop is None or loop.is_closed() or not loop.is_running():
            return

        async def stop() -> None:
            for run_id in list(self.local):
                self._stop_local(run_id, SHUTDOWN)

        try:
            asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout)
        except (concurrent.futures.TimeoutError, RuntimeError):
            logger.warning("the run engine did not stop its runs within %ss", timeout)

    def stop_background(self, timeout: float = 5.0) -> None:
        """Stop the lease tick, the reaper and the periodic jobs (before the database goes away:
        the end of a test session). Thread-safe; waits at most ``timeout`` seconds."""
        loop = self.loop
        if loop is None or loop.is_closed() or not loop.is_running():
            return

        async def stop() -> None:
            for task in self._background:
                task.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout)
        except (concurrent.futures.TimeoutError, RuntimeError):
            logger.warning("the run engine did not stop its periodic work within %ss", timeout)

    def submit(self, run_id: str) -> concurrent.futures.Future:
        """Execute a run on the engine's loop; thread-safe, returns a concurrent future."""
        self.start()
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(self.execute(run_id), self.loop)

    # --- the fast path (cosmos.dispatch): runs handed over by this process, with no broker hop

    def accept_local_runs(self) -> RunEngine:
        """Take the runs this process accepts or queues again, within the concurrency: called
        by the processes that execute runs (the embedded worker, a Celery worker)."""
        set_local_executor(self.start())
        return self

    def reserve(self) -> bool:
        with self._reserved_lock:
            if len(self.local) + self._reserved >= self.concurrency:
                return False
            self._reserved += 1
            return True

    def release(self) -> None:
        with self._reserved_lock:
            self._reserved = max(0, self._reserved - 1)

    @property
    def reserved_slots(self) -> int:
        """Slots taken for runs handed over and not yet registered (0 once they all are)."""
        return self._reserved

    def hand_over_claimed(self, run: Run) -> None:
        assert self.loop is not None
        asyncio.run_coroutine_threadsafe(self.execute(str(run.id), claimed=run, reserved=True), self.loop)

    def hand_over(self, run_id: str) -> None:
        assert self.loop is not None
        asyncio.run_coroutine_threadsafe(self.execute(run_id, reserved=True), self.loop)

    # --- execution

    async def execute(
        self,
        run_id: str,
        *,
        timeout: float | None = None,
        parent_id: str | None = None,
        state: dict[str, Any] | None = None,
        claimed: Run | None = None,
        reserved: bool = False,
    ) -> str | None:
        """Claim and run one run to its end. Returns the final status, or None if not ours.

        ``claimed``: the run, inserted already claimed by this engine (the fast path); ``reserved``:
        it was handed over in a slot ``reserve`` took, given back once the run is registered."""
        try:
            run = claimed if claimed is not None else await self._claim(run_id)
            if run is None:
                return None
            # An earlier attempt of this run may still be here (its lease expired and this worker
            # claimed the run again): it is not the owner any more, so stop it before its slot.
            self._stop_local(run_id, LOST_LEASE)
            local = LocalRun(run_id, parent_id, announced=claimed is not None)
            self.local[run_id] = local
        finally:
            if reserved:
                self.release()
        token = run_id_var.set(run_id)
        try:
            local.task = asyncio.current_task()
            if not tracing.enabled:
                return await self._execute_timed(run, local, state, timeout)
            with tracing.run_span(
                run_id=run_id,
                kind=run.kind,
                target=run.target,
                attempt=run.attempts,
                session_id=run.session_id,
                parent_run_id=str(run.parent_id) if run.parent_id else None,
                trace_context=run.trace_context,
            ) as local.span:
                return await self._execute_timed(run, local, state, timeout)
        finally:
            run_id_var.reset(token)
            if self.local.get(run_id) is local:
                del self.local[run_id]
            metrics.run_left()

    async def _execute_timed(
        self, run: Run, local: LocalRun, state: dict[str, Any] | None, timeout: float | None
    ) -> str | None:
        if timeout is None:
            return await self._execute_claimed(run, local, state)
        timer = asyncio.get_running_loop().call_later(timeout, self._stop_local, local.run_id, TIMED_OUT)
        try:
            return await self._execute_claimed(run, local, state)
        finally:
            timer.cancel()

    async def _claim(self, run_id: str) -> Run | None:
        """``claim_run``, retried through a short database outage (within one lease): a claim
        that fails on a broken connection must not leave the run queued until the reaper resends
        it. A try whose commit went through but whose answer was lost leaves the run ours."""
        retried = False

        def note_retry() -> None:
            nonlocal retried
            retried = True

        run = await db_call_retrying(
            leases.claim_run, run_id, self.worker_id, within=self.lease_seconds, on_retry=note_retry
        )
        if run is None and retried and run_id not in self.local:
            run = await db_call(leases.owned_run, run_id, self.worker_id)
        return run

    async def _execute_claimed(self, run: Run, local: LocalRun, state: dict[str, Any] | None) -> str | None:
        run_id = str(run.id)
        assert self.sink is not None
        # A first attempt has no events yet; a retried one continues its sequence, and first
        # closes what the lost attempt left open (a message cut in the middle, a tool call).
        last_seq, closers = await db_call(leases.resume_point, run_id) if run.attempts > 1 else (0, [])
        writer = RunWriter(run_id, self.sink, last_seq=last_seq)
        if not local.announced:
            self._publish_lifecycle(run)
        resume = await db_call(interrupts.resume_state, run) if run.checkpoint else None
        context = RunContext(run=run, writer=writer, engine=self, state=dict(state or {}), resume=resume)
        thread_id = context.thread_id
        if interrupts.resumed_now(run):
            pass  # the decision that queued it again wrote its "resumed" event; nothing is open
        elif writer.last_seq == 0:
            writer.emit_nowait(
                make_event(
                    EventType.RUN_STARTED,
                    threadId=thread_id,
                    runId=run_id,
                    parentRunId=str(run.parent_id) if run.parent_id else None,
                )
            )
        else:
            for closer in closers:
                writer.emit_nowait(closer)
            writer.emit_nowait(make_event(EventType.CUSTOM, name="asteros.retry", value={"attempt": run.attempts}))
            context.reuse_from = run_id
        if context.reuse_from is None and run.parent_id and checkpoints.SUPERSEDES in (run.metadata or {}):
            context.reuse_from = await db_call(checkpoints.superseded_run, run)
        metrics.run_started(run)
        try:
            if self._early_cancels.pop(run_id, None) is not None:
                self._stop_local(run_id, CANCELLED_BY_USER)  # raises at the next await
            # A run in a session is claimed only once its turn has come (claim_run): no waiting here.
            result = await get_kind(run.kind).execute(context)
        except asyncio.CancelledError:
            reason = local.stop_reason
            if reason in (None, SHUTDOWN, LOST_LEASE):
                raise  # not ours to finish: the lease expires and the reaper takes over
            if reason == TIMED_OUT:
                return await self._finish_failed(writer, run, "timeout", "The run timed out.")
            return await self._finish(writer, run, RunStatus.CANCELLED, ExecutionResult(outcome="cancelled"))
        except RunFailed as exc:
            return await self._finish_failed(writer, run, exc.code, exc.message, usage=exc.usage)
        except RunInterrupted as exc:
            return await self._pause(writer, run, exc)
        except LostOwnership:
            return None
        except NotFound as exc:
            # What the run executes (its agent, star or workflow) was deleted before it loaded it.
            return await self._finish_failed(writer, run, DEFINITION_DELETED, exc.message)
        except Exception as exc:
            logger.exception("run crashed")
            return await self._finish_failed(writer, run, "internal_error", f"Internal error: {exc.__class__.__name__}")
        return await self._finish(writer, run, RunStatus.SUCCEEDED, result)

    async def _finish(self, writer: RunWriter, run: Run, status: str, result: ExecutionResult) -> str | None:
        run_id = str(run.id)
        event = make_event(
            EventType.RUN_FINISHED,
            threadId=run.session_id or run_id,
            runId=run_id,
            result=result.result if result.result is not None else result.output,
            outcome=result.outcome,
        )
        usage = {name: getattr(result, name) for name in costs.TOKEN_FIELDS}

        def finalize() -> None:
            # Priced in the final transaction: the price of this moment is the run's for good.
            recorded = costs.priced_usage(result.provider, result.model, usage)
            leases.owner_finalizer(
                run_id,
                self.worker_id,
                status,
                attempt=run.attempts,
                session_id=run.session_id,
                parent_id=run.parent_id,
                output=result.output,
                **recorded,
            )()
            result.cost, result.cost_unpriced = recorded["cost"], recorded["cost_unpriced"]
            if result.finalize is not None:
                result.finalize()

        return await self._write_final(writer, run, status, event, finalize, result)

    async def _pause(self, writer: RunWriter, run: Run, paused: RunInterrupted) -> str | None:
        """The run waits for people: its log says what they are asked, and it leaves the worker."""
        timeout, on_timeout = await db_call(interrupts.timeout_policy, run)
        event = await db_call(interrupts.pause_event, paused.requests, paused.children, timeout)
        finalize = interrupts.pause_finalizer(
            run,
            self.worker_id,
            paused.requests,
            paused.checkpoint,
            children=paused.children,
            timeout_seconds=timeout,
            on_timeout=on_timeout,
        )
        if not await self._last_write(writer, run, event, finalize):
            return None
        run.status = RunStatus.INTERRUPTED  # its lifecycle message goes out once the pause commits
        self._trace_end(run, RunStatus.INTERRUPTED, None)
        return RunStatus.INTERRUPTED

    async def _finish_failed(
        self, writer: RunWriter, run: Run, code: str, message: str, *, usage: dict | None = None
    ) -> str | None:
        """End the run failed; ``usage``: what its model calls used before (recorded and priced too)."""
        event = make_event(EventType.RUN_ERROR, message=message, code=code)

        def finalize() -> None:
            recorded = costs.priced_usage(usage["provider"], usage["model"], usage) if usage else {}
            leases.owner_finalizer(
                str(run.id),
                self.worker_id,
                RunStatus.FAILED,
                attempt=run.attempts,
                session_id=run.session_id,
                parent_id=run.parent_id,
                error={"code": code, "message": message},
                **recorded,
            )()

        return await self._write_final(writer, run, RunStatus.FAILED, event, finalize, None, error=code)

    async def _write_final(self, writer, run, status, event, finalize, result, *, error=None) -> str | None:
        if not await self._last_write(writer, run, event, finalize):
            return None
        run.status = status
        self._trace_end(run, status, result, error)
        metrics.run_finished(run, result)
        self._publish_lifecycle(run)
        return status

    async def _last_write(self, writer: RunWriter, run: Run, event: dict, finalize) -> bool:
        """The attempt's last write (an end, or a pause); False if the run was not ours any more."""
        local = self.local.get(str(run.id))
        if local is not None:
            local.finishing = True
        try:
            # A short database error here is retried within the lease (which the engine keeps
            # renewing while the write is retried): the run's work is done and must not be redone.
            await asyncio.shield(writer.finish(event, finalize, retry_for=self.lease_seconds))
        except LostOwnership:
            logger.warning("lost ownership before the last write")
            return False
        return True

    def _trace_end(self, run: Run, status: str, result: ExecutionResult | None, error: str | None = None) -> None:
        if not tracing.enabled:
            return
        local = self.local.get(str(run.id))
        if local is None or local.span is None:
            return
        tokens = {name: getattr(result, name) for name in costs.TOKEN_FIELDS} if result is not None else {}
        tracing.end_run(local.span, status, error=error, **tokens)

    def _publish_lifecycle(self, run: Run) -> None:
        # Fire and forget, off the loop: the dashboard's feed must never slow a run down.
        assert self.loop is not None
        message = leases.lifecycle_message(run)  # a snapshot: the row object changes later
        self.loop.create_task(self._announce(message))

    async def _announce(self, message: dict) -> None:
        # On the database threads: run_changed's receivers (webhooks, A2A push) query the
        # database, and those threads' connections are the ones the engine manages.
        try:
            await db_call(leases.announce, message)
        except ProcessExiting:
            pass
        except Exception as exc:  # the feed is best effort; webhooks have their own sweep
            logger.warning("the lifecycle announcement failed: %s", exc.__class__.__name__)

    # --- stopping runs

    def stop_requested(self, run_id: str) -> bool:
        local = self.local.get(run_id)
        return local is not None and local.stop_reason is not None

    def _stop_local(self, run_id: str, reason: str) -> bool:
        local = self.local.get(run_id)
        if local is None or local.task is None or local.task.done() or local.finishing:
            return False
        if local.stop_reason is None:
            local.stop_reason = reason
            local.task.cancel()
            # Children stop with their parent; a parent's timeout cancels them.
            child_reason = CANCELLED_BY_USER if reason == TIMED_OUT else reason
            for child in [c for c in self.local.values() if c.parent_id == run_id]:
                self._stop_local(child.run_id, child_reason)
        return True

    def _on_cancel_signal(self, message: dict) -> None:
        # Called from the bus thread; hop onto the engine's loop.
        if self.loop is None:
            return
        for run_id in message.get("runs", ()):
            self.loop.call_soon_threadsafe(self._cancel_signalled, run_id)

    def _cancel_signalled(self, run_id: str) -> None:
        if not self._stop_local(run_id, CANCELLED_BY_USER) and run_id not in self.local:
            assert self.loop is not None
            self._early_cancels[run_id] = self.loop.time()

    def _on_lost(self, run_id: str) -> None:
        self._stop_local(run_id, LOST_LEASE)

    # --- periodic work

    async def _periodic_forever(self) -> None:
        """The jobs apps registered (``register_periodic``), each when its time has come."""
        last_run: dict[str, float] = {}
        while True:
            now = time.monotonic()
            for job in list(_periodic_jobs):
                if job.name in last_run and now - last_run[job.name] < job.every_seconds:
                    continue
                last_run[job.name] = now
                try:
                    await db_call(job.run)
                except ProcessExiting:
                    return
                except Exception as exc:  # one job's failure must not stop the others
                    logger.warning("periodic job %s failed: %s", job.name, exc.__class__.__name__)
            await asyncio.sleep(PERIODIC_TICK_SECONDS)

    async def _tick_forever(self) -> None:
        """Renew leases every ``lease / 3`` and reap every ``lease / 2``, from the moment the
        engine starts (a process that starts it at once reaps with no run of its own: the runs
        interrupted by a restart end within a lease and one reaper interval, with no traffic)."""
        interval = max(0.5, self.lease_seconds / 3)
        reap_every = max(1, int(self.lease_seconds / 2 / interval))
        tick = 0
        while True:
            try:
                if tick % reap_every == 0:
                    await db_call(leases.reap_expired_runs)
                    await db_call(interrupts.expire_due)
            except ProcessExiting:
                return
            except Exception as exc:  # a database blip must not kill the engine
                logger.warning("reaper failed: %s", exc.__class__.__name__)
            await asyncio.sleep(interval)
            tick += 1
            try:
                await self._renew()
            except ProcessExiting:
                return
            except Exception as exc:
                logger.warning("engine tick failed: %s", exc.__class__.__name__)

    async def _renew(self) -> None:
        assert self.loop is not None
        horizon = self.loop.time() - self.lease_seconds
        self._early_cancels = {rid: at for rid, at in self._early_cancels.items() if at > horizon}
        # Finishing runs too: a final write retried through a database blip keeps its lease.
        ids = list(self.local)
        ours, cancel = await db_call(leases.renew_leases, self.worker_id, ids)
        for run_id in ids:
            # A run that finished while the renewal was in flight is no longer "running": not
            # lost (_stop_local leaves a finishing run alone).
            if run_id not in ours and run_id in self.local:
                self._stop_local(run_id, LOST_LEASE)
            elif run_id in cancel:
                self._stop_local(run_id, CANCELLED_BY_USER)
        await db_call(self._record_heartbeat, len(ids))

    def _record_heartbeat(self, active: int) -> None:
        WorkerHeartbeat.objects.update_or_create(
            worker_id=self.worker_id,
            defaults={
                "mode": settings.ASTEROS.mode,
                "active_runs": active,
                "started_at": self._started_at,
                "seen_at": timezone.now(),
            },
        )


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    run: Callable[[], Any]  # blocking (it runs on the engine's database threads)
    every_seconds: float


_periodic_jobs: list[PeriodicJob] = []
PERIODIC_TICK_SECONDS = 0.5


def register_periodic(name: str, run: Callable[[], Any], every_seconds: float) -> None:
    """Have every process's engine call ``run`` about every ``every_seconds`` (checked every
    ``PERIODIC_TICK_SECONDS``), from its database threads. For the sweeps of apps
    above cosmos (webhook retries, schedules), registered in their ``AppConfig.ready()``: each
    process that executes runs then sweeps too, with no beat needed. A job must be safe to run
    in several processes at once (conditional updates, unique keys). Registering a name again
    replaces the job."""
    _periodic_jobs[:] = [job for job in _periodic_jobs if job.name != name]
    _periodic_jobs.append(PeriodicJob(name, run, every_seconds))


_engine: RunEngine | None = None
_engine_lock = threading.Lock()


def running_engine() -> RunEngine | None:
    """The process's engine if it has started, without starting one."""
    return _engine


def get_engine() -> RunEngine:
    """The process's engine, started on first use (in a worker, at the first task)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = RunEngine().start()
        return _engine
