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

from .._exposition import Histogram, escape, family, process_families

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
        self.transaction_seconds = Histogram(TRANSACTION_BUCKETS)

    def transaction(self, *, commands: int, timers: int, seconds: float) -> None:
        """One committed engine transaction."""
        self.transactions += 1
        self.commands += commands
        self.timers_fired += timers
        self.transaction_seconds.observe(seconds)

    def event(self, event_type: str) -> None:
        """One history event written, by its type (the full Avro name, or the short one)."""
        self.events[event_type] = self.events.get(event_type, 0) + 1

    def render(self) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        ns = f'namespace="{escape(self.namespace)}"'
        events: dict[str, int] = {}
        for name, count in list(self.events.items()):  # the engine may add a type meanwhile
            short = name.rsplit(".", 1)[-1]
            events[short] = events.get(short, 0) + count
        lines: list[str] = []
        lines += family(
            "cadenza_engine_commands_total",
            "counter",
            "Commands taken from <ns>.commands and committed.",
            [f"cadenza_engine_commands_total{{{ns}}} {self.commands}"],
        )
        lines += family(
            "cadenza_engine_transactions_total",
            "counter",
            "Kafka transactions the engine committed.",
            [f"cadenza_engine_transactions_total{{{ns}}} {self.transactions}"],
        )
        lines += family(
            "cadenza_engine_transaction_seconds",
            "histogram",
            "Time from taking a batch of commands to its transaction's commit.",
            self.transaction_seconds.samples("cadenza_engine_transaction_seconds", ns),
        )
        lines += family(
            "cadenza_engine_timers_fired_total",
            "counter",
            "Timers, timeouts and retries that came due and fired.",
            [f"cadenza_engine_timers_fired_total{{{ns}}} {self.timers_fired}"],
        )
        lines += family(
            "cadenza_engine_dead_letters_total",
            "counter",
            "Records sent to <ns>.dead-letters (malformed, or an engine error).",
            [f"cadenza_engine_dead_letters_total{{{ns}}} {self.dead_letters}"],
        )
        lines += family(
            "cadenza_engine_partitions_assigned",
            "gauge",
            "Partitions of <ns>.commands this engine owns now.",
            [f"cadenza_engine_partitions_assigned{{{ns}}} {self.partitions}"],
        )
        lines += family(
            "cadenza_history_events_total",
            "counter",
            "History events written, by type.",
            [
                f'cadenza_history_events_total{{{ns},type="{escape(t)}"}} {n}'
                for t, n in sorted(events.items())
            ],
        )
        lines += family(
            "cadenza_workflows_started_total",
            "counter",
            "Workflow runs started (WorkflowExecutionStarted events).",
            [
                f"cadenza_workflows_started_total{{{ns}}} "
                f"{events.get('WorkflowExecutionStarted', 0)}"
            ],
        )
        lines += family(
            "cadenza_workflows_closed_total",
            "counter",
            "Workflow runs closed, by how they closed.",
            [
                f'cadenza_workflows_closed_total{{{ns},status="{status}"}} {events.get(t, 0)}'
                for t, status in _CLOSED.items()
            ],
        )
        lines += process_families()
        return "\n".join(lines) + "\n"
