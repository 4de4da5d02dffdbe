"""Run one workload against a fresh namespace and measure it.

Open loop (``rate``): start ``i`` is scheduled at ``t0 + i / rate`` and its
latency counts from that scheduled time to the result, so a harness or a system
that falls behind shows up as latency instead of hiding it (coordinated
omission). Closed loop (``concurrency``): that many workflows in flight, each
started when the previous one of its slot finished. Workflows scheduled during
the warm-up are run but not counted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import math
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from cadenza import schemas
from cadenza._ids import new_id
from cadenza._settings import Settings
from cadenza.client import Client
from cadenza.topics import (
    TopicAdmin,
    TopicAdminError,
    commands_topic,
    consumer_group,
    history_topic,
)
from cadenza.worker import Worker

from . import _workloads as w
from ._engine import EngineGroup
from ._procs import (
    ProcSample,
    find_listener_pid,
    jit_cpu_seconds,
    reference_loop_ms,
    sample_pid,
    sample_self,
)
from ._recovery import RecoveryClock, recovery_figures
from ._replay import run_replay
from ._workers import WorkerProcess, WorkerProcesses

__all__ = [
    "HISTORY_WORKLOADS",
    "TEMPORAL_WORKLOADS",
    "WORKLOADS",
    "BenchOptions",
    "HistoryEvent",
    "LoadRun",
    "Progress",
    "TemporalTarget",
    "drive_load",
    "driver",
    "history_figures",
    "not_on_temporal",
    "percentile",
    "run_bench",
]

WORKLOADS = (
    "one-activity",
    "ten-steps",
    "fan-out",
    "signals",
    "timers",
    "ingest",
    "replay",
    "recovery",
    "cached",
)
"""Every workload ``cadenza bench`` knows."""

TEMPORAL_WORKLOADS = ("one-activity", "ten-steps", "fan-out", "signals", "timers")
"""The workloads that also run on Temporal: the others time Cadenza's own engine
(``ingest``, ``replay``), kill it (``recovery``) or weigh its worker's cache
(``cached``: Temporal's lives in its Rust core)."""

HISTORY_WORKLOADS = ("one-activity", "ten-steps", "timers")
"""Workloads whose report adds figures read from the runs' histories."""

_QUEUE = "bench"
_BATCH_COUNT = 20_000
"""``count`` of ``ingest`` and ``replay`` when not given."""
_READY_TIMEOUT = 90.0

Progress = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class TemporalTarget:
    """Run the workload with ``temporalio`` against a Temporal server instead of Cadenza.

    Needs the ``bench`` extra (``pip install 'cadenza[bench]'``).
    """

    address: str | None = None
    """``HOST:PORT`` of a running Temporal server; ``None`` starts
    ``temporal server start-dev`` on a free loopback port for the run and stops it after."""
    db_file: str | None = None
    """The dev server started for the run keeps its state in this SQLite file
    (``None``: in memory). Not used with ``address``."""
    namespace: str = "default"
    """Temporal namespace to run in."""


@dataclasses.dataclass(frozen=True)
class BenchOptions:
    """What to run and how hard."""

    workload: str
    """One of :data:`WORKLOADS`."""
    rate: float | None = None
    """Open loop: workflows started per second."""
    concurrency: int | None = None
    """Closed loop: workflows in flight."""
    duration: float = 30.0
    """Seconds of measured load, after the warm-up."""
    warmup: float = 3.0
    """Seconds of load before measuring (not counted)."""
    drain: float = 30.0
    """Seconds to wait after the load for workflows still in flight."""
    count: int | None = None
    """``ingest``: start commands produced; ``replay``: starts whose history is rebuilt
    (default 20,000 for both); ``cached``: runs kept in the worker's cache (default 10,000)."""
    sleep: float = 2.0
    """``timers``: seconds each workflow sleeps."""
    external_engine: bool = False
    """Use an engine already running on the namespace instead of starting one."""
    engines: int = 1
    """Engine processes the bench starts; they share the partitions (the first also
    runs the visibility projection)."""
    kill_at: float | None = None
    """``recovery``: seconds into the measured load to kill the engine (default: half)."""
    keep_topics: bool = False
    """Leave the namespace's topics behind (by default a run deletes the topics it created)."""
    eager_activities: bool = True
    """Workers start activities of their own task queue eagerly (``False``: every activity
    task goes through ``activity-tasks``, as with ``disable_eager_activity_execution``)."""
    eager_start: bool = False
    """Start workflows with ``request_eager_start=True``: the first workflow task comes
    back with the start's reply to the bench process's worker (eager workflow start)."""
    worker_processes: int = 0
    """Workers in processes of their own, this many, with the bench process left to the
    client and the load generator (``0``: the worker runs in the bench process). Not with
    ``eager_start``, which hands first tasks to a worker of the client's own process."""
    temporal: TemporalTarget | None = None
    """Run on Temporal instead (one of :data:`TEMPORAL_WORKLOADS`); ``None``: on Cadenza."""


@dataclasses.dataclass
class _Sample:
    workflow_id: str
    scheduled: float
    done: float | None = None
    error: str | None = None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100, nearest rank) of ``values``; ``None`` when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _summary(values: Sequence[float]) -> dict[str, float | None]:
    return {
        "p50": _round(percentile(values, 50)),
        "p95": _round(percentile(values, 95)),
        "p99": _round(percentile(values, 99)),
        "max": _round(max(values) if values else None),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _proc_json(sample: ProcSample | None, before: ProcSample | None) -> dict[str, Any] | None:
    if sample is None:
        return None
    out: dict[str, Any] = {
        "cpu_seconds": round(sample.cpu_seconds - (before.cpu_seconds if before else 0.0), 2),
        "peak_rss_mib": round(sample.peak_rss_mib, 1),
    }
    jit = jit_cpu_seconds(sample, before)
    if jit is not None:
        out["jit_cpu_seconds"] = round(jit, 2)
    return out


class LoadRun:
    """One run driven through a client: its options, samples and measured window.

    Subclasses name the processes to sample (:meth:`snapshot`) and add their own
    keys to :meth:`report`.
    """

    target = "cadenza"
    fresh: tuple[str, ...] = ()
    """Processes started for this run: all of their CPU belongs to it. The others
    (the bench process, shared servers) are counted from the start of the load."""

    def __init__(self, options: BenchOptions, progress: Progress | None):
        self.options = options
        self.progress = progress
        self.samples: list[_Sample] = []
        self.t0 = 0.0
        self.window = (0.0, 0.0)
        self.extra: dict[str, Any] = {}
        self.before: dict[str, ProcSample | None] = {}
        self.wall_offset = 0.0
        """``time.time()`` minus the loop's clock: turns a sample's times into the wall
        clock that history events carry."""

    # -- processes ---------------------------------------------------------------------

    def snapshot(self) -> dict[str, ProcSample | None]:
        """CPU and memory of every process of the run now."""
        return {"bench": sample_self()}

    def pids(self) -> dict[str, int | None]:
        """``<name>_pid`` of the processes the run did not start, for the report."""
        return {}

    def processes_json(self, now: dict[str, ProcSample | None]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, sample in now.items():
            before = None if name in self.fresh else self.before.get(name)
            out[name] = _proc_json(sample, before)
        return out

    # -- the result --------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """The figures every load-driven workload reports."""
        start, end = self.window
        measured = [s for s in self.samples if s.scheduled >= start]
        ok = [s for s in measured if s.done is not None and s.error is None]
        latencies = [((s.done or 0.0) - s.scheduled) * 1000 for s in ok]
        in_window = sum(1 for s in ok if s.done is not None and s.done <= end)
        seconds = max(end - start, 1e-9)
        offered = self.options.rate
        if offered is None:
            offered = len(measured) / seconds
        not_completed = [
            {"workflow_id": s.workflow_id, "error": s.error or "did not finish in time"}
            for s in measured
            if s.done is None or s.error is not None
        ]
        procs = self.processes_json(self.snapshot())
        return {
            "workload": self.options.workload,
            "target": self.target,
            "mode": "open" if self.options.rate is not None else "closed",
            "duration_s": round(seconds, 2),
            "offered_rate": round(offered, 2),
            "concurrency": self.options.concurrency,
            "eager_activities": self.options.eager_activities,
            "eager_start": self.options.eager_start,
            "achieved_rate": round(in_window / seconds, 2),
            "completed": len(ok),
            "failed": len(not_completed),
            "latency_ms": _summary(latencies),
            "processes": {**procs, **self.pids()},
            "cpu_seconds": {k: (v or {}).get("cpu_seconds") for k, v in procs.items()},
            "peak_rss_mib": {k: (v or {}).get("peak_rss_mib") for k, v in procs.items()},
            "not_completed": not_completed[:1000],
            **self.extra,
        }

    def measured_ok(self) -> set[str]:
        """Ids of the workflows scheduled in the measured window that did not fail."""
        start, _ = self.window
        return {s.workflow_id for s in self.samples if s.scheduled >= start and not s.error}

    # -- progress ----------------------------------------------------------------------

    async def show_progress(self) -> None:
        """A line a second: rate, completed, failed and in flight, p50 of the last 2,000.

        Each sample is looked at until it is done, and not after: a pass over every
        sample each second cost the bench process 2-3% of its CPU in a 60 s run at
        200 in flight (and more the longer the run).
        """
        if self.progress is None:
            return
        loop = asyncio.get_running_loop()
        seen = completed = failed = 0
        flying: list[_Sample] = []
        recent: deque[float] = deque(maxlen=2000)
        while True:
            await asyncio.sleep(1.0)
            now = loop.time()
            start, _ = self.window
            fresh = self.samples[seen:]
            seen += len(fresh)
            still: list[_Sample] = []
            for s in itertools.chain(flying, fresh):
                if s.done is None:
                    still.append(s)
                elif s.scheduled >= start:
                    if s.error is not None:
                        failed += 1
                    else:
                        completed += 1
                        recent.append((s.done - s.scheduled) * 1000)
            flying = still
            phase = "warm-up" if now < start else "measuring"
            rate = completed / (now - start) if now > start else 0.0
            p50 = percentile(recent, 50)
            self.progress(
                f"[{now - self.t0:6.1f}s {phase}] rate {rate:7.1f}"
                f"/s  completed {completed:6d}  failed "
                f"{failed:4d}  in flight "
                f"{len(flying):5d}  p50 " + (f"{p50:7.1f} ms" if p50 is not None else "      - ms")
            )


class _Run(LoadRun):
    """A run on Cadenza: its namespace, engine and the broker."""

    fresh: tuple[str, ...] = ("engine", "visibility")

    def __init__(self, settings: Settings, options: BenchOptions, progress: Progress | None):
        super().__init__(options, progress)
        self.settings = settings
        self.data_dir = Path(tempfile.mkdtemp(prefix="cadenza-bench-"))
        self.engine = (
            None
            if options.external_engine
            else EngineGroup(
                settings,
                self.data_dir,
                options.engines,
                # The recovery timeline is read from the restarted engine's INFO lines.
                log_level="INFO" if options.workload == "recovery" else "WARNING",
            )
        )
        self.recovery: RecoveryClock | None = None
        self.broker_pid = find_listener_pid(_port(settings.resolved_bootstrap_servers))
        self.workers = (
            WorkerProcesses(
                settings,
                self.data_dir,
                _QUEUE,
                options.worker_processes,
                max_cached=_max_cached(options),
                slots=worker_slots(options),
                eager_activities=options.eager_activities,
            )
            if options.worker_processes
            else None
        )

    def snapshot(self) -> dict[str, ProcSample | None]:
        return {
            "engine": self.engine.sample() if self.engine else None,
            "visibility": self.engine.sample_children() if self.engine else None,
            "bench": sample_self(),
            **({"worker": self.workers.sample()} if self.workers is not None else {}),
            "broker": sample_pid(self.broker_pid, jit=True) if self.broker_pid else None,
        }

    def pids(self) -> dict[str, int | None]:
        return {"broker_pid": self.broker_pid}

    def engines_json(self) -> dict[str, Any]:
        """How many engines the bench ran, and each one's CPU and partitions."""
        if self.engine is None:
            return {"engines": 0}
        return {
            "engines": len(self.engine.members),
            "engine_cpu_seconds_each": self.engine.cpu_seconds_each(),
            "engine_partitions_each": self.engine.partitions_each(),
        }

    def report(self) -> dict[str, Any]:
        report = super().report()
        extra: dict[str, Any] = {}
        if self.engine is not None:
            # The engine and the namespace are fresh: every committed command is this run's.
            commands = committed_commands(self.settings)
            cpu = (report["processes"].get("engine") or {}).get("cpu_seconds")
            extra["engine_commands"] = commands
            extra["engine_cpu_us_per_command"] = (
                round(cpu / commands * 1e6, 1) if cpu is not None and commands else None
            )
        return {
            **report,
            "namespace": self.settings.namespace,
            "partitions": self.settings.partitions,
            "engine_consumer_lag": engine_lag(self.settings),
            **self.engines_json(),
            **extra,
        }


def _port(bootstrap: str) -> int:
    first = bootstrap.split(",")[0]
    try:
        return int(first.rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return 9092


def engine_lag(settings: Settings) -> int | None:
    """Records of ``commands`` the engine group has not committed yet."""
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": consumer_group(settings, "engine"),
            "enable.auto.commit": False,
        }
    )
    try:
        topic = commands_topic(settings)
        meta = consumer.list_topics(topic, timeout=10)
        parts = [TopicPartition(topic, p) for p in meta.topics[topic].partitions]
        committed = consumer.committed(parts, timeout=10)
        lag = 0
        for tp in committed:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), 10)
            lag += high - (tp.offset if tp.offset >= 0 else low)
        return lag
    except Exception:
        return None
    finally:
        consumer.close()


