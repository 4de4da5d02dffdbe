"""cadenza.workflow's runtime-facing API: the error outside a workflow, and delegation to
the ``_Runtime`` contract (exercised with a fake runtime that records every call)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any, NoReturn

import pytest

from cadenza import activity, workflow
from cadenza.common import RetryPolicy, SearchAttributeKey
from cadenza.common._typing import _arg_unset
from cadenza.converter import PayloadConverter
from cadenza.workflow._context import (
    ContinueAsNewInput,
    StartActivityInput,
    StartChildWorkflowInput,
    _Runtime,
)

NOW_NS = 1_700_000_000_123_456_789


@activity.defn
async def charge(order_id: str) -> int:
    return 1


@workflow.defn
class Child:
    @workflow.run
    async def run(self, x: int) -> str:
        return str(x)


class _ContinueAsNew(workflow.ContinueAsNewError):
    def __init__(self, input: ContinueAsNewInput) -> None:
        super().__init__("continue as new")
        self.input = input


class FakeRuntime(_Runtime):
    """Implements the whole contract; records what the API asked for."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.replaying = False
        self.rng = Random(7)
        self.handlers: dict[tuple[str, str | None], Any] = {}
        self.memo_values: dict[str, Any] = {"owner": {"street": "s", "city": "c"}}

    def workflow_info(self) -> workflow.Info:
        return workflow.Info(
            attempt=1,
            first_execution_run_id="run-1",
            namespace="default",
            run_id="run-1",
            start_time=datetime(2024, 1, 1, tzinfo=UTC),
            task_queue="orders",
            task_timeout=timedelta(seconds=10),
            workflow_id="wf-1",
            workflow_type="Order",
        )

    def workflow_instance(self) -> Any:
        return self

    def workflow_time_ns(self) -> int:
        return NOW_NS

    def workflow_random(self) -> Random:
        return self.rng

    def workflow_is_replaying(self) -> bool:
        return self.replaying

    def workflow_payload_converter(self) -> PayloadConverter:
        return PayloadConverter.default

    def workflow_get_current_history_length(self) -> int:
        return 12

    def workflow_is_continue_as_new_suggested(self) -> bool:
        return False

    def workflow_is_failure_exception(self, error: BaseException) -> bool:
        return isinstance(error, ValueError)

    def workflow_start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        self.calls.append(("start_activity", input))

        async def result() -> Any:
            return f"ran {input.activity}"

        return workflow.ActivityHandle(result())

    async def workflow_start_child_workflow(
        self, input: StartChildWorkflowInput
    ) -> workflow.ChildWorkflowHandle[Any, Any]:
        self.calls.append(("start_child", input))

        async def result() -> Any:
            return f"child {input.id}"

        return workflow.ChildWorkflowHandle(result())

    def workflow_get_external_workflow_handle(
        self, workflow_id: str, *, run_id: str | None
    ) -> workflow.ExternalWorkflowHandle[Any]:
        self.calls.append(("external", (workflow_id, run_id)))
        return workflow.ExternalWorkflowHandle()

    def workflow_continue_as_new(self, input: ContinueAsNewInput) -> NoReturn:
        raise _ContinueAsNew(input)

    async def workflow_sleep(self, duration: float, *, summary: str | None) -> None:
        self.calls.append(("sleep", (duration, summary)))

    async def workflow_wait_condition(
        self, fn: Callable[[], bool], *, timeout: float | None, timeout_summary: str | None
    ) -> None:
        self.calls.append(("wait_condition", (fn(), timeout, timeout_summary)))

    def workflow_patch(self, id: str, *, deprecated: bool) -> bool:
        self.calls.append(("patch", (id, deprecated)))
        return True

    def workflow_upsert_search_attributes(self, attributes: Any) -> None:
        self.calls.append(("upsert_search_attributes", attributes))

    def workflow_memo(self) -> Mapping[str, Any]:
        return self.memo_values

    def workflow_memo_value(self, key: str, default: Any, *, type_hint: Any | None) -> Any:
        if key not in self.memo_values:
            if default is _arg_unset:
                raise KeyError(key)
            return default
        value = self.memo_values[key]
        if type_hint is None:
            return value
        return PayloadConverter.default.from_payload(
            PayloadConverter.default.to_payload(value), type_hint
        )

    def workflow_upsert_memo(self, updates: Mapping[str, Any]) -> None:
        self.calls.append(("upsert_memo", dict(updates)))

    def workflow_all_handlers_finished(self) -> bool:
        return True

    def workflow_get_signal_handler(self, name: str | None) -> Callable[..., Any] | None:
        return self.handlers.get(("signal", name))  # type: ignore[no-any-return]

    def workflow_set_signal_handler(
        self, name: str | None, handler: Callable[..., Any] | None
    ) -> None:
        self.handlers[("signal", name)] = handler

    def workflow_get_query_handler(self, name: str | None) -> Callable[..., Any] | None:
        return self.handlers.get(("query", name))  # type: ignore[no-any-return]

    def workflow_set_query_handler(
        self, name: str | None, handler: Callable[..., Any] | None
    ) -> None:
        self.handlers[("query", name)] = handler

    def workflow_get_update_handler(self, name: str | None) -> Callable[..., Any] | None:
        return self.handlers.get(("update", name))  # type: ignore[no-any-return]

    def workflow_set_update_handler(
        self,
        name: str | None,
        handler: Callable[..., Any] | None,
        validator: Callable[..., None] | None,
    ) -> None:
        self.handlers[("update", name)] = handler
        self.handlers[("validator", name)] = validator

    def workflow_has_last_completion_result(self) -> bool:
        return False

    def workflow_last_completion_result(self, type_hint: Any | None) -> Any | None:
        return None

    def workflow_last_failure(self) -> BaseException | None:
        return None


