"""The pieces of the HTTP side that need no broker: the JSON views of runs and events,
the Prometheus rendering of the engine's counters, and the address setting."""

from __future__ import annotations

import doctest
import importlib
import re
from datetime import UTC, datetime

import pytest

from cadenza import Settings, SettingsError
from cadenza.client import WorkflowExecution, WorkflowExecutionStatus
from cadenza.client._json import event_json, execution_json, payload_json, value_json
from cadenza.converter import DataConverter
from cadenza.processors.engine._metrics import TRANSACTION_BUCKETS, EngineMetrics
from cadenza.processors.visibility._metrics import VisibilityMetrics
from cadenza.runtime._prometheus import parse_bind_address
from tests.prometheus_text import parse


def _payload(encoding: bytes, data: bytes) -> dict[str, object]:
    return {"metadata": {"encoding": encoding}, "data": data}


def test_payloads_read_as_their_json_and_other_bytes_stay_base64() -> None:
    assert payload_json(_payload(b"json/plain", b'["a", 1]')) == ["a", 1]
    assert payload_json(_payload(b"binary/null", b"")) is None
    assert payload_json(_payload(b"binary/plain", b"\x00\xff")) == {
        "encoding": "binary/plain",
        "base64": "AP8=",
    }
    # Declared JSON that is not: kept as bytes rather than lost.
    assert payload_json(_payload(b"json/plain", b"{oops")) == {
        "encoding": "json/plain",
        "base64": "e29vcHM=",
    }


def test_values_unions_and_nested_payloads() -> None:
    failure = ("cadenza.common.ApplicationFailureInfo", {"type": "Boom", "non_retryable": True})
    value = {
        "input": [_payload(b"json/plain", b'"order-42"')],
        "info": failure,
        "token": b"\xff\xfe",
        "name": b"plain text",
        "when": datetime(2026, 12, 7, 17, 0, tzinfo=UTC),
    }
    assert value_json(value) == {
        "input": ["order-42"],
        "info": {"@type": "ApplicationFailureInfo", "type": "Boom", "non_retryable": True},
        "token": "//4=",
        "name": "plain text",
        "when": "2026-12-07T17:00:00Z",
    }


def test_an_event_reads_as_id_time_type_and_attributes() -> None:
    event = {
        "event_id": 3,
        "event_time_ms": 1_796_662_800_123,
        "workflow_id": "w",
        "run_id": "r1",
        "attributes": (
            "cadenza.history.WorkflowExecutionCompleted",
            {"result": [_payload(b"json/plain", b'{"ok": true}')]},
        ),
    }
    assert event_json(event) == {
        "eventId": 3,
        "eventTime": "2026-12-07T17:00:00.123000Z",
        "eventType": "WorkflowExecutionCompleted",
        "runId": "r1",
        "attributes": {"result": [{"ok": True}]},
    }


def test_an_execution_reads_with_temporal_style_names() -> None:
    info = {
        "workflow_id": "order-42",
        "run_id": "r1",
        "workflow_type": "Order",
        "task_queue": "orders",
        "status": "RUNNING",
        "start_time_ms": 1_796_662_800_000,
        "execution_time_ms": 1_796_662_800_000,
        "close_time_ms": None,
        "history_length": 5,
        "memo": {"note": _payload(b"json/plain", b'"rush"')},
        "search_attributes": {},
    }
    execution = WorkflowExecution.from_info(info, DataConverter.default)
    assert execution.status == WorkflowExecutionStatus.RUNNING
    view = execution_json(execution)
    assert view["workflowId"] == "order-42"
    assert view["status"] == "RUNNING"
    assert view["startTime"] == "2026-12-07T17:00:00Z"
    assert view["closeTime"] is None
    assert view["historyLength"] == 5
    assert view["memo"] == {"note": "rush"}