def engines_assigned(admin: AdminClient, settings: Settings) -> int:
    """Members of the engine group that hold partitions now (0 while it rebalances)."""
    group = consumer_group(settings, "engine")
    try:
        described = admin.describe_consumer_groups([group], request_timeout=5)[group].result()
    except Exception:
        return 0
    return sum(1 for m in described.members if m.assignment and m.assignment.topic_partitions)


def committed_commands(settings: Settings, upto: list[int] | None = None) -> int:
    """Offsets of ``commands`` the engine group has committed, summed over partitions.

    ``upto``: per partition, count no further than this offset. The engine writes
    to ``commands`` too (a fired timeout, a child's start) and each of its
    transactions leaves a marker there, so past the records a run produced, offsets
    are not commands of that run.
    """
    consumer = Consumer({**settings.kafka_config(), "group.id": consumer_group(settings, "engine")})
    try:
        topic = commands_topic(settings)
        parts = [TopicPartition(topic, p) for p in range(settings.partitions)]
        offsets = [max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10)]
        if upto is not None:
            offsets = [min(offset, end) for offset, end in zip(offsets, upto, strict=True)]
        return sum(offsets)
    finally:
        consumer.close()


def end_offsets(settings: Settings) -> list[int]:
    """Per partition of ``commands``, the offset after its last record."""
    consumer = Consumer({**settings.kafka_config(), "group.id": f"{settings.namespace}.bench-ends"})
    try:
        topic = commands_topic(settings)
        return [
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(settings.partitions)
        ]
    finally:
        consumer.close()


