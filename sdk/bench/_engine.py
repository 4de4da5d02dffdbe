"""The engine under test, run as its own process (``python -m cadenza.cli processors run``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cadenza._settings import Settings

from ._procs import ProcSample, child_pids, sample_pid

__all__ = ["EngineProcess"]


class EngineProcess:
    """One engine subprocess on a data directory that outlives restarts (for ``recovery``)."""

    def __init__(self, settings: Settings, data_dir: Path, *, log_level: str = "WARNING") -> None:
        self._settings = settings
        self._log_level = log_level
        self.data_dir = data_dir
        self.log_path = data_dir / "engine.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._cpu_before_restarts = 0.0
        self._peak_mib = 0.0
        self._children: dict[int, ProcSample] = {}
        """The last sample of each child the engine started (its visibility process)."""
        self.starts = 0

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
        if self._proc is None:
            return
        self.sample()
        self.sample_children()
        self._proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self._proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None
