"""The metric meter API (``cadenza.common``), its Prometheus exporter and ``cadenza.runtime``.

Every rendering is parsed back with ``tests.prometheus_text.parse`` (the Prometheus
text format, version 0.0.4) and checked sample by sample.
"""

from __future__ import annotations

import doctest
import inspect
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from test_runtime_support import FC, PC, FakeEngine
from test_sdk_activity import make_info

import cadenza.common._metric
import cadenza.runtime._prometheus
import cadenza.runtime._runtime
from cadenza import activity, workflow
from cadenza.activity._context import _ActivityEvent, _Context
from cadenza.client import Client
from cadenza.common import (
    MetricCounter,
    MetricGauge,
    MetricGaugeFloat,
    MetricHistogram,
    MetricHistogramFloat,
    MetricHistogramTimedelta,
    MetricMeter,
)
from cadenza.common._metric import _ReplaySafeMetricMeter
from cadenza.converter import PayloadConverter
from cadenza.runtime import PrometheusConfig, Runtime, TelemetryConfig
from cadenza.runtime._prometheus import CONTENT_TYPE, _Options, _PrometheusMeter, _Registry
from cadenza.worker._metrics import _millis_recorder, worker_metrics
from cadenza.workflow._history import COMPLETE_WORKFLOW_EXECUTION, SCHEDULE_ACTIVITY_TASK
from cadenza.workflow._runtime import (
    NONDETERMINISM_CAUSE,
    UNHANDLED_FAILURE_CAUSE,
    WorkflowInstance,
)
from tests.prometheus_text import parse


def registry(**options: Any) -> tuple[_Registry, MetricMeter]:
    reg = _Registry(_Options(**options))
    return reg, _PrometheusMeter(reg, {"service": "test"})


# -- the no-op meter --------------------------------------------------------------------------


def test_the_noop_meter_makes_metrics_that_record_nothing() -> None:
    meter = MetricMeter.noop
    assert meter.with_additional_attributes({"a": 1}) is meter
    counter = meter.create_counter("c", "counts", "1")
    assert isinstance(counter, MetricCounter)
    assert (counter.name, counter.description, counter.unit) == ("c", "counts", "1")
    assert counter.with_additional_attributes({"a": "b"}) is counter
    counter.add(1, {"any": object()})  # type: ignore[dict-item]  # not even checked
    for make, kind, value in [
        (meter.create_histogram, MetricHistogram, 1),
        (meter.create_histogram_float, MetricHistogramFloat, 1.5),
        (meter.create_histogram_timedelta, MetricHistogramTimedelta, timedelta(seconds=1)),
    ]:
        histogram: Any = make("h")
        assert isinstance(histogram, kind) and histogram.description is None
        histogram.record(value)
    for make_gauge, gauge_kind in [
        (meter.create_gauge, MetricGauge),
        (meter.create_gauge_float, MetricGaugeFloat),
    ]:
        gauge: Any = make_gauge("g", unit="bytes")
        assert isinstance(gauge, gauge_kind) and gauge.unit == "bytes"
        gauge.set(3)


def test_the_default_runtime_has_no_metrics() -> None:
    runtime = Runtime.default()
    assert Runtime.default() is runtime
    assert runtime.metric_meter is MetricMeter.noop
    assert runtime._render_metrics() == ""
    assert Runtime(telemetry=TelemetryConfig()).metric_meter is MetricMeter.noop


def test_set_default_refuses_to_replace_a_default_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cadenza.runtime._runtime, "_default_runtime", None)
    mine = Runtime(telemetry=TelemetryConfig())
    Runtime.set_default(mine)
    assert Runtime.default() is mine
    with pytest.raises(RuntimeError, match="already set"):
        Runtime.set_default(Runtime(telemetry=TelemetryConfig()))
    other = Runtime(telemetry=TelemetryConfig())
    Runtime.set_default(other, error_if_already_set=False)
    assert Runtime.default() is other


def test_client_takes_a_runtime_and_defaults_to_the_default_one() -> None:
    assert "runtime" in inspect.signature(Client.connect).parameters
    assert "runtime" in inspect.signature(Client).parameters
    assert isinstance(Client.runtime, property)


# -- recording and rendering --------------------------------------------------------------