def read_history(settings: Settings, timeout: float = 120.0) -> dict[str, list[dict[str, Any]]]:
    """Every event on ``history`` now, grouped by workflow id, in order."""
    topic = history_topic(settings)
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": f"{settings.namespace}.bench-history.{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }
    )
    events: dict[str, list[dict[str, Any]]] = {}
    try:
        pending: dict[int, int] = {}
        assign = []
        for p in range(settings.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                pending[p] = high
                assign.append(TopicPartition(topic, p, low))
        consumer.assign(assign)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for msg in consumer.consume(10_000, 0.5):
                partition = msg.partition() or 0
                offset = msg.offset() or 0
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF and offset >= pending.get(
                        partition, 0
                    ):
                        pending.pop(partition, None)
                    continue
                value = msg.value()
                if isinstance(value, bytes):
                    event = schemas.decode_as(value, schemas.HISTORY_EVENT)
                    events.setdefault(event["workflow_id"], []).append(event)
                if offset >= pending.get(partition, 0) - 1:
                    pending.pop(partition, None)
    finally:
        consumer.close()
    return events


def _name(event: dict[str, Any]) -> str:
    return str(event["attributes"][0]).rsplit(".", 1)[-1]


@dataclasses.dataclass(frozen=True)
class HistoryEvent:
    """One event of a run's history as the figures need it, from Cadenza or Temporal."""

    event_id: int
    name: str
    """The event type without prefix, e.g. ``ActivityTaskScheduled``."""
    time_ms: float
    """When the engine (or the Temporal server) recorded it."""
    timer_ms: float | None = None
    """``TimerStarted``: the timer's duration."""
    started_event_id: int | None = None
    """``TimerFired``: the event id of its ``TimerStarted``."""


def _cadenza_event(event: dict[str, Any]) -> HistoryEvent:
    name = _name(event)
    attributes = event["attributes"][1]
    return HistoryEvent(
        event_id=event["event_id"],
        name=name,
        time_ms=event["event_time_ms"],
        timer_ms=attributes["start_to_fire_timeout_ms"] if name == "TimerStarted" else None,
        started_event_id=attributes["started_event_id"] if name == "TimerFired" else None,
    )


# -- workloads driven through the client ---------------------------------------------------


def worker_slots(options: BenchOptions) -> int:
    """Workflow task and activity slots of the bench's worker (either target): room
    for every workflow in flight, at least the SDKs' default of 100. With fewer
    slots than workflows in flight, eager activities and starts fall back to the
    task topics whenever the worker is full (BENCHMARKS, entry 37)."""
    return max(100, options.concurrency or 0)


# The client is Cadenza's or temporalio's: the calls the workloads make are the same.
Drive = Callable[[Any, str], Awaitable[None]]


def driver(options: BenchOptions, w: ModuleType, task_queue: str) -> Drive:
    """How one workflow of ``options.workload`` is run, with the workload classes of ``w``.

    ``w`` is :mod:`cadenza.bench._workloads`, or the same source bound to temporalio.
    """

    # Both clients take the flag; each falls back to an ordinary start without a worker.
    start: dict[str, Any] = {"task_queue": task_queue}
    if options.eager_start:
        start["request_eager_start"] = True

    async def one_activity(client: Any, wid: str) -> None:
        got = await client.execute_workflow(w.EchoWorkflow.run, wid, id=wid, **start)
        if got != wid:
            raise RuntimeError(f"wrong result {got!r}")

    async def ten_steps(client: Any, wid: str) -> None:
        await client.execute_workflow(w.TenStepsWorkflow.run, wid, id=wid, **start)

    async def fan_out(client: Any, wid: str) -> None:
        got = await client.execute_workflow(w.FanOutWorkflow.run, wid, id=wid, **start)
        if got != w.FAN_OUT:
            raise RuntimeError(f"gathered {got} results, not {w.FAN_OUT}")

    async def signals(client: Any, wid: str) -> None:
        handle = await client.start_workflow(w.SignalsWorkflow.run, id=wid, **start)
        for _ in range(w.SIGNALS):
            await handle.signal(w.SignalsWorkflow.poke)
        await handle.result()

    async def timers(client: Any, wid: str) -> None:
        await client.execute_workflow(w.SleepWorkflow.run, options.sleep, id=wid, **start)

    return {
        "one-activity": one_activity,
        "recovery": one_activity,
        "ten-steps": ten_steps,
        "fan-out": fan_out,
        "signals": signals,
        "timers": timers,
    }[options.workload]


async def _wait_ready(run: _Run, client: Client) -> None:
    """Until one workflow completes: the engine owns its partitions and the worker polls."""
    deadline = time.monotonic() + _READY_TIMEOUT
    attempt = 0
    while True:
        attempt += 1
        wid = f"ready-{attempt}"
        try:
            await asyncio.wait_for(
                client.execute_workflow(w.EchoWorkflow.run, wid, id=wid, task_queue=_QUEUE), 15
            )
            return
        except Exception as exc:
            if run.engine is not None:
                run.engine.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the engine did not answer in {_READY_TIMEOUT:g}s: {exc}"
                ) from exc