def in_workflow(body: Callable[[FakeRuntime], Any]) -> FakeRuntime:
    """Run ``body(runtime)`` (sync or async) with a fake runtime current."""
    runtime = FakeRuntime()

    async def main() -> None:
        token = _Runtime.set(runtime)
        try:
            result = body(runtime)
            if asyncio.iscoroutine(result):
                await result
        finally:
            _Runtime.reset(token)

    asyncio.run(main())
    return runtime


OUTSIDE_CALLS: list[tuple[str, Callable[[], Any]]] = [
    ("info", workflow.info),
    ("instance", workflow.instance),
    ("now", workflow.now),
    ("time", workflow.time),
    ("time_ns", workflow.time_ns),
    ("random", workflow.random),
    ("uuid4", workflow.uuid4),
    ("patched", lambda: workflow.patched("p")),
    ("deprecate_patch", lambda: workflow.deprecate_patch("p")),
    ("memo", workflow.memo),
    ("memo_value", lambda: workflow.memo_value("k")),
    ("upsert_memo", lambda: workflow.upsert_memo({"k": 1})),
    (
        "upsert_search_attributes",
        lambda: workflow.upsert_search_attributes([SearchAttributeKey.for_int("n").value_set(1)]),
    ),
    ("all_handlers_finished", workflow.all_handlers_finished),
    ("payload_converter", workflow.payload_converter),
    ("get_signal_handler", lambda: workflow.get_signal_handler("s")),
    ("set_query_handler", lambda: workflow.set_query_handler("q", None)),
    ("get_external_workflow_handle", lambda: workflow.get_external_workflow_handle("w")),
    ("continue_as_new", lambda: workflow.continue_as_new(1)),
    ("is_replaying", workflow.unsafe.is_replaying),
    (
        "start_activity",
        lambda: workflow.start_activity(charge, "o", start_to_close_timeout=timedelta(seconds=1)),
    ),
    ("sleep", lambda: asyncio.run(workflow.sleep(1))),
    ("wait_condition", lambda: asyncio.run(workflow.wait_condition(lambda: True))),
    (
        "execute_activity",
        lambda: asyncio.run(
            workflow.execute_activity("a", start_to_close_timeout=timedelta(seconds=1))
        ),
    ),
    ("start_child_workflow", lambda: asyncio.run(workflow.start_child_workflow(Child.run, 1))),
    ("execute_child_workflow", lambda: asyncio.run(workflow.execute_child_workflow("C"))),
]


@pytest.mark.parametrize(("name", "call"), OUTSIDE_CALLS, ids=[n for n, _ in OUTSIDE_CALLS])
def test_runtime_api_outside_a_workflow_raises_clearly(name: str, call: Callable[[], Any]) -> None:
    with pytest.raises(RuntimeError, match="Not in workflow event loop"):
        call()


def test_harmless_calls_work_outside_a_workflow() -> None:
    assert not workflow.in_workflow()
    assert workflow.current_update_info() is None
    workflow.upsert_search_attributes([])  # nothing to do: no runtime needed
    with workflow.unsafe.imports_passed_through():
        assert workflow.unsafe.is_imports_passed_through()
    assert not workflow.unsafe.is_imports_passed_through()
    workflow.logger.info("no workflow, no crash")


