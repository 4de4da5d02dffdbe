"""Engine semantics on the real broker: duplicates, rejections, dead letters, timers, retries."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from cadenza import Settings, schemas
from cadenza._murmur2 import partition_for
from cadenza.processors.engine import Engine
from cadenza.topics import CHANGELOG, changelog_topic, commands_topic, dead_letters_topic

from .engine_support import (
    PAYLOAD,
    Wire,
    complete_task,
    running_engine,
    schedule_activity,
    start_body,
)

H = "cadenza.history."


def _start(wire: Wire, workflow_id: str, **extra: object) -> tuple[str, dict]:  # type: ignore[type-arg]
    request = wire.send(workflow_id, start_body("W", wire.queue, **extra), reply=True)
    run_id = wire.reply(request)["body"][1]["run_id"]
    return run_id, wire.workflow_task(workflow_id)


def _finish(wire: Wire, workflow_id: str, run_id: str) -> None:
    """Answer workflow tasks with "complete" until the run completes.

    A completion is refused (UNHANDLED_COMMAND) while events arrived that the task
    did not see, as in Temporal; the next task then carries them.
    """
    for _ in range(5):
        task = wire.workflow_task(workflow_id)
        wire.send(
            workflow_id,
            complete_task(task, ("cadenza.command.CompleteWorkflowExecution", {"result": []})),
            run_id=run_id,
        )
        request = wire.send(workflow_id, ("cadenza.command.DescribeWorkflow", {}), reply=True)
        if wire.reply(request)["body"][1]["status"] == "COMPLETED":
            return
    raise AssertionError(f"{workflow_id} did not complete")


def test_duplicates_are_rejected_by_state(settings: Settings, tmp_path: Path) -> None:
    wire = Wire(settings, "q")
    with running_engine(settings, str(tmp_path)):
        run_id, task = _start(wire, "dup")
        wire.send("dup", complete_task(task, schedule_activity("1", "a", "q")), run_id=run_id)
        activity = wire.activity_task("dup")
        done = (
            "cadenza.command.ActivityTaskCompleted",
            {
                "scheduled_event_id": activity["scheduled_event_id"],
                "attempt": 1,
                "result": [PAYLOAD],
            },
        )
        wire.send("dup", done, run_id=run_id)
        wire.send("dup", done, run_id=run_id)  # the same completion again
        # An old workflow task's completion is stale once a newer task exists.
        wire.send("dup", complete_task(task), run_id=run_id)
        signal = (
            "cadenza.command.SignalWorkflow",
            {"signal_name": "go", "input": [], "signal_id": "sig-1"},
        )
        wire.send("dup", signal)
        wire.send("dup", signal)
        _finish(wire, "dup", run_id)
        events = wire.history("dup", H + "WorkflowExecutionCompleted")
    kinds = [e["attributes"][0] for e in events]
    assert kinds.count(H + "ActivityTaskCompleted") == 1
    assert kinds.count(H + "WorkflowExecutionSignaled") == 1
    assert kinds.count(H + "WorkflowTaskCompleted") >= 2
    wire.close()


def test_commands_that_cannot_apply_get_a_reason(settings: Settings, tmp_path: Path) -> None:
    wire = Wire(settings, "q")
    with running_engine(settings, str(tmp_path)):
        request = wire.send(
            "nobody",
            ("cadenza.command.SignalWorkflow", {"signal_name": "s", "signal_id": "x"}),
            reply=True,
        )
        reply = wire.reply(request)
        assert reply["body"] == (
            "cadenza.reply.CommandRejected",
            {"code": "NOT_FOUND", "message": "workflow 'nobody' does not exist"},
        )
        _run_id, _task = _start(wire, "twice")
        request = wire.send("twice", start_body("W", "q"), reply=True)
        assert wire.reply(request)["body"][1]["code"] == "ALREADY_STARTED"
        request = wire.send(
            "twice", ("cadenza.command.TerminateWorkflow", {"reason": "bye"}), reply=True
        )
        assert wire.reply(request)["body"][0] == "cadenza.reply.CommandAccepted"
        request = wire.send(
            "twice",
            ("cadenza.command.SignalWorkflow", {"signal_name": "s", "signal_id": "y"}),
            reply=True,
        )
        rejected = wire.reply(request)["body"][1]
        assert rejected["code"] == "ALREADY_CLOSED" and "terminated" in rejected["message"]
    wire.close()


def test_malformed_records_go_to_dead_letters_and_the_partition_moves_on(
    settings: Settings, tmp_path: Path
) -> None:
    wire = Wire(settings, "q")
    producer = Producer(settings.producer_config())
    good = schemas.encode(
        schemas.COMMAND,
        {
            "command_id": "c",
            "workflow_id": "right",
            "run_id": None,
            "sent_time_ms": 0,
            "body": ("cadenza.command.SignalWorkflow", {"signal_name": "s", "signal_id": "z"}),
        },
    )
    bad = {
        b"empty": b"",
        b"not-avro": b"hello world",
        b"unknown-schema": b"\xc3\x01" + b"\x00" * 8 + b"\x02",
        b"truncated": good[:-3],
        b"wrong-key": good,
    }
    topic = commands_topic(settings)
    with running_engine(settings, str(tmp_path)):
        for key, value in bad.items():
            producer.produce(topic, key=key, value=value, partition=0)
        producer.flush(10)
        # The same partition keeps moving: a start behind the garbage is processed.
        run_id, _ = _start(wire, "after-garbage")
        assert run_id
        seen: dict[bytes, str] = {}
        from confluent_kafka import Consumer

        consumer = Consumer(
            {**settings.kafka_config(), "group.id": "dl-test", "auto.offset.reset": "earliest"}
        )
        consumer.subscribe([dead_letters_topic(settings)])
        deadline = time.monotonic() + 20
        while len(seen) < len(bad) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            headers = dict(msg.headers() or [])
            seen[msg.key()] = headers["cadenza-error"].decode()
            assert msg.value() == bad[msg.key()] or (msg.value() is None and not bad[msg.key()])
        consumer.close()
    assert set(seen) == set(bad)
    assert "empty record" in seen[b"empty"]
    assert "C3 01" in seen[b"not-avro"]
    assert "unknown schema fingerprint" in seen[b"unknown-schema"]
    assert "commands must be keyed by workflow id" in seen[b"wrong-key"]
    wire.close()


def test_timer_fires_and_activity_retries_with_backoff(settings: Settings, tmp_path: Path) -> None:
    wire = Wire(settings, "q")
    policy = {
        "initial_interval_ms": 300,
        "backoff_coefficient": 2.0,
        "maximum_interval_ms": None,
        "maximum_attempts": 3,
        "non_retryable_error_types": [],
    }
    with running_engine(settings, str(tmp_path)):
        run_id, task = _start(wire, "retry")
        wire.send(
            "retry",
            complete_task(
                task,
                ("cadenza.command.StartTimer", {"timer_id": "1", "start_to_fire_timeout_ms": 200}),
                schedule_activity("1", "flaky", "q", retry_policy=policy),
            ),
            run_id=run_id,
        )
        failure = {
            "message": "boom",
            "info": (
                "cadenza.common.ApplicationFailureInfo",
                {"type": "Boom", "non_retryable": False},
            ),
        }
        attempts = []
        for attempt in (1, 2, 3):
            activity = wire.activity_task("retry")
            assert activity["attempt"] == attempt
            attempts.append(time.monotonic())
            wire.send(
                "retry",
                (
                    "cadenza.command.ActivityTaskFailed",
                    {
                        "scheduled_event_id": activity["scheduled_event_id"],
                        "attempt": attempt,
                        "failure": failure,
                    },
                ),
                run_id=run_id,
            )
        events = wire.history("retry", H + "ActivityTaskFailed")
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.25 and gaps[1] >= 0.55, gaps  # 300 ms, then 600 ms
    kinds = [e["attributes"][0] for e in events]
    assert H + "TimerFired" in kinds
    failed = events[-1]["attributes"][1]
    assert failed["retry_state"] == "MAXIMUM_ATTEMPTS_REACHED"
    started = [e for e in events if e["attributes"][0] == H + "ActivityTaskStarted"]
    assert started[-1]["attributes"][1]["attempt"] == 3
    wire.close()


def test_a_lost_workflow_task_is_redispatched_by_its_timeout(
    settings: Settings, tmp_path: Path
) -> None:
    wire = Wire(settings, "q")
    with running_engine(settings, str(tmp_path)):
        run_id, task = _start(wire, "lost", task_timeout_ms=500)
        assert task["attempt"] == 1
        # A worker says it started the task, then never answers (it hangs, or it lost
        # the task): the engine times the task out and sends it again.
        started = {"scheduled_event_id": task["scheduled_event_id"], "attempt": 1}
        wire.send("lost", ("cadenza.command.WorkflowTaskStarted", started), run_id=run_id)
        again = wire.workflow_task("lost", timeout=10)
        assert again["attempt"] == 2 and again["history_from_event_id"] == 1
        kinds = [e["attributes"][0] for e in again["history"]]
        assert H + "WorkflowTaskTimedOut" in kinds
    wire.close()


def test_restart_with_the_store_intact_resumes(settings: Settings, tmp_path: Path) -> None:
    wire = Wire(settings, "q")
    with running_engine(settings, str(tmp_path)):
        run_id, task = _start(wire, "restart")
    with running_engine(settings, str(tmp_path)) as engine:
        wire.send(
            "restart",
            complete_task(
                task, ("cadenza.command.CompleteWorkflowExecution", {"result": [PAYLOAD]})
            ),
            run_id=run_id,
        )
        request = wire.send("restart", ("cadenza.command.GetWorkflowResult", {}), reply=True)
        assert wire.reply(request)["body"][1]["status"] == "COMPLETED"
        assert engine.stores  # partitions re-opened from the existing RocksDB directory
        # ... and caught up from where they were: nothing of the changelog read again.
        assert engine.restored and all(r == (0, 0) for r in engine.restored.values())
    wire.close()


def test_an_empty_data_dir_restores_from_changelog_and_history(
    settings: Settings, tmp_path: Path
) -> None:
    wire = Wire(settings, "q")
    with running_engine(settings, str(tmp_path / "a")) as first:
        run_id, task = _start(wire, "moved")
        home = first.home
    with running_engine(settings, _new_machine(settings, tmp_path / "b", home)) as engine:
        wire.send(
            "moved",
            complete_task(
                task, ("cadenza.command.CompleteWorkflowExecution", {"result": [PAYLOAD]})
            ),
            run_id=run_id,
        )
        request = wire.send("moved", ("cadenza.command.GetWorkflowResult", {}), reply=True)
        assert wire.reply(request)["body"][1]["status"] == "COMPLETED"
        restored = list(engine.restored.values())
        assert len(restored) == settings.partitions
        # Every partition was read in one pass; the run's own partition had its state
        # and its first events (started, task scheduled, task started).
        assert sum(c for c, _ in restored) >= 1 and sum(h for _, h in restored) >= 3
    wire.close()


def test_stores_sharing_a_changelog_partition_restore_only_their_own_states(
    settings: Settings, tmp_path: Path
) -> None:
    """Four store partitions write one changelog partition (a quarter of them), each
    record naming its store: a store restored from nothing takes its own states and
    none of its neighbours'."""
    wire = Wire(settings, "q")  # creates the namespace's topics
    assert (settings.partitions, len(_changelog_ends(settings))) == (4, 1)
    ids = [f"shared-{i}" for i in range(12)]
    where = {wid: partition_for(wid.encode(), settings.partitions) for wid in ids}
    assert len(set(where.values())) == settings.partitions  # every store has some
    with running_engine(settings, str(tmp_path / "a")) as first:
        for wid in ids:
            _start(wire, wid)
        home = first.home
    with running_engine(settings, _new_machine(settings, tmp_path / "b", home)) as engine:
        _assert_running_in_their_own_stores(wire, engine, where)
        # Each store took at least its own runs' states from the shared partition.
        for partition, (states, events) in engine.restored.items():
            mine = sum(1 for p in where.values() if p == partition)
            assert states >= mine and events >= 3 * mine, (partition, states, events)
    wire.close()