def test_counters_add_per_attribute_set() -> None:
    reg, meter = registry()
    orders = meter.with_additional_attributes({"region": "eu"}).create_counter(
        "orders", "Orders taken"
    )
    orders.add(2)
    orders.add(3)
    orders.add(1, {"kind": "express"})
    orders.with_additional_attributes({"kind": "express"}).add(4)
    orders.add(0)
    page = parse(reg.render())
    assert page.types["orders"] == "counter"
    assert page.help["orders"] == "Orders taken"
    assert page.samples == {
        ("orders", frozenset({("service", "test"), ("region", "eu")})): 5,
        ("orders", frozenset({("service", "test"), ("region", "eu"), ("kind", "express")})): 5,
    }


def test_later_attributes_win_and_values_render_as_prometheus_labels() -> None:
    reg, meter = registry()
    counter = meter.with_additional_attributes(
        {"service": "override", "flag": True, "n": 7, "ratio": 0.5, "off": False}
    ).create_counter("c")
    counter.with_additional_attributes({"n": 8}).add(1, {"n": 9, "text": 'say "hi"\\\n'})
    page = parse(reg.render())
    assert page.labels("c") == [
        {
            "service": "override",
            "flag": "true",
            "n": "9",
            "ratio": "0.5",
            "off": "false",
            "text": 'say "hi"\\\n',
        }
    ]


def test_bad_attribute_values_and_negative_values_are_refused() -> None:
    _, meter = registry()
    with pytest.raises(TypeError, match="str, int, float or bool"):
        meter.with_additional_attributes({"a": None})  # type: ignore[dict-item]
    counter = meter.create_counter("c")
    with pytest.raises(TypeError):
        counter.add(1, {"a": [1]})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="non-negative"):
        counter.add(-1)
    with pytest.raises(ValueError, match="non-negative"):
        meter.create_histogram("h").record(-2)
    with pytest.raises(ValueError, match="non-negative"):
        meter.create_gauge_float("g").set(-0.5)
    with pytest.raises(ValueError, match="non-negative"):
        meter.create_histogram_timedelta("d").record(timedelta(seconds=-1))


def test_a_name_keeps_its_type() -> None:
    _, meter = registry()
    meter.create_counter("shared")
    meter.create_counter("shared")  # the same counter again: fine
    with pytest.raises(ValueError, match="already a counter"):
        meter.create_gauge("shared")


def test_names_and_label_names_are_made_valid() -> None:
    reg, meter = registry()
    meter.create_counter("my.metric-name", "dots\nand dashes").add(1, {"label.key": "v", "9x": 1})
    text = reg.render()
    page = parse(text)
    assert page.types == {"my_metric_name": "counter"}
    assert page.help["my_metric_name"] == "dots\\nand dashes"
    assert page.labels("my_metric_name") == [{"service": "test", "label_key": "v", "_9x": "1"}]


def test_gauges_keep_the_last_value() -> None:
    reg, meter = registry()
    gauge = meter.create_gauge("queue_depth")
    gauge.set(10)
    gauge.set(3)
    meter.create_gauge_float("load").set(0.75)
    meter.create_gauge("never_set")
    page = parse(reg.render())
    assert page.types == {"queue_depth": "gauge", "load": "gauge"}  # no series, no family
    assert page.value("queue_depth") == 3
    assert page.value("load") == 0.75


def test_histograms_use_temporal_cores_default_buckets() -> None:
    reg, meter = registry()
    sizes = meter.create_histogram("batch_size")
    for value in (10, 50, 51, 2_000, 99_999):
        sizes.record(value)
    task = meter.create_histogram_timedelta("temporal_workflow_task_execution_latency")
    task.record(timedelta(microseconds=400))  # 0 ms: precision is the millisecond
    task.record(timedelta(milliseconds=15))
    task.record(timedelta(seconds=3))
    ratio = meter.create_histogram_float("ratio")
    ratio.record(0.5)
    ratio.record(75.25)
    page = parse(reg.render())
    assert page.buckets("batch_size") == {
        "50": 2,
        "100": 3,
        "500": 3,
        "1000": 3,
        "2500": 4,
        "10000": 4,
        "+Inf": 5,
    }
    assert page.value("batch_size_sum") == 10 + 50 + 51 + 2_000 + 99_999
    assert page.value("batch_size_count") == 5
    assert page.buckets("temporal_workflow_task_execution_latency") == {
        "1": 1,
        "10": 1,
        "20": 2,
        "50": 2,
        "100": 2,
        "200": 2,
        "500": 2,
        "1000": 2,
        "+Inf": 3,
    }
    assert page.value("temporal_workflow_task_execution_latency_sum") == 3_015
    assert page.value("ratio_sum") == 75.75
    assert page.buckets("ratio")["100"] == 2