async def wait_ready_with(
    run: _Run, client: Client, workers: WorkerProcess | WorkerProcesses
) -> None:
    """:func:`_wait_ready` with workers in processes of their own: a worker that
    exited, or the tail of its log, says why nothing answered."""
    try:
        await _wait_ready(run, client)
    except RuntimeError as exc:
        workers.check_alive()
        raise RuntimeError(f"{exc}\nworker log:\n{workers.log_tail()}") from exc


async def drive_load(run: LoadRun, client: Any, drive: Drive) -> None:
    """Run the load of ``run.options`` through ``client``, recording ``run.samples``."""
    options = run.options
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    async def one(sample: _Sample) -> None:
        try:
            await drive(client, sample.workflow_id)
        except Exception as exc:
            sample.error = f"{type(exc).__name__}: {exc}"
        sample.done = loop.time()

    prefix = uuid.uuid4().hex[:6]
    run.t0 = loop.time()
    run.wall_offset = time.time() - run.t0
    start = run.t0 + options.warmup
    end = start + options.duration
    run.window = (start, end)
    recovery = None
    if isinstance(run, _Run) and options.workload == "recovery":
        recovery = asyncio.create_task(_recovery(run))
    if options.rate is not None:
        i = 0
        while True:
            due = run.t0 + i / options.rate
            if due >= end:
                break
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            sample = _Sample(f"{prefix}-{i}", due)
            run.samples.append(sample)
            task = asyncio.create_task(one(sample))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
    else:
        counter = iter(range(10**12))

        async def slot() -> None:
            while loop.time() < end:
                sample = _Sample(f"{prefix}-{next(counter)}", loop.time())
                run.samples.append(sample)
                await one(sample)

        await asyncio.gather(*(slot() for _ in range(options.concurrency or 1)))
    if tasks:
        _, late = await asyncio.wait(set(tasks), timeout=options.drain)
        for task in late:
            task.cancel()
    if recovery is not None:
        await recovery