def test_metrics_render_in_the_prometheus_text_format() -> None:
    metrics = EngineMetrics('ns"1')
    metrics.transaction(commands=5, timers=1, seconds=0.003)
    metrics.transaction(commands=2, timers=0, seconds=0.0005)
    metrics.transaction(commands=1, timers=0, seconds=9.0)
    metrics.event("cadenza.history.WorkflowExecutionStarted")
    metrics.event("cadenza.history.WorkflowExecutionStarted")
    metrics.event("cadenza.history.WorkflowExecutionFailed")
    metrics.dead_letters += 1
    metrics.partitions = 4
    text = metrics.render()
    parse(text)  # strict: families, labels, histogram buckets that add up
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.fullmatch(r"# (HELP|TYPE) [a-z_]+ .+", line), line
            continue
        name, _, value = line.rpartition(" ")
        samples[name] = float(value)
    ns = 'namespace="ns\\"1"'
    assert samples[f"cadenza_engine_commands_total{{{ns}}}"] == 8
    assert samples[f"cadenza_engine_transactions_total{{{ns}}}"] == 3
    assert samples[f"cadenza_engine_timers_fired_total{{{ns}}}"] == 1
    assert samples[f"cadenza_engine_dead_letters_total{{{ns}}}"] == 1
    assert samples[f"cadenza_engine_partitions_assigned{{{ns}}}"] == 4
    assert samples[f"cadenza_workflows_started_total{{{ns}}}"] == 2
    assert samples[f'cadenza_workflows_closed_total{{{ns},status="FAILED"}}'] == 1
    assert samples[f'cadenza_workflows_closed_total{{{ns},status="COMPLETED"}}'] == 0
    # Buckets are cumulative: 0.0005 s falls in the first, 0.003 s in le=0.005, 9 s in +Inf.
    bucket = "cadenza_engine_transaction_seconds_bucket"
    assert samples[f'{bucket}{{{ns},le="0.001"}}'] == 1
    assert samples[f'{bucket}{{{ns},le="0.005"}}'] == 2
    assert samples[f'{bucket}{{{ns},le="{TRANSACTION_BUCKETS[-1]!r}"}}'] == 2
    assert samples[f'{bucket}{{{ns},le="+Inf"}}'] == 3
    assert samples[f"cadenza_engine_transaction_seconds_count{{{ns}}}"] == 3
    assert samples[f"cadenza_engine_transaction_seconds_sum{{{ns}}}"] == pytest.approx(9.0035)
    assert samples["process_resident_memory_bytes"] > 0
    assert text.endswith("\n")


def test_visibility_metrics_render_in_the_prometheus_text_format() -> None:
    metrics = VisibilityMetrics("ns")
    assert "cadenza_visibility_history_lag_records{" not in metrics.render()  # not known yet
    metrics.lag = lambda: 7
    metrics.folded(events=40, skipped=0)
    metrics.folded(events=2, skipped=1)
    metrics.request("list", "ok", 0.0004)
    metrics.request("list", "ok", 0.02)
    metrics.request("count", "invalid_argument", 0.001)
    metrics.request("list", "stale", None)
    metrics.dead_letters += 1
    text = metrics.render(process_prefix="cadenza_visibility_process")
    parse(text)  # strict: families, labels, histogram buckets that add up
    samples = {
        name: float(value)
        for name, _, value in (
            line.rpartition(" ") for line in text.splitlines() if not line.startswith("#")
        )
    }
    ns = 'namespace="ns"'
    assert samples[f"cadenza_visibility_events_folded_total{{{ns}}}"] == 42
    assert samples[f"cadenza_visibility_records_skipped_total{{{ns}}}"] == 1
    assert samples[f"cadenza_visibility_history_lag_records{{{ns}}}"] == 7
    requests = "cadenza_visibility_requests_total"
    assert samples[f'{requests}{{{ns},kind="list",outcome="ok"}}'] == 2
    assert samples[f'{requests}{{{ns},kind="list",outcome="stale"}}'] == 1
    assert samples[f'{requests}{{{ns},kind="count",outcome="invalid_argument"}}'] == 1
    seconds = "cadenza_visibility_request_seconds"
    assert samples[f'{seconds}_bucket{{{ns},kind="list",le="0.001"}}'] == 1
    assert samples[f'{seconds}_bucket{{{ns},kind="list",le="+Inf"}}'] == 2
    assert samples[f'{seconds}_count{{{ns},kind="count"}}'] == 1
    assert samples[f"cadenza_visibility_dead_letters_total{{{ns}}}"] == 1
    # Beside the engine's own process_* on one page, the child's have their own names.
    assert samples["cadenza_visibility_process_cpu_seconds_total"] > 0
    assert "\nprocess_cpu_seconds_total" not in text
    assert "\nprocess_cpu_seconds_total " in metrics.render()


def test_http_address_setting_and_option() -> None:
    assert Settings.defaults().http_address == "127.0.0.1:8233"
    assert Settings.from_env({"CADENZA_HTTP_ADDRESS": "OFF"}).http_address == "off"
    assert Settings.from_env({"CADENZA_HTTP_ADDRESS": "9000"}).http_address == "127.0.0.1:9000"
    changed = Settings.defaults().replace(http_address="0.0.0.0:80")
    assert changed.http_address == "0.0.0.0:80"
    with pytest.raises(SettingsError, match="--http-address: 'here' is not HOST:PORT"):
        Settings.defaults().replace(http_address="here")
    with pytest.raises(SettingsError, match="CADENZA_HTTP_ADDRESS"):
        Settings.from_env({"CADENZA_HTTP_ADDRESS": "x:99999"})
    with pytest.raises(TypeError, match="unknown setting"):
        Settings.defaults().replace(colour="blue")
    assert Settings.from_env({"CADENZA_HTTP_ADDRESS": ":0"}).http_address == "127.0.0.1:0"
    assert parse_bind_address("[::1]:8233") == ("::1", 8233)
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_bind_address("nowhere")


@pytest.mark.parametrize(
    "module",
    [
        "cadenza.client._json",
        "cadenza.processors.engine._metrics",
        "cadenza.processors.visibility._metrics",
        "cadenza.processors._exposition",
    ],
)
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0
    assert result.failed == 0