def test_a_changelog_as_wide_as_commands_still_restores(settings: Settings, tmp_path: Path) -> None:
    """Namespaces created before changelogs were narrowed have one changelog partition
    per command partition: the engine reads the count the topic has and keeps p -> p."""
    changelog = changelog_topic(settings, "engine-workflows")
    admin = AdminClient(settings.kafka_config())
    plan = CHANGELOG.plan(settings, "engine-workflows")
    wide = NewTopic(changelog, num_partitions=settings.partitions, config=dict(plan.config))
    admin.create_topics([wide])[changelog].result()
    wire = Wire(settings, "q")  # the other topics, as the catalog has them
    ids = [f"wide-{i}" for i in range(8)]
    where = {wid: partition_for(wid.encode(), settings.partitions) for wid in ids}
    with running_engine(settings, str(tmp_path / "a")) as first:
        for wid in ids:
            _start(wire, wid)
        home = first.home
    ends = _changelog_ends(settings)
    assert len(ends) == settings.partitions
    # Each state went to its own store's partition.
    for p, end in ends.items():
        mine = sum(1 for q in where.values() if q == p)
        assert (end > 0) == (mine > 0), (p, ends)
    with running_engine(settings, _new_machine(settings, tmp_path / "b", home)) as engine:
        _assert_running_in_their_own_stores(wire, engine, where)
    wire.close()


