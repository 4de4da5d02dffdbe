"""Engine decisions run without Kafka: the decider over a real store, outputs captured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cadenza import schemas
from cadenza.processors.engine._decide import decide
from cadenza.processors.engine._metrics import EngineMetrics
from cadenza.processors.engine._processor import _Batch
from cadenza.processors.engine._store import PartitionStore
from cadenza.processors.engine._timers import RESEND_UNTAKEN_TASK_AFTER_MS, timers_of
from cadenza.worker._continuation import continuation_history

T0 = 1_700_000_000_000
_H = "cadenza.history."


class _Outputs:
    """Stands in for the engine: records what a batch produces."""

    history = changelog = replies = commands = "out"

    def __init__(self) -> None:
        self.metrics = EngineMetrics()
        self.workflow_tasks: list[dict[str, Any]] = []
        self.activity_tasks: list[dict[str, Any]] = []
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.event_records: list[dict[str, Any]] = []
        self.sent_replies: list[dict[str, Any]] = []

    def changelog_target(self, partition: int) -> tuple[int, None]:
        return partition, None

    def task_topic(self, name_of: Any, queue: str) -> str:
        return "tasks"

    def produce(self, topic: str, key: bytes, value: bytes, **_: Any) -> None:
        name, datum = schemas.decode(value)
        if name == schemas.WORKFLOW_TASK:
            self.workflow_tasks.append(datum)
        elif name == schemas.ACTIVITY_TASK:
            self.activity_tasks.append(datum)
        elif name == schemas.HISTORY_EVENT:
            self.events.append(datum["attributes"])
            self.event_records.append(datum)
        elif name == schemas.REPLY:
            self.sent_replies.append(datum)


def _step(store: PartitionStore, out: _Outputs, now: int, *commands: dict[str, Any]) -> None:
    batch = _Batch(out, 0, store, now)  # type: ignore[arg-type]
    for command in commands:
        decide(batch, command)
    store.write(batch.flush(), None)


def _command(body: tuple[str, dict[str, Any]], run_id: str | None = None) -> dict[str, Any]:
    return {
        "command_id": f"c-{body[0]}",
        "workflow_id": "w",
        "run_id": run_id,
        "sent_time_ms": T0,
        "body": body,
    }


def test_a_task_resent_after_a_sticky_cache_miss_waits_from_the_resend(
    tmp_path: Path,
) -> None:
    store, out = PartitionStore(tmp_path), _Outputs()
    start = {"workflow_type": "W", "task_queue": "q", "request_id": "r", "task_timeout_ms": 10_000}
    _step(store, out, T0, _command(("cadenza.command.StartWorkflow", start)))
    task = out.workflow_tasks[-1]
    miss = {
        "scheduled_event_id": task["scheduled_event_id"],
        "attempt": task["attempt"],
        "cause": "STICKY_CACHE_MISS",
    }
    # The worker, behind a backlog, takes the task 8 s late and has no cached run.
    _step(
        store,
        out,
        T0 + 8000,
        _command(("cadenza.command.WorkflowTaskFailed", miss), task["run_id"]),
    )
    resent = out.workflow_tasks[-1]
    assert resent["history_from_event_id"] == 1
    assert resent["scheduled_event_id"] == task["scheduled_event_id"]
    deadlines = {
        due.due_time_ms
        for due in timers_of(store.state("w"))
        if due.kind.startswith("WORKFLOW_TASK")
    }
    # The resend waits for a worker as any task does (no word yet: no timeout).
    assert deadlines == {T0 + 8000 + RESEND_UNTAKEN_TASK_AFTER_MS}
    store.close()


def test_a_workflow_task_nobody_takes_waits_for_a_worker(tmp_path: Path) -> None:
    """No worker for the queue: as in Temporal's task queue, the task waits, with no
    timeout in history, nothing sent again and no command written, for six days;
    then it is sent again (the topic keeps records a week), and every six days."""
    store, out = PartitionStore(tmp_path), _Outputs()
    start = {"workflow_type": "W", "task_queue": "q", "request_id": "r", "task_timeout_ms": 10_000}
    _step(store, out, T0, _command(("cadenza.command.StartWorkflow", start)))
    run_id = out.workflow_tasks[-1]["run_id"]
    events_before = len(out.events)
    now, dues = T0, []
    while True:
        [due] = [d for d in timers_of(store.state("w")) if d.kind == "WORKFLOW_TASK_START_TO_CLOSE"]
        dues.append(round((due.due_time_ms - T0) / 86_400_000, 1))
        if due.due_time_ms > T0 + 13 * 86_400_000:
            break
        now = due.due_time_ms
        _step(store, out, now, _timeout_fired(run_id, due))
    assert dues == [6.0, 12.0, 18.0]
    assert len(out.events) == events_before, "no WorkflowTaskTimedOut, no new attempt"
    assert [t["attempt"] for t in out.workflow_tasks] == [1, 1, 1]
    assert out.workflow_tasks[-1]["history_from_event_id"] == 1, "sent whole"
    # A worker that comes back takes it, and the run goes on.
    task = out.workflow_tasks[-1]
    done = {
        "scheduled_event_id": task["scheduled_event_id"],
        "attempt": task["attempt"],
        "commands": [("cadenza.command.CompleteWorkflowExecution", {"result": None})],
    }
    _step(store, out, now + 5, _command(("cadenza.command.WorkflowTaskCompleted", done), run_id))
    assert out.events[-1][0] == _H + "WorkflowExecutionCompleted"
    store.close()


def test_a_workflow_task_a_worker_started_times_out_from_its_word(tmp_path: Path) -> None:
    """A worker says it started a task after running it a moment; then the timeout
    counts, and each further attempt gets twice the timeout, up to 10 minutes."""
    store, out = PartitionStore(tmp_path), _Outputs()
    start = {"workflow_type": "W", "task_queue": "q", "request_id": "r", "task_timeout_ms": 10_000}
    _step(store, out, T0, _command(("cadenza.command.StartWorkflow", start)))
    run_id, timeouts = out.workflow_tasks[-1]["run_id"], []
    now = T0 + 3000
    for _ in range(8):
        task = out.workflow_tasks[-1]
        word = {"scheduled_event_id": task["scheduled_event_id"], "attempt": task["attempt"]}
        _step(store, out, now, _command(("cadenza.command.WorkflowTaskStarted", word), run_id))
        [due] = [d for d in timers_of(store.state("w")) if d.kind == "WORKFLOW_TASK_START_TO_CLOSE"]
        timeouts.append(due.due_time_ms - now)
        now = due.due_time_ms
        _step(store, out, now, _timeout_fired(run_id, due))
        now += 1000
    assert timeouts == [10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 600_000, 600_000]
    # History has the first attempt and its timeout; the later attempts are
    # transient (the worker gets their events, history does not).
    assert [name.removeprefix(_H) for name, _ in out.events] == [
        "WorkflowExecutionStarted",
        "WorkflowTaskScheduled",
        "WorkflowTaskStarted",
        "WorkflowTaskTimedOut",
    ]
    assert [t["attempt"] for t in out.workflow_tasks] == list(range(1, 10))
    last = out.workflow_tasks[-1]
    scheduled, started = last["history"][-2:]
    assert (scheduled["event_id"], started["event_id"]) == (5, 6)
    assert scheduled["attributes"][1]["attempt"] == 9
    assert scheduled["attributes"][1]["start_to_close_timeout_ms"] == 600_000
    # A stale word (an earlier attempt) changes nothing.
    before = store.state("w")
    _step(
        store,
        out,
        now,
        _command(
            ("cadenza.command.WorkflowTaskStarted", {"scheduled_event_id": 2, "attempt": 1}),
            run_id,
        ),
    )
    assert store.state("w") == before
    store.close()


# -- transient workflow tasks (attempt 2 on) ---------------------------------------------------


def _failing_run(tmp_path: Path, failures: int) -> tuple[PartitionStore, _Outputs, str, int]:
    """A run whose workflow task failed ``failures`` times (backoff waited out)."""
    store, out = PartitionStore(tmp_path), _Outputs()
    start = {"workflow_type": "W", "task_queue": "q", "request_id": "r"}
    _step(store, out, T0, _command(("cadenza.command.StartWorkflow", start)))
    run_id, now = out.workflow_tasks[-1]["run_id"], T0
    for _ in range(failures):
        task = out.workflow_tasks[-1]
        now += 100
        failed = {
            "scheduled_event_id": task["scheduled_event_id"],
            "attempt": task["attempt"],
            "cause": "WORKFLOW_WORKER_UNHANDLED_FAILURE",
            "failure": {"message": "a bug", "source": "", "stack_trace": "", "cause": None},
        }
        _step(store, out, now, _answer("WorkflowTaskFailed", run_id, **failed))
        for due in timers_of(store.state("w")):
            if due.kind == "WORKFLOW_BACKOFF":
                now = due.due_time_ms
                _step(store, out, now, _timeout_fired(run_id, due))
    return store, out, run_id, now


def _names(out: _Outputs) -> list[str]:
    return [name.removeprefix(_H) for name, _ in out.events]


def test_a_task_that_keeps_failing_writes_its_first_failure_only(tmp_path: Path) -> None:
    """As in Temporal: attempt 2 on is transient. Its two events go to the worker
    with the history, nothing is written while it keeps failing, and they are
    written, with the attempt, when the task completes."""
    store, out, run_id, now = _failing_run(tmp_path, failures=6)
    assert _names(out) == [
        "WorkflowExecutionStarted",
        "WorkflowTaskScheduled",
        "WorkflowTaskStarted",
        "WorkflowTaskFailed",
    ]
    assert [t["attempt"] for t in out.workflow_tasks] == [1, 2, 3, 4, 5, 6, 7]
    task = out.workflow_tasks[-1]
    assert (task["scheduled_event_id"], task["started_event_id"]) == (5, 6)
    assert [e["event_id"] for e in task["history"]] == [1, 2, 3, 4, 5, 6]
    assert task["history"][-2]["attributes"] == (
        _H + "WorkflowTaskScheduled",
        {"task_queue": "q", "start_to_close_timeout_ms": 600_000, "attempt": 7},
    )
    assert task["history"][-1]["attributes"][0] == _H + "WorkflowTaskStarted"
    assert task["next_event_id"] == 7
    done = {
        "scheduled_event_id": 5,
        "attempt": 7,
        "commands": [("cadenza.command.CompleteWorkflowExecution", {"result": None})],
    }
    _step(store, out, now + 50, _answer("WorkflowTaskCompleted", run_id, **done))
    assert _names(out)[4:] == [
        "WorkflowTaskScheduled",
        "WorkflowTaskStarted",
        "WorkflowTaskCompleted",
        "WorkflowExecutionCompleted",
    ]
    records = out.event_records
    assert [e["event_id"] for e in records] == list(range(1, 9))
    assert records[4]["event_time_ms"] == task["scheduled_time_ms"], "sent, not completed"
    times = [e["event_time_ms"] for e in records]
    assert times == sorted(times)
    store.close()


def test_an_event_while_a_transient_task_is_out_writes_its_events_first(
    tmp_path: Path,
) -> None:
    """The worker holds the transient task's event ids, so a signal that arrives
    meanwhile comes after them, and the completion sees a new event."""
    store, out, run_id, now = _failing_run(tmp_path, failures=2)
    signal = {"signal_name": "go", "input": [], "identity": "me"}
    _step(store, out, now + 10, _answer("SignalWorkflow", run_id, **signal))
    assert _names(out)[4:] == [
        "WorkflowTaskScheduled",
        "WorkflowTaskStarted",
        "WorkflowExecutionSignaled",
    ]
    assert out.events[4][1]["attempt"] == 3
    assert len(out.workflow_tasks) == 3, "the task out with the worker is still current"
    # Its completion applies; the signal needs a new task (attempt 1, written).
    done = {"scheduled_event_id": 5, "attempt": 3, "commands": []}
    _step(store, out, now + 20, _answer("WorkflowTaskCompleted", run_id, **done))
    assert _names(out)[7:] == [
        "WorkflowTaskCompleted",
        "WorkflowTaskScheduled",
        "WorkflowTaskStarted",
    ]
    assert out.workflow_tasks[-1]["attempt"] == 1
    # A failure of that task is written again: it is in history.
    failed = {"scheduled_event_id": 9, "attempt": 1, "cause": "WORKFLOW_WORKER_UNHANDLED_FAILURE"}
    _step(store, out, now + 30, _answer("WorkflowTaskFailed", run_id, **failed))
    assert _names(out)[-1] == "WorkflowTaskFailed"
    store.close()


def test_a_transient_task_is_dropped_when_the_run_is_terminated(tmp_path: Path) -> None:
    store, out, run_id, now = _failing_run(tmp_path, failures=1)
    _step(store, out, now + 10, _answer("TerminateWorkflow", run_id, reason="stop"))
    assert _names(out)[4:] == ["WorkflowExecutionTerminated"]
    assert out.event_records[-1]["event_id"] == 5
    store.close()


def test_a_run_rebuilt_while_its_task_retried_is_sent_a_task_again(tmp_path: Path) -> None:
    """History does not record a transient task (nor a retry's backoff): a run
    rebuilt from it has none out, and its timer index makes one due at once."""
    from cadenza.processors.engine import scheduling_fields

    store, _, _, now = _failing_run(tmp_path, failures=2)
    live = store.state("w")
    assert live["workflow_task"]["attempt"] == 3
    rebuilt = scheduling_fields(live)
    assert rebuilt["workflow_task"] is None and rebuilt["workflow_task_needed"]
    [due] = [d for d in timers_of(rebuilt) if d.kind == "WORKFLOW_START_DELAY"]
    assert due.due_time_ms <= now
    store.close()


def test_a_reset_sticky_task_queue_makes_the_next_task_whole(tmp_path: Path) -> None:
    store, out = PartitionStore(tmp_path), _Outputs()
    start = {"workflow_type": "W", "task_queue": "q", "request_id": "r"}
    _step(store, out, T0, _command(("cadenza.command.StartWorkflow", start)))
    task = out.workflow_tasks[-1]
    run_id = task["run_id"]
    timer = {"timer_id": "1", "start_to_fire_timeout_ms": 1000}
    done = {
        "scheduled_event_id": task["scheduled_event_id"],
        "attempt": 1,
        "commands": [("cadenza.command.StartTimer", timer)],
        "sticky": True,
    }
    _step(store, out, T0 + 10, _command(("cadenza.command.WorkflowTaskCompleted", done), run_id))
    state = store.state("w")
    assert state is not None and state["worker_seen_event_id"] == task["started_event_id"]
    # The worker evicts the run while it sleeps; the wake-up task carries everything.
    _step(store, out, T0 + 20, _command(("cadenza.command.ResetStickyTaskQueue", {}), run_id))
    fired = {"timer_id": "1", "started_event_id": 5}
    _step(store, out, T0 + 1010, _command(("cadenza.command.TimerFired", fired), run_id))
    woken = out.workflow_tasks[-1]
    assert woken["history_from_event_id"] == 1
    assert woken["history"][0]["attributes"][0] == "cadenza.history.WorkflowExecutionStarted"
    store.close()


# -- eager activities --------------------------------------------------------------------


_EAGER_SCHEDULE = {
    "activity_id": "1",
    "activity_type": "A",
    "task_queue": "q",
    "input": [{"metadata": {"encoding": b"json/plain"}, "data": b'"x"'}],
    "start_to_close_timeout_ms": 5000,
    "request_eager_execution": True,
}


def _scheduled_eagerly(tmp_path: Path, **activity: Any) -> tuple[PartitionStore, _Outputs, str]:
    """A run whose first task completed with one activity (id "1") requested eagerly."""
    store, out = PartitionStore(tmp_path), _Outputs()
    start = {"workflow_type": "W", "task_queue": "q", "request_id": "r"}
    _step(store, out, T0, _command(("cadenza.command.StartWorkflow", start)))
    task = out.workflow_tasks[-1]
    schedule = {**_EAGER_SCHEDULE, **activity}
    done = {
        "scheduled_event_id": task["scheduled_event_id"],
        "attempt": 1,
        "commands": [("cadenza.command.ScheduleActivityTask", schedule)],
    }
    _step(
        store,
        out,
        T0 + 10,
        _command(("cadenza.command.WorkflowTaskCompleted", done), task["run_id"]),
    )
    return store, out, task["run_id"]


def _answer(name: str, run_id: str, **body: Any) -> dict[str, Any]:
    return _command((f"cadenza.command.{name}", body), run_id)


def _eager_answer(name: str, run_id: str, **body: Any) -> dict[str, Any]:
    """An answer of eager attempt 1 of activity "1", named by activity id."""
    return _answer(name, run_id, scheduled_event_id=0, attempt=1, activity_id="1", **body)


def _timeout_fired(run_id: str, due: Any) -> dict[str, Any]:
    """The timer service's ``TimeoutFired`` for ``due`` (one of ``timers_of``)."""
    return _answer(
        "TimeoutFired",
        run_id,
        kind=due.kind,
        ref_event_id=due.ref,
        attempt=due.attempt,
        due_time_ms=due.due_time_ms,
    )


def test_an_eager_activity_is_recorded_started_and_not_dispatched(tmp_path: Path) -> None:
    store, out, run_id = _scheduled_eagerly(tmp_path)
    assert out.activity_tasks == []
    name, attrs = out.events[-1]
    assert name == "cadenza.history.ActivityTaskScheduled" and attrs["eager_execution"]
    # Its start-to-close runs from the completion; it never waits for a worker.
    kinds = {due.kind: due.due_time_ms for due in timers_of(store.state("w"))}
    assert kinds["ACTIVITY_START_TO_CLOSE"] == T0 + 10 + 5000
    assert "ACTIVITY_SCHEDULE_TO_START" not in kinds
    # The worker names the attempt by activity id: scheduled event id 0.
    result = [{"metadata": {}, "data": b"1"}]
    completed = _eager_answer("ActivityTaskCompleted", run_id, result=result)
    _step(store, out, T0 + 20, completed)
    names = [name for name, _ in out.events[-4:]]
    assert names[:2] == [
        "cadenza.history.ActivityTaskStarted",
        "cadenza.history.ActivityTaskCompleted",
    ]
    assert out.events[-3][1]["result"] == result
    state = store.state("w")
    assert state is not None and state["activities"] == {}
    # The same answer again is stale: nothing more is written.
    before = len(out.events)
    _step(store, out, T0 + 30, completed)
    assert len(out.events) == before
    store.close()


def test_answers_by_activity_id_match_only_an_eager_attempt_of_that_id(tmp_path: Path) -> None:
    store, out, run_id = _scheduled_eagerly(tmp_path, request_eager_execution=False)
    assert len(out.activity_tasks) == 1  # dispatched as usual
    scheduled = out.activity_tasks[0]["scheduled_event_id"]
    before = len(out.events)
    for body in (
        {"scheduled_event_id": 0, "activity_id": "1"},  # not eager: needs its event id
        {"scheduled_event_id": scheduled, "activity_id": "2"},  # another activity's id
        {"scheduled_event_id": 0, "activity_id": ""},
    ):
        _step(store, out, T0 + 20, _answer("ActivityTaskCompleted", run_id, attempt=1, **body))
    assert len(out.events) == before
    ok = {"scheduled_event_id": scheduled, "activity_id": "1", "attempt": 1}
    _step(store, out, T0 + 30, _answer("ActivityTaskCompleted", run_id, **ok))
    assert out.events[before + 1][0] == "cadenza.history.ActivityTaskCompleted"
    store.close()


def test_a_failed_eager_attempt_is_retried_through_the_task_topic(tmp_path: Path) -> None:
    policy = {
        "initial_interval_ms": 100,
        "backoff_coefficient": 2.0,
        "maximum_interval_ms": None,
        "maximum_attempts": 3,
        "non_retryable_error_types": [],
    }
    store, out, run_id = _scheduled_eagerly(tmp_path, retry_policy=policy)
    failure = {"message": "boom", "source": "test", "stack_trace": "", "cause": None, "info": None}
    failed = _eager_answer("ActivityTaskFailed", run_id, failure=failure)
    _step(store, out, T0 + 20, failed)
    (backoff,) = [d for d in timers_of(store.state("w")) if d.kind == "ACTIVITY_RETRY_BACKOFF"]
    _step(store, out, backoff.due_time_ms, _timeout_fired(run_id, backoff))
    (retry,) = out.activity_tasks
    assert retry["attempt"] == 2 and retry["scheduled_event_id"] > 0
    state = store.state("w")
    assert state is not None
    (activity,) = state["activities"].values()
    assert not activity["eager"]
    # Attempt 2 is not eager: an answer by activity id alone no longer matches it.
    before = len(out.events)
    by_id = _answer(
        "ActivityTaskCompleted", run_id, scheduled_event_id=0, attempt=2, activity_id="1"
    )
    _step(store, out, T0 + 30, by_id)
    assert len(out.events) == before
    store.close()


# -- activity attempts no worker has taken -------------------------------------------------


_TWO_ATTEMPTS = {
    "initial_interval_ms": 1000,
    "backoff_coefficient": 2.0,
    "maximum_interval_ms": None,
    "maximum_attempts": 2,
    "non_retryable_error_types": [],
}


def _activity_dues(store: PartitionStore) -> dict[str, int]:
    return {d.kind: d.due_time_ms for d in timers_of(store.state("w")) if "ACTIVITY" in d.kind}


def test_an_activity_attempt_no_worker_takes_waits_without_spending_attempts(
    tmp_path: Path,
) -> None:
    """Start-to-close counts from a worker's word that it started the attempt, as
    Temporal's counts from a poll: with no worker for the queue, the attempt waits,
    and is sent again (the same attempt) every six days, as the topic keeps a week."""
    from cadenza import Settings
    from cadenza.topics import ACTIVITY_TASKS, WORKFLOW_TASKS

    for topic in (ACTIVITY_TASKS, WORKFLOW_TASKS):
        assert RESEND_UNTAKEN_TASK_AFTER_MS <= topic.retention_ms(Settings.defaults()) - 86_400_000
    store, out, run_id = _scheduled_eagerly(
        tmp_path,
        request_eager_execution=False,
        retry_policy=_TWO_ATTEMPTS,
        heartbeat_timeout_ms=3000,
    )
    assert len(out.activity_tasks) == 1
    assert _activity_dues(store) == {"ACTIVITY_START_TO_CLOSE": T0 + 10 + 6 * 86_400_000}
    now, sent_at = T0 + 10, []
    while True:
        [due] = [d for d in timers_of(store.state("w")) if d.kind == "ACTIVITY_START_TO_CLOSE"]
        if due.due_time_ms > T0 + 13 * 86_400_000:
            break
        now = due.due_time_ms
        before = len(out.activity_tasks)
        _step(store, out, now, _timeout_fired(run_id, due))
        if len(out.activity_tasks) > before:
            sent_at.append(round((now - T0) / 86_400_000, 1))
    assert sent_at == [6.0, 12.0]
    assert {t["attempt"] for t in out.activity_tasks} == {1}, "no retry spent"
    assert "cadenza.history.ActivityTaskTimedOut" not in [name for name, _ in out.events]

    # A worker comes back and takes it: from its word, the timeouts count.
    task = out.activity_tasks[-1]
    ids = {"scheduled_event_id": task["scheduled_event_id"], "attempt": 1, "activity_id": "1"}
    _step(store, out, now + 100, _answer("ActivityTaskStarted", run_id, **ids))
    assert _activity_dues(store) == {
        "ACTIVITY_START_TO_CLOSE": now + 100 + 5000,
        "ACTIVITY_HEARTBEAT": now + 100 + 3000,
    }
    [heartbeat] = [d for d in timers_of(store.state("w")) if d.kind == "ACTIVITY_HEARTBEAT"]
    _step(store, out, heartbeat.due_time_ms, _timeout_fired(run_id, heartbeat))
    (activity,) = store.state("w")["activities"].values()  # type: ignore[index]
    assert activity["attempt"] == 2, "a started attempt times out as before"
    store.close()


def test_a_heartbeat_says_the_attempt_started(tmp_path: Path) -> None:
    store, out, run_id = _scheduled_eagerly(
        tmp_path, request_eager_execution=False, heartbeat_timeout_ms=3000
    )
    task = out.activity_tasks[0]
    ids = {"scheduled_event_id": task["scheduled_event_id"], "attempt": 1, "activity_id": "1"}
    _step(store, out, T0 + 500, _answer("ActivityTaskHeartbeat", run_id, details=[], **ids))
    assert _activity_dues(store) == {
        "ACTIVITY_START_TO_CLOSE": T0 + 500 + 5000,
        "ACTIVITY_HEARTBEAT": T0 + 500 + 3000,
    }
    store.close()


# -- continuations (a worker runs the next task itself after an eager attempt) ------------


def _continued(result: list[Any], commands: list[Any], *, task: int = 8, at: int) -> dict[str, Any]:
    """The eager attempt's result with the workflow task it wakes, run by the worker."""
    return {
        "result": result,
        "continuation": {
            "task_time_ms": at,
            "completion": {"scheduled_event_id": task, "attempt": 1, "commands": commands},
        },
    }


def test_a_continuation_is_recorded_as_the_next_task_without_dispatching_it(
    tmp_path: Path,
) -> None:
    store, out, run_id = _scheduled_eagerly(tmp_path)  # ActivityTaskScheduled is event 5
    tasks = len(out.workflow_tasks)
    result = [{"metadata": {}, "data": b"1"}]
    finish = ("cadenza.command.CompleteWorkflowExecution", {"result": result})
    answer = _eager_answer(
        "ActivityTaskCompleted", run_id, **_continued(result, [finish], at=T0 + 15)
    )
    _step(store, out, T0 + 20, answer)
    assert [(e["event_id"], e["attributes"][0]) for e in out.event_records[-6:]] == [
        (6, _H + "ActivityTaskStarted"),
        (7, _H + "ActivityTaskCompleted"),
        (8, _H + "WorkflowTaskScheduled"),
        (9, _H + "WorkflowTaskStarted"),
        (10, _H + "WorkflowTaskCompleted"),
        (11, _H + "WorkflowExecutionCompleted"),
    ]
    # The task is recorded at the worker's time: replay gives workflow.now() that value.
    times = [e["event_time_ms"] for e in out.event_records[-6:]]
    assert times == [T0 + 20] * 2 + [T0 + 15] * 2 + [T0 + 20] * 2
    assert len(out.workflow_tasks) == tasks  # nothing dispatched
    state = store.state("w")
    assert state is not None and state["status"] == "COMPLETED"
    store.close()


def test_continuations_chain_one_activity_after_another(tmp_path: Path) -> None:
    store, out, run_id = _scheduled_eagerly(tmp_path)
    result = [{"metadata": {}, "data": b"1"}]
    second = {
        "activity_id": "2",
        "activity_type": "A",
        "task_queue": "q",
        "start_to_close_timeout_ms": 5000,
        "request_eager_execution": True,
    }
    step = _continued(result, [("cadenza.command.ScheduleActivityTask", second)], at=T0 + 15)
    _step(store, out, T0 + 20, _eager_answer("ActivityTaskCompleted", run_id, **step))
    assert out.event_records[-1]["event_id"] == 11  # the second ActivityTaskScheduled
    finish = ("cadenza.command.CompleteWorkflowExecution", {"result": result})
    last = _answer(
        "ActivityTaskCompleted",
        run_id,
        scheduled_event_id=0,
        attempt=1,
        activity_id="2",
        **_continued(result, [finish], task=14, at=T0 + 25),
    )
    _step(store, out, T0 + 30, last)
    state = store.state("w")
    assert state is not None and state["status"] == "COMPLETED"
    assert len(out.workflow_tasks) == 1  # the first task only
    store.close()


def test_a_continuation_after_another_event_is_ignored_and_the_task_dispatched(
    tmp_path: Path,
) -> None:
    store, out, run_id = _scheduled_eagerly(tmp_path)
    signal = {"signal_name": "s", "input": [], "signal_id": "sig-1"}
    _step(store, out, T0 + 12, _command(("cadenza.command.SignalWorkflow", signal), run_id))
    (task,) = out.workflow_tasks[1:]  # the signal woke the workflow
    result = [{"metadata": {}, "data": b"1"}]
    finish = ("cadenza.command.CompleteWorkflowExecution", {"result": result})
    answer = _eager_answer(
        "ActivityTaskCompleted", run_id, **_continued(result, [finish], at=T0 + 15)
    )
    _step(store, out, T0 + 20, answer)
    # The outcome is recorded; the worker's task is not (it did not see the signal).
    assert [name for name, _ in out.events[-2:]] == [
        _H + "ActivityTaskStarted",
        _H + "ActivityTaskCompleted",
    ]
    state = store.state("w")
    assert state is not None and state["status"] == "RUNNING"
    assert state["workflow_task"]["scheduled_event_id"] == task["scheduled_event_id"]
    store.close()


def test_a_continuation_naming_another_task_is_ignored(tmp_path: Path) -> None:
    """The worker's idea of the history is off (it names task 9, the next is 8): the
    engine dispatches the task, whose history then shows the worker where it is."""
    store, out, run_id = _scheduled_eagerly(tmp_path)
    result = [{"metadata": {}, "data": b"1"}]
    finish = ("cadenza.command.CompleteWorkflowExecution", {"result": result})
    answer = _eager_answer(
        "ActivityTaskCompleted", run_id, **_continued(result, [finish], task=9, at=T0 + 15)
    )
    _step(store, out, T0 + 20, answer)
    dispatched = out.workflow_tasks[-1]
    assert dispatched["scheduled_event_id"] == 8
    assert dispatched["history_from_event_id"] == 4  # after the first task's WorkflowTaskStarted
    assert [e["attributes"][0] for e in out.event_records[-2:]] == [
        _H + "WorkflowTaskScheduled",
        _H + "WorkflowTaskStarted",
    ]
    assert out.event_records[-1]["event_time_ms"] == T0 + 20
    state = store.state("w")
    assert state is not None and state["status"] == "RUNNING"
    store.close()


def test_the_engine_records_the_history_a_continuation_assumes(tmp_path: Path) -> None:
    """Without a continuation, the engine records after an eager attempt exactly the
    events (ids, kinds, and what the workflow reads of them) the worker assumes."""
    store, out, run_id = _scheduled_eagerly(tmp_path)
    first = out.workflow_tasks[0]
    result = [{"metadata": {}, "data": b"1"}]
    _step(store, out, T0 + 20, _eager_answer("ActivityTaskCompleted", run_id, result=result))
    recorded = out.workflow_tasks[-1]["history"]
    assumed = continuation_history(
        first, _EAGER_SCHEDULE, result, time_ms=T0 + 20, identity="", build_id=""
    )
    assert [(e["event_id"], e["attributes"][0]) for e in recorded] == [
        (e["event_id"], e["attributes"][0]) for e in assumed
    ]
    for mine, theirs in zip(assumed, recorded, strict=True):
        attributes = theirs["attributes"][1]
        for key, value in mine["attributes"][1].items():
            assert attributes[key] == value, (mine["attributes"][0], key)
    store.close()


class _Sizes(_Outputs):
    """Also keeps the size of every record produced, by topic."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[str, int]] = []

    def produce(self, topic: str, key: bytes, value: bytes, **kw: Any) -> None:
        self.records.append((topic, len(value)))
        super().produce(topic, key, value, **kw)


def test_a_command_costs_the_same_however_long_the_history(tmp_path: Path) -> None:
    """History append is O(1): a signal to a run with 2,000 events writes what it
    writes to a run with 10 (one event record and key, one state of the same size)."""
    store = PartitionStore(tmp_path)
    start = {"workflow_type": "W", "task_queue": "q", "request_id": "r"}
    _step(store, _Outputs(), T0, _command(("cadenza.command.StartWorkflow", start)))

    def signal(n: int) -> tuple[list[tuple[str, int]], int]:
        out = _Sizes()
        batch = _Batch(out, 0, store, T0 + n)  # type: ignore[arg-type]
        body = {"signal_name": "s", "input": [], "signal_id": f"sig-{n:06d}"}
        command = dict(_command(("cadenza.command.SignalWorkflow", body)), command_id=f"c-{n}")
        decide(batch, command)
        wb = batch.flush()
        keys = len(wb)
        store.write(wb, None)
        return out.records, keys

    early = [signal(n) for n in range(1, 8)][-1]
    for n in range(8, 1_100):
        signal(n)
    middle = signal(1_100)  # the state's list of recent signal ids is full from here
    for n in range(1_101, 2_000):
        signal(n)
    late = signal(2_000)
    assert store.state("w")["next_event_id"] > 2_000  # type: ignore[index]
    for records, keys in (middle, late):
        assert [topic for topic, _ in records] == [topic for topic, _ in early[0]]
        assert keys == early[1]
    # 900 events later, the same records of the same size (the state holds no history).
    for (_, then), (_, now) in zip(middle[0], late[0], strict=True):
        assert abs(now - then) <= 4, (then, now)


def _reply_to(request_id: str) -> dict[str, Any]:
    return {"client_id": "c", "partition": 0, "request_id": request_id}


def test_a_start_that_asks_for_the_result_is_answered_when_the_run_closes(
    tmp_path: Path,
) -> None:
    store, out = PartitionStore(tmp_path), _Outputs()
    start = {
        "workflow_type": "W",
        "task_queue": "q",
        "request_id": "r",
        "result_reply_to": _reply_to("result"),
    }
    _step(
        store,
        out,
        T0,
        dict(_command(("cadenza.command.StartWorkflow", start)), reply_to=_reply_to("start")),
    )
    [started] = out.sent_replies
    assert started["request_id"] == "start"
    assert started["body"][0] == "cadenza.reply.WorkflowStarted"
    task = out.workflow_tasks[-1]
    payload = {"metadata": {"encoding": b"json/plain"}, "data": b'"done"'}
    complete = {
        "scheduled_event_id": task["scheduled_event_id"],
        "attempt": task["attempt"],
        "commands": [("cadenza.command.CompleteWorkflowExecution", {"result": [payload]})],
        "identity": "t",
        "sticky": False,
    }
    _step(
        store,
        out,
        T0 + 10,
        _command(("cadenza.command.WorkflowTaskCompleted", complete), task["run_id"]),
    )
    [_, result] = out.sent_replies
    assert result["request_id"] == "result" and result["run_id"] == task["run_id"]
    name, record = result["body"]
    assert name == "cadenza.reply.WorkflowResult"
    assert record["status"] == "COMPLETED" and record["result"] == [payload]


def test_a_rejected_start_leaves_no_result_waiter(tmp_path: Path) -> None:
    store, out = PartitionStore(tmp_path), _Outputs()
    first = {"workflow_type": "W", "task_queue": "q", "request_id": "r1"}
    _step(store, out, T0, _command(("cadenza.command.StartWorkflow", first)))
    again = {
        "workflow_type": "W",
        "task_queue": "q",
        "request_id": "r2",
        "result_reply_to": _reply_to("result"),
    }
    command = dict(
        _command(("cadenza.command.StartWorkflow", again)),
        command_id="c-again",
        reply_to=_reply_to("start"),
    )
    _step(store, out, T0 + 10, command)
    [rejected] = out.sent_replies
    assert rejected["request_id"] == "start"
    assert rejected["body"][0] == "cadenza.reply.CommandRejected"
    assert store.state("w")["waiters"] == []  # type: ignore[index]


# -- eager workflow start (the first task goes back in the start's reply) -----------------


def _eager_start(**extra: Any) -> dict[str, Any]:
    start = {
        "workflow_type": "W",
        "task_queue": "q",
        "request_id": "r",
        "task_timeout_ms": 10_000,
        "request_eager_execution": True,
        **extra,
    }
    return dict(_command(("cadenza.command.StartWorkflow", start)), reply_to=_reply_to("start"))


def test_an_eager_start_sends_the_first_task_in_its_reply_not_to_the_queue(
    tmp_path: Path,
) -> None:
    store, out = PartitionStore(tmp_path), _Outputs()
    _step(store, out, T0, _eager_start())
    assert out.workflow_tasks == []
    [started] = out.sent_replies
    name, body = started["body"]
    assert name == "cadenza.reply.WorkflowStarted" and body["started"]
    task_name, task = schemas.decode(body["eager_workflow_task"])
    assert task_name == schemas.WORKFLOW_TASK
    assert task["run_id"] == body["run_id"] and task["attempt"] == 1
    assert task["history_from_event_id"] == 1
    assert [e["attributes"][0] for e in task["history"]] == [
        _H + "WorkflowExecutionStarted",
        _H + "WorkflowTaskScheduled",
        _H + "WorkflowTaskStarted",
    ]
    # Recorded as any dispatched task: the same events, and a start-to-close deadline.
    assert [name for name, _ in out.events] == [e["attributes"][0] for e in task["history"]]
    deadlines = [
        due.due_time_ms
        for due in timers_of(store.state("w"))
        if due.kind.startswith("WORKFLOW_TASK")
    ]
    assert deadlines == [T0 + 10_000]
    store.close()


def test_a_lost_eager_task_times_out_and_its_next_attempt_goes_to_the_queue(
    tmp_path: Path,
) -> None:
    store, out = PartitionStore(tmp_path), _Outputs()
    _step(store, out, T0, _eager_start())
    [due] = [d for d in timers_of(store.state("w")) if d.kind.startswith("WORKFLOW_TASK")]
    run_id = out.sent_replies[0]["run_id"]
    _step(store, out, due.due_time_ms, _timeout_fired(run_id, due))
    assert _H + "WorkflowTaskTimedOut" in [name for name, _ in out.events]
    [retry] = out.workflow_tasks
    assert retry["attempt"] == 2 and retry["history_from_event_id"] == 1
    store.close()


def test_an_eager_start_without_a_due_task_or_a_reply_dispatches_as_usual(
    tmp_path: Path,
) -> None:
    store, out = PartitionStore(tmp_path), _Outputs()
    # A start delay: no task yet, so none in the reply; it is dispatched when due.
    _step(store, out, T0, _eager_start(start_delay_ms=5_000))
    [started] = out.sent_replies
    assert started["body"][1]["eager_workflow_task"] is None
    assert out.workflow_tasks == []
    # No reply_to (a Kafka-native producer that reads no replies): nobody to take it.
    other = dict(_eager_start(), workflow_id="w2", command_id="c-2")
    del other["reply_to"]
    _step(store, out, T0, other)
    [task] = out.workflow_tasks
    assert task["workflow_id"] == "w2" and task["attempt"] == 1
    store.close()


def test_a_repeated_eager_start_carries_no_second_task(tmp_path: Path) -> None:
    store, out = PartitionStore(tmp_path), _Outputs()
    _step(store, out, T0, _eager_start())
    _step(store, out, T0 + 5, dict(_eager_start(), command_id="c-again"))
    first, again = out.sent_replies
    assert first["body"][1]["eager_workflow_task"] is not None
    assert again["body"][1] == {
        "run_id": first["run_id"],
        "started": True,
        "eager_workflow_task": None,
    }
    assert out.workflow_tasks == []
    store.close()