def test_durations_in_seconds_and_bucket_overrides() -> None:
    reg, meter = registry(
        durations_as_seconds=True,
        histogram_bucket_overrides={"custom": [5, 1, 10]},
    )
    latency = meter.create_histogram_timedelta(
        "temporal_activity_execution_latency", unit="duration"
    )
    assert latency.unit == "s"
    latency.record(timedelta(milliseconds=1_500))
    latency.record(timedelta(milliseconds=20))
    custom = meter.create_histogram("custom")
    custom.record(3)
    plain = meter.create_histogram("plain")  # not a duration: its buckets stay as they are
    plain.record(60)
    page = parse(reg.render())
    assert page.buckets("temporal_activity_execution_latency") == {
        "0.05": 1,
        "0.1": 1,
        "0.5": 1,
        "1": 1,
        "5": 2,
        "10": 2,
        "60": 2,
        "+Inf": 2,
    }
    assert page.value("temporal_activity_execution_latency_sum") == pytest.approx(1.52)
    assert page.buckets("custom") == {"1": 0, "5": 1, "10": 1, "+Inf": 1}
    assert page.buckets("plain")["100"] == 1 and page.buckets("plain")["50"] == 0


def test_milliseconds_are_the_default_unit_of_durations() -> None:
    reg, meter = registry()
    latency = meter.create_histogram_timedelta("lat", unit="duration")
    assert latency.unit == "ms"
    latency.record(timedelta(seconds=2, microseconds=999))
    page = parse(reg.render())
    assert page.value("lat_sum") == 2_000


def test_total_and_unit_suffixes() -> None:
    reg, meter = registry(counters_total_suffix=True, unit_suffix=True)
    meter.create_counter("requests").add(1)
    meter.create_counter("bytes_sent", unit="bytes").add(5)
    meter.create_histogram_timedelta("wait", unit="duration").record(timedelta(milliseconds=5))
    meter.create_gauge("already_total").set(1)
    page = parse(reg.render())
    assert page.types == {
        "requests_total": "counter",
        "bytes_sent_bytes_total": "counter",
        "wait_milliseconds": "histogram",
        "already_total": "gauge",
    }


def test_durations_in_milliseconds_skip_the_timedelta() -> None:
    reg, meter = registry(durations_as_seconds=True)
    latency = meter.create_histogram_timedelta("lat")
    record = _millis_recorder(latency)
    record(1_999.9)  # kept to the millisecond, as a timedelta would be
    record(-5.0)  # clocks of two hosts apart: 0, not an error
    page = parse(reg.render())
    assert page.value("lat_sum") == pytest.approx(1.999)
    assert page.buckets("lat")["0.05"] == 1
    noop = _millis_recorder(MetricMeter.noop.create_histogram_timedelta("lat"))
    noop(-1.0)  # a meter without the fast path gets a timedelta, negative ones as 0


def test_collectors_run_before_each_render() -> None:
    reg, meter = registry()
    gauge = meter.create_gauge("sampled")
    calls: list[int] = []

    def collect() -> None:
        calls.append(1)
        gauge.set(len(calls))

    reg.add_collector(collect)
    assert parse(reg.render()).value("sampled") == 1
    assert parse(reg.render()).value("sampled") == 2
    reg.remove_collector(collect)
    assert parse(reg.render()).value("sampled") == 2


def test_an_empty_registry_renders_nothing() -> None:
    reg, _ = registry()
    assert reg.render() == ""
    assert parse("").samples == {}


# -- replay -----------------------------------------------------------------------------------


