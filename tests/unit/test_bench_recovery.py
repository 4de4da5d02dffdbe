"""The ``recovery`` figures: only completions the restarted engine decided count."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from cadenza.bench._recovery import RecoveryClock, engine_timeline, recovery_figures

RESTART = datetime(2026, 11, 21, 22, 0, 0).timestamp()


def _line(seconds_after: float, text: str) -> str:
    at = datetime.fromtimestamp(RESTART + seconds_after)
    return f"{at:%Y-%m-%d %H:%M:%S},{at.microsecond // 1000:03d} INFO {text}\n"


def _completed(wid: str, seconds_after: float) -> list[dict[str, object]]:
    return [
        {
            "workflow_id": wid,
            "event_time_ms": (RESTART + seconds_after) * 1000,
            "attributes": ("cadenza.history.WorkflowExecutionCompleted", {}),
        }
    ]


def test_timeline_reads_the_restarted_engine_only(tmp_path: Path) -> None:
    log = tmp_path / "engine.log"
    old = _line(-20, "cadenza.engine: assigned partitions [0] (restored in 0.10 s)")
    log.write_text(old)
    offset = log.stat().st_size
    with log.open("a") as f:
        f.write(_line(0.3, "cadenza.engine: engine starting"))
        f.write("engine running for namespace 'x' (an unstamped line)\n")
        f.write(_line(0.8, "cadenza.engine: producer ready in 0.50 s"))
        f.write(_line(1.0, "cadenza.engine: assigned partitions [0] (restored in 0.10 s)"))
    timeline = engine_timeline(log, offset, RESTART)
    assert timeline == {
        "engine_started": 0.3,
        "producer_ready": 0.8,
        "partitions_assigned": 1.0,
        "first_command_processed": None,
    }


def test_a_reply_the_killed_engine_decided_is_not_the_recovery(tmp_path: Path) -> None:
    clock = RecoveryClock(
        killed=99.9, restarted=100.0, restarted_wall=RESTART, log_offset=0, window_start=90.0
    )
    history = {"old": _completed("old", -0.2), "new": _completed("new", 1.2)}
    done = [("old", 100.05), ("new", 101.3), ("before", 95.0)]
    figures = recovery_figures(clock, done, history, tmp_path / "missing.log")
    assert figures["seconds_to_first_result_seen_after_restart"] == 0.05
    assert figures["seconds_to_first_completion_after_restart"] == 1.3
    assert figures["timeline_s"]["first_completion_decided"] == 1.2
    assert figures["killed_at_s"] == 9.9