def _new_machine(settings: Settings, data_dir: Path, home: Path) -> str:
    """A data dir for a new machine with the old one's identity: the group hands it the
    partitions at once (static membership), with no store for any of them."""
    fresh = data_dir / "engine" / settings.namespace
    fresh.mkdir(parents=True)
    (fresh / "instance-id").write_text((home / "instance-id").read_text())
    return str(data_dir)


def _changelog_ends(settings: Settings) -> dict[int, int]:
    """The end offset of each partition of the engine's changelog."""
    changelog = changelog_topic(settings, "engine-workflows")
    probe = Consumer({**settings.kafka_config(), "group.id": f"{settings.namespace}.probe"})
    try:
        width = len(probe.list_topics(changelog, timeout=10).topics[changelog].partitions)
        return {
            p: probe.get_watermark_offsets(TopicPartition(changelog, p), 10)[1]
            for p in range(width)
        }
    finally:
        probe.close()


def _assert_running_in_their_own_stores(wire: Wire, engine: Engine, where: dict[str, int]) -> None:
    """Each run answers RUNNING, and its state is in the store of its partition only."""
    for wid in where:
        request = wire.send(wid, ("cadenza.command.DescribeWorkflow", {}), reply=True)
        assert wire.reply(request)["body"][1]["status"] == "RUNNING", wid
    for wid, partition in where.items():
        holders = [p for p, store in engine.stores.items() if store.state(wid) is not None]
        assert holders == [partition], (wid, holders)