def test_the_replay_safe_meter_skips_recording_while_replaying() -> None:
    reg, meter = registry()
    replaying = [True]
    safe = _ReplaySafeMetricMeter(meter, lambda: replaying[0]).with_additional_attributes(
        {"workflow_type": "W"}
    )
    counter = safe.create_counter("steps", "Steps")
    gauge = safe.create_gauge("g")
    histograms: list[Any] = [
        safe.create_histogram("h"),
        safe.create_histogram_float("hf"),
        safe.create_histogram_timedelta("ht"),
    ]
    assert (counter.name, counter.description) == ("steps", "Steps")
    counter.add(5)
    counter.with_additional_attributes({"a": "b"}).add(5)
    gauge.set(5)
    histograms[0].record(1)
    histograms[1].record(1.0)
    histograms[2].record(timedelta(seconds=1))
    safe.create_gauge_float("gf").set(1.0)
    assert reg.render() == ""
    replaying[0] = False
    counter.add(1)
    counter.with_additional_attributes({"a": "b"}).add(2)
    histograms[2].record(timedelta(seconds=1))
    page = parse(reg.render())
    assert page.value("steps", a="b") == 2
    assert page.samples[("steps", frozenset({("service", "test"), ("workflow_type", "W")}))] == 1
    assert page.value("ht_count") == 1


@workflow.defn
class CountingWorkflow:
    @workflow.run
    async def run(self) -> int:
        steps = workflow.metric_meter().create_counter("steps")
        for _ in range(3):
            steps.add(1)
            await workflow.sleep(1)
        return 3


def test_a_workflows_meter_counts_each_task_once_however_often_it_replays() -> None:
    reg, meter = registry()
    engine = FakeEngine(CountingWorkflow, task_queue="orders", instance=False)

    def new_instance() -> WorkflowInstance:
        return WorkflowInstance(
            engine.definition,
            workflow_id=engine.workflow_id,
            run_id=engine.run_id,
            started_event=engine.events[0],
            payload_converter=PC,
            failure_converter=FC,
            namespace="shop",
            metric_meter=meter,
        )

    engine.new_instance = new_instance  # type: ignore[method-assign]
    engine.instance = new_instance()
    engine.run_task()  # each task is followed by a replay of the whole history
    for timer in ("1", "2", "3"):
        engine.fire_timer(timer)
        engine.run_task()
    assert engine.closed is not None
    page = parse(reg.render())
    assert page.value("steps") == 3
    assert page.labels("steps") == [
        {
            "service": "test",
            "namespace": "shop",
            "task_queue": "orders",
            "workflow_type": "CountingWorkflow",
        }
    ]


def test_a_workflow_without_a_runtime_meter_gets_the_noop_meter() -> None:
    engine = FakeEngine(CountingWorkflow)
    engine.run_task()
    assert engine.instance is not None
    assert engine.instance.workflow_metric_meter() is MetricMeter.noop


def test_an_activitys_meter_carries_its_attributes() -> None:
    reg, meter = registry()
    context = _Context(
        info=make_info(),
        heartbeat=lambda *details: None,
        cancelled_event=_ActivityEvent(None),
        worker_shutdown_event=_ActivityEvent(None),
        payload_converter=PayloadConverter.default,
        runtime_metric_meter=meter,
    )
    token = _Context.set(context)
    try:
        assert activity.metric_meter() is activity.metric_meter()  # made once per attempt
        activity.metric_meter().create_counter("charges").add(1)
    finally:
        _Context.reset(token)
    info = make_info()
    assert parse(reg.render()).labels("charges") == [
        {
            "service": "test",
            "namespace": info.namespace,
            "task_queue": info.task_queue,
            "activity_type": info.activity_type,
        }
    ]
    with pytest.raises(RuntimeError, match="Not in activity context"):
        activity.metric_meter()


# -- serving /metrics -------------------------------------------------------------------------


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    made = Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address="127.0.0.1:0"),
            global_tags={"deployment": "blue"},
        )
    )
    yield made
    assert made._server is not None
    made._server.close()


def _get(runtime: Runtime, path: str) -> tuple[int, str, str]:
    address = runtime._metrics_address
    assert address is not None
    try:
        with urllib.request.urlopen(f"http://{address[0]}:{address[1]}{path}", timeout=10) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


def test_the_runtime_serves_its_metrics_over_http(runtime: Runtime) -> None:
    meter = runtime.metric_meter
    assert meter is not MetricMeter.noop
    meter.create_counter("hits").add(3, {"path": "/"})
    status, content_type, body = _get(runtime, "/metrics")
    assert (status, content_type) == (200, CONTENT_TYPE)
    page = parse(body)
    assert page.samples == {
        (
            "hits",
            frozenset({("service_name", "cadenza-sdk"), ("deployment", "blue"), ("path", "/")}),
        ): 3
    }
    assert _get(runtime, "/other")[0] == 404