def test_unsupported_features_say_so() -> None:
    with pytest.raises(RuntimeError, match="Not in workflow event loop"):
        workflow.start_local_activity(charge, "o", start_to_close_timeout=timedelta(seconds=1))
    with pytest.raises(RuntimeError, match="Not in workflow event loop"):
        asyncio.run(workflow.execute_local_activity(charge, "o"))
    with pytest.raises(RuntimeError, match="continue_as_new"):
        workflow.ContinueAsNewError()


def test_time_random_and_ids_come_from_the_runtime() -> None:
    def body(runtime: FakeRuntime) -> None:
        assert workflow.in_workflow()
        assert workflow.time_ns() == NOW_NS
        assert workflow.time() == NOW_NS / 1e9
        assert workflow.now() == datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC)
        first = workflow.uuid4()
        assert first.version == 4
        runtime.rng = Random(7)
        assert workflow.uuid4() == first, "uuid4 must be deterministic given the seed"
        assert isinstance(workflow.random().random(), float)
        assert workflow.info().workflow_id == "wf-1"
        assert workflow.info().get_current_history_length() == 12
        assert not workflow.info().is_continue_as_new_suggested()
        assert workflow.instance() is runtime
        assert workflow.payload_converter() is PayloadConverter.default
        assert workflow.is_failure_exception(ValueError())

    in_workflow(body)


def test_activity_options_are_resolved_and_checked() -> None:
    async def body(runtime: FakeRuntime) -> None:
        policy = RetryPolicy(maximum_attempts=3)
        result = await workflow.execute_activity(
            charge,
            "order-1",
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=policy,
            cancellation_type=workflow.ActivityCancellationType.ABANDON,
            versioning_intent=workflow.VersioningIntent.DEFAULT,
        )
        assert result == "ran charge"
        handle = workflow.start_activity(
            "by-name",
            args=[1, 2],
            schedule_to_close_timeout=timedelta(minutes=5),
            result_type=int,
            task_queue="other",
            activity_id="a-1",
            summary="two args",
        )
        assert isinstance(handle, asyncio.Task)
        await handle
        with pytest.raises(ValueError, match="needs start_to_close_timeout or schedule_to_close"):
            workflow.start_activity(charge, "o")
        with pytest.raises(TypeError, match="start_to_close_timeout must be a timedelta"):
            workflow.start_activity(charge, "o", start_to_close_timeout=30)  # type: ignore[call-overload]
        with pytest.raises(ValueError, match="Cannot give both arg and args"):
            workflow.start_activity(
                charge, "o", args=["p"], start_to_close_timeout=timedelta(seconds=1)
            )

    runtime = in_workflow(body)
    first, second = (input for kind, input in runtime.calls if kind == "start_activity")
    assert first == StartActivityInput(
        activity="charge",
        args=["order-1"],
        activity_id=None,
        task_queue=None,
        result_type=int,
        schedule_to_close_timeout=None,
        schedule_to_start_timeout=None,
        start_to_close_timeout=timedelta(seconds=30),
        heartbeat_timeout=None,
        retry_policy=RetryPolicy(maximum_attempts=3),
        cancellation_type=workflow.ActivityCancellationType.ABANDON,
        summary=None,
    )
    assert (second.activity, second.args, second.result_type) == ("by-name", [1, 2], int)
    assert (second.task_queue, second.activity_id, second.summary) == ("other", "a-1", "two args")


