"""The metric meter API of ``temporalio.common``: counters, histograms and gauges.

A :class:`MetricMeter` creates metrics; each metric records values with its
meter's attributes plus any given per call. Workflows get one from
``workflow.metric_meter()``, activities from ``activity.metric_meter()``, and
anything else from ``Runtime.metric_meter`` (see ``cadenza.runtime``). Without a
metrics exporter configured it is :attr:`MetricMeter.noop`, which records nothing::

    meter = MetricMeter.noop.with_additional_attributes({"region": "eu"})
    orders = meter.create_counter("orders", "Orders taken")
    orders.add(1, {"kind": "express"})

Example:
    >>> latency = MetricMeter.noop.create_histogram_timedelta("latency", unit="duration")
    >>> latency.name, latency.unit
    ('latency', 'duration')
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import ClassVar, Self, TypeAlias

MetricAttributes: TypeAlias = Mapping[str, str | int | float | bool]
"""Attributes (Prometheus labels) of a metric: string keys, scalar values."""


class MetricMeter(ABC):
    """Creates metrics that share a set of attributes."""

    noop: ClassVar[MetricMeter]
    """A meter whose metrics record nothing (no exporter configured)."""

    @abstractmethod
    def create_counter(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricCounter:
        """A counter: values only ever added.

        Args:
            name: The metric's name.
            description: What it counts (the Prometheus ``HELP`` line).
            unit: Its unit, if any.
        """

    @abstractmethod
    def create_histogram(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricHistogram:
        """A histogram of non-negative integers (arguments as :meth:`create_counter`)."""

    @abstractmethod
    def create_histogram_float(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricHistogramFloat:
        """A histogram of non-negative floats (arguments as :meth:`create_counter`)."""

    @abstractmethod
    def create_histogram_timedelta(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricHistogramTimedelta:
        """A histogram of durations, kept to the millisecond.

        They are exported in milliseconds, or in seconds when the exporter says
        ``durations_as_seconds``; a ``unit`` of ``"duration"`` is exported as
        ``"ms"`` or ``"s"`` to match. Other arguments as :meth:`create_counter`.
        """

    @abstractmethod
    def create_gauge(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricGauge:
        """A gauge holding the last non-negative integer set (arguments as
        :meth:`create_counter`)."""

    @abstractmethod
    def create_gauge_float(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricGaugeFloat:
        """A gauge holding the last non-negative float set (arguments as
        :meth:`create_counter`)."""

    @abstractmethod
    def with_additional_attributes(self, additional_attributes: MetricAttributes) -> MetricMeter:
        """A meter with this one's attributes and ``additional_attributes`` (which win
        on a shared key).

        Raises:
            TypeError: An attribute value is not a str, int, float or bool.
        """


class MetricCommon(ABC):
    """What every metric has: a name, a description, a unit, and attributes."""

    @property
    @abstractmethod
    def name(self) -> str:
        """The metric's name."""

    @property
    @abstractmethod
    def description(self) -> str | None:
        """Its description, if any."""

    @property
    @abstractmethod
    def unit(self) -> str | None:
        """Its unit, if any."""

    @abstractmethod
    def with_additional_attributes(self, additional_attributes: MetricAttributes) -> Self:
        """The same metric recording with ``additional_attributes`` added to its own.

        Raises:
            TypeError: An attribute value is not a str, int, float or bool.
        """


class MetricCounter(MetricCommon):
    """A counter made by a :class:`MetricMeter`."""

    @abstractmethod
    def add(self, value: int, additional_attributes: MetricAttributes | None = None) -> None:
        """Add ``value`` (a non-negative integer), with ``additional_attributes`` for
        this call only.

        Raises:
            ValueError: ``value`` is negative.
            TypeError: An attribute value is not a str, int, float or bool.
        """


class MetricHistogram(MetricCommon):
    """A histogram of integers made by a :class:`MetricMeter`."""

    @abstractmethod
    def record(self, value: int, additional_attributes: MetricAttributes | None = None) -> None:
        """Record ``value`` (a non-negative integer).

        Raises:
            ValueError: ``value`` is negative.
            TypeError: An attribute value is not a str, int, float or bool.
        """


