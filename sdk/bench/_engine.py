"""The engine under test, run as processes of its own (``python -m cadenza.cli processors run``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cadenza._settings import Settings

from ._procs import ProcSample, child_pids, sample_pid

__all__ = ["EngineGroup", "EngineProcess"]


class EngineProcess:
    """One engine subprocess on a data directory that outlives restarts (for ``recovery``)."""

    def __init__(
        self,
        settings: Settings,
        data_dir: Path,
        *,
        log_level: str = "WARNING",
        visibility: bool = True,
    ) -> None:
        self._settings = settings
        self._log_level = log_level
        self._visibility = visibility
        self.data_dir = data_dir
        self.log_path = data_dir / "engine.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._cpu_before_restarts = 0.0
        self._peak_mib = 0.0
        self._children: dict[int, ProcSample] = {}
        """The last sample of each child the engine started (its visibility process)."""
        self.starts = 0

    @property
    def namespace(self) -> str:
        return self._settings.namespace

    @property
    def pid(self) -> int | None:
        """The running engine's pid."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start the engine (again, on the same data directory)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "CADENZA_NAMESPACE": self._settings.namespace,
            "CADENZA_BOOTSTRAP_SERVERS": self._settings.resolved_bootstrap_servers,
            "CADENZA_PARTITIONS": str(self._settings.partitions),
            # The figures are the engine's work: no HTTP thread beside it.
            "CADENZA_HTTP_ADDRESS": "off",
        }
        log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cadenza.cli",
                "processors",
                "run",
                "--data-dir",
                str(self.data_dir),
                "--log-level",
                self._log_level,
                *([] if self._visibility else ["--no-visibility"]),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.starts += 1

    def check_alive(self) -> None:
        """Raise with the tail of the engine's log when it has exited."""
        if self._proc is not None and self._proc.poll() is not None:
            raise RuntimeError(
                f"the engine exited with status {self._proc.returncode}:\n{self.log_tail()}"
            )

    def log_size(self) -> int:
        """Bytes in the engine's log so far."""
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_tail(self, lines: int = 20) -> str:
        """The last lines the engine wrote."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def sample(self) -> ProcSample | None:
        """CPU and memory of the engine over all its starts so far."""
        now = sample_pid(self._proc.pid) if self._proc is not None else None
        if now is None:
            if not self._cpu_before_restarts:
                return None
            return ProcSample(self._cpu_before_restarts, self._peak_mib, 0.0)
        self._peak_mib = max(self._peak_mib, now.peak_rss_mib)
        return ProcSample(now.cpu_seconds + self._cpu_before_restarts, self._peak_mib, now.rss_mib)

    def sample_children(self) -> ProcSample | None:
        """CPU and memory of the engine's child processes (the visibility projection),
        over all the engine's starts so far; None before the first is seen."""
        if self._proc is not None and self._proc.poll() is None:
            for pid in child_pids(self._proc.pid):
                now = sample_pid(pid)
                if now is not None:
                    self._children[pid] = now
        if not self._children:
            return None
        samples = self._children.values()
        return ProcSample(
            sum(s.cpu_seconds for s in samples),
            max(s.peak_rss_mib for s in samples),
            0.0,
        )

    def kill(self) -> None:
        """``kill -9`` the engine (what ``recovery`` measures)."""
        if self._proc is None:
            return
        self.sample_children()
        last = self.sample()
        self._proc.send_signal(signal.SIGKILL)
        self._proc.wait()
        if last is not None:
            self._cpu_before_restarts = last.cpu_seconds
        self._proc = None

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the engine cleanly (SIGTERM), killing it if it does not stop in time."""
        self.ask_to_stop()
        self.wait_stopped(time.monotonic() + timeout)

    def ask_to_stop(self) -> None:
        """Send SIGTERM (the last samples first); :meth:`wait_stopped` waits for the exit."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self.sample()
        self.sample_children()
        self._proc.send_signal(signal.SIGTERM)

    def wait_stopped(self, deadline: float) -> None:
        """Wait for the exit until ``deadline`` (monotonic), then kill."""
        if self._proc is None:
            return
        while self._proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None


class EngineGroup:
    """The engine processes of a run: they share the namespace's partitions through
    the engine's consumer group, as instances deployed side by side do. The first
    also runs the visibility projection; each has a data directory of its own (its
    stores, and its instance id for static membership).

    ``recovery`` kills and restarts the first; the figures add up the CPU of all.
    """

    def __init__(self, settings: Settings, data_dir: Path, count: int, *, log_level: str) -> None:
        if count < 1:
            raise ValueError(f"engines must be at least 1, got {count}")
        self.members = [
            EngineProcess(
                settings,
                data_dir if i == 0 else data_dir / f"engine-{i + 1}",
                log_level=log_level,
                visibility=i == 0,
            )
            for i in range(count)
        ]
        self.first = self.members[0]

    @property
    def log_path(self) -> Path:
        """The first engine's log (the one ``recovery`` restarts)."""
        return self.first.log_path

    def start(self) -> None:
        """Start every engine that is not running (after :meth:`kill`: the first again)."""
        for member in self.members:
            if member.pid is None:
                member.start()

    def check_alive(self) -> None:
        """Raise with the tail of its log when an engine has exited."""
        for i, member in enumerate(self.members):
            try:
                member.check_alive()
            except RuntimeError as exc:
                if len(self.members) == 1:
                    raise
                raise RuntimeError(f"engine {i + 1} of {len(self.members)}: {exc}") from None

    def log_size(self) -> int:
        return self.first.log_size()

    def sample(self) -> ProcSample | None:
        """CPU of all the engines together, the largest peak and current RSS of one."""
        samples = [s for s in (m.sample() for m in self.members) if s is not None]
        if not samples:
            return None
        return ProcSample(
            sum(s.cpu_seconds for s in samples),
            max(s.peak_rss_mib for s in samples),
            max(s.rss_mib for s in samples),
        )

    def cpu_seconds_each(self) -> list[float | None]:
        """Each engine's CPU seconds so far (how evenly they shared the work)."""
        return [
            None if s is None else round(s.cpu_seconds, 2)
            for s in (m.sample() for m in self.members)
        ]

    def partitions_each(self) -> list[int]:
        """How many partitions' stores each engine has opened (those it was assigned)."""
        return [
            sum(1 for _ in (m.data_dir / "engine" / m.namespace).glob("p*")) for m in self.members
        ]

    def sample_children(self) -> ProcSample | None:
        """The first engine's visibility process."""
        return self.first.sample_children()

    def kill(self) -> None:
        """``kill -9`` the first engine."""
        self.first.kill()

    def stop(self, timeout: float = 20.0) -> None:
        """Stop every engine cleanly: all are asked at once, so none takes over the
        partitions of another that is on its way out."""
        for member in self.members:
            member.ask_to_stop()
        deadline = time.monotonic() + timeout
        for member in self.members:
            member.wait_stopped(deadline)
