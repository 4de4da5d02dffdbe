"""The Prometheus exporter of a :class:`~cadenza.runtime.Runtime`: a meter, its registry,
and ``/metrics`` served from a daemon thread.

Recording a value takes a lock and adds to a number; formatting happens only when
Prometheus scrapes (text format 0.0.4). Series appear once first recorded.

Example:
    >>> registry = _Registry(_Options())
    >>> meter = _PrometheusMeter(registry, {"namespace": "orders"})
    >>> meter.create_counter("charged", "Cards charged").add(2, {"bank": "acme"})
    >>> print(registry.render(), end="")
    # HELP charged Cards charged
    # TYPE charged counter
    charged{bank="acme",namespace="orders"} 2
"""

from __future__ import annotations

import bisect
import logging
import re
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from ..common._metric import (
    MetricAttributes,
    MetricCounter,
    MetricGauge,
    MetricGaugeFloat,
    MetricHistogram,
    MetricHistogramFloat,
    MetricHistogramTimedelta,
    MetricMeter,
    NamedMetric,
)

_log = logging.getLogger("cadenza.runtime")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""What ``/metrics`` answers with: the Prometheus text exposition format."""

# Temporal Core's default buckets (milliseconds), by metric name without the prefix.
_WORKFLOW_ENDTOEND_BUCKETS = (
    100.0,
    500.0,
    1_000.0,
    1_500.0,
    2_000.0,
    5_000.0,
    10_000.0,
    30_000.0,
    60_000.0,
    120_000.0,
    300_000.0,
    600_000.0,
    1_800_000.0,
    3_600_000.0,
    30_600_000.0,
    86_400_000.0,
)
_WORKFLOW_TASK_BUCKETS = (1.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1_000.0)
_ACTIVITY_EXECUTION_BUCKETS = (50.0, 100.0, 500.0, 1_000.0, 5_000.0, 10_000.0, 60_000.0)
_SCHEDULE_TO_START_BUCKETS = (100.0, 500.0, 1_000.0, 5_000.0, 10_000.0, 100_000.0, 1_000_000.0)
DEFAULT_BUCKETS = (50.0, 100.0, 500.0, 1_000.0, 2_500.0, 10_000.0)
"""Bucket bounds of a histogram with no default of its own (in milliseconds for durations)."""

_BUCKETS_BY_NAME: Mapping[str, tuple[float, ...]] = {
    "workflow_endtoend_latency": _WORKFLOW_ENDTOEND_BUCKETS,
    "workflow_task_execution_latency": _WORKFLOW_TASK_BUCKETS,
    "workflow_task_replay_latency": _WORKFLOW_TASK_BUCKETS,
    "activity_execution_latency": _ACTIVITY_EXECUTION_BUCKETS,
    "workflow_task_schedule_to_start_latency": _SCHEDULE_TO_START_BUCKETS,
    "activity_schedule_to_start_latency": _SCHEDULE_TO_START_BUCKETS,
}


def default_buckets(name: str, *, prefix: str, seconds: bool) -> tuple[float, ...]:
    """Temporal Core's default bucket bounds for the histogram ``name``: by its name
    without ``prefix``, in milliseconds, or in seconds when ``seconds``.

    Example:
        >>> default_buckets("temporal_workflow_task_execution_latency", prefix="temporal_",
        ...                 seconds=True)[:3]
        (0.001, 0.01, 0.02)
    """
    bounds = _BUCKETS_BY_NAME.get(name.removeprefix(prefix), DEFAULT_BUCKETS)
    return tuple(b / 1000 for b in bounds) if seconds else bounds


@dataclass(frozen=True)
class _Options:
    """What the registry takes from ``PrometheusConfig`` and ``TelemetryConfig``."""

    counters_total_suffix: bool = False
    unit_suffix: bool = False
    durations_as_seconds: bool = False
    histogram_bucket_overrides: Mapping[str, Sequence[float]] = field(default_factory=dict)
    prefix: str = "temporal_"


# -- names, labels, values -------------------------------------------------------------------

_INVALID_NAME = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]")
_UNIT_NAMES = {"ms": "milliseconds", "s": "seconds"}

LabelKey = tuple[tuple[str, str], ...]
"""A series' labels: (name, rendered value) pairs sorted by name."""