async def _recovery(run: _Run) -> None:
    """Kill -9 the engine part-way through the load and restart it on the same data dir."""
    engine = run.engine
    if engine is None:
        raise RuntimeError("recovery needs the engine started by the bench (not --engine external)")
    loop = asyncio.get_running_loop()
    start, end = run.window
    kill_at = start + (
        run.options.kill_at if run.options.kill_at is not None else (end - start) / 2
    )
    await asyncio.sleep(max(0.0, kill_at - loop.time()))
    engine.kill()
    killed = loop.time()
    log_offset = engine.log_size()
    engine.start()
    run.recovery = RecoveryClock(
        killed=killed,
        restarted=loop.time(),
        restarted_wall=time.time(),
        log_offset=log_offset,
        window_start=start,
    )


async def _client_workload(run: _Run) -> dict[str, Any]:
    options = run.options
    client = await Client.connect(settings=run.settings, rpc_timeout=timedelta(seconds=60))
    try:
        if run.workers is not None:
            report = await _load_with_worker_processes(run, client, run.workers)
        else:
            report = await _load_with_worker_here(run, client)
    finally:
        await client.close()
    if options.workload in HISTORY_WORKLOADS:
        measured = run.measured_ok()
        history = {
            wid: [_cadenza_event(e) for e in events]
            for wid, events in read_history(run.settings).items()
            if wid in measured
        }
        report.update(history_figures(options.workload, history, report["latency_ms"]["p50"]))
        report["ends_ms"] = end_figures(run, history)
    if run.recovery is not None and run.engine is not None:
        done = [(s.workflow_id, s.done) for s in run.samples if s.done is not None and not s.error]
        report["recovery"] = recovery_figures(
            run.recovery, done, read_history(run.settings), run.engine.log_path
        )
    return report


_WORKFLOWS = (
    w.EchoWorkflow,
    w.TenStepsWorkflow,
    w.FanOutWorkflow,
    w.SignalsWorkflow,
    w.SleepWorkflow,
)


def _max_cached(options: BenchOptions) -> int:
    return max(1000, (options.concurrency or 0) * 2)


