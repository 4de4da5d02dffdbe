"""``cadenza workflow ...`` as a user runs it: a subprocess against a real engine, a
visibility processor and a worker on the real broker, all in one namespace."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar

import pytest

from cadenza import Settings, activity, workflow
from cadenza.client import Client, WorkflowExecutionStatus
from cadenza.common import RetryPolicy
from cadenza.exceptions import ApplicationError
from cadenza.processors.visibility import Visibility
from cadenza.topics import TopicAdmin
from cadenza.worker import Worker

from .engine_support import running_engine

QUEUE = "cli-workflow"
T = TypeVar("T")


@activity.defn
async def compose(greeting: str, name: str) -> str:
    return f"{greeting}, {name}!"


@workflow.defn(name="CliGreeting")
class CliGreeting:
    def __init__(self) -> None:
        self.approvals: list[str] = []

    @workflow.run
    async def run(self, name: str, wait: bool = False) -> dict[str, Any]:
        if wait:
            await workflow.wait_condition(lambda: bool(self.approvals))
        text = await workflow.execute_activity(
            compose, args=["Hello", name], start_to_close_timeout=timedelta(seconds=10)
        )
        return {"greeting": text, "approvals": self.approvals}

    @workflow.signal
    def approve(self, who: str) -> None:
        self.approvals.append(who)

    @workflow.query
    def approvals_so_far(self) -> list[str]:
        return list(self.approvals)


@activity.defn
async def flaky() -> None:
    raise ApplicationError("backend down", type="Unavailable")


@workflow.defn(name="CliStuck")
class CliStuck:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(
            flaky,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=300), maximum_interval=timedelta(seconds=1)
            ),
        )


@workflow.defn(name="CliDeclined")
class CliDeclined:
    @workflow.run
    async def run(self) -> None:
        raise ApplicationError("card declined", type="Declined", non_retryable=True)


# -- the module's engine, visibility processor and worker ------------------------------


@contextmanager
def _in_thread(run: Callable[[], object], stop: Callable[[], object]) -> Iterator[None]:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop()
        thread.join(30)
        if errors:
            raise errors[0]


@dataclasses.dataclass
class Env:
    """The module's namespace, and a client on an event loop of its own (the worker's)."""

    settings: Settings
    loop: asyncio.AbstractEventLoop
    client: Client | None = None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run ``coro`` on the client's loop and return what it returns."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def c(self) -> Client:
        assert self.client is not None
        return self.client

    def status(self, workflow_id: str) -> WorkflowExecutionStatus:
        return self.run(self.c.get_workflow_handle(workflow_id).describe()).status

    def wait_listed(self, query: str, expected: int = 1, timeout: float = 20) -> None:
        """Wait until visibility counts ``expected`` runs for ``query`` (it lags history)."""
        deadline = time.monotonic() + timeout
        while self.run(self.c.count_workflows(query)).count != expected:
            assert time.monotonic() < deadline, f"visibility never counted {expected} for {query}"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def env(kafka_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    settings = dataclasses.replace(
        kafka_settings, namespace=f"hcli-{uuid.uuid4().hex[:10]}", partitions=2
    )
    admin = TopicAdmin(settings)
    admin.create(task_queues=[QUEUE])
    data = tmp_path_factory.mktemp("cli-workflow")
    visibility = Visibility(settings, data_dir=str(data / "visibility"))
    loop = asyncio.new_event_loop()
    try:
        with (
            running_engine(settings, str(data / "engine")),
            _in_thread(visibility.run, visibility.stop),
            _in_thread(loop.run_forever, lambda: loop.call_soon_threadsafe(loop.stop)),
        ):
            env = Env(settings, loop)
            env.client = env.run(Client.connect(settings=settings))
            worker = Worker(
                env.client,
                task_queue=QUEUE,
                workflows=[CliGreeting, CliStuck, CliDeclined],
                activities=[compose, flaky],
            )
            env.run(worker.__aenter__())
            try:
                yield env
            finally:
                env.run(worker.__aexit__(None, None, None))
                env.run(env.client.close())
    finally:
        loop.close()
        admin.delete_namespace()


# -- running the command line ----------------------------------------------------------

Run = subprocess.CompletedProcess[str]


def _environ(settings: Settings) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CADENZA_")}
    environ.update(settings.to_env())
    return environ


def _argv(args: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-m", "cadenza.cli", "workflow", *args]


def cli(settings: Settings, *args: str, code: int = 0) -> Run:
    """Run ``cadenza workflow ARGS`` and check its exit status; never a traceback."""
    done = subprocess.run(
        _argv(args), env=_environ(settings), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def together(*calls: Callable[[], Run]) -> list[Run]:
    """Make independent ``cli`` calls at once: each is a process, mostly starting Python."""
    with ThreadPoolExecutor(len(calls)) as pool:
        return [future.result() for future in [pool.submit(call) for call in calls]]


def _field(stdout: str, key: str) -> str:
    """The value of ``key`` in a key-value block (``  RunId  0193...``)."""
    for line in stdout.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0] == key:
            return parts[1].strip()
    raise AssertionError(f"no {key} in {stdout!r}")


def _event_types(show_stdout: str) -> list[str]:
    """The event types of ``show``'s lines (``   1  <time>  <type>  <summary>``)."""
    return [line.split()[2] for line in show_stdout.splitlines()]


