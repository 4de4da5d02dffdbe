"""The bench's latency split (``ends_ms``) and its checks of the options, without Kafka."""

from __future__ import annotations

import dataclasses

import pytest

from cadenza import Settings
from cadenza.bench import BenchOptions, run_bench
from cadenza.bench._harness import HistoryEvent, LoadRun, _Sample, end_figures


def test_a_runs_latency_splits_into_three_parts_that_add_up() -> None:
    run = LoadRun(BenchOptions("one-activity", concurrency=1), None)
    run.wall_offset = 1_000.0  # wall clock = loop clock + 1,000 s
    # Scheduled at loop 10.000 s, started by the engine 5 ms later, completed 30 ms
    # after that, the result in the client 7 ms after that.
    run.samples = [
        _Sample("a", scheduled=10.0, done=10.042),
        _Sample("failed", scheduled=10.0, done=10.5, error="boom"),  # not counted
        _Sample("no-history", scheduled=10.0, done=10.5),  # not counted
    ]
    history = {
        "a": [
            HistoryEvent(1, "WorkflowExecutionStarted", 1_010_005.0),
            HistoryEvent(2, "WorkflowTaskScheduled", 1_010_005.0),
            HistoryEvent(3, "WorkflowExecutionCompleted", 1_010_035.0),
        ],
        "failed": [HistoryEvent(1, "WorkflowExecutionStarted", 1_010_100.0)],
    }
    ends = end_figures(run, history)
    start = ends["scheduled -> WorkflowExecutionStarted"]["p50"]
    inside = ends["WorkflowExecutionStarted -> WorkflowExecutionCompleted"]["p50"]
    result = ends["WorkflowExecutionCompleted -> result"]["p50"]
    assert start == pytest.approx(5.0, abs=0.01)
    assert inside == pytest.approx(30.0, abs=0.01)
    assert result == pytest.approx(7.0, abs=0.01)


def test_a_run_still_open_has_no_result_part() -> None:
    run = LoadRun(BenchOptions("one-activity", concurrency=1), None)
    run.samples = [_Sample("a", scheduled=1.0, done=1.1)]
    history = {"a": [HistoryEvent(1, "WorkflowExecutionStarted", 1_000.0)]}
    ends = end_figures(run, history)
    assert ends["WorkflowExecutionCompleted -> result"] == {"p50": None, "p99": None}
    assert ends["scheduled -> WorkflowExecutionStarted"]["p50"] is not None


@pytest.mark.parametrize(
    "options",
    [
        BenchOptions("ingest", worker_processes=1),
        BenchOptions("cached", concurrency=1, worker_processes=1),
        BenchOptions("one-activity", concurrency=1, worker_processes=1, eager_start=True),
        BenchOptions("one-activity", concurrency=1, worker_processes=-1),
    ],
)
def test_worker_processes_only_where_they_mean_something(options: BenchOptions) -> None:
    # Refused before anything touches a broker (none listens on this address).
    settings = dataclasses.replace(Settings.from_env(), bootstrap_servers="127.0.0.1:1")
    with pytest.raises(ValueError, match="worker_processes"):
        run_bench(settings, options)
