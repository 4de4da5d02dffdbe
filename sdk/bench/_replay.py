"""The ``replay`` workload's rebuild, run as ``cadenza replay`` in a process of its own.

``rebuild()`` folds in a process per CPU only when its caller has no other
thread (a fork would copy locks that other threads hold); the bench process has
Kafka clients' threads, so in it the rebuild would fold on one CPU. The command
users run has none.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cadenza._settings import Settings

__all__ = ["ReplayRun", "run_replay"]


@dataclasses.dataclass(frozen=True)
class ReplayRun:
    """What ``cadenza replay`` reported, and what its process cost."""

    report: dict[str, Any]
    """``cadenza replay --json``: partitions, events, runs, seconds (from the codec
    loaded to the stores flushed), cpu_seconds (of those seconds), events_per_second."""
    process_seconds: float
    """Wall time of the whole command, the interpreter's start and the codec's load included."""
    process_cpu_seconds: float
    """CPU time of the command and of the processes it forked."""
    peak_rss_mib: float
    """Peak resident set size of its largest process."""


def run_replay(settings: Settings, data_dir: Path) -> ReplayRun:
    """Rebuild the engine stores of ``settings.namespace`` into the empty ``data_dir``."""
    out = data_dir.with_name(data_dir.name + ".json")
    command = [
        sys.executable,
        "-m",
        "cadenza.cli",
        "replay",
        "--data-dir",
        str(data_dir),
        "--json",
        str(out),
    ]
    started = time.monotonic()
    proc = subprocess.Popen(
        command,
        env={**os.environ, **settings.to_env()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    errors = proc.stderr.read()
    # wait4, not wait: the child's resource use (its helpers' included) comes with it.
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(
            f"cadenza replay exited with status {proc.returncode}: "
            f"{errors.decode(errors='replace').strip()}"
        )
    return ReplayRun(
        report=json.loads(out.read_text()),
        process_seconds=seconds,
        process_cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_mib=usage.ru_maxrss / 1024,
    )
