"""The visibility processor's Prometheus metrics, counted in its loop and rendered on scrape.

A visibility processor started by ``cadenza processors run`` serves these to its
engine, which appends them to its own ``/metrics`` page (so one scrape target
covers both processes); one started alone serves them with ``--metrics
HOST:PORT``.

Example:
    >>> m = VisibilityMetrics("ns")
    >>> m.folded(events=10, skipped=1)
    >>> m.request("list", "ok", 0.002)
    >>> 'cadenza_visibility_requests_total{namespace="ns",kind="list",outcome="ok"} 1' in (
    ...     m.render())
    True
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .._exposition import Histogram, escape, family, process_families

REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""Upper bounds (seconds) of the request-duration histogram: a page of 50 runs is
read in about a millisecond; a count over a large store takes longer."""


class VisibilityMetrics:
    """Counters of one visibility process, labelled with its namespace on render.

    Attributes:
        lag: Called on render: records of ``history`` not folded yet (``None``
            before the partitions are assigned).
    """

    def __init__(self, namespace: str = "") -> None:
        self.namespace = namespace
        self.events = 0
        self.skipped = 0
        self.dead_letters = 0
        self.requests: dict[tuple[str, str], int] = {}
        self.request_seconds: dict[str, Histogram] = {}
        self.lag: Callable[[], int | None] = lambda: None

    def folded(self, *, events: int, skipped: int) -> None:
        """One batch of ``history`` folded into the store."""
        self.events += events
        self.skipped += skipped

    def request(self, kind: str, outcome: str, seconds: float | None) -> None:
        """One request answered (``seconds`` to answer it), or skipped (``None``)."""
        self.requests[kind, outcome] = self.requests.get((kind, outcome), 0) + 1
        if seconds is not None:
            histogram = self.request_seconds.get(kind)
            if histogram is None:
                histogram = self.request_seconds[kind] = Histogram(REQUEST_BUCKETS)
            histogram.observe(seconds)

    def render(self, *, process_prefix: str = "process") -> str:
        """The text exposition format; ``process_prefix`` names the ``process_*`` families."""
        ns = f'namespace="{escape(self.namespace)}"'
        lag = self.lag()
        lines: list[str] = []
        lines += family(
            "cadenza_visibility_events_folded_total",
            "counter",
            "History events folded into the visibility store.",
            [f"cadenza_visibility_events_folded_total{{{ns}}} {self.events}"],
        )
        lines += family(
            "cadenza_visibility_records_skipped_total",
            "counter",
            "Records of <ns>.history that are not history events (left on the topic, logged).",
            [f"cadenza_visibility_records_skipped_total{{{ns}}} {self.skipped}"],
        )
        lines += family(
            "cadenza_visibility_history_lag_records",
            "gauge",
            "Records of <ns>.history written and not folded yet (list and count lag them).",
            [] if lag is None else [f"cadenza_visibility_history_lag_records{{{ns}}} {lag}"],
        )
        lines += family(
            "cadenza_visibility_requests_total",
            "counter",
            "List and count requests, by how they were answered (ok, an error code, or "
            "stale: skipped, older than its client waits).",
            [
                f'cadenza_visibility_requests_total{{{ns},kind="{escape(kind)}",'
                f'outcome="{escape(outcome)}"}} {n}'
                for (kind, outcome), n in sorted(list(self.requests.items()))
            ],
        )
        samples: list[str] = []
        for kind, histogram in sorted(list(self.request_seconds.items())):
            samples += histogram.samples(
                "cadenza_visibility_request_seconds", f'{ns},kind="{escape(kind)}"'
            )
        lines += family(
            "cadenza_visibility_request_seconds",
            "histogram",
            "Time to answer a list or count request, from reading it to sending the reply.",
            samples,
        )
        lines += family(
            "cadenza_visibility_dead_letters_total",
            "counter",
            "Requests sent to <ns>.dead-letters (not a visibility request).",
            [f"cadenza_visibility_dead_letters_total{{{ns}}} {self.dead_letters}"],
        )
        lines += process_families(process_prefix)
        return "\n".join(lines) + "\n"


class ChildMetrics:
    """The metrics of a visibility child, read from the pipe it reports its port on.

    The engine that started the child appends :meth:`render` to its own page.
    ``cadenza_visibility_up`` says whether the child answered.

    Args:
        port_fd: The read end of the pipe given to the child (``--metrics-port-fd``).
        namespace: For the ``up`` sample's label.
        timeout: Seconds to wait for the child's page.
    """

    def __init__(self, port_fd: int, namespace: str, *, timeout: float = 2.0) -> None:
        os.set_blocking(port_fd, False)
        self._pipe = os.fdopen(port_fd, "rb", buffering=0)
        self._buffer = b""
        self._port: int | None = None
        self.namespace = namespace
        self.timeout = timeout

    def render(self) -> str:
        text = self._fetch()
        up = family(
            "cadenza_visibility_up",
            "gauge",
            "1 when the visibility process beside this engine answered this scrape.",
            [f'cadenza_visibility_up{{namespace="{escape(self.namespace)}"}} {int(bool(text))}'],
        )
        return (text or "") + "\n".join(up) + "\n"

    def close(self) -> None:
        self._pipe.close()

    def _fetch(self) -> str | None:
        port = self._read_port()
        if port is None:
            return None
        import urllib.request  # here: an engine that serves no page never loads it

        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/metrics", timeout=self.timeout
            ) as answer:
                return str(answer.read().decode())
        except OSError:  # the child is starting, stopping, or gone: up is 0
            return None

    def _read_port(self) -> int | None:
        if self._port is None and not self._pipe.closed:
            try:
                chunk = self._pipe.read()
            except BlockingIOError:
                chunk = None
            if chunk:
                self._buffer += chunk
            if self._buffer.endswith(b"\n"):
                self._port = int(self._buffer)
        return self._port
