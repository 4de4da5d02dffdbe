"""The engine's Prometheus metrics: a few counters kept per transaction, rendered on scrape.

The engine's loop only adds to plain ints and dicts (one addition per
transaction, one per history event); all formatting happens in
:meth:`EngineMetrics.render`, on the HTTP thread, when Prometheus scrapes
``/metrics``. Consumer lag is left to the usual Kafka exporters: the engine
commits its group's offsets in every transaction, so they read it from the
broker like any other group's.

Example:
    >>> m = EngineMetrics()
    >>> m.transaction(commands=3, timers=1, seconds=0.004)
    >>> m.event("cadenza.history.WorkflowExecutionCompleted")
    >>> 'cadenza_engine_commands_total{namespace=""} 3' in m.render()
    True
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterable

TRANSACTION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""Upper bounds (seconds) of the transaction-duration histogram: a light-load step
is about 4 ms here, a busy one tens of milliseconds (BENCHMARKS.md)."""

_CLOSED = {
    "WorkflowExecutionCompleted": "COMPLETED",
    "WorkflowExecutionFailed": "FAILED",
    "WorkflowExecutionCanceled": "CANCELED",
    "WorkflowExecutionTerminated": "TERMINATED",
    "WorkflowExecutionContinuedAsNew": "CONTINUED_AS_NEW",
    "WorkflowExecutionTimedOut": "TIMED_OUT",
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(name: str, kind: str, doc: str, samples: Iterable[str]) -> list[str]:
    return [f"# HELP {name} {doc}", f"# TYPE {name} {kind}", *samples]


class EngineMetrics:
    """Counters of one engine process, labelled with its namespace on render."""

    def __init__(self, namespace: str = "") -> None:
        self.namespace = namespace
        self.commands = 0
        self.transactions = 0
        self.timers_fired = 0
        self.dead_letters = 0
        self.partitions = 0
        self.events: dict[str, int] = {}
        self._bucket_counts = [0] * (len(TRANSACTION_BUCKETS) + 1)
        self._seconds_sum = 0.0

    def transaction(self, *, commands: int, timers: int, seconds: float) -> None:
        """One committed engine transaction."""
        self.transactions += 1
        self.commands += commands
        self.timers_fired += timers
        self._seconds_sum += seconds
        self._bucket_counts[bisect.bisect_left(TRANSACTION_BUCKETS, seconds)] += 1

    def event(self, event_type: str) -> None:
        """One history event written, by its type (the full Avro name, or the short one)."""
        self.events[event_type] = self.events.get(event_type, 0) + 1

    def render(self) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        ns = f'namespace="{_escape(self.namespace)}"'
        events: dict[str, int] = {}
        for name, count in list(self.events.items()):  # the engine may add a type meanwhile
            short = name.rsplit(".", 1)[-1]
            events[short] = events.get(short, 0) + count
        lines: list[str] = []
        lines += _family(
            "cadenza_engine_commands_total",
            "counter",
            "Commands taken from <ns>.commands and committed.",
            [f"cadenza_engine_commands_total{{{ns}}} {self.commands}"],
        )
        lines += _family(
            "cadenza_engine_transactions_total",
            "counter",
            "Kafka transactions the engine committed.",
            [f"cadenza_engine_transactions_total{{{ns}}} {self.transactions}"],
        )
        cumulative = 0
        buckets = []
        for bound, count in zip(
            (*TRANSACTION_BUCKETS, float("inf")), self._bucket_counts, strict=True
        ):
            cumulative += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            buckets.append(
                f'cadenza_engine_transaction_seconds_bucket{{{ns},le="{le}"}} {cumulative}'
            )
        buckets.append(f"cadenza_engine_transaction_seconds_sum{{{ns}}} {self._seconds_sum!r}")
        buckets.append(f"cadenza_engine_transaction_seconds_count{{{ns}}} {cumulative}")
        lines += _family(
            "cadenza_engine_transaction_seconds",
            "histogram",
            "Time from taking a batch of commands to its transaction's commit.",
            buckets,
        )
        lines += _family(
            "cadenza_engine_timers_fired_total",
            "counter",
            "Timers, timeouts and retries that came due and fired.",
            [f"cadenza_engine_timers_fired_total{{{ns}}} {self.timers_fired}"],
        )
        lines += _family(
            "cadenza_engine_dead_letters_total",
            "counter",
            "Records sent to <ns>.dead-letters (malformed, or an engine error).",
            [f"cadenza_engine_dead_letters_total{{{ns}}} {self.dead_letters}"],
        )
        lines += _family(
            "cadenza_engine_partitions_assigned",
            "gauge",
            "Partitions of <ns>.commands this engine owns now.",
            [f"cadenza_engine_partitions_assigned{{{ns}}} {self.partitions}"],
        )
        lines += _family(
            "cadenza_history_events_total",
            "counter",
            "History events written, by type.",
            [
                f'cadenza_history_events_total{{{ns},type="{_escape(t)}"}} {n}'
                for t, n in sorted(events.items())
            ],
        )
        lines += _family(
            "cadenza_workflows_started_total",
            "counter",
            "Workflow runs started (WorkflowExecutionStarted events).",
            [
                f"cadenza_workflows_started_total{{{ns}}} "
                f"{events.get('WorkflowExecutionStarted', 0)}"
            ],
        )
        lines += _family(
            "cadenza_workflows_closed_total",
            "counter",
            "Workflow runs closed, by how they closed.",
            [
                f'cadenza_workflows_closed_total{{{ns},status="{status}"}} {events.get(t, 0)}'
                for t, status in _CLOSED.items()
            ],
        )
        lines += _process_families()
        return "\n".join(lines) + "\n"


def _process_families() -> list[str]:
    """The standard ``process_*`` metrics of the Prometheus client libraries (Linux)."""
    times = os.times()
    lines = _family(
        "process_cpu_seconds_total",
        "counter",
        "User and system CPU time of this process.",
        [f"process_cpu_seconds_total {times.user + times.system!r}"],
    )
    try:
        with open("/proc/self/statm") as statm:
            resident_pages = int(statm.read().split()[1])
        with open("/proc/self/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/stat") as proc_stat:
            boot = next(int(line.split()[1]) for line in proc_stat if line.startswith("btime "))
        start = boot + int(fields[19]) / ticks
    except (OSError, ValueError, StopIteration, IndexError):
        return lines
    lines += _family(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        [f"process_resident_memory_bytes {resident_pages * os.sysconf('SC_PAGE_SIZE')}"],
    )
    lines += _family(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since the Unix epoch, in seconds.",
        [f"process_start_time_seconds {start!r}"],
    )
    return lines