def test_child_workflows_external_handles_and_continue_as_new() -> None:
    async def body(runtime: FakeRuntime) -> None:
        result = await workflow.execute_child_workflow(
            Child.run, 5, parent_close_policy=workflow.ParentClosePolicy.ABANDON
        )
        assert result.startswith("child ")
        handle = await workflow.start_child_workflow("Named", id="child-7", cron_schedule="@daily")
        assert await handle == "child child-7"
        workflow.get_external_workflow_handle("other", run_id="r-9")
        with pytest.raises(workflow.ContinueAsNewError) as caught:
            workflow.continue_as_new(args=[1, 2], task_queue="q2")
        assert not isinstance(caught.value, Exception), "must not be swallowed by except Exception"
        assert caught.value.input == ContinueAsNewInput(  # type: ignore[attr-defined]
            workflow=None,
            args=[1, 2],
            task_queue="q2",
            run_timeout=None,
            task_timeout=None,
            backoff_start_interval=None,
            retry_policy=None,
            memo=None,
            search_attributes=None,
        )
        with pytest.raises(workflow.ContinueAsNewError) as caught:
            workflow.continue_as_new(1, workflow=Child.run)
        assert caught.value.input.workflow == "Child"  # type: ignore[attr-defined]

    runtime = in_workflow(body)
    children = [input for kind, input in runtime.calls if kind == "start_child"]
    assert children[0].workflow == "Child"
    assert children[0].result_type is str
    assert children[0].parent_close_policy is workflow.ParentClosePolicy.ABANDON
    assert uuid.UUID(children[0].id).version == 4, "default child id comes from workflow.uuid4()"
    assert children[0].cancellation_type is (
        workflow.ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED
    )
    assert (children[1].workflow, children[1].id, children[1].cron_schedule) == (
        "Named",
        "child-7",
        "@daily",
    )
    assert ("external", ("other", "r-9")) in runtime.calls


def test_timers_patches_memo_and_search_attributes() -> None:
    async def body(runtime: FakeRuntime) -> None:
        await workflow.sleep(timedelta(minutes=2), summary="nap")
        await workflow.sleep(1.5)
        await workflow.wait_condition(lambda: True, timeout=timedelta(seconds=3))
        assert workflow.patched("v2")
        workflow.deprecate_patch("v1")
        assert workflow.memo() == {"owner": {"street": "s", "city": "c"}}
        assert workflow.memo_value("missing", "d") == "d"
        with pytest.raises(KeyError):
            workflow.memo_value("missing")
        workflow.upsert_memo({"k": None})
        key = SearchAttributeKey.for_keyword("CustomerId")
        workflow.upsert_search_attributes([key.value_set("c-1")])
        with pytest.warns(DeprecationWarning, match="Dictionary-based search attributes"):
            workflow.upsert_search_attributes({"CustomerId": ["c-1"]})
        assert workflow.all_handlers_finished()
        assert not workflow.has_last_completion_result()
        assert workflow.get_last_completion_result() is None
        assert workflow.get_last_failure() is None

    runtime = in_workflow(body)
    assert runtime.calls[:5] == [
        ("sleep", (120.0, "nap")),
        ("sleep", (1.5, None)),
        ("wait_condition", (True, 3.0, None)),
        ("patch", ("v2", False)),
        ("patch", ("v1", True)),
    ]
    assert ("upsert_memo", {"k": None}) in runtime.calls


def test_dynamic_handler_registration() -> None:
    def handler(*args: Any) -> None: ...

    def validator(*args: Any) -> None: ...

    def body(runtime: FakeRuntime) -> None:
        workflow.set_signal_handler("s", handler)
        assert workflow.get_signal_handler("s") is handler
        workflow.set_dynamic_query_handler(handler)
        assert workflow.get_dynamic_query_handler() is handler
        workflow.set_update_handler("u", handler, validator=validator)
        assert workflow.get_update_handler("u") is handler
        assert runtime.handlers[("validator", "u")] is validator
        workflow.set_dynamic_update_handler(None)
        assert workflow.get_dynamic_update_handler() is None

    in_workflow(body)


def test_runtime_set_on_loop_is_seen_by_all_code_on_the_loop() -> None:
    runtime = FakeRuntime()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        _Runtime.set_on_loop(loop, runtime)
        try:
            assert await asyncio.create_task(asyncio.sleep(0, workflow.time_ns())) == NOW_NS
        finally:
            _Runtime.set_on_loop(loop, None)
        assert not workflow.in_workflow()

    asyncio.run(main())


def test_logger_adds_details_and_is_silent_during_replay(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cadenza.workflow")

    def body(runtime: FakeRuntime) -> None:
        workflow.logger.info("live")
        runtime.replaying = True
        assert workflow.unsafe.is_replaying()
        workflow.logger.info("replayed")
        workflow.logger.log_during_replay = True
        try:
            workflow.logger.info("replayed but wanted")
        finally:
            workflow.logger.log_during_replay = False

    in_workflow(body)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith("live (") and "'workflow_id': 'wf-1'" in messages[0]
    assert messages[1].startswith("replayed but wanted")
    assert caplog.records[0].cadenza_workflow["workflow_type"] == "Order"  # type: ignore[attr-defined]