async def _load_with_worker_here(run: _Run, client: Client) -> dict[str, Any]:
    """The load, with the worker in this process beside the client."""
    options = run.options
    async with Worker(
        client,
        task_queue=_QUEUE,
        workflows=list(_WORKFLOWS),
        activities=[w.echo],
        max_cached_workflows=_max_cached(options),
        max_concurrent_workflow_tasks=worker_slots(options),
        max_concurrent_activities=worker_slots(options),
        disable_eager_activity_execution=not options.eager_activities,
    ) as worker:
        await _wait_ready(run, client)
        report = await _measure(run, client)
        if options.eager_start and worker._workflow_worker is not None:
            # Warm-up included: starts whose first task came back with the reply.
            report["eager_starts"] = worker._workflow_worker.eager_started
    return report


async def _load_with_worker_processes(
    run: _Run, client: Client, workers: WorkerProcesses
) -> dict[str, Any]:
    """The load, with the workers in processes of their own."""
    await workers.start()
    try:
        await wait_ready_with(run, client, workers)
        report = await _measure(run, client)
        workers.check_alive()
    finally:
        await workers.stop()
    report["worker_processes"] = len(workers.members)
    return report


async def _measure(run: _Run, client: Client) -> dict[str, Any]:
    """Drive the load (progress shown) and report on it."""
    run.before = run.snapshot()
    progress = asyncio.create_task(run.show_progress())
    try:
        await drive_load(run, client, driver(run.options, w, _QUEUE))
    finally:
        progress.cancel()
    return run.report()


def history_figures(
    workload: str, history: Mapping[str, Sequence[HistoryEvent]], latency_p50: float | None
) -> dict[str, Any]:
    """``event_gaps_ms_p50`` (where the time goes: the engine's time between consecutive
    events of a run), and ``per_step_ms`` of ``ten-steps`` or ``timer_fire_lag_ms`` of
    ``timers``, from the histories of the measured runs."""
    steps: list[float] = []
    lags: list[float] = []
    gaps: dict[str, list[float]] = {}
    for events in history.values():
        for a, b in itertools.pairwise(events):
            gaps.setdefault(f"{a.name} -> {b.name}", []).append(b.time_ms - a.time_ms)
        if workload == "ten-steps":
            # A step: from the workflow task that schedules an activity to the one that
            # has its result. Task start times, since a continued task is recorded at the
            # time the worker ran it, while the engine may record several steps of a run
            # in one decision (their other events then all carry that one time).
            marks = [e.time_ms for e in events if e.name == "WorkflowTaskStarted"]
            steps += [b - a for a, b in itertools.pairwise(marks)]
        elif workload == "timers":
            started = {e.event_id: e for e in events if e.name == "TimerStarted"}
            for e in events:
                origin = started.get(e.started_event_id or 0) if e.name == "TimerFired" else None
                if origin is not None:
                    lags.append(e.time_ms - (origin.time_ms + (origin.timer_ms or 0.0)))
    figures: dict[str, Any] = {
        "event_gaps_ms_p50": {
            k: _round(percentile(v, 50))
            for k, v in sorted(gaps.items(), key=lambda kv: -len(kv[1]))[:20]
        }
    }
    if workload == "ten-steps":
        per_step = None if latency_p50 is None else round(latency_p50 / w.STEPS, 2)
        figures["per_step_ms"] = {
            **_summary(steps),
            "steps": len(steps),
            "latency_p50_over_steps": per_step,
        }
    elif workload == "timers":
        figures["timer_fire_lag_ms"] = {**_summary(lags), "timers": len(lags)}
    return figures


def end_figures(run: LoadRun, history: Mapping[str, Sequence[HistoryEvent]]) -> dict[str, Any]:
    """A workflow's latency in three parts that add up to it, per run: from the start's
    scheduled time to the engine's ``WorkflowExecutionStarted``, from there to its
    ``WorkflowExecutionCompleted``, and from that to the result in the client (p50 and
    p99, ms; all on this machine's wall clock)."""
    to_start: list[float] = []
    inside: list[float] = []
    to_result: list[float] = []
    for sample in run.samples:
        events = history.get(sample.workflow_id)
        if not events or sample.done is None or sample.error is not None:
            continue
        first, last = events[0], events[-1]
        if first.name == "WorkflowExecutionStarted":
            to_start.append(first.time_ms - (sample.scheduled + run.wall_offset) * 1000)
        if last.name == "WorkflowExecutionCompleted":
            to_result.append((sample.done + run.wall_offset) * 1000 - last.time_ms)
        if first.name == "WorkflowExecutionStarted" and last.name == "WorkflowExecutionCompleted":
            inside.append(last.time_ms - first.time_ms)
    return {
        "scheduled -> WorkflowExecutionStarted": _pair(to_start),
        "WorkflowExecutionStarted -> WorkflowExecutionCompleted": _pair(inside),
        "WorkflowExecutionCompleted -> result": _pair(to_result),
    }


