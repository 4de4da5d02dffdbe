"""Worker interceptors end to end (client -> engine -> worker on the real broker): a
tracing-style interceptor puts a header on each activity the workflow starts, the
activity's inbound interceptor reads it from the task, and its outbound
interceptor sees ``activity.info()`` and ``activity.heartbeat()``; workflow
signals and queries pass the workflow's inbound chain, for async and for sync
(threaded) activities."""

from __future__ import annotations

import concurrent.futures
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from cadenza import Settings, activity, workflow
from cadenza import client as client_interceptors
from cadenza.client import Client, WorkflowHandle
from cadenza.converter import PayloadConverter
from cadenza.worker import (
    ActivityInboundInterceptor,
    ActivityOutboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    HandleQueryInput,
    HandleSignalInput,
    Interceptor,
    StartActivityInput,
    Worker,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)
from cadenza.workflow import ActivityHandle

from .sdk_support import attributes, event_name, run_scenario

QUEUE = "sdk-interceptors"
PC = PayloadConverter.default
SEEN: dict[str, list[str]] = defaultdict(list)


@activity.defn
async def greet(name: str) -> str:
    activity.heartbeat("halfway")
    return f"hello {name} (attempt {activity.info().attempt})"


@activity.defn
def shout(name: str) -> str:
    activity.heartbeat("thread")
    return f"{name.upper()} (attempt {activity.info().attempt})"


@workflow.defn
class Greeter:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self, name: str) -> list[str]:
        timeout = timedelta(seconds=10)
        first = await workflow.execute_activity(greet, name, start_to_close_timeout=timeout)
        second = await workflow.execute_activity(shout, name, start_to_close_timeout=timeout)
        await workflow.wait_condition(lambda: self.done)
        return [first, second]

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def waiting(self) -> bool:
        return not self.done


class _ActivityOutbound(ActivityOutboundInterceptor):
    def info(self) -> activity.Info:
        info = self.next.info()
        SEEN[info.workflow_id or ""].append(f"info {info.activity_type}")
        return info

    def heartbeat(self, *details: Any) -> None:
        SEEN[self.next.info().workflow_id or ""].append(f"heartbeat {list(details)}")
        self.next.heartbeat(*details)


class _ActivityInbound(ActivityInboundInterceptor):
    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        super().init(_ActivityOutbound(outbound))

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        trace = PC.from_payload(input.headers["trace"], str)
        sync = "sync" if input.executor is not None else "async"
        SEEN[info.workflow_id or ""].append(f"execute {info.activity_type} {sync} trace={trace}")
        return await self.next.execute_activity(input)


class _WorkflowOutbound(WorkflowOutboundInterceptor):
    def start_activity(self, input: StartActivityInput) -> ActivityHandle[Any]:
        trace = f"{workflow.info().workflow_id}/{input.activity}"
        input.headers = {**input.headers, "trace": PC.to_payload(trace)}
        return self.next.start_activity(input)


class _WorkflowInbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_WorkflowOutbound(outbound))

    async def handle_signal(self, input: HandleSignalInput) -> None:
        if not workflow.unsafe.is_replaying():
            SEEN[workflow.info().workflow_id].append(f"signal {input.signal}")
        await self.next.handle_signal(input)

    async def handle_query(self, input: HandleQueryInput) -> Any:
        SEEN[workflow.info().workflow_id].append(f"query {input.query}")
        return await self.next.handle_query(input)


class Tracing(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityInbound(next)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _WorkflowInbound


def test_interceptors_carry_a_header_from_the_workflow_to_its_activities(
    settings: Settings, tmp_path: Path
) -> None:
    async def scenario(client: Client) -> tuple[list[str], list[dict[str, Any]]]:
        with concurrent.futures.ThreadPoolExecutor(4) as executor:
            async with Worker(
                client,
                task_queue=QUEUE,
                workflows=[Greeter],
                activities=[greet, shout],
                activity_executor=executor,
                max_concurrent_activities=4,
                interceptors=[Tracing()],
            ):
                handle = await client.start_workflow(
                    Greeter.run, "ada", id="traced", task_queue=QUEUE
                )
                assert await handle.query(Greeter.waiting) is True
                await handle.signal(Greeter.finish)
                result = await handle.result()
        history = await handle.fetch_history()
        headers = [
            dict(attributes(e)["header"])
            for e in history.events
            if event_name(e) == "ActivityTaskScheduled"
        ]
        return result, headers

    result, headers = run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE])
    assert result == ["hello ada (attempt 1)", "ADA (attempt 1)"]
    assert [PC.from_payload(h["trace"], str) for h in headers] == [
        "traced/greet",
        "traced/shout",
    ]
    seen = SEEN["traced"]
    assert "execute greet async trace=traced/greet" in seen, seen
    assert "execute shout sync trace=traced/shout" in seen, seen
    assert "heartbeat ['halfway']" in seen and "heartbeat ['thread']" in seen, seen
    assert "info greet" in seen and "info shout" in seen, seen
    assert "query waiting" in seen and seen.count("signal finish") == 1, seen


