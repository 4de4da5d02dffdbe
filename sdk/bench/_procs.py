"""CPU and memory of the processes a benchmark involves, read from ``/proc`` (Linux)."""

from __future__ import annotations

import dataclasses
import os
import resource
import time
from pathlib import Path

__all__ = [
    "ProcSample",
    "child_pids",
    "find_listener_pid",
    "jit_cpu_seconds",
    "reference_loop_ms",
    "sample_pid",
    "sample_self",
]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclasses.dataclass(frozen=True)
class ProcSample:
    """One process at one moment."""

    cpu_seconds: float
    """User plus system CPU time since the process started."""
    peak_rss_mib: float
    """Peak resident set size since the process started (VmHWM)."""
    rss_mib: float
    """Resident set size now."""
    jit_threads: tuple[tuple[int, float], ...] | None = None
    """(thread id, CPU seconds) of a JVM's JIT compiler threads (``C1``/``C2
    CompilerThread``), when asked for (the broker): a JVM still compiling is not yet
    at its steady state. See :func:`jit_cpu_seconds`."""


def sample_pid(pid: int, *, jit: bool = False) -> ProcSample | None:
    """Read ``/proc/<pid>``; ``None`` when the process is gone or not readable.

    With ``jit``, also the CPU time of the process's JIT compiler threads."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    _, cpu = _cpu_of(stat)
    peak = rss = 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
        elif line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    return ProcSample(
        cpu_seconds=cpu,
        peak_rss_mib=peak,
        rss_mib=rss,
        jit_threads=_compiler_threads(pid) if jit else None,
    )


def _cpu_of(stat: str) -> tuple[str, float]:
    """(command or thread name, user plus system CPU seconds) from a ``stat`` line."""
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    return name, (int(fields[11]) + int(fields[12])) / _TICKS


def _compiler_threads(pid: int) -> tuple[tuple[int, float], ...]:
    # HotSpot names them "C1 CompilerThread0", "C2 CompilerThread1"...; Linux keeps the
    # first 15 characters ("C2 CompilerThre").
    found = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return ()
    for task in tasks:
        try:
            name, cpu = _cpu_of((task / "stat").read_text())
        except (OSError, ValueError, IndexError):
            continue  # the thread ended meanwhile
        if " CompilerThre" in name:
            found.append((int(task.name), cpu))
    return tuple(found)


def jit_cpu_seconds(now: ProcSample, before: ProcSample | None) -> float | None:
    """CPU the JIT compiler threads of ``now`` spent since ``before``.

    HotSpot starts and stops compiler threads as its queue grows and drains
    (``UseDynamicNumberOfCompilerThreads``), and a thread's time leaves ``/proc``
    with it: this counts each thread alive at ``now`` from its time at ``before``
    (or from its start), so it is a lower bound when a thread ended in between."""
    if now.jit_threads is None:
        return None
    earlier = dict(before.jit_threads or ()) if before is not None else {}
    return sum(max(0.0, cpu - earlier.get(tid, 0.0)) for tid, cpu in now.jit_threads)


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (e.g. the engine's visibility child)."""
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            out.append(int(proc.name))
    return out


def sample_self() -> ProcSample:
    """This process (the load generator and the workers)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    own = sample_pid(os.getpid())
    return ProcSample(
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_mib=usage.ru_maxrss / 1024,
        rss_mib=own.rss_mib if own else 0.0,
    )


def find_listener_pid(port: int) -> int | None:
    """The pid of the process listening on TCP ``port`` (e.g. the broker), if visible to us."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fds = list((proc / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in targets:
                    return int(proc.name)
            except OSError:
                # Closed since the listing: a broker opens and closes segment files
                # all the time (while the run's topics are created, say). Skipping the
                # whole process here lost the broker's figures in one run in two.
                continue
    return None


def reference_loop_ms(repeats: int = 3) -> float:
    """Milliseconds a fixed pure-Python loop takes here now (the best of ``repeats``).

    On this VM type one CPU loop ran 1.7 times slower late in a session than early in
    it (BENCHMARKS, entry 36): neighbours on the host take cycles no other figure
    shows. Taken before and after each run, it says which figures may be compared."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        total = 0
        for i in range(500_000):
            total += i * i
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)
