"""Writing the Prometheus text exposition format (version 0.0.4), for the processors.

The processors count into plain ints on their hot paths and format only when
``/metrics`` is scraped; these are the formatting helpers they share.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterable, Sequence


def escape(value: str) -> str:
    """A label value, escaped for the text format."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def family(name: str, kind: str, doc: str, samples: Iterable[str]) -> list[str]:
    """One metric family: its ``HELP`` and ``TYPE`` lines, then its samples."""
    return [f"# HELP {name} {doc}", f"# TYPE {name} {kind}", *samples]


class Histogram:
    """Counts of observations per bucket; adding one is a bisect and two additions.

    Example:
        >>> h = Histogram((0.01, 0.1))
        >>> h.observe(0.05)
        >>> h.samples("x_seconds", 'ns="a"')[1]
        'x_seconds_bucket{ns="a",le="0.1"} 1'
    """

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.sum += value
        self.counts[bisect.bisect_left(self.bounds, value)] += 1

    def samples(self, name: str, labels: str) -> list[str]:
        """The ``_bucket`` (cumulative), ``_sum`` and ``_count`` samples."""
        out = []
        cumulative = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            cumulative += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            out.append(f'{name}_bucket{{{labels},le="{le}"}} {cumulative}')
        out.append(f"{name}_sum{{{labels}}} {self.sum!r}")
        out.append(f"{name}_count{{{labels}}} {cumulative}")
        return out


def process_families(prefix: str = "process") -> list[str]:
    """The standard ``process_*`` metrics of the Prometheus client libraries (Linux).

    Args:
        prefix: ``process``, or another name when these are served beside another
            process's own (the visibility child's, on the engine's page).
    """
    times = os.times()
    lines = family(
        f"{prefix}_cpu_seconds_total",
        "counter",
        "User and system CPU time of this process.",
        [f"{prefix}_cpu_seconds_total {times.user + times.system!r}"],
    )
    try:
        with open("/proc/self/statm") as statm:
            resident_pages = int(statm.read().split()[1])
        with open("/proc/self/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/stat") as proc_stat:
            boot = next(int(line.split()[1]) for line in proc_stat if line.startswith("btime "))
        start = boot + int(fields[19]) / ticks
    except (OSError, ValueError, StopIteration, IndexError):
        return lines
    lines += family(
        f"{prefix}_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        [f"{prefix}_resident_memory_bytes {resident_pages * os.sysconf('SC_PAGE_SIZE')}"],
    )
    lines += family(
        f"{prefix}_start_time_seconds",
        "gauge",
        "Start time of the process since the Unix epoch, in seconds.",
        [f"{prefix}_start_time_seconds {start!r}"],
    )
    return lines
