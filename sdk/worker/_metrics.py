"""The worker's built-in metrics: Temporal's names and labels, on the client's runtime.

A worker whose runtime has no metrics exporter gets ``None`` from
:func:`worker_metrics`, and its two halves test that one attribute per task: no
clock is read, nothing is allocated. With an exporter, the metrics of each
workflow or activity type are made once and kept here.

Names (after the runtime's prefix, ``temporal_`` by default) and labels, besides
``namespace`` and ``task_queue`` on every one:

- ``workflow_completed``, ``workflow_failed``, ``workflow_canceled``,
  ``workflow_continue_as_new`` (counters, ``workflow_type``): closing commands
  written by this worker;
- ``workflow_endtoend_latency`` (histogram, ``workflow_type``): from the run's
  start to its closing command;
- ``workflow_task_execution_latency``, ``workflow_task_schedule_to_start_latency``
  (histograms, ``workflow_type``): a live workflow task, from its start here to its
  completion written; from its scheduling (engine clock) to its start here;
- ``workflow_task_execution_failed`` (counter, ``workflow_type``,
  ``failure_reason``): workflow tasks answered failed (``NonDeterminismError`` or
  ``WorkflowError``);
- ``sticky_cache_hit``, ``sticky_cache_miss`` (counters), ``sticky_cache_size``
  (gauge): workflow tasks run on a cached run; tasks sent back for the whole
  history; runs cached;
- ``activity_execution_latency`` (histogram), ``activity_execution_failed``,
  ``activity_execution_cancelled`` (counters), ``activity_schedule_to_start_latency``,
  ``activity_succeed_endtoend_latency`` (histograms), all with ``activity_type``
  and ``workflow_type``;
- ``worker_task_slots_available``, ``worker_task_slots_used`` (gauges,
  ``worker_type`` = ``WorkflowWorker`` or ``ActivityWorker``), ``worker_start``
  (counter).

Gauges are sampled when Prometheus scrapes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from ..common._metric import (
    MetricCounter,
    MetricHistogramTimedelta,
    MetricMeter,
)
from ..runtime import Runtime
from ..workflow._history import (
    CANCEL_WORKFLOW_EXECUTION,
    COMPLETE_WORKFLOW_EXECUTION,
    CONTINUE_AS_NEW_WORKFLOW_EXECUTION,
    FAIL_WORKFLOW_EXECUTION,
)
from ..workflow._runtime import NONDETERMINISM_CAUSE

NONDETERMINISM_REASON = "NonDeterminismError"
WORKFLOW_REASON = "WorkflowError"


def runtime_of(client: Any) -> Runtime:
    """The runtime of ``client`` (any object: one without ``runtime`` gets the default)."""
    runtime = getattr(client, "runtime", None)
    return runtime if isinstance(runtime, Runtime) else Runtime.default()


def worker_metrics(client: Any, task_queue: str) -> WorkerMetrics | None:
    """The built-in metrics of a worker of ``task_queue`` on ``client``; None when its
    runtime exports no metrics."""
    runtime = runtime_of(client)
    if runtime.metric_meter is MetricMeter.noop:
        return None
    return WorkerMetrics(runtime, str(client.namespace), task_queue)


def _millis_recorder(histogram: MetricHistogramTimedelta) -> Callable[[float], None]:
    """Records a duration given in milliseconds (a negative one, between two hosts'
    clocks, as 0): the Prometheus histogram's own way, which makes no ``timedelta``."""
    fast: Callable[[float], None] | None = getattr(histogram, "_record_millis", None)
    if fast is not None:
        return fast
    return lambda millis: histogram.record(timedelta(milliseconds=max(millis, 0.0)))


def _duration(meter: MetricMeter, name: str, description: str) -> Callable[[float], None]:
    return _millis_recorder(meter.create_histogram_timedelta(name, description, "duration"))


class WorkflowTypeMetrics:
    """The metrics of one workflow type."""

    def __init__(self, meter: MetricMeter, prefix: str) -> None:
        def counter(name: str, description: str) -> MetricCounter:
            return meter.create_counter(prefix + name, description)

        self.completed = counter("workflow_completed", "Count of successfully completed workflows")
        self.failed = counter("workflow_failed", "Count of failed workflows")
        self.canceled = counter("workflow_canceled", "Count of canceled workflows")
        self.continued_as_new = counter(
            "workflow_continue_as_new", "Count of continued-as-new workflows"
        )
        self._task_failed = counter(
            "workflow_task_execution_failed", "Count of workflow task execution failures"
        )
        self._endtoend_latency = _duration(
            meter,
            prefix + "workflow_endtoend_latency",
            "Histogram of total workflow execution latencies",
        )
        self._task_execution_latency = _duration(
            meter,
            prefix + "workflow_task_execution_latency",
            "Histogram of workflow task execution (not replay) latencies",
        )
        self._task_schedule_to_start_latency = _duration(
            meter,
            prefix + "workflow_task_schedule_to_start_latency",
            "Histogram of workflow task schedule-to-start latencies",
        )
        self._closing = {
            COMPLETE_WORKFLOW_EXECUTION: self.completed,
            FAIL_WORKFLOW_EXECUTION: self.failed,
            CANCEL_WORKFLOW_EXECUTION: self.canceled,
            CONTINUE_AS_NEW_WORKFLOW_EXECUTION: self.continued_as_new,
        }

    def task_started(self, scheduled_time_ms: int | None) -> float:
        """A workflow task starts here; the monotonic time to pass to :meth:`task_done`."""
        if scheduled_time_ms:
            self._task_schedule_to_start_latency(time.time() * 1000 - scheduled_time_ms)
        return time.monotonic()

    def task_done(self, started: float, commands: list[Any], run_started_ms: int) -> None:
        """A live workflow task's completion, with ``commands``, was written."""
        self._task_execution_latency((time.monotonic() - started) * 1000)
        if commands:
            closing = self._closing.get(commands[-1][0])
            if closing is not None:
                closing.add(1)
                self._endtoend_latency(time.time() * 1000 - run_started_ms)

    def task_failed(self, cause: str) -> None:
        """A workflow task was answered failed for ``cause``."""
        reason = NONDETERMINISM_REASON if cause == NONDETERMINISM_CAUSE else WORKFLOW_REASON
        self._task_failed.add(1, {"failure_reason": reason})


