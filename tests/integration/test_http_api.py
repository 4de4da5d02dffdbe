"""The HTTP API and /metrics of ``cadenza processors run --http``, as a user's tools call
them: a real engine process, its visibility child, a worker, on the real broker."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition

from cadenza import Settings, activity, workflow
from cadenza.client import Client, WorkflowExecutionStatus
from cadenza.topics import TopicAdmin, dead_letters_topic, visibility_requests_topic
from cadenza.worker import Worker

from ..prometheus_text import parse

QUEUE = "http-api"


@activity.defn
async def shout(text: str) -> str:
    return text.upper() + "!"


@workflow.defn
class Greeter:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            shout, f"hello {name}", start_to_close_timeout=timedelta(seconds=10)
        )


@workflow.defn
class Approval:
    def __init__(self) -> None:
        self.approved_by: str | None = None

    @workflow.signal
    def approve(self, who: str) -> None:
        self.approved_by = who

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.approved_by is not None)
        return f"approved by {self.approved_by}"


@dataclass
class Api:
    url: str

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def get(self, path: str) -> Any:
        status, body = self.call("GET", path)
        assert status == 200, (path, status, body)
        return body

    def text(self, path: str) -> tuple[str, str]:
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return response.headers["Content-Type"], response.read().decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture
def api(settings: Settings, tmp_path: Path) -> Iterator[Api]:
    TopicAdmin(settings).create()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CADENZA_")}
    env.update(settings.to_env())
    env["CADENZA_DATA_DIR"] = str(tmp_path)
    port = _free_port()
    log = tmp_path / "engine.log"
    with log.open("wb") as out:
        engine = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cadenza.cli",
                "processors",
                "run",
                "--log-level",
                "WARNING",
                "--http",
                f"127.0.0.1:{port}",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait(lambda: "web UI, HTTP API" in log.read_text(), 30, "the HTTP server")
        yield Api(f"http://127.0.0.1:{port}")
    finally:
        engine.terminate()
        engine.wait(30)


def _listed(api: Api, query: str) -> list[dict[str, Any]]:
    page = api.get("/api/v1/workflows?" + urllib.parse.urlencode({"query": query}))
    return list(page["executions"])


def test_list_describe_history_and_operate_runs_over_http(api: Api, settings: Settings) -> None:
    async def start_and_finish() -> None:
        client = await Client.connect(settings=settings)
        async with Worker(
            client, task_queue=QUEUE, workflows=[Greeter, Approval], activities=[shout]
        ):
            assert (
                await client.execute_workflow(Greeter.run, "kafka", id="greet/1", task_queue=QUEUE)
                == "HELLO KAFKA!"
            )
            for wid in ("approval-1", "approval-2", "approval-3"):
                await client.start_workflow(Approval.run, id=wid, task_queue=QUEUE)
            # The API's calls are made while the worker runs: a signal must reach it.
            await asyncio.to_thread(operate, api)
            assert await client.get_workflow_handle("approval-1").result() == "approved by the web"
            states = {
                wid: (await client.get_workflow_handle(wid).describe()).status
                for wid in ("approval-2", "approval-3")
            }
            assert states == {
                "approval-2": WorkflowExecutionStatus.CANCELED,
                "approval-3": WorkflowExecutionStatus.TERMINATED,
            }
        await client.close()

    def operate(api: Api) -> None:
        assert api.get("/api/v1/namespace")["namespace"] == settings.namespace

        # The list, filtered by the visibility query language, newest first.
        running = _wait(
            lambda: (
                len(_listed(api, "ExecutionStatus = 'Running'")) == 3
                and _listed(api, "ExecutionStatus = 'Running'")
            ),
            30,
            "three running runs in the list",
        )
        assert [r["workflowId"] for r in running] == ["approval-3", "approval-2", "approval-1"]
        assert {r["type"] for r in running} == {"Approval"}
        done = _listed(api, "WorkflowType = 'Greeter'")
        assert [(r["workflowId"], r["status"]) for r in done] == [("greet/1", "COMPLETED")]
        assert api.get("/api/v1/workflow-count")["count"] == 4
        page = api.get("/api/v1/workflows?pageSize=2")
        assert len(page["executions"]) == 2 and page["nextPageToken"]
        rest = api.get(
            "/api/v1/workflows?pageSize=2&nextPageToken="
            + urllib.parse.quote(page["nextPageToken"])
        )
        ids = [r["workflowId"] for r in page["executions"] + rest["executions"]]
        assert sorted(ids) == ["approval-1", "approval-2", "approval-3", "greet/1"]

        # Describe and history of a workflow id with a slash in it, payloads decoded.
        described = api.get("/api/v1/workflows/greet%2F1")
        assert described["status"] == "COMPLETED"
        assert described["taskQueue"] == QUEUE
        assert described["pendingActivities"] == []
        events = api.get("/api/v1/workflows/greet%2F1/history")["events"]
        types = [e["eventType"] for e in events]
        assert types[0] == "WorkflowExecutionStarted"
        assert types[-1] == "WorkflowExecutionCompleted"
        assert "ActivityTaskCompleted" in types
        assert [e["eventId"] for e in events] == list(range(1, len(events) + 1))
        completed = events[-1]["attributes"]
        assert "HELLO KAFKA!" in json.dumps(completed)
        assert "kafka" in json.dumps(events[0]["attributes"])

        # A running run's history, read before it ends: the API keeps it, and later
        # requests read only what was written since (checked after the terminate).
        before = api.get("/api/v1/workflows/approval-3/history")["events"]
        assert before[0]["eventType"] == "WorkflowExecutionStarted"

        # Operate: a signal with a JSON argument, a cancel, a terminate.
        assert api.call(
            "POST", "/api/v1/workflows/approval-1/signal", {"name": "approve", "input": ["the web"]}
        ) == (200, {})
        assert api.call("POST", "/api/v1/workflows/approval-2/cancel", {}) == (200, {})
        assert api.call(
            "POST", "/api/v1/workflows/approval-3/terminate", {"reason": "test ends it"}
        ) == (200, {})
        history = _wait(
            lambda: [
                e
                for e in api.get("/api/v1/workflows/approval-3/history")["events"]
                if e["eventType"] == "WorkflowExecutionTerminated"
            ],
            30,
            "the termination in history",
        )
        assert history[0]["attributes"]["reason"] == "test ends it"
        after = api.get("/api/v1/workflows/approval-3/history")["events"]
        assert after[: len(before)] == before
        assert [e["eventId"] for e in after] == list(range(1, len(after) + 1))

    asyncio.run(asyncio.wait_for(start_and_finish(), 120))


def test_errors_say_what_is_wrong(api: Api) -> None:
    status, body = api.call("GET", "/api/v1/workflows?query=" + urllib.parse.quote("Foo ="))
    assert status == 400 and body["error"]["code"] == "INVALID_ARGUMENT"
    assert "invalid query" in body["error"]["message"]
    status, body = api.call("GET", "/api/v1/workflows/no-such-run")
    assert status == 404 and body["error"]["code"] == "NOT_FOUND"
    assert "no-such-run" in body["error"]["message"]
    status, body = api.call("POST", "/api/v1/workflows/no-such-run/signal", {"input": []})
    assert status == 400 and '"name"' in body["error"]["message"]
    status, body = api.call("POST", "/api/v1/workflows/x/pause", {})
    assert status == 404 and "signal, cancel or terminate" in body["error"]["message"]
    status, body = api.call("GET", "/api/v1/workflows?pageSize=0")
    assert status == 400 and "pageSize" in body["error"]["message"]
    request = urllib.request.Request(
        api.url + "/api/v1/workflows/x/cancel", data=b"{not json", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=30)
    assert raised.value.code == 400
    assert "not JSON" in json.loads(raised.value.read())["error"]["message"]
    status, body = api.call("GET", "/static/../_server.py")
    assert status == 404


def test_metrics_count_what_the_engine_did(api: Api, settings: Settings) -> None:
    async def run_two() -> None:
        client = await Client.connect(settings=settings)
        async with Worker(
            client, task_queue=QUEUE, workflows=[Greeter, Approval], activities=[shout]
        ):
            for n in range(2):
                await client.execute_workflow(Greeter.run, f"n{n}", id=f"g{n}", task_queue=QUEUE)
            handle = await client.start_workflow(Approval.run, id="a", task_queue=QUEUE)
            await handle.terminate(reason="metrics")
        await client.close()

    asyncio.run(asyncio.wait_for(run_two(), 60))
    kind, text = api.text("/metrics")
    assert kind.startswith("text/plain; version=0.0.4")
    parse(text)  # strict: families, labels, histogram buckets that add up
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    ns = f'namespace="{settings.namespace}"'
    assert samples[f"cadenza_workflows_started_total{{{ns}}}"] == 3
    assert samples[f'cadenza_workflows_closed_total{{{ns},status="COMPLETED"}}'] == 2
    assert samples[f'cadenza_workflows_closed_total{{{ns},status="TERMINATED"}}'] == 1
    assert samples[f'cadenza_history_events_total{{{ns},type="ActivityTaskCompleted"}}'] == 2
    assert samples[f"cadenza_engine_commands_total{{{ns}}}"] >= 7
    transactions = samples[f"cadenza_engine_transactions_total{{{ns}}}"]
    assert samples[f"cadenza_engine_transaction_seconds_count{{{ns}}}"] == transactions
    assert samples[f'cadenza_engine_transaction_seconds_bucket{{{ns},le="+Inf"}}'] == transactions
    assert samples[f"cadenza_engine_partitions_assigned{{{ns}}}"] == settings.partitions
    assert samples["process_resident_memory_bytes"] > 10 * 2**20
    assert samples["process_cpu_seconds_total"] > 0

    # The visibility child's metrics, on the same page.
    assert len(_listed(api, "WorkflowType = 'Greeter'")) == 2
    events = sum(v for k, v in samples.items() if k.startswith("cadenza_history_events_total{"))

    def visibility_caught_up() -> dict[str, float] | None:
        now = _samples(api.text("/metrics")[1])
        folded = now.get(f"cadenza_visibility_events_folded_total{{{ns}}}")
        lag = now.get(f"cadenza_visibility_history_lag_records{{{ns}}}")
        return now if folded == events and lag == 0 else None

    seen = _wait(visibility_caught_up, 30, "the visibility child to report every event folded")
    assert seen[f"cadenza_visibility_up{{{ns}}}"] == 1
    assert seen[f'cadenza_visibility_requests_total{{{ns},kind="list",outcome="ok"}}'] >= 1
    assert seen[f'cadenza_visibility_request_seconds_count{{{ns},kind="list"}}'] >= 1
    assert seen[f"cadenza_visibility_records_skipped_total{{{ns}}}"] == 0
    assert seen["cadenza_visibility_process_resident_memory_bytes"] > 10 * 2**20
    parse(api.text("/metrics")[1])

    # A record on visibility-requests that is not a request is dead-lettered, with why.
    producer = Producer(settings.producer_config())
    producer.produce(visibility_requests_topic(settings), b"not avro", b"k")
    assert producer.flush(10) == 0
    _wait(
        lambda: (
            _samples(api.text("/metrics")[1]).get(f"cadenza_visibility_dead_letters_total{{{ns}}}")
            == 1
        ),
        30,
        "the dead letter counted",
    )
    parked = _read_all(settings, dead_letters_topic(settings))
    assert [m.value() for m in parked] == [b"not avro"]
    headers = dict(parked[0].headers() or [])
    assert headers["cadenza-error"].startswith(b"not a visibility request")
    assert headers["cadenza-source-topic"] == visibility_requests_topic(settings).encode()
    # ... and the processor went on answering.
    assert api.get("/api/v1/workflow-count")["count"] == 3


def _samples(text: str) -> dict[str, float]:
    return {
        name: float(value)
        for name, _, value in (
            line.rpartition(" ") for line in text.splitlines() if line and line[0] != "#"
        )
    }


def _read_all(settings: Settings, topic: str) -> list[Message]:
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": f"test-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    found = []
    try:
        while True:
            msg = consumer.poll(10)
            assert msg is not None, f"no end of {topic} in 10 s"
            if msg.error() is not None:
                return found
            found.append(msg)
    finally:
        consumer.close()


def test_a_visibility_processor_alone_serves_its_metrics(
    settings: Settings, tmp_path: Path
) -> None:
    TopicAdmin(settings).create()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CADENZA_")}
    env.update(settings.to_env())
    env["CADENZA_DATA_DIR"] = str(tmp_path)
    port = _free_port()
    command = [sys.executable, "-m", "cadenza.cli", "processors", "visibility"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        refused = subprocess.run(
            [*command, "--metrics", f"127.0.0.1:{taken.getsockname()[1]}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert refused.returncode == 1
    assert "cannot serve /metrics on 127.0.0.1:" in refused.stderr
    assert "choose another with --metrics HOST:PORT" in refused.stderr
    bad = subprocess.run(
        [*command, "--metrics", "here"], env=env, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and "HOST:PORT" in bad.stderr

    alone = subprocess.Popen([*command, "--metrics", f"127.0.0.1:{port}"], env=env)
    try:
        api = Api(f"http://127.0.0.1:{port}")

        def scraped() -> str | None:
            try:
                return api.text("/metrics")[1]
            except OSError:
                return None

        text = _wait(scraped, 30, "the visibility processor's /metrics")
        parse(text)
        samples = _wait(
            lambda: (
                (now := _samples(api.text("/metrics")[1]))
                and f'cadenza_visibility_history_lag_records{{namespace="{settings.namespace}"}}'
                in now
                and now
            ),
            30,
            "the lag, once the history partitions are assigned",
        )
        assert samples["process_cpu_seconds_total"] > 0  # the standard names, alone
        assert "cadenza_visibility_up" not in text
    finally:
        alone.terminate()
        assert alone.wait(30) == 0
