"""``Runtime`` and its telemetry configuration, as ``temporalio.runtime`` has them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ..common._metric import MetricMeter
from ._prometheus import MetricsServer, _Options, _PrometheusMeter, _Registry

SERVICE_NAME = "cadenza-sdk"
"""The ``service_name`` label put on every metric when ``attach_service_name`` is set."""

DEFAULT_METRIC_PREFIX = "temporal_"
"""The prefix of the SDK's built-in metrics' names (Temporal's)."""


@dataclass(frozen=True)
class PrometheusConfig:
    """Serve metrics for Prometheus to scrape, at ``http://<bind_address>/metrics``.

    Example::

        PrometheusConfig(bind_address="0.0.0.0:9464", durations_as_seconds=True)
    """

    bind_address: str
    """``HOST:PORT`` to listen on (``0.0.0.0:PORT`` for every interface, ``[::]:PORT``
    for IPv6)."""
    counters_total_suffix: bool = False
    """Append ``_total`` to the names of counters (Prometheus's convention)."""
    unit_suffix: bool = False
    """Append each metric's unit to its name (``_milliseconds``, ``_seconds``, ...)."""
    durations_as_seconds: bool = False
    """Export durations in seconds (float) instead of milliseconds."""
    histogram_bucket_overrides: Mapping[str, Sequence[float]] | None = None
    """Bucket upper bounds by metric name, instead of the defaults (Temporal Core's:
    by metric, in the unit its values are exported in)."""


@dataclass(frozen=True)
class TelemetryConfig:
    """What a :class:`Runtime` exports. Without ``metrics``, nothing: metric meters are
    no-ops and workers record nothing."""

    metrics: PrometheusConfig | None = None
    """Where metrics go; ``None`` for nowhere."""
    global_tags: Mapping[str, str] = field(default_factory=dict)
    """Labels put on every metric."""
    attach_service_name: bool = True
    """Put ``service_name="cadenza-sdk"`` on every metric."""
    metric_prefix: str | None = None
    """Prefix of the built-in worker metrics' names (default ``temporal_``); metrics
    made with a meter are not prefixed."""


_default_runtime: Runtime | None = None
_default_lock = threading.Lock()


class Runtime:
    """Where the clients and workers built on it send their metrics.

    A client takes it from ``Client.connect(runtime=...)`` (default:
    :meth:`default`), and a worker from its client. Each runtime with a
    :class:`PrometheusConfig` serves its own ``/metrics`` from a daemon thread.

    Example::

        runtime = Runtime(telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address="127.0.0.1:9464")))
        client = await Client.connect("localhost:9092", runtime=runtime)
    """

    @staticmethod
    def default() -> Runtime:
        """The default runtime: no metrics, unless :meth:`set_default` said otherwise."""
        global _default_runtime
        with _default_lock:
            if _default_runtime is None:
                _default_runtime = Runtime(telemetry=TelemetryConfig())
            return _default_runtime

    @staticmethod
    def set_default(runtime: Runtime, *, error_if_already_set: bool = True) -> None:
        """Make ``runtime`` the default, for clients connected from now on (those made
        before keep theirs).

        Raises:
            RuntimeError: A default was already set or used, and ``error_if_already_set``.
        """
        global _default_runtime
        with _default_lock:
            if _default_runtime is not None and error_if_already_set:
                raise RuntimeError("Runtime default already set")
            _default_runtime = runtime

    def __init__(self, *, telemetry: TelemetryConfig) -> None:
        """Create a runtime; with ``telemetry.metrics``, start serving them.

        Raises:
            OSError: The Prometheus ``bind_address`` cannot be bound.
            ValueError: The ``bind_address`` is not ``HOST:PORT``.
        """
        self._telemetry = telemetry
        self._metric_prefix = (
            DEFAULT_METRIC_PREFIX if telemetry.metric_prefix is None else telemetry.metric_prefix
        )
        self._registry: _Registry | None = None
        self._server: MetricsServer | None = None
        self._metric_meter: MetricMeter = MetricMeter.noop
        config = telemetry.metrics
        if config is None:
            return
        if not isinstance(config, PrometheusConfig):
            raise TypeError(
                f"TelemetryConfig.metrics must be a PrometheusConfig, not {type(config).__name__}"
            )
        registry = _Registry(
            _Options(
                counters_total_suffix=config.counters_total_suffix,
                unit_suffix=config.unit_suffix,
                durations_as_seconds=config.durations_as_seconds,
                histogram_bucket_overrides=dict(config.histogram_bucket_overrides or {}),
                prefix=self._metric_prefix,
            )
        )
        attributes: dict[str, str] = {}
        if telemetry.attach_service_name:
            attributes["service_name"] = SERVICE_NAME
        attributes.update(telemetry.global_tags)
        self._server = MetricsServer(config.bind_address, registry.render)
        self._registry = registry
        self._metric_meter = _PrometheusMeter(registry, attributes)

    @property
    def telemetry(self) -> TelemetryConfig:
        """The configuration this runtime was made with."""
        return self._telemetry

    @property
    def metric_meter(self) -> MetricMeter:
        """The meter of this runtime's metrics; ``MetricMeter.noop`` without metrics."""
        return self._metric_meter

    # -- for the worker ----------------------------------------------------------------------

    @property
    def _metrics_address(self) -> tuple[str, int] | None:
        """The (host, port) ``/metrics`` is served on, if any."""
        return self._server.address if self._server is not None else None

    def _add_collector(self, collect: Callable[[], None]) -> None:
        """Call ``collect`` before each scrape (it sets gauges sampled then)."""
        if self._registry is not None:
            self._registry.add_collector(collect)

    def _remove_collector(self, collect: Callable[[], None]) -> None:
        if self._registry is not None:
            self._registry.remove_collector(collect)

    def _render_metrics(self) -> str:
        """What ``/metrics`` answers now (empty without metrics)."""
        return self._registry.render() if self._registry is not None else ""