def _pair(values: Sequence[float]) -> dict[str, float | None]:
    return {"p50": _round(percentile(values, 50)), "p99": _round(percentile(values, 99))}


# -- workloads without a client ------------------------------------------------------------


def _produce_starts(settings: Settings, count: int) -> float:
    producer = Producer({**settings.producer_config(), "linger.ms": 5})
    topic = commands_topic(settings)
    started = time.monotonic()
    for i in range(count):
        wid = f"ingest-{i}"
        command = {
            "command_id": new_id(),
            "workflow_id": wid,
            "run_id": None,
            "sent_time_ms": int(time.time() * 1000),
            "body": (
                "cadenza.command.StartWorkflow",
                {
                    "workflow_type": "EchoWorkflow",
                    "task_queue": _QUEUE,
                    "request_id": str(i),
                    "input": [{"metadata": {"encoding": b"json/plain"}, "data": b'"x"'}],
                },
            ),
        }
        value = schemas.encode(schemas.COMMAND, command)
        while True:
            try:
                producer.produce(topic, key=wid.encode(), value=value)
                break
            except BufferError:
                producer.poll(0.1)
    producer.flush()
    return time.monotonic() - started


def _ingest(run: _Run, count: int) -> dict[str, Any]:
    """Produce ``count`` starts, then time the engine taking them (committed offsets/s)."""
    if run.engine is None:
        raise RuntimeError("ingest times an engine it starts itself (not --engine external)")
    produce_seconds = _produce_starts(run.settings, count)
    # The starts are all of the topic so far; what the engine adds later is not counted.
    produced = end_offsets(run.settings)
    if sum(produced) != count:
        raise RuntimeError(
            f"{commands_topic(run.settings)} holds {sum(produced)} records after {count} "
            "starts were produced: ingest needs a fresh namespace (leave --namespace out)"
        )
    run.before = run.snapshot()
    run.engine.start()
    launched = time.monotonic()
    engines = len(run.engine.members)
    # With several engines the rate counts from when all of them hold partitions: the
    # first to start takes them all until the others join.
    admin = AdminClient(run.settings.kafka_config()) if engines > 1 else None
    group_complete = launched if admin is None else None
    first: tuple[float, int] | None = None
    last = (launched, 0)
    deadline = launched + max(120.0, run.options.duration)
    while time.monotonic() < deadline:
        time.sleep(0.25)
        run.engine.check_alive()
        if admin is not None and group_complete is None:
            if engines_assigned(admin, run.settings) == engines:
                group_complete = time.monotonic()
        done = committed_commands(run.settings, produced)
        now = time.monotonic()
        if done and first is None and group_complete is not None:
            first = (now, done)
        if done > last[1]:
            last = (now, done)
        if run.progress is not None:
            run.progress(f"[{now - launched:6.1f}s] accepted {done:7d} / {count}")
        if done >= count:
            break
    accepted = last[1]
    steady = 0.0
    if first is not None and last[0] > first[0]:
        steady = (last[1] - first[1]) / (last[0] - first[0])
    wall = accepted / (last[0] - launched) if last[0] > launched else 0.0
    if steady == 0.0:
        steady = wall  # everything was taken before the second look
    procs = run.processes_json(run.snapshot())
    return {
        "workload": run.options.workload,
        "mode": "batch",
        "namespace": run.settings.namespace,
        "partitions": run.settings.partitions,
        "offered_rate": round(count / produce_seconds, 2),
        "achieved_rate": round(steady, 2),
        "starts_accepted_per_second": round(steady, 2),
        "wall_rate_including_engine_startup": round(wall, 2),
        "engines_all_assigned_after_s": (
            None if group_complete is None else round(group_complete - launched, 2)
        ),
        "completed": accepted,
        "failed": count - accepted,
        "latency_ms": {"p50": None, "p95": None, "p99": None, "max": None},
        "processes": {**procs, **run.pids()},
        "cpu_seconds": {k: (v or {}).get("cpu_seconds") for k, v in procs.items()},
        "peak_rss_mib": {k: (v or {}).get("peak_rss_mib") for k, v in procs.items()},
        "engine_consumer_lag": engine_lag(run.settings),
        **run.engines_json(),
        "not_completed": [] if accepted >= count else [f"{count - accepted} starts not taken"],
    }