class ActivityTypeMetrics:
    """The metrics of one activity type (of one workflow type)."""

    def __init__(self, meter: MetricMeter, prefix: str) -> None:
        self.failed = meter.create_counter(
            prefix + "activity_execution_failed", "Count of activity task execution failures"
        )
        self.cancelled = meter.create_counter(
            prefix + "activity_execution_cancelled", "Count of activity task executions cancelled"
        )
        self._execution_latency = _duration(
            meter,
            prefix + "activity_execution_latency",
            "Histogram of activity execution latencies",
        )
        self._schedule_to_start_latency = _duration(
            meter,
            prefix + "activity_schedule_to_start_latency",
            "Histogram of activity schedule-to-start latencies",
        )
        self._succeed_endtoend_latency = _duration(
            meter,
            prefix + "activity_succeed_endtoend_latency",
            "Histogram of activity execution latencies for successful activities",
        )

    def started(self, current_attempt_scheduled_time_ms: int) -> float:
        """An attempt starts here; the monotonic time to pass to :meth:`done`."""
        self._schedule_to_start_latency(time.time() * 1000 - current_attempt_scheduled_time_ms)
        return time.monotonic()

    def done(self, started: float, outcome: str, scheduled_time_ms: int) -> None:
        """The attempt's answer (``completed``, ``failed``, ``benign`` failure or
        ``canceled``) was written."""
        self._execution_latency((time.monotonic() - started) * 1000)
        if outcome == "completed":
            self._succeed_endtoend_latency(time.time() * 1000 - scheduled_time_ms)
        elif outcome == "failed":
            self.failed.add(1)
        elif outcome == "canceled":
            self.cancelled.add(1)


class WorkerMetrics:
    """The built-in metrics of one worker (its task queue's labels on each)."""

    def __init__(self, runtime: Runtime, namespace: str, task_queue: str) -> None:
        self._runtime = runtime
        self._prefix = prefix = runtime._metric_prefix
        self._meter = meter = runtime.metric_meter.with_additional_attributes(
            {"namespace": namespace, "task_queue": task_queue}
        )
        self._workflow_types: dict[str, WorkflowTypeMetrics] = {}
        self._activity_types: dict[tuple[str, str], ActivityTypeMetrics] = {}
        self.sticky_cache_hit = meter.create_counter(
            prefix + "sticky_cache_hit",
            "Count of times the workflow cache was used for a new workflow task",
        )
        self.sticky_cache_miss = meter.create_counter(
            prefix + "sticky_cache_miss",
            "Count of times the workflow cache was missing a workflow for a sticky task",
        )
        self._sticky_cache_size = meter.create_gauge(
            prefix + "sticky_cache_size", "Current number of cached workflows"
        )
        self._slots_available = meter.create_gauge(
            prefix + "worker_task_slots_available",
            "Current number of available slots per task type",
        )
        self._slots_used = meter.create_gauge(
            prefix + "worker_task_slots_used", "Current number of used slots per task type"
        )
        self._worker_start = meter.create_counter(
            prefix + "worker_start", "Count of the number of initialized workers"
        )
        self._samplers: list[Callable[[], None]] = []

    def workflow_type(self, workflow_type: str) -> WorkflowTypeMetrics:
        """The metrics of ``workflow_type`` (made on first use)."""
        found = self._workflow_types.get(workflow_type)
        if found is None:
            meter = self._meter.with_additional_attributes({"workflow_type": workflow_type})
            found = self._workflow_types[workflow_type] = WorkflowTypeMetrics(meter, self._prefix)
        return found

    def activity_type(self, activity_type: str, workflow_type: str) -> ActivityTypeMetrics:
        """The metrics of ``activity_type`` run for ``workflow_type`` (made on first use)."""
        key = (activity_type, workflow_type)
        found = self._activity_types.get(key)
        if found is None:
            meter = self._meter.with_additional_attributes(
                {"activity_type": activity_type, "workflow_type": workflow_type}
            )
            found = self._activity_types[key] = ActivityTypeMetrics(meter, self._prefix)
        return found

    def started(self) -> None:
        """The worker started."""
        self._worker_start.add(1)

    def sample_slots(self, worker_type: str, capacity: int, used: Callable[[], int]) -> None:
        """Report the slots of ``worker_type`` on each scrape: ``used()`` of ``capacity``."""
        attributes = {"worker_type": worker_type}
        available = self._slots_available.with_additional_attributes(attributes)
        in_use = self._slots_used.with_additional_attributes(attributes)

        def sample() -> None:
            taken = min(max(used(), 0), capacity)
            available.set(capacity - taken)
            in_use.set(taken)

        self._sample(sample)

    def sample_cache_size(self, size: Callable[[], int]) -> None:
        """Report the workflow cache's size on each scrape."""
        self._sample(lambda: self._sticky_cache_size.set(size()))

    def _sample(self, sample: Callable[[], None]) -> None:
        self._samplers.append(sample)
        self._runtime._add_collector(sample)

    def close(self) -> None:
        """Stop sampling (the worker shut down); what was recorded stays."""
        for sample in self._samplers:
            self._runtime._remove_collector(sample)
        self._samplers.clear()