class MetricHistogramFloat(MetricCommon):
    """A histogram of floats made by a :class:`MetricMeter`."""

    @abstractmethod
    def record(self, value: float, additional_attributes: MetricAttributes | None = None) -> None:
        """Record ``value`` (a non-negative float).

        Raises:
            ValueError: ``value`` is negative.
            TypeError: An attribute value is not a str, int, float or bool.
        """


class MetricHistogramTimedelta(MetricCommon):
    """A histogram of durations made by a :class:`MetricMeter` (millisecond precision)."""

    @abstractmethod
    def record(
        self, value: timedelta, additional_attributes: MetricAttributes | None = None
    ) -> None:
        """Record ``value`` (a non-negative duration).

        Raises:
            ValueError: ``value`` is negative.
            TypeError: An attribute value is not a str, int, float or bool.
        """


class MetricGauge(MetricCommon):
    """A gauge of integers made by a :class:`MetricMeter`."""

    @abstractmethod
    def set(self, value: int, additional_attributes: MetricAttributes | None = None) -> None:
        """Set the gauge to ``value`` (a non-negative integer).

        Raises:
            ValueError: ``value`` is negative.
            TypeError: An attribute value is not a str, int, float or bool.
        """


class MetricGaugeFloat(MetricCommon):
    """A gauge of floats made by a :class:`MetricMeter`."""

    @abstractmethod
    def set(self, value: float, additional_attributes: MetricAttributes | None = None) -> None:
        """Set the gauge to ``value`` (a non-negative float).

        Raises:
            ValueError: ``value`` is negative.
            TypeError: An attribute value is not a str, int, float or bool.
        """


# -- the no-op meter -------------------------------------------------------------------------


