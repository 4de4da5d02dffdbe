"""``recovery``: where the seconds between an engine restart and its first completion go.

The timeline is read from two sources, both in wall-clock time on this machine:
the restarted engine's log (it runs at INFO for this workload and says when its
producer was ready, when it was assigned its partitions and restored them, and
when it first processed commands) and the ``history`` topic, whose
``WorkflowExecutionCompleted`` events carry the engine's clock. A completion the
client sees after the restart may have been decided by the killed engine (its
reply was still on its way); only one whose completion event is later than the
restart had to wait for the new engine, and that is what the figure counts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["RecoveryClock", "engine_timeline", "recovery_figures"]

_COMPLETED = "cadenza.history.WorkflowExecutionCompleted"

# (figure, what the engine logs when it gets there); the first line after the restart counts.
_MILESTONES = (
    ("engine_started", "cadenza.engine: engine starting"),
    ("producer_ready", "cadenza.engine: producer ready"),
    ("partitions_assigned", "cadenza.engine: assigned partitions"),
    ("first_command_processed", "cadenza.engine: first commands processed"),
)


@dataclasses.dataclass(frozen=True)
class RecoveryClock:
    """When the engine was killed and restarted, in the load's loop time and wall time."""

    killed: float
    """Loop time (``loop.time()``) of the kill."""
    restarted: float
    """Loop time right after the new engine process was started."""
    restarted_wall: float
    """Wall time (``time.time()``) at ``restarted``."""
    log_offset: int
    """Size of the engine's log at the restart: the new process writes after it."""
    window_start: float
    """Loop time the measured load began."""

    def wall(self, loop_time: float) -> float:
        return self.restarted_wall + (loop_time - self.restarted)


def engine_timeline(log: Path, offset: int, restarted_wall: float) -> dict[str, float | None]:
    """Seconds from the restart to each milestone the restarted engine logged."""
    try:
        with log.open("rb") as f:
            f.seek(offset)
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        lines = []
    out: dict[str, float | None] = {name: None for name, _ in _MILESTONES}
    for line in lines:
        for name, marker in _MILESTONES:
            if out[name] is None and marker in line:
                try:
                    at = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                except ValueError:
                    continue
                out[name] = round(at - restarted_wall, 3)
    return out


def recovery_figures(
    clock: RecoveryClock,
    done: Iterable[tuple[str, float]],
    history: Mapping[str, Sequence[Mapping[str, Any]]],
    log: Path,
) -> dict[str, Any]:
    """The ``recovery`` section of the report.

    Args:
        clock: the kill and the restart.
        done: (workflow id, loop time its result reached the client) of every success.
        history: the namespace's history events by workflow id.
        log: the engine's log file.
    """
    restart_ms = clock.restarted_wall * 1000
    completed_ms = {
        wid: e["event_time_ms"]
        for wid, events in history.items()
        for e in events
        if e["attributes"][0] == _COMPLETED
    }
    seen = [t for _, t in done if t > clock.restarted]
    by_new = [
        (t, completed_ms[wid])
        for wid, t in done
        if t > clock.restarted and completed_ms.get(wid, 0) >= restart_ms
    ]
    first = min(by_new, default=None)
    timeline = engine_timeline(log, clock.log_offset, clock.restarted_wall)
    timeline["first_completion_decided"] = (
        None if first is None else round(first[1] / 1000 - clock.restarted_wall, 3)
    )
    timeline["first_completion"] = None if first is None else round(first[0] - clock.restarted, 3)
    return {
        "killed_at_s": round(clock.killed - clock.window_start, 2),
        "seconds_to_first_completion_after_restart": timeline["first_completion"],
        "seconds_to_first_completion_after_kill": (
            None if first is None else round(first[0] - clock.killed, 2)
        ),
        "seconds_to_first_result_seen_after_restart": (
            round(min(seen) - clock.restarted, 3) if seen else None
        ),
        "timeline_s": timeline,
    }