# -- the tests -------------------------------------------------------------------------


def test_start_then_result_list_count_describe_and_show(env: Env) -> None:
    s, wid = env.settings, f"greet-{uuid.uuid4().hex[:6]}"
    started = cli(s, "start", "--type", "CliGreeting", "-t", QUEUE, "-w", wid, "-i", '"Kafka"')
    assert _field(started.stdout, "WorkflowId") == wid
    assert _field(started.stdout, "Namespace") == s.namespace
    run_id = _field(started.stdout, "RunId")
    assert run_id

    done = cli(s, "result", "-w", wid)
    assert json.loads(done.stdout) == {"greeting": "Hello, Kafka!", "approvals": []}

    by_id = f"WorkflowId = '{wid}'"
    env.wait_listed(f"{by_id} AND ExecutionStatus = 'Completed'")
    table, listed_json, counted, described, described_json, shown, shown_json = together(
        lambda: cli(s, "list", "-q", by_id),
        lambda: cli(s, "list", "-q", by_id, "-o", "json"),
        lambda: cli(s, "count", "-q", by_id),
        lambda: cli(s, "describe", "-w", wid),
        lambda: cli(s, "describe", "-w", wid, "-r", run_id, "-o", "json"),
        lambda: cli(s, "show", "-w", wid),
        lambda: cli(s, "show", "-w", wid, "-o", "json"),
    )

    header, row = table.stdout.splitlines()
    assert header.split() == ["Status", "WorkflowId", "Type", "StartTime", "CloseTime"]
    status, listed_id, listed_type, start_time, close_time = row.split()
    assert (status, listed_id, listed_type) == ("Completed", wid, "CliGreeting")
    assert start_time <= close_time != "-"
    [listed] = json.loads(listed_json.stdout)
    assert (listed["runId"], listed["status"], listed["taskQueue"]) == (run_id, "COMPLETED", QUEUE)
    assert counted.stdout.strip() == "Total: 1"

    assert _field(described.stdout, "Status") == "Completed"
    assert _field(described.stdout, "RunId") == run_id
    assert _field(described.stdout, "Type") == "CliGreeting"
    assert _field(described.stdout, "TaskQueue") == QUEUE
    assert "Pending Activities: 0" in described.stdout
    view = json.loads(described_json.stdout)
    assert (view["status"], view["runId"], view["pendingActivities"]) == ("COMPLETED", run_id, [])

    lines, types = shown.stdout.splitlines(), _event_types(shown.stdout)
    assert types[0] == "WorkflowExecutionStarted" and types[-1] == "WorkflowExecutionCompleted"
    assert len(lines) == view["historyLength"] == int(_field(described.stdout, "HistoryLength"))
    assert 'input=["Kafka"]' in lines[0] and "workflow_type=CliGreeting" in lines[0]
    [scheduled] = [line for line in lines if "ActivityTaskScheduled" in line]
    assert "activity_type=compose" in scheduled and 'input=["Hello", "Kafka"]' in scheduled
    assert '"greeting": "Hello, Kafka!"' in lines[-1]
    events = json.loads(shown_json.stdout)["events"]
    assert [e["eventType"] for e in events] == types
    assert events[0]["attributes"]["input"] == ["Kafka"]
    assert {e["runId"] for e in events} == {run_id}