class _NoopMetricMeter(MetricMeter):
    def create_counter(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricCounter:
        return _NoopMetricCounter(name, description, unit)

    def create_histogram(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricHistogram:
        return _NoopMetricHistogram(name, description, unit)

    def create_histogram_float(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricHistogramFloat:
        return _NoopMetricHistogramFloat(name, description, unit)

    def create_histogram_timedelta(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricHistogramTimedelta:
        return _NoopMetricHistogramTimedelta(name, description, unit)

    def create_gauge(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricGauge:
        return _NoopMetricGauge(name, description, unit)

    def create_gauge_float(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricGaugeFloat:
        return _NoopMetricGaugeFloat(name, description, unit)

    def with_additional_attributes(self, additional_attributes: MetricAttributes) -> MetricMeter:
        return self


class NamedMetric(MetricCommon):
    """A metric's name, description and unit, as given when it was created; the base
    of the no-op metrics here and of the runtime's Prometheus ones."""

    def __init__(self, name: str, description: str | None, unit: str | None) -> None:
        self._name = name
        self._description = description
        self._unit = unit

    @property
    def name(self) -> str:
        return self._name

    @property
    def description(self) -> str | None:
        return self._description

    @property
    def unit(self) -> str | None:
        return self._unit


class _NoopMetric(NamedMetric):
    def with_additional_attributes(self, additional_attributes: MetricAttributes) -> Self:
        return self


class _NoopMetricCounter(MetricCounter, _NoopMetric):
    def add(self, value: int, additional_attributes: MetricAttributes | None = None) -> None:
        pass


class _NoopMetricHistogram(MetricHistogram, _NoopMetric):
    def record(self, value: int, additional_attributes: MetricAttributes | None = None) -> None:
        pass


class _NoopMetricHistogramFloat(MetricHistogramFloat, _NoopMetric):
    def record(self, value: float, additional_attributes: MetricAttributes | None = None) -> None:
        pass


class _NoopMetricHistogramTimedelta(MetricHistogramTimedelta, _NoopMetric):
    def record(
        self, value: timedelta, additional_attributes: MetricAttributes | None = None
    ) -> None:
        pass


class _NoopMetricGauge(MetricGauge, _NoopMetric):
    def set(self, value: int, additional_attributes: MetricAttributes | None = None) -> None:
        pass


class _NoopMetricGaugeFloat(MetricGaugeFloat, _NoopMetric):
    def set(self, value: float, additional_attributes: MetricAttributes | None = None) -> None:
        pass


MetricMeter.noop = _NoopMetricMeter()


# -- recording only outside replay (workflows) ----------------------------------------------


class _ReplaySafeMetricMeter(MetricMeter):
    """Wraps a meter so that its metrics record nothing while ``replaying()`` is true:
    a workflow replaying history must not count again what it counted when it ran.

    Example:
        >>> replaying = True
        >>> meter = _ReplaySafeMetricMeter(MetricMeter.noop, lambda: replaying)
        >>> meter.create_counter("steps").add(1)  # skipped: replaying
    """

    def __init__(self, meter: MetricMeter, replaying: Callable[[], bool]) -> None:
        self._meter = meter
        self._replaying = replaying

    def create_counter(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricCounter:
        return _ReplaySafeCounter(self._meter.create_counter(name, description, unit), self)

    def create_histogram(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricHistogram:
        return _ReplaySafeHistogram(self._meter.create_histogram(name, description, unit), self)

    def create_histogram_float(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricHistogramFloat:
        return _ReplaySafeHistogramFloat(
            self._meter.create_histogram_float(name, description, unit), self
        )

    def create_histogram_timedelta(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricHistogramTimedelta:
        return _ReplaySafeHistogramTimedelta(
            self._meter.create_histogram_timedelta(name, description, unit), self
        )

    def create_gauge(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricGauge:
        return _ReplaySafeGauge(self._meter.create_gauge(name, description, unit), self)

    def create_gauge_float(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> MetricGaugeFloat:
        return _ReplaySafeGaugeFloat(self._meter.create_gauge_float(name, description, unit), self)

    def with_additional_attributes(self, additional_attributes: MetricAttributes) -> MetricMeter:
        return _ReplaySafeMetricMeter(
            self._meter.with_additional_attributes(additional_attributes), self._replaying
        )


class _ReplaySafeMetric(MetricCommon):
    def __init__(self, metric: MetricCommon, meter: _ReplaySafeMetricMeter) -> None:
        self._metric = metric
        self._meter = meter

    @property
    def name(self) -> str:
        return self._metric.name

    @property
    def description(self) -> str | None:
        return self._metric.description

    @property
    def unit(self) -> str | None:
        return self._metric.unit

    def with_additional_attributes(self, additional_attributes: MetricAttributes) -> Self:
        return type(self)(
            self._metric.with_additional_attributes(additional_attributes), self._meter
        )


class _ReplaySafeCounter(MetricCounter, _ReplaySafeMetric):
    _metric: MetricCounter

    def add(self, value: int, additional_attributes: MetricAttributes | None = None) -> None:
        if not self._meter._replaying():
            self._metric.add(value, additional_attributes)


class _ReplaySafeHistogram(MetricHistogram, _ReplaySafeMetric):
    _metric: MetricHistogram

    def record(self, value: int, additional_attributes: MetricAttributes | None = None) -> None:
        if not self._meter._replaying():
            self._metric.record(value, additional_attributes)


class _ReplaySafeHistogramFloat(MetricHistogramFloat, _ReplaySafeMetric):
    _metric: MetricHistogramFloat

    def record(self, value: float, additional_attributes: MetricAttributes | None = None) -> None:
        if not self._meter._replaying():
            self._metric.record(value, additional_attributes)


class _ReplaySafeHistogramTimedelta(MetricHistogramTimedelta, _ReplaySafeMetric):
    _metric: MetricHistogramTimedelta

    def record(
        self, value: timedelta, additional_attributes: MetricAttributes | None = None
    ) -> None:
        if not self._meter._replaying():
            self._metric.record(value, additional_attributes)


class _ReplaySafeGauge(MetricGauge, _ReplaySafeMetric):
    _metric: MetricGauge

    def set(self, value: int, additional_attributes: MetricAttributes | None = None) -> None:
        if not self._meter._replaying():
            self._metric.set(value, additional_attributes)


class _ReplaySafeGaugeFloat(MetricGaugeFloat, _ReplaySafeMetric):
    _metric: MetricGaugeFloat

    def set(self, value: float, additional_attributes: MetricAttributes | None = None) -> None:
        if not self._meter._replaying():
            self._metric.set(value, additional_attributes)