def _metric_name(name: str) -> str:
    cleaned = _INVALID_NAME.sub("_", name) or "_"
    return "_" + cleaned if cleaned[0].isdigit() else cleaned


def _label_name(name: str) -> str:
    cleaned = _INVALID_LABEL.sub("_", name) or "_"
    return "_" + cleaned if cleaned[0].isdigit() else cleaned


def _label_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value)
    raise TypeError(
        f"Metric attribute values must be str, int, float or bool, not {type(value).__name__}"
    )


def _labels(attributes: MetricAttributes) -> dict[str, str]:
    return {_label_name(k): _label_value(v) for k, v in attributes.items()}


def _key(labels: Mapping[str, str]) -> LabelKey:
    return tuple(sorted(labels.items()))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _check(value: float) -> None:
    if value < 0:
        raise ValueError(f"Metric value must be non-negative, not {value}")


# -- the registry ----------------------------------------------------------------------------


class _Series:
    """One labelled series: a value (counter, gauge) or bucket counts (histogram)."""

    __slots__ = ("counts", "sum", "value")

    def __init__(self, buckets: int) -> None:
        self.value: float = 0
        self.sum: float = 0
        self.counts = [0] * (buckets + 1) if buckets else []


class _Family:
    """A metric name: its type, help, bucket bounds and series."""

    def __init__(
        self, name: str, kind: str, description: str | None, bounds: tuple[float, ...]
    ) -> None:
        self.name = name
        self.kind = kind
        self.description = description
        self.bounds = bounds
        self.series: dict[LabelKey, _Series] = {}


class _Registry:
    """The metrics of one runtime, rendered on scrape."""

    def __init__(self, options: _Options) -> None:
        self.options = options
        self.lock = threading.Lock()
        self._families: dict[str, _Family] = {}
        self._collectors: list[Callable[[], None]] = []

    def family(
        self, name: str, kind: str, description: str | None, unit: str | None, *, duration: bool
    ) -> _Family:
        """The family a new metric records into (made on first use).

        Raises:
            ValueError: ``name`` is already a metric of another type.
        """
        options = self.options
        exported = _metric_name(name)
        if options.unit_suffix and unit:
            suffix = _metric_name(_UNIT_NAMES.get(unit, unit))
            if not exported.endswith("_" + suffix):
                exported += "_" + suffix
        if kind == "counter" and options.counters_total_suffix and not exported.endswith("_total"):
            exported += "_total"
        with self.lock:
            found = self._families.get(exported)
            if found is not None:
                if found.kind != kind:
                    raise ValueError(f"Metric {exported} is already a {found.kind}, not a {kind}")
                return found
            bounds: tuple[float, ...] = ()
            if kind == "histogram":
                override = options.histogram_bucket_overrides.get(
                    exported
                ) or options.histogram_bucket_overrides.get(name)
                if override is not None:
                    bounds = tuple(sorted(float(b) for b in override))
                else:
                    seconds = duration and options.durations_as_seconds
                    bounds = default_buckets(name, prefix=options.prefix, seconds=seconds)
            created = self._families[exported] = _Family(exported, kind, description, bounds)
            return created

    def series(self, family: _Family, key: LabelKey) -> _Series:
        """The series of ``family`` with labels ``key`` (made on first use)."""
        with self.lock:
            found = family.series.get(key)
            if found is None:
                found = family.series[key] = _Series(len(family.bounds))
            return found

    def add_collector(self, collect: Callable[[], None]) -> None:
        """Call ``collect`` before each render (to set gauges sampled on scrape)."""
        with self.lock:
            self._collectors.append(collect)

    def remove_collector(self, collect: Callable[[], None]) -> None:
        """Stop calling ``collect``."""
        with self.lock:
            if collect in self._collectors:
                self._collectors.remove(collect)

    def render(self) -> str:
        """Every family with a series, in the Prometheus text format (version 0.0.4)."""
        with self.lock:
            collectors = list(self._collectors)
        for collect in collectors:
            try:
                collect()
            except Exception:
                _log.exception("A metrics collector failed")
        lines: list[str] = []
        with self.lock:
            for family in sorted(self._families.values(), key=lambda f: f.name):
                if family.series:
                    lines += _render_family(family)
        return "".join(line + "\n" for line in lines)