def test_a_taken_address_fails_at_construction(runtime: Runtime) -> None:
    address = runtime._metrics_address
    assert address is not None
    with pytest.raises(OSError):
        Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(bind_address=f"{address[0]}:{address[1]}")
            )
        )
    with pytest.raises(ValueError, match="HOST:PORT"):
        Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address="no-port")))


def test_no_service_name_and_another_prefix() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    made = Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=f"127.0.0.1:{port}"),
            attach_service_name=False,
            metric_prefix="cadenza_",
        )
    )
    try:
        assert made._metric_prefix == "cadenza_"
        made.metric_meter.create_histogram_timedelta("cadenza_workflow_endtoend_latency").record(
            timedelta(seconds=1)
        )
        page = parse(_get(made, "/metrics")[2])
        assert page.labels("cadenza_workflow_endtoend_latency_count") == [{}]
        assert "30600000" in page.buckets("cadenza_workflow_endtoend_latency")
    finally:
        assert made._server is not None
        made._server.close()


def test_the_workers_builtin_metrics(runtime: Runtime) -> None:
    class NoRuntime:
        namespace = "shop"

    assert worker_metrics(NoRuntime(), "orders") is None  # the default runtime: nothing

    class OnRuntime(NoRuntime):
        pass

    client = OnRuntime()
    client.runtime = runtime  # type: ignore[attr-defined]
    metrics = worker_metrics(client, "orders")
    assert metrics is not None
    now_ms = time.time() * 1000
    order = metrics.workflow_type("Order")
    assert metrics.workflow_type("Order") is order
    started = order.task_started(int(now_ms) - 250)
    order.task_done(started, [(SCHEDULE_ACTIVITY_TASK, {})], int(now_ms) - 1_000)
    order.task_done(order.task_started(None), [(COMPLETE_WORKFLOW_EXECUTION, {})], 0)
    order.task_failed(NONDETERMINISM_CAUSE)
    order.task_failed(UNHANDLED_FAILURE_CAUSE)
    order.task_failed(UNHANDLED_FAILURE_CAUSE)
    charge = metrics.activity_type("charge", "Order")
    for outcome in ("completed", "failed", "benign", "canceled"):
        charge.done(charge.started(int(now_ms)), outcome, int(now_ms) - 100)
    used = [3]
    metrics.sample_slots("ActivityWorker", 10, lambda: used[0])
    metrics.sample_cache_size(lambda: 7)
    metrics.started()

    page = parse(runtime._render_metrics())
    ours = {"namespace": "shop", "task_queue": "orders", "workflow_type": "Order"}
    assert page.value("temporal_workflow_completed", **ours) == 1
    assert page.value("temporal_workflow_task_execution_latency_count", **ours) == 2
    assert page.value("temporal_workflow_task_schedule_to_start_latency_count", **ours) == 1
    assert page.value("temporal_workflow_task_schedule_to_start_latency_sum", **ours) >= 250
    assert page.value("temporal_workflow_endtoend_latency_count", **ours) == 1
    failed = "temporal_workflow_task_execution_failed"
    assert page.value(failed, failure_reason="NonDeterminismError") == 1
    assert page.value(failed, failure_reason="WorkflowError") == 2
    acts = {"activity_type": "charge", "workflow_type": "Order"}
    assert page.value("temporal_activity_execution_latency_count", **acts) == 4
    assert page.value("temporal_activity_execution_failed", **acts) == 1  # not the benign one
    assert page.value("temporal_activity_execution_cancelled", **acts) == 1
    assert page.value("temporal_activity_succeed_endtoend_latency_count", **acts) == 1
    assert page.value("temporal_activity_schedule_to_start_latency_count", **acts) == 4
    assert page.value("temporal_worker_task_slots_available", worker_type="ActivityWorker") == 7
    assert page.value("temporal_worker_task_slots_used", worker_type="ActivityWorker") == 3
    assert page.value("temporal_sticky_cache_size") == 7
    assert page.value("temporal_worker_start") == 1
    assert page.types["temporal_workflow_completed"] == "counter"
    assert page.types["temporal_worker_task_slots_used"] == "gauge"

    metrics.close()  # the worker shut down: no more sampling
    used[0] = 5
    assert parse(runtime._render_metrics()).value("temporal_worker_task_slots_used") == 3


@pytest.mark.parametrize(
    "module", [cadenza.common._metric, cadenza.runtime._prometheus], ids=lambda m: m.__name__
)
def test_docstring_examples(module: Any) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