def test_execute_passes_each_input_as_one_argument(env: Env) -> None:
    wid = f"execute-{uuid.uuid4().hex[:6]}"
    done = cli(
        env.settings,
        *("execute", "--type", "CliGreeting", "-t", QUEUE, "-w", wid),
        *("-i", '"Ada"', "-i", "false"),
    )
    assert _field(done.stdout, "WorkflowId") == wid
    assert _field(done.stdout, "Status") == "Completed"
    assert json.loads(_field(done.stdout, "Result")) == {"greeting": "Hello, Ada!", "approvals": []}


def test_signal_and_query_reach_the_workflow_and_show_follows_it(env: Env) -> None:
    s, wid = env.settings, f"approve-{uuid.uuid4().hex[:6]}"
    cli(s, "start", "--type", "CliGreeting", "-t", QUEUE, "-w", wid, "-i", '"Grace"', "-i", "true")
    follow = subprocess.Popen(
        _argv(("show", "-w", wid, "--follow")),
        env=_environ(s),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        asked = cli(s, "query", "-w", wid, "--type", "approvals_so_far")
        assert json.loads(asked.stdout) == []
        assert (
            "'approve' sent"
            in cli(s, "signal", "-w", wid, "--name", "approve", "-i", '"ops"').stdout
        )
        done = cli(s, "result", "-w", wid)
        assert json.loads(done.stdout) == {"greeting": "Hello, Grace!", "approvals": ["ops"]}
        # --follow ends by itself once the run has closed.
        out, err = follow.communicate(timeout=30)
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait(10)
    assert follow.returncode == 0, err
    lines, types = out.splitlines(), _event_types(out)
    assert types[0] == "WorkflowExecutionStarted" and types[-1] == "WorkflowExecutionCompleted"
    [signaled] = [line for line in lines if "WorkflowExecutionSignaled" in line]
    assert 'signal_name=approve, input=["ops"]' in signaled
    # Each event once, in order, though --follow read the history several times.
    assert [int(line.split()[0]) for line in lines] == list(range(1, len(lines) + 1))


def test_describe_shows_pending_work_and_cancel_and_terminate_close_runs(env: Env) -> None:
    s = env.settings
    waiting, stuck = f"cancel-{uuid.uuid4().hex[:6]}", f"stuck-{uuid.uuid4().hex[:6]}"
    env.run(env.c.start_workflow("CliGreeting", args=["Linus", True], id=waiting, task_queue=QUEUE))
    stuck_handle = env.run(env.c.start_workflow("CliStuck", id=stuck, task_queue=QUEUE))
    deadline = time.monotonic() + 20
    while not any(
        a["attempt"] >= 2
        for a in env.run(stuck_handle.describe()).raw_description["pending_activities"]
    ):
        assert time.monotonic() < deadline, "the activity was never retried"
        time.sleep(0.2)

    described = cli(s, "describe", "-w", stuck).stdout
    assert _field(described, "Status") == "Running"
    assert "Pending Activities: 1" in described
    [row] = [line for line in described.splitlines() if line.split()[:2] == ["1", "flaky"]]
    assert "Unavailable: backend down" in row

    canceled, terminated = together(
        lambda: cli(s, "cancel", "-w", waiting),
        lambda: cli(s, "terminate", "-w", stuck, "--reason", "stuck since Monday"),
    )
    assert "Cancellation requested" in canceled.stdout
    assert f"Workflow '{stuck}' terminated." in terminated.stdout
    assert env.status(stuck) is WorkflowExecutionStatus.TERMINATED
    deadline = time.monotonic() + 20  # the workflow's own code handles the cancellation
    while env.status(waiting) is not WorkflowExecutionStatus.CANCELED:
        assert time.monotonic() < deadline, env.status(waiting)
        time.sleep(0.1)

    result_canceled, result_terminated, shown, again = together(
        lambda: cli(s, "result", "-w", waiting, code=1),
        lambda: cli(s, "result", "-w", stuck, code=1),
        lambda: cli(s, "show", "-w", stuck),
        lambda: cli(s, "terminate", "-w", stuck, code=1),
    )
    assert f"workflow '{waiting}' was canceled" in result_canceled.stderr
    assert f"workflow '{stuck}' was terminated" in result_terminated.stderr
    last = shown.stdout.splitlines()[-1]
    assert "WorkflowExecutionTerminated" in last and 'reason="stuck since Monday"' in last
    assert f"workflow '{stuck}' is already closed" in again.stderr


def test_a_failed_run_prints_its_failure_and_exits_1(env: Env) -> None:
    s, wid = env.settings, f"declined-{uuid.uuid4().hex[:6]}"
    failed = cli(s, "execute", "--type", "CliDeclined", "-t", QUEUE, "-w", wid, code=1)
    assert _field(failed.stdout, "WorkflowId") == wid
    assert f"workflow '{wid}' failed: ApplicationError (Declined): card declined" in failed.stderr
    result, described, shown = together(
        lambda: cli(s, "result", "-w", wid, code=1),
        lambda: cli(s, "describe", "-w", wid),
        lambda: cli(s, "show", "-w", wid),
    )
    assert "card declined" in result.stderr
    assert _field(described.stdout, "Status") == "Failed"
    assert 'failure="Declined: card declined"' in shown.stdout.splitlines()[-1]


def test_errors_say_what_to_do(env: Env) -> None:
    s = env.settings
    unreachable = dataclasses.replace(s, bootstrap_servers="127.0.0.1:1")
    no_topics = dataclasses.replace(s, namespace=f"hcli-{uuid.uuid4().hex[:10]}")
    missing, not_shown, not_signaled, bad_query, bad_input, down, no_namespace = together(
        lambda: cli(s, "describe", "-w", "no-such-workflow", code=1),
        lambda: cli(s, "show", "-w", "no-such-workflow", code=1),
        lambda: cli(s, "signal", "-w", "no-such-workflow", "--name", "go", code=1),
        lambda: cli(s, "list", "-q", "WorkflowType = ", code=1),
        lambda: cli(
            s, "start", "--type", "CliGreeting", "-t", QUEUE, "-i", "1", "-i", "Ada", code=1
        ),
        lambda: cli(unreachable, "describe", "-w", "x", "--command-timeout", "2", code=1),
        lambda: cli(no_topics, "count", code=1),
    )
    assert "workflow 'no-such-workflow' not found in namespace" in missing.stderr
    assert f"`cadenza workflow list -n {s.namespace}`" in missing.stderr
    assert "workflow 'no-such-workflow' not found" in not_shown.stderr
    assert "workflow 'no-such-workflow' not found" in not_signaled.stderr
    assert "invalid --query: expected a value for WorkflowType =" in bad_query.stderr
    assert "--input #2 ('Ada') is not valid JSON" in bad_input.stderr
    assert "cannot reach Kafka at 127.0.0.1:1" in down.stderr
    assert f"cadenza topics create --namespace {no_topics.namespace}" in no_namespace.stderr


def test_a_namespace_without_processors_says_to_run_them(
    kafka_settings: Settings, env: Env
) -> None:
    idle = dataclasses.replace(
        kafka_settings, namespace=f"hcli-{uuid.uuid4().hex[:10]}", partitions=1
    )
    admin = TopicAdmin(idle)
    admin.create()
    try:
        engine, listing = together(
            lambda: cli(idle, "describe", "-w", "x", "--command-timeout", "1", code=1),
            lambda: cli(idle, "list", "--command-timeout", "1", code=1),
        )
    finally:
        admin.delete_namespace()
    hint = f"is `cadenza processors run` running for namespace {idle.namespace}"
    assert "the engine did not answer within 1s" in engine.stderr and hint in engine.stderr
    assert "the visibility processor did not answer within 1s" in listing.stderr
    assert hint in listing.stderr
