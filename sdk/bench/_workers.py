"""Bench workers in processes of their own (:mod:`._worker_proc`), seen from the bench.

``cached`` runs its worker this way so that the worker's RSS is its own; the
client-driven workloads do with ``worker_processes`` so that the workers and the
load generator each have a process (and an interpreter lock) of their own, as
they would in a deployment, and the report gives each one's CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path

from cadenza._settings import Settings

from ._procs import ProcSample, sample_pid

__all__ = ["WorkerProcess", "WorkerProcesses"]


class WorkerProcess:
    """One worker process (``python -m cadenza.bench._worker_proc``) and what it reports."""

    def __init__(
        self,
        settings: Settings,
        log_path: os.PathLike[str],
        task_queue: str,
        *,
        max_cached: int,
        slots: int | None = None,
        eager_activities: bool = True,
        report_every: float = 0.1,
    ) -> None:
        self._settings = settings
        self.log_path = log_path
        self.task_queue = task_queue
        self.max_cached = max_cached
        self.slots = slots
        """Workflow task and activity slots (``None``: the SDK's defaults)."""
        self.eager_activities = eager_activities
        self.report_every = report_every
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._report = asyncio.Event()
        self._last: ProcSample | None = None
        self._pid: int | None = None
        self.cached = 0
        """Runs in the worker's workflow cache at its last report."""
        self.misses = 0
        """Sticky cache misses the worker answered (each a replay of a whole history)."""

    @property
    def pid(self) -> int | None:
        """The worker process's pid."""
        return self._pid

    async def start(self) -> None:
        """Start the worker process and follow its reports."""
        env = {
            **os.environ,
            "CADENZA_NAMESPACE": self._settings.namespace,
            "CADENZA_BOOTSTRAP_SERVERS": self._settings.resolved_bootstrap_servers,
            "CADENZA_PARTITIONS": str(self._settings.partitions),
        }
        with open(self.log_path, "ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "cadenza.bench._worker_proc",
                "--task-queue",
                self.task_queue,
                "--max-cached",
                str(self.max_cached),
                "--report-every",
                str(self.report_every),
                *(["--slots", str(self.slots)] if self.slots is not None else []),
                *([] if self.eager_activities else ["--no-eager-activities"]),
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
        self._pid = self._proc.pid
        self._reader = asyncio.create_task(self._follow(self._proc))

    async def _follow(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            try:
                report = json.loads(line)
            except ValueError:
                continue
            self.cached = int(report["cached"])
            self.misses = int(report["misses"])
            self._report.set()
        self._report.set()  # the process is gone: wake the waiters to notice

    async def next_report(self, timeout: float = 1.0) -> None:
        """Wait for the worker's next report (at most ``timeout`` seconds)."""
        self._report.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._report.wait(), timeout)
        self.check_alive()

    def check_alive(self) -> None:
        """Raise with the tail of the worker's log when it has exited."""
        if self._proc is not None and self._proc.returncode is not None:
            raise RuntimeError(
                f"the worker process exited with status {self._proc.returncode}:\n"
                + self.log_tail()
            )

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the worker wrote to stderr."""
        try:
            with open(self.log_path, errors="replace") as log:
                return "\n".join(log.read().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def sample(self) -> ProcSample | None:
        """CPU and memory of the worker process now; once it has exited, its last sample."""
        now = sample_pid(self._proc.pid) if self._proc is not None else None
        if now is not None:
            self._last = now
        return self._last

    async def stop(self, timeout: float = 30.0) -> None:
        """Shut the worker down cleanly (SIGTERM), killing it if it does not stop in time."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._reader is not None:
            await self._reader


class WorkerProcesses:
    """``count`` worker processes of one task queue, sampled as one ("worker" in a report:
    CPU summed, the largest peak RSS)."""

    def __init__(
        self,
        settings: Settings,
        data_dir: Path,
        task_queue: str,
        count: int,
        *,
        max_cached: int,
        slots: int,
        eager_activities: bool,
    ) -> None:
        self.members = [
            WorkerProcess(
                settings,
                data_dir / f"worker-{i}.log",
                task_queue,
                max_cached=max_cached,
                slots=slots,
                eager_activities=eager_activities,
                report_every=1.0,
            )
            for i in range(count)
        ]

    async def start(self) -> None:
        """Start every worker process."""
        for member in self.members:
            await member.start()

    def check_alive(self) -> None:
        """Raise with a worker's log tail when one has exited."""
        for member in self.members:
            member.check_alive()

    def log_tail(self) -> str:
        """The last lines of the first worker's log."""
        return self.members[0].log_tail()

    def sample(self) -> ProcSample | None:
        """CPU summed over the processes, the largest peak RSS and RSS; None before any
        sample."""
        samples = [s for s in (m.sample() for m in self.members) if s is not None]
        if not samples:
            return None
        return ProcSample(
            cpu_seconds=sum(s.cpu_seconds for s in samples),
            peak_rss_mib=max(s.peak_rss_mib for s in samples),
            rss_mib=max(s.rss_mib for s in samples),
        )

    async def stop(self) -> None:
        """Shut every worker down cleanly (SIGTERM), killing those that do not stop in time."""
        await asyncio.gather(*(m.stop() for m in self.members))
