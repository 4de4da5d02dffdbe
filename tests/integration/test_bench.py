"""A short run of every ``cadenza bench`` workload, so the harness never rots.

The figures themselves are checked by the benchmark (BENCHMARKS.md), not here:
each run only has to complete something and report the keys the JSON promises.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from cadenza import Settings
from cadenza.bench import BenchOptions, run_bench
from cadenza.cli import cli

KEYS = {"achieved_rate", "completed", "failed", "latency_ms", "offered_rate", "cpu_seconds"}


def _settings(kafka_settings: Settings) -> Settings:
    return dataclasses.replace(kafka_settings, namespace=f"tb{uuid.uuid4().hex[:10]}", partitions=4)


def _check(report: dict[str, object]) -> None:
    assert KEYS <= set(report)
    assert set(report["latency_ms"]) == {"p50", "p95", "p99", "max"}  # type: ignore[arg-type]
    assert report["completed"] > 0  # type: ignore[operator]
    assert "peak_rss_mib" in report and "engine" in report["peak_rss_mib"]  # type: ignore[operator]
    # How fast this machine ran a fixed loop around the run, to compare days by.
    loop = report["reference_loop_ms"]
    assert loop["before"] > 0 and loop["after"] > 0  # type: ignore[index]


def test_cli_one_activity_open_loop(kafka_settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        cli,
        [
            "bench",
            "one-activity",
            "--rate",
            "10",
            "--duration",
            "2",
            "--warmup",
            "0.5",
            "--bootstrap-servers",
            kafka_settings.resolved_bootstrap_servers,
            "--partitions",
            "4",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    _check(report)
    assert report["mode"] == "open"
    assert report["offered_rate"] == 10
    assert report["latency_ms"]["p50"] > 0
    assert report["engine_consumer_lag"] == 0
    # Every process of the run is accounted for, the engine's visibility child too.
    assert set(report["cpu_seconds"]) == {"engine", "visibility", "bench", "broker"}
    assert report["cpu_seconds"]["visibility"] > 0
    # The broker's JIT compiler is counted apart (a JVM still compiling is not warm).
    broker = report["processes"]["broker"]
    assert 0 <= broker["jit_cpu_seconds"] <= broker["cpu_seconds"]


@pytest.mark.parametrize(
    ("workload", "options"),
    [
        ("one-activity", {"concurrency": 4}),
        ("ten-steps", {"concurrency": 2}),
        ("fan-out", {"concurrency": 1}),
        ("signals", {"concurrency": 2}),
        ("timers", {"rate": 10, "sleep": 0.5}),
        ("recovery", {"rate": 10, "kill_at": 1.0}),
    ],
)
def test_workloads(kafka_settings: Settings, workload: str, options: dict[str, float]) -> None:
    report = run_bench(
        _settings(kafka_settings),
        BenchOptions(workload, duration=3.0, warmup=0.0, drain=60.0, **options),  # type: ignore[arg-type]
    )
    _check(report)
    if workload == "ten-steps":
        assert report["per_step_ms"]["p50"] is not None
    if workload == "timers":
        assert report["timer_fire_lag_ms"]["timers"] > 0
    if workload == "recovery":
        assert report["recovery"]["seconds_to_first_completion_after_restart"] is not None


def test_eager_start(kafka_settings: Settings) -> None:
    report = run_bench(
        _settings(kafka_settings),
        BenchOptions(
            "one-activity", concurrency=4, duration=3.0, warmup=0.0, drain=60.0, eager_start=True
        ),
    )
    _check(report)
    assert report["eager_start"] is True
    # The bench's worker has a free slot for every start: each first task came eagerly.
    assert report["eager_starts"] >= report["completed"]  # type: ignore[operator]


@pytest.mark.parametrize("processes", [1, 2])
def test_workers_in_processes_of_their_own(kafka_settings: Settings, processes: int) -> None:
    report = run_bench(
        _settings(kafka_settings),
        BenchOptions(
            "one-activity",
            concurrency=4,
            duration=3.0,
            warmup=0.0,
            drain=60.0,
            worker_processes=processes,
        ),
    )
    _check(report)
    assert report["failed"] == 0 and report["worker_processes"] == processes
    # The workers ran every workflow: their CPU is counted apart from the load's.
    assert set(report["cpu_seconds"]) == {"engine", "visibility", "bench", "worker", "broker"}
    assert report["cpu_seconds"]["worker"] > 0
    # The three parts of the latency, each measured per run.
    ends = report["ends_ms"]
    assert set(ends) == {
        "scheduled -> WorkflowExecutionStarted",
        "WorkflowExecutionStarted -> WorkflowExecutionCompleted",
        "WorkflowExecutionCompleted -> result",
    }
    assert all(part["p50"] is not None and part["p50"] >= 0 for part in ends.values())


def test_cli_worker_processes_only_where_the_bench_runs_a_worker() -> None:
    for argv, message in (
        (["ingest", "--worker-processes", "1"], "--worker-processes is for the workloads"),
        (
            ["one-activity", "--rate", "1", "--worker-processes", "1", "--eager-start"],
            "leave out --worker-processes",
        ),
        (
            ["one-activity", "--rate", "1", "--worker-processes", "1", "--compare"],
            "the Temporal run keeps its worker",
        ),
    ):
        result = CliRunner().invoke(cli, ["bench", *argv])
        assert result.exit_code == 2, result.output
        assert message in result.output


@pytest.mark.parametrize("workload", ["ingest", "replay"])
def test_batch_workloads(kafka_settings: Settings, workload: str) -> None:
    report = run_bench(_settings(kafka_settings), BenchOptions(workload, count=300))
    _check(report)
    if workload == "ingest":
        assert report["completed"] == 300
        assert report["starts_accepted_per_second"] > 0
    else:
        assert report["events"] >= 300
        assert report["events_per_second"] > 0


def test_ingest_on_two_engines(kafka_settings: Settings) -> None:
    """Two engine processes share the partitions through their group: each is
    assigned some, and together they take every start."""
    report = run_bench(_settings(kafka_settings), BenchOptions("ingest", count=20_000, engines=2))
    _check(report)
    assert report["completed"] == 20_000 and report["engine_consumer_lag"] == 0
    assert report["engines_all_assigned_after_s"] is not None
    assert report["engines"] == 2
    assert all(n > 0 for n in report["engine_partitions_each"]), report["engine_partitions_each"]
    assert all(cpu and cpu > 0 for cpu in report["engine_cpu_seconds_each"])


def test_cli_engines_only_for_engines_the_bench_starts() -> None:
    result = CliRunner().invoke(cli, ["bench", "ingest", "--engines", "2", "--engine", "external"])
    assert result.exit_code == 2
    assert "--engines counts the engines the bench starts" in result.output
    result = CliRunner().invoke(cli, ["bench", "ingest", "--engines", "0"])
    assert result.exit_code == 2
    assert "--engines" in result.output


@pytest.mark.parametrize("options", [{"concurrency": 10}, {"rate": 50.0}])
def test_cached(kafka_settings: Settings, options: dict[str, float]) -> None:
    report = run_bench(
        _settings(kafka_settings),
        BenchOptions("cached", count=50, drain=60.0, **options),  # type: ignore[arg-type]
    )
    _check(report)
    assert report["cached_workflows"] == 50
    assert report["completed"] == 50 and report["failed"] == 0, report["not_completed"]
    assert report["latency_ms"]["p50"] > 0
    rss = report["worker_rss_mib"]
    assert 0 < rss["baseline"] <= rss["peak"] and rss["cached"] > 0
    assert report["rss_per_workflow_kib"] is not None
    assert report["peak_rss_mib"]["worker"] > 0
    assert report["processes"]["worker_pid"] is not None
    assert report["engine_consumer_lag"] == 0


def test_cached_is_not_run_on_temporal() -> None:
    result = CliRunner().invoke(
        cli, ["bench", "cached", "--concurrency", "1", "--target", "temporal"]
    )
    assert result.exit_code != 0
    assert "Rust core" in result.output