def _render_family(family: _Family) -> list[str]:
    name = family.name
    lines = []
    if family.description:
        help_text = family.description.replace("\\", "\\\\").replace("\n", "\\n")
        lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {family.kind}")
    for key, series in sorted(family.series.items()):
        labels = ",".join(f'{k}="{_escape(v)}"' for k, v in key)
        if family.kind != "histogram":
            lines.append(f"{name}{{{labels}}} {_number(series.value)}")
            continue
        sep = "," if labels else ""
        cumulative = 0
        for bound, count in zip((*family.bounds, float("inf")), series.counts, strict=True):
            cumulative += count
            lines.append(f'{name}_bucket{{{labels}{sep}le="{_number(bound)}"}} {cumulative}')
        lines.append(f"{name}_sum{{{labels}}} {_number(series.sum)}")
        lines.append(f"{name}_count{{{labels}}} {cumulative}")
    return lines


# -- the meter and its metrics ---------------------------------------------------------------


class _PrometheusMeter(MetricMeter):
    """A meter recording into a :class:`_Registry`."""

    def __init__(self, registry: _Registry, attributes: MetricAttributes) -> None:
        self._registry = registry
        self._labels = _labels(attributes)

    def create_counter(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricCounter:
        family = self._registry.family(name, "counter", description, unit, duration=False)
        return _Counter(self._registry, family, name, description, unit, self._labels)

    def create_histogram(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricHistogram:
        family = self._registry.family(name, "histogram", description, unit, duration=False)
        return _Histogram(self._registry, family, name, description, unit, self._labels)

    def create_histogram_float(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricHistogramFloat:
        family = self._registry.family(name, "histogram", description, unit, duration=False)
        return _HistogramFloat(self._registry, family, name, description, unit, self._labels)

    def create_histogram_timedelta(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricHistogramTimedelta:
        seconds = self._registry.options.durations_as_seconds
        if unit == "duration":
            unit = "s" if seconds else "ms"
        family = self._registry.family(name, "histogram", description, unit, duration=True)
        metric = _HistogramTimedelta(self._registry, family, name, description, unit, self._labels)
        metric._seconds = seconds
        return metric

    def create_gauge(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricGauge:
        family = self._registry.family(name, "gauge", description, unit, duration=False)
        return _Gauge(self._registry, family, name, description, unit, self._labels)

    def create_gauge_float(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricGaugeFloat:
        family = self._registry.family(name, "gauge", description, unit, duration=False)
        return _GaugeFloat(self._registry, family, name, description, unit, self._labels)

    def with_additional_attributes(self, additional_attributes: MetricAttributes) -> MetricMeter:
        return _PrometheusMeter(self._registry, {**self._labels, **_labels(additional_attributes)})


class _Metric(NamedMetric):
    """One metric with its labels; the series of those labels is found on first record."""

    def __init__(
        self,
        registry: _Registry,
        family: _Family,
        name: str,
        description: str | None,
        unit: str | None,
        labels: dict[str, str],
    ) -> None:
        super().__init__(name, description, unit)
        self._registry = registry
        self._family = family
        self._labels = labels
        self._own: _Series | None = None

    def with_additional_attributes(self, additional_attributes: MetricAttributes) -> Self:
        copy = type(self).__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy._labels = {**self._labels, **_labels(additional_attributes)}
        copy._own = None
        return copy

    def _series(self, additional: MetricAttributes | None) -> _Series:
        if additional:
            key = _key({**self._labels, **_labels(additional)})
            return self._registry.series(self._family, key)
        own = self._own
        if own is None:
            own = self._own = self._registry.series(self._family, _key(self._labels))
        return own

    def _add(self, value: float, additional: MetricAttributes | None) -> None:
        _check(value)
        series = self._series(additional)
        with self._registry.lock:
            series.value += value

    def _set(self, value: float, additional: MetricAttributes | None) -> None:
        _check(value)
        self._series(additional).value = value

    def _record(self, value: float, additional: MetricAttributes | None) -> None:
        _check(value)
        series = self._series(additional)
        index = bisect.bisect_left(self._family.bounds, value)
        with self._registry.lock:
            series.counts[index] += 1
            series.sum += value


class _Counter(MetricCounter, _Metric):
    def add(self, value: int, additional_attributes: MetricAttributes | None = None) -> None:
        self._add(value, additional_attributes)


class _Histogram(MetricHistogram, _Metric):
    def record(self, value: int, additional_attributes: MetricAttributes | None = None) -> None:
        self._record(value, additional_attributes)


class _HistogramFloat(MetricHistogramFloat, _Metric):
    def record(self, value: float, additional_attributes: MetricAttributes | None = None) -> None:
        self._record(value, additional_attributes)


_MILLISECOND = timedelta(milliseconds=1)


class _HistogramTimedelta(MetricHistogramTimedelta, _Metric):
    _seconds = False

    def record(
        self, value: timedelta, additional_attributes: MetricAttributes | None = None
    ) -> None:
        millis = value // _MILLISECOND
        self._record(millis / 1000 if self._seconds else millis, additional_attributes)

    def _record_millis(self, millis: float) -> None:
        """Record a duration given in milliseconds, clamped at 0 (the worker's way: no
        ``timedelta`` made per value)."""
        whole = int(millis) if millis > 0 else 0
        self._record(whole / 1000 if self._seconds else whole, None)


class _Gauge(MetricGauge, _Metric):
    def set(self, value: int, additional_attributes: MetricAttributes | None = None) -> None:
        self._set(value, additional_attributes)


class _GaugeFloat(MetricGaugeFloat, _Metric):
    def set(self, value: float, additional_attributes: MetricAttributes | None = None) -> None:
        self._set(value, additional_attributes)


# -- serving /metrics ------------------------------------------------------------------------


def parse_bind_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as a (host, port) pair.

    Example:
        >>> parse_bind_address("0.0.0.0:9464"), parse_bind_address("[::1]:9464")
        (('0.0.0.0', 9464), ('::1', 9464))

    Raises:
        ValueError: Not ``HOST:PORT``.
    """
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"bind_address must be HOST:PORT, not {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


def bind_http_server(address: str, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """A threading HTTP server bound to ``HOST:PORT`` (IPv4 or ``[v6]``), not yet serving;
    the processors' API binds through this too.

    Raises:
        ValueError: Not ``HOST:PORT``.
        OSError: The address cannot be bound (taken, or not this machine's).
    """
    host, port = parse_bind_address(address)
    server_class = _Server6 if ":" in host else _Server
    return server_class((host, port), handler)


class MetricsServer:
    """Serves ``render()`` at ``/metrics`` of ``address``, from a daemon thread.

    Binds on construction (raising ``OSError`` if the address is taken).
    """

    def __init__(self, address: str, render: Callable[[], str]) -> None:
        self._httpd = bind_http_server(address, _handler(render))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="cadenza-metrics", daemon=True
        )
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) served (the port chosen, if 0 was given)."""
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def close(self) -> None:
        """Stop serving and free the port."""
        self._httpd.shutdown()
        self._thread.join(10)
        self._httpd.server_close()


def _handler(render: Callable[[], str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            _log.debug("%s %s", self.address_string(), format % args)

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/metrics":
                self._send(HTTPStatus.NOT_FOUND, b"Metrics are at /metrics\n")
                return
            try:
                body = render().encode()
            except Exception:
                _log.exception("Rendering /metrics failed")
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, b"")
                return
            self._send(HTTPStatus.OK, body)

        def _send(self, status: HTTPStatus, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
