"""The bench's table: what it says about the broker's JVM warming up, and eager starts."""

from __future__ import annotations

from cadenza.cli._bench import _rows, _warming_up


def _report(broker: dict[str, float] | None) -> dict[str, object]:
    return {
        "workload": "one-activity",
        "target": "cadenza",
        "mode": "closed",
        "offered_rate": 100.0,
        "achieved_rate": 99.0,
        "completed": 990,
        "failed": 0,
        "latency_ms": {"p50": 1.0, "p95": 2.0, "p99": 3.0, "max": 4.0},
        "processes": {"bench": {"cpu_seconds": 5.0, "peak_rss_mib": 60.0}, "broker": broker},
        "reference_loop_ms": {"before": 130.5, "after": 141.0},
    }


def test_a_broker_still_compiling_gets_a_note() -> None:
    rows = dict(
        _rows(_report({"cpu_seconds": 20.0, "peak_rss_mib": 600.0, "jit_cpu_seconds": 8.0}))
    )
    assert rows["broker cpu / peak rss"] == "20.0 s / 600 MiB (JIT compiler 8.0 s)"
    assert "40%" in rows["note"] and "warming up" in rows["note"]


def test_a_warm_broker_gets_none() -> None:
    rows = dict(
        _rows(_report({"cpu_seconds": 20.0, "peak_rss_mib": 600.0, "jit_cpu_seconds": 0.5}))
    )
    assert rows["broker cpu / peak rss"] == "20.0 s / 600 MiB (JIT compiler 0.5 s)"
    assert "note" not in rows


def test_no_broker_or_no_jit_figure_gets_none() -> None:
    assert _warming_up(None) is None
    assert _warming_up({"cpu_seconds": 0.0, "jit_cpu_seconds": 0.0}) is None
    rows = dict(_rows(_report({"cpu_seconds": 3.0, "peak_rss_mib": 50.0})))
    assert rows["broker cpu / peak rss"] == "3.0 s / 50 MiB"
    assert "note" not in rows


def test_the_reference_loop_is_shown() -> None:
    rows = dict(_rows(_report(None)))
    assert rows["reference loop before / after"] == "130.5 / 141.0 ms"


def test_eager_starts_are_shown_when_the_run_asked_for_them() -> None:
    assert "eager starts (warm-up included)" not in dict(_rows(_report(None)))
    rows = dict(_rows({**_report(None), "eager_start": True, "eager_starts": 1234}))
    assert rows["eager starts (warm-up included)"] == "1234"