# -- a client interceptor that is also a worker interceptor ---------------------------------

CALLED: list[str] = []


class _ClientOutbound(client_interceptors.OutboundInterceptor):
    async def start_workflow(
        self, input: client_interceptors.StartWorkflowInput
    ) -> WorkflowHandle[Any, Any]:
        CALLED.append(f"start {input.workflow} {input.id}")
        input.headers = {**input.headers, "trace": PC.to_payload(f"client/{input.id}")}
        return await self.next.start_workflow(input)

    async def signal_workflow(self, input: client_interceptors.SignalWorkflowInput) -> None:
        CALLED.append(f"signal {input.signal}")
        input.headers = {**input.headers, "trace": PC.to_payload("client/signal")}
        await self.next.signal_workflow(input)

    async def query_workflow(self, input: client_interceptors.QueryWorkflowInput) -> Any:
        CALLED.append(f"query {input.query}")
        return await self.next.query_workflow(input)

    async def describe_workflow(self, input: client_interceptors.DescribeWorkflowInput) -> Any:
        CALLED.append("describe")
        return await self.next.describe_workflow(input)

    async def terminate_workflow(self, input: client_interceptors.TerminateWorkflowInput) -> None:
        CALLED.append(f"terminate {input.reason}")
        await self.next.terminate_workflow(input)

    def fetch_workflow_history_events(
        self, input: client_interceptors.FetchWorkflowHistoryEventsInput
    ) -> AsyncIterator[Mapping[str, Any]]:
        CALLED.append(f"history {input.id}")
        return self.next.fetch_workflow_history_events(input)


class _StartTraced(WorkflowInboundInterceptor):
    """Carries the start's trace header on to the workflow's activities."""

    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_CarryTrace(outbound))

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        TRACES[workflow.info().workflow_id] = input.headers["trace"]
        return await self.next.execute_workflow(input)

    async def handle_signal(self, input: HandleSignalInput) -> None:
        if not workflow.unsafe.is_replaying():
            trace = PC.from_payload(input.headers["trace"], str)
            SEEN[workflow.info().workflow_id].append(f"signal {input.signal} trace={trace}")
        await self.next.handle_signal(input)


TRACES: dict[str, Any] = {}


class _CarryTrace(WorkflowOutboundInterceptor):
    def start_activity(self, input: StartActivityInput) -> ActivityHandle[Any]:
        input.headers = {**input.headers, "trace": TRACES[workflow.info().workflow_id]}
        return self.next.start_activity(input)


class ClientAndWorkerTracing(client_interceptors.Interceptor, Interceptor):
    def intercept_client(
        self, next: client_interceptors.OutboundInterceptor
    ) -> client_interceptors.OutboundInterceptor:
        return _ClientOutbound(next)

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityInbound(next)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _StartTraced


def test_a_client_interceptor_that_is_also_a_worker_interceptor_traces_end_to_end(
    settings: Settings, tmp_path: Path
) -> None:
    """Given to the client only, it sets the start's and the signal's headers; the
    worker built on that client uses it too, and the trace reaches the activities."""

    async def scenario(_: Client) -> list[str]:
        client = await Client.connect(settings=settings, interceptors=[ClientAndWorkerTracing()])
        try:
            with concurrent.futures.ThreadPoolExecutor(4) as executor:
                async with Worker(
                    client,
                    task_queue=QUEUE,
                    workflows=[Greeter],
                    activities=[greet, shout],
                    activity_executor=executor,
                    max_concurrent_activities=4,
                ):
                    handle = await client.start_workflow(
                        Greeter.run, "bob", id="client-traced", task_queue=QUEUE
                    )
                    assert await handle.query(Greeter.waiting) is True
                    await handle.signal(Greeter.finish)
                    result = await handle.result()
                    await handle.describe()
                    other = await client.start_workflow(
                        Greeter.run, "eve", id="client-terminated", task_queue=QUEUE
                    )
                    await other.terminate(reason="done with it")
                    history = await handle.fetch_history()
                    assert event_name(history.events[-1]) == "WorkflowExecutionCompleted"
        finally:
            await client.close()
        return result

    result = run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE])
    assert result == ["hello bob (attempt 1)", "BOB (attempt 1)"]
    assert CALLED[:4] == [
        "start Greeter client-traced",
        "query waiting",
        "signal finish",
        "describe",
    ], CALLED
    assert CALLED[-3:] == [
        "start Greeter client-terminated",
        "terminate done with it",
        "history client-traced",
    ], CALLED
    seen = SEEN["client-traced"]
    assert "execute greet async trace=client/client-traced" in seen, seen
    assert "execute shout sync trace=client/client-traced" in seen, seen
    assert "signal finish trace=client/signal" in seen, seen