def _replay(run: _Run, count: int) -> dict[str, Any]:
    """Ingest ``count`` starts (at least as many history events), then rebuild from history."""
    # A start without a worker writes at least one event (WorkflowExecutionStarted).
    starts = max(1, count)
    report = _ingest(run, starts)
    if run.engine is not None:
        run.engine.stop()
    replay = run_replay(run.settings, run.data_dir / "rebuilt")
    rebuilt = replay.report
    seconds = rebuilt["seconds"]
    report["processes"]["replay"] = {
        "cpu_seconds": round(replay.process_cpu_seconds, 2),
        "peak_rss_mib": round(replay.peak_rss_mib, 1),
    }
    report["cpu_seconds"]["replay"] = round(replay.process_cpu_seconds, 2)
    report["peak_rss_mib"]["replay"] = round(replay.peak_rss_mib, 1)
    report.update(
        {
            "workload": "replay",
            "achieved_rate": round(rebuilt["runs"] / seconds, 2) if seconds else 0.0,
            "completed": rebuilt["runs"],
            "failed": 0,
            "events": rebuilt["events"],
            "replay_seconds": round(seconds, 3),
            "replay_cpu_seconds": round(rebuilt["cpu_seconds"], 3),
            "replay_process_seconds": round(replay.process_seconds, 3),
            "events_per_second": round(rebuilt["events_per_second"], 1),
            "ingest": {
                "starts": starts,
                "starts_accepted_per_second": report["starts_accepted_per_second"],
            },
        }
    )
    return report


# -- entry point ---------------------------------------------------------------------------


def run_bench(
    settings: Settings, options: BenchOptions, *, progress: Progress | None = None
) -> dict[str, Any]:
    """Run ``options.workload`` in ``settings.namespace`` and return the report (JSON-able).

    Creates the namespace's topics, starts the engine as its own process (unless
    ``options.external_engine``), runs the worker and the load in this process,
    and stops what it started. With ``options.temporal`` the same workload runs
    with temporalio against a Temporal server instead (``settings`` is not used).
    """
    if options.workload not in WORKLOADS:
        raise ValueError(f"unknown workload {options.workload!r}: one of {', '.join(WORKLOADS)}")
    before = reference_loop_ms()
    report = _run_bench(settings, options, progress)
    report["reference_loop_ms"] = {"before": before, "after": reference_loop_ms()}
    return report


def _run_bench(
    settings: Settings, options: BenchOptions, progress: Progress | None
) -> dict[str, Any]:
    batch = options.workload in ("ingest", "replay")
    count = options.count if options.count is not None else _BATCH_COUNT
    if not batch and (options.rate is None) == (options.concurrency is None):
        raise ValueError("give exactly one of rate (open loop) or concurrency (closed loop)")
    if options.worker_processes < 0:
        raise ValueError(f"worker_processes must be 0 or more, not {options.worker_processes}")
    if options.worker_processes and (
        batch or options.workload == "cached" or options.eager_start or options.temporal
    ):
        raise ValueError(
            "worker_processes is for Cadenza's workloads driven through the client, "
            "without eager_start (which needs the worker in the client's process)"
        )
    if options.temporal is not None:
        return _run_on_temporal(options, options.temporal, progress)
    admin = TopicAdmin(settings)
    created = admin.create(task_queues=[_QUEUE]).created
    # A namespace this run made is deleted after it: each run leaves ~130 partitions,
    # and a one-node broker runs out of open files after some thousands of them.
    owned = commands_topic(settings) in created and not options.keep_topics
    if options.workload == "cached":
        from ._cached import run_cached

        try:
            return run_cached(settings, options, progress)
        finally:
            if owned:
                _delete_topics(admin, progress)
    run = _Run(settings, options, progress)
    try:
        if options.workload == "ingest":
            return _ingest(run, count)
        if options.workload == "replay":
            return _replay(run, count)
        if run.engine is not None:
            run.engine.start()
        return asyncio.run(_client_workload(run))
    finally:
        if run.engine is not None:
            run.engine.stop()
        if owned:
            _delete_topics(admin, progress)


def _delete_topics(admin: TopicAdmin, progress: Progress | None) -> None:
    try:
        deleted = admin.delete_namespace()
    except TopicAdminError as exc:
        if progress is not None:
            progress(f"could not delete the bench's topics ({exc}): `cadenza topics delete`")
        return
    if progress is not None:
        progress(f"deleted the run's {len(deleted)} topics (--keep-topics keeps them)")


def not_on_temporal(workload: str) -> str:
    """Why ``workload`` does not run on Temporal (it is not in :data:`TEMPORAL_WORKLOADS`)."""
    if workload == "cached":
        why = (
            "'cached' weighs the Python worker's workflow cache; temporalio keeps its "
            "cache in its Rust core, so the figure would not compare like for like"
        )
    else:
        why = f"{workload!r} measures Cadenza's own engine and has no Temporal counterpart"
    return f"{why}; on Temporal: {', '.join(TEMPORAL_WORKLOADS)}"


def _run_on_temporal(
    options: BenchOptions, target: TemporalTarget, progress: Progress | None
) -> dict[str, Any]:
    if options.workload not in TEMPORAL_WORKLOADS:
        raise ValueError(not_on_temporal(options.workload))
    try:
        from . import _temporal
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != "temporalio":
            raise
        raise RuntimeError(
            "running on Temporal needs temporalio and the Temporal CLI: "
            "pip install 'cadenza[bench]'"
        ) from exc
    return _temporal.run_on_temporal(options, target, progress)
