"""The client's command bodies and how it reads replies, without a broker."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from cadenza import schemas
from cadenza.client._wire import (
    FollowRun,
    expect,
    raise_rejection,
    start_workflow_body,
    to_ms,
    workflow_result,
)
from cadenza.common import (
    RetryPolicy,
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from cadenza.converter import DataConverter, Payload, PayloadCodec
from cadenza.exceptions import (
    ApplicationError,
    CadenzaServiceError,
    CancelledError,
    TerminatedError,
    TimeoutError,
    TimeoutType,
    WorkflowAlreadyStartedError,
    WorkflowContinuedAsNewError,
    WorkflowFailureError,
)

DC = DataConverter.default


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def json_payload(data: bytes) -> Payload:
    return {"metadata": {"encoding": b"json/plain"}, "data": data}


def command(body: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """A whole Command around ``body``, as the transport would send it."""
    return {
        "command_id": "c-1",
        "workflow_id": "wf-1",
        "run_id": None,
        "sent_time_ms": 1,
        "identity": "me",
        "reply_to": None,
        "body": body,
    }


# -- StartWorkflow ---------------------------------------------------------------------


def test_minimal_start_body_encodes_and_has_defaults() -> None:
    name, body = run(
        start_workflow_body(
            DC, workflow_type="Greet", args=["Kafka"], task_queue="q", request_id="r-1"
        )
    )
    assert name == "cadenza.command.StartWorkflow"
    assert body["workflow_type"] == "Greet"
    assert body["task_queue"] == "q"
    assert body["request_id"] == "r-1"
    assert body["input"] == [json_payload(b'"Kafka"')]
    assert body["id_reuse_policy"] == "ALLOW_DUPLICATE"
    assert body["id_conflict_policy"] == "UNSPECIFIED"
    for field in ("execution_timeout_ms", "run_timeout_ms", "task_timeout_ms", "start_delay_ms"):
        assert body[field] is None
    assert body["retry_policy"] is None
    assert body["cron_schedule"] is None  # "" means none on the wire
    assert body["memo"] == {} and body["search_attributes"] == {} and body["header"] == {}
    assert body["signal"] is None and body["parent"] is None
    # The codec takes it as is, and gives back exactly what it was given.
    data = schemas.encode(schemas.COMMAND, command((name, body)))
    assert schemas.decode_as(data, schemas.COMMAND)["body"] == (name, body)


def test_every_start_option_reaches_the_wire() -> None:
    customer = SearchAttributeKey.for_keyword("CustomerId")
    retry = RetryPolicy(
        initial_interval=timedelta(milliseconds=1500),
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=4,
        non_retryable_error_types=["BadInput"],
    )
    name, body = run(
        start_workflow_body(
            DC,
            workflow_type="Order",
            args=[1, {"a": 2}],
            task_queue="orders",
            request_id="r-2",
            execution_timeout=timedelta(hours=1),
            run_timeout=timedelta(minutes=5),
            task_timeout=timedelta(seconds=7, microseconds=500_999),
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            retry_policy=retry,
            cron_schedule="*/5 * * * *",
            memo={"note": "rush", "n": 3},
            search_attributes=TypedSearchAttributes([SearchAttributePair(customer, "c-42")]),
            start_delay=timedelta(seconds=2),
            start_signal="approve",
            start_signal_args=["yes"],
            signal_id="sig-1",
        )
    )
    assert body["input"] == [json_payload(b"1"), json_payload(b'{"a":2}')]
    assert body["execution_timeout_ms"] == 3_600_000
    assert body["run_timeout_ms"] == 300_000
    assert body["task_timeout_ms"] == 7_500  # whole milliseconds, rounded down
    assert body["start_delay_ms"] == 2_000
    assert body["id_reuse_policy"] == "REJECT_DUPLICATE"
    assert body["id_conflict_policy"] == "USE_EXISTING"
    assert body["retry_policy"] == dict(retry.to_avro())
    assert body["retry_policy"]["initial_interval_ms"] == 1500
    assert body["cron_schedule"] == "*/5 * * * *"
    assert body["memo"] == {"note": json_payload(b'"rush"'), "n": json_payload(b"3")}
    attribute = body["search_attributes"]["CustomerId"]
    assert attribute["data"] == b'"c-42"'
    assert attribute["metadata"]["type"] == b"Keyword"
    assert body["signal"] == {
        "signal_name": "approve",
        "input": [json_payload(b'"yes"')],
        "signal_id": "sig-1",
        "header": {},
    }
    data = schemas.encode(schemas.COMMAND, command((name, body)))
    assert schemas.decode_as(data, schemas.COMMAND)["body"] == (name, body)


def test_untyped_search_attributes_are_lists() -> None:
    _, body = run(
        start_workflow_body(
            DC,
            workflow_type="W",
            args=[],
            task_queue="q",
            request_id="r",
            search_attributes={"Tags": ["a", "b"]},
        )
    )
    assert body["search_attributes"]["Tags"]["data"] == b'["a","b"]'


def test_start_signal_gets_a_fresh_signal_id() -> None:
    def signal_id() -> str:
        _, body = run(
            start_workflow_body(
                DC, workflow_type="W", args=[], task_queue="q", request_id="r", start_signal="s"
            )
        )
        return str(body["signal"]["signal_id"])

    first, second = signal_id(), signal_id()
    assert first and second and first != second


def test_signal_args_without_a_signal_are_an_error() -> None:
    with pytest.raises(ValueError, match="start_signal_args"):
        run(
            start_workflow_body(
                DC,
                workflow_type="W",
                args=[],
                task_queue="q",
                request_id="r",
                start_signal_args=[1],
            )
        )


def test_negative_or_non_timedelta_durations_are_refused() -> None:
    with pytest.raises(ValueError, match="run_timeout cannot be negative"):
        to_ms(timedelta(seconds=-1), "run_timeout")
    with pytest.raises(TypeError, match="must be a timedelta"):
        to_ms(5, "task_timeout")  # type: ignore[arg-type]


class Tagging(PayloadCodec):
    """Marks every payload, so a test sees where the codec ran."""

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [{"metadata": {**p["metadata"], "tag": b"1"}, "data": p["data"]} for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            metadata = dict(p["metadata"])
            assert metadata.pop("tag") == b"1"
            out.append({"metadata": metadata, "data": p["data"]})
        return out


def test_the_payload_codec_applies_to_arguments_memo_and_signal_not_search_attributes() -> None:
    converter = dataclasses.replace(DC, payload_codec=Tagging())
    _, body = run(
        start_workflow_body(
            converter,
            workflow_type="W",
            args=["x"],
            task_queue="q",
            request_id="r",
            memo={"m": 1},
            search_attributes={"S": ["v"]},
            start_signal="go",
            start_signal_args=[2],
        )
    )
    assert body["input"][0]["metadata"]["tag"] == b"1"
    assert body["memo"]["m"]["metadata"]["tag"] == b"1"
    assert body["signal"]["input"][0]["metadata"]["tag"] == b"1"
    # The engine and the visibility projection must read search attributes.
    assert "tag" not in body["search_attributes"]["S"]["metadata"]


# -- replies ---------------------------------------------------------------------------


def reply(body_name: str, body: dict[str, Any], run_id: str | None = None) -> dict[str, Any]:
    return {
        "request_id": "q-1",
        "workflow_id": "wf-1",
        "run_id": run_id,
        "body": (f"cadenza.reply.{body_name}", body),
    }


def test_expect_returns_the_expected_body() -> None:
    started = reply("WorkflowStarted", {"run_id": "r1", "started": True})
    assert expect(started, "WorkflowStarted") == {"run_id": "r1", "started": True}


def test_already_started_to_a_start_is_workflow_already_started() -> None:
    rejected = reply("CommandRejected", {"code": "ALREADY_STARTED", "message": "running"}, "r0")
    with pytest.raises(WorkflowAlreadyStartedError) as info:
        expect(rejected, "WorkflowStarted", workflow_type="Greet")
    assert info.value.workflow_id == "wf-1"
    assert info.value.workflow_type == "Greet"
    assert info.value.run_id == "r0"


@pytest.mark.parametrize(
    "code",
    ["NOT_FOUND", "ALREADY_CLOSED", "INVALID_ARGUMENT", "DUPLICATE", "STALE", "INTERNAL"],
)
def test_other_rejections_are_service_errors_with_the_code(code: str) -> None:
    rejected = reply("CommandRejected", {"code": code, "message": "nope"})
    with pytest.raises(CadenzaServiceError) as info:
        expect(rejected, "WorkflowStarted", workflow_type="Greet")
    assert info.value.code == code
    assert info.value.message == "nope"


def test_already_started_outside_a_start_is_a_service_error() -> None:
    rejected = reply("CommandRejected", {"code": "ALREADY_STARTED", "message": "m"})
    with pytest.raises(CadenzaServiceError) as info:
        raise_rejection(rejected)
    assert info.value.code == "ALREADY_STARTED"


def test_an_unexpected_reply_is_a_service_error() -> None:
    with pytest.raises(CadenzaServiceError, match="expected a WorkflowStarted reply, got Query"):
        expect(
            reply("QueryResult", {"query_id": "x", "result": [], "failure": None}),
            "WorkflowStarted",
        )


# -- WorkflowResult --------------------------------------------------------------------


def result(status: str, **fields: Any) -> dict[str, Any]:
    return {
        "run_id": "r1",
        "status": status,
        "result": [],
        "failure": None,
        "new_run_id": None,
        **fields,
    }


def outcome(record: dict[str, Any], *, result_type: Any = None, follow_runs: bool = True) -> Any:
    return run(workflow_result(DC, record, result_type=result_type, follow_runs=follow_runs))


@dataclasses.dataclass
class Receipt:
    order: str
    total: int


def test_completed_returns_the_decoded_result() -> None:
    record = result("COMPLETED", result=[json_payload(b'{"order":"o-1","total":3}')])
    assert outcome(record) == {"order": "o-1", "total": 3}
    assert outcome(record, result_type=Receipt) == Receipt("o-1", 3)
    assert outcome(result("COMPLETED")) is None  # a workflow that returns None


def failure(error: BaseException) -> Any:
    return run(DC.encode_failure(error))


def test_failed_raises_workflow_failure_with_the_decoded_cause() -> None:
    record = result("FAILED", failure=failure(ApplicationError("boom", type="Bad")))
    with pytest.raises(WorkflowFailureError) as info:
        outcome(record)
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.message == "boom" and cause.type == "Bad"


def test_canceled_is_caused_by_cancelled_error() -> None:
    with pytest.raises(WorkflowFailureError) as info:
        outcome(result("CANCELED"))
    assert isinstance(info.value.cause, CancelledError)
    record = result("CANCELED", failure=failure(CancelledError("by operator")))
    with pytest.raises(WorkflowFailureError) as info:
        outcome(record)
    assert isinstance(info.value.cause, CancelledError)
    assert info.value.cause.message == "by operator"


def test_terminated_is_caused_by_terminated_error() -> None:
    with pytest.raises(WorkflowFailureError) as info:
        outcome(result("TERMINATED"))
    assert isinstance(info.value.cause, TerminatedError)
    record = result("TERMINATED", failure=failure(TerminatedError("stop it")))
    with pytest.raises(WorkflowFailureError) as info:
        outcome(record)
    assert isinstance(info.value.cause, TerminatedError)
    assert info.value.cause.message == "stop it"


def test_timed_out_is_caused_by_timeout_error() -> None:
    with pytest.raises(WorkflowFailureError) as info:
        outcome(result("TIMED_OUT"))
    cause = info.value.cause
    assert isinstance(cause, TimeoutError)
    assert cause.type is TimeoutType.START_TO_CLOSE


def test_continued_as_new_without_following_names_the_new_run() -> None:
    with pytest.raises(WorkflowContinuedAsNewError) as info:
        outcome(result("CONTINUED_AS_NEW", new_run_id="r2"), follow_runs=False)
    assert info.value.new_execution_run_id == "r2"


def test_a_successor_run_is_followed_when_asked() -> None:
    for status in ("CONTINUED_AS_NEW", "FAILED", "COMPLETED", "TIMED_OUT"):
        followed = outcome(result(status, new_run_id="r2"))
        assert isinstance(followed, FollowRun) and followed.run_id == "r2"


def test_without_following_a_retried_failure_is_still_a_failure() -> None:
    record = result("FAILED", failure=failure(ApplicationError("x")), new_run_id="r2")
    with pytest.raises(WorkflowFailureError):
        outcome(record, follow_runs=False)


def test_running_is_not_a_result() -> None:
    with pytest.raises(CadenzaServiceError, match="RUNNING"):
        outcome(result("RUNNING"))


def test_failed_without_a_failure_still_raises_workflow_failure() -> None:
    with pytest.raises(WorkflowFailureError) as info:
        outcome(result("FAILED"))
    assert isinstance(info.value.cause, ApplicationError)
