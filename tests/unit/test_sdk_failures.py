"""cadenza.exceptions, and every failure's round trip through the FailureConverter."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import timedelta
from typing import Any

import pytest

from cadenza import schemas
from cadenza.converter import (
    DataConverter,
    DefaultFailureConverter,
    DefaultFailureConverterWithEncodedAttributes,
    Failure,
    PayloadConverter,
)
from cadenza.exceptions import (
    ActivityError,
    ApplicationError,
    ApplicationErrorCategory,
    CadenzaError,
    CadenzaServiceError,
    CancelledError,
    ChildWorkflowError,
    FailureError,
    NondeterminismError,
    RetryState,
    ServerError,
    TerminatedError,
    TimeoutError,
    TimeoutType,
    WorkflowAlreadyStartedError,
    WorkflowContinuedAsNewError,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    is_cancelled_exception,
)

CONVERTER = DefaultFailureConverter()
PAYLOADS = PayloadConverter.default


@dataclasses.dataclass
class Detail:
    code: int
    reason: str


def raised(error: BaseException, cause: BaseException | None = None) -> BaseException:
    """``error`` after really being raised (so it has a traceback) from ``cause``."""
    try:
        if cause is not None:
            raise error from cause
        raise error
    except BaseException as caught:
        return caught


def round_trip(error: BaseException) -> BaseException:
    failure = CONVERTER.to_failure(error, PAYLOADS)
    # What crosses Kafka is JSON-free Avro, but the dict must at least be plain data.
    assert isinstance(failure, dict)
    return CONVERTER.from_failure(failure, PAYLOADS)


def test_one_root_and_its_branches() -> None:
    for cls in (
        FailureError,
        ApplicationError,
        CancelledError,
        TerminatedError,
        TimeoutError,
        ServerError,
        ActivityError,
        ChildWorkflowError,
        WorkflowAlreadyStartedError,
        WorkflowFailureError,
        WorkflowContinuedAsNewError,
        WorkflowQueryFailedError,
        WorkflowQueryRejectedError,
        WorkflowUpdateFailedError,
        CadenzaServiceError,
        NondeterminismError,
    ):
        assert issubclass(cls, CadenzaError), cls
    assert issubclass(ApplicationError, FailureError)
    assert not issubclass(WorkflowFailureError, FailureError)


def test_application_error_fields() -> None:
    err = ApplicationError(
        "declined",
        Detail(51, "funds"),
        type="Declined",
        non_retryable=True,
        next_retry_delay=timedelta(seconds=3),
    )
    assert str(err) == "Declined: declined"
    assert err.message == "declined"
    assert err.details == (Detail(51, "funds"),)
    assert err.non_retryable
    assert err.next_retry_delay == timedelta(seconds=3)
    assert err.category is ApplicationErrorCategory.UNSPECIFIED
    assert str(ApplicationError("plain")) == "plain"


def test_application_error_round_trip_keeps_everything() -> None:
    original = raised(
        ApplicationError(
            "declined",
            Detail(51, "funds"),
            "second",
            type="Declined",
            non_retryable=True,
            next_retry_delay=timedelta(milliseconds=1500),
            category=ApplicationErrorCategory.BENIGN,
        )
    )
    failure = CONVERTER.to_failure(original, PAYLOADS)
    assert failure["source"] == "CadenzaPython"
    assert "raise error" in failure["stack_trace"]
    assert failure["info"] is not None
    branch, info = failure["info"]
    assert branch == "cadenza.common.ApplicationFailureInfo"
    assert info["type"] == "Declined"
    assert info["non_retryable"] is True
    assert info["next_retry_delay_ms"] == 1500
    assert [json.loads(p["data"]) for p in info["details"]] == [
        {"code": 51, "reason": "funds"},
        "second",
    ]
    back = CONVERTER.from_failure(failure, PAYLOADS)
    assert isinstance(back, ApplicationError)
    assert (back.message, back.type, back.non_retryable) == ("declined", "Declined", True)
    assert back.next_retry_delay == timedelta(milliseconds=1500)
    assert back.category is ApplicationErrorCategory.BENIGN
    assert back.details == ({"code": 51, "reason": "funds"}, "second")
    assert back.failure is failure
    assert PAYLOADS.from_payload(failure["info"][1]["details"][0], Detail) == Detail(51, "funds")


def test_plain_python_exception_becomes_application_error_named_by_class() -> None:
    back = round_trip(raised(KeyError("missing")))
    assert isinstance(back, ApplicationError)
    assert back.type == "KeyError"
    assert back.message == "'missing'"
    assert not back.non_retryable


def test_asyncio_cancellation_becomes_cancelled_error() -> None:
    back = round_trip(raised(asyncio.CancelledError()))
    assert isinstance(back, CancelledError)
    assert is_cancelled_exception(back)


@pytest.mark.parametrize(
    ("error", "check"),
    [
        (
            CancelledError("stop", "why", 2),
            lambda e: isinstance(e, CancelledError) and e.details == ("why", 2),
        ),
        (CancelledError(), lambda e: e.message == "Cancelled"),
        (
            TerminatedError("operator said so"),
            lambda e: isinstance(e, TerminatedError) and e.message == "operator said so",
        ),
        (
            TimeoutError(
                "slow", type=TimeoutType.HEARTBEAT, last_heartbeat_details=["50%", {"row": 9}]
            ),
            lambda e: (
                isinstance(e, TimeoutError)
                and e.type is TimeoutType.HEARTBEAT
                and e.last_heartbeat_details == ["50%", {"row": 9}]
            ),
        ),
        (
            TimeoutError("slow", type=TimeoutType.START_TO_CLOSE, last_heartbeat_details=[]),
            lambda e: e.type is TimeoutType.START_TO_CLOSE and e.last_heartbeat_details == [],
        ),
        (
            ServerError("engine said no", non_retryable=True),
            lambda e: isinstance(e, ServerError) and e.non_retryable,
        ),
        (
            ActivityError(
                "activity failed",
                scheduled_event_id=5,
                started_event_id=6,
                identity="worker-1@host",
                activity_type="charge",
                activity_id="7",
                retry_state=RetryState.MAXIMUM_ATTEMPTS_REACHED,
            ),
            lambda e: (
                isinstance(e, ActivityError)
                and (e.scheduled_event_id, e.started_event_id) == (5, 6)
                and (e.identity, e.activity_type, e.activity_id) == ("worker-1@host", "charge", "7")
                and e.retry_state is RetryState.MAXIMUM_ATTEMPTS_REACHED
            ),
        ),
        (
            ActivityError(
                "a",
                scheduled_event_id=1,
                started_event_id=0,
                identity="",
                activity_type="t",
                activity_id="1",
                retry_state=None,
            ),
            lambda e: e.retry_state is None,
        ),
        (
            ChildWorkflowError(
                "child failed",
                namespace="orders",
                workflow_id="child-1",
                run_id="r-1",
                workflow_type="Shipping",
                initiated_event_id=10,
                started_event_id=11,
                retry_state=RetryState.NON_RETRYABLE_FAILURE,
            ),
            lambda e: (
                isinstance(e, ChildWorkflowError)
                and (e.namespace, e.workflow_id, e.run_id) == ("orders", "child-1", "r-1")
                and (e.workflow_type, e.initiated_event_id, e.started_event_id)
                == ("Shipping", 10, 11)
                and e.retry_state is RetryState.NON_RETRYABLE_FAILURE
            ),
        ),
        (
            FailureError("bare"),
            lambda e: type(e) is FailureError and e.message == "bare",
        ),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else "",
)
def test_every_failure_round_trips(error: FailureError, check: Any) -> None:
    back = round_trip(raised(error))
    assert check(back), back
    assert back.message == error.message  # type: ignore[attr-defined]


def test_cause_chain_round_trips() -> None:
    root = raised(ValueError("bad row 9"))
    middle = raised(ApplicationError("import failed", type="ImportError"), cause=root)
    top = ActivityError(
        "activity failed",
        scheduled_event_id=5,
        started_event_id=6,
        identity="w",
        activity_type="import_rows",
        activity_id="1",
        retry_state=RetryState.NON_RETRYABLE_FAILURE,
    )
    top = raised(top, cause=middle)
    failure = CONVERTER.to_failure(top, PAYLOADS)
    assert failure["cause"] is not None and failure["cause"]["cause"] is not None
    assert failure["cause"]["cause"]["message"] == "bad row 9"
    back = CONVERTER.from_failure(failure, PAYLOADS)
    assert isinstance(back, ActivityError)
    assert isinstance(back.cause, ApplicationError)
    assert back.cause.type == "ImportError"
    assert isinstance(back.cause.cause, ApplicationError)
    assert back.cause.cause.type == "ValueError"
    assert back.cause.cause.cause is None


def test_implicit_context_is_a_cause_unless_suppressed() -> None:
    def fail(suppress: bool) -> BaseException:
        try:
            try:
                raise KeyError("inner")
            except KeyError:
                if suppress:
                    raise ApplicationError("outer") from None
                raise ApplicationError("outer")  # noqa: B904 - the context is the point
        except ApplicationError as err:
            return err

    assert round_trip(fail(suppress=False)).cause is not None
    assert round_trip(fail(suppress=True)).cause is None


def test_cancelled_cause_makes_activity_and_child_errors_cancellations() -> None:
    activity = ActivityError(
        "a",
        scheduled_event_id=1,
        started_event_id=2,
        identity="",
        activity_type="t",
        activity_id="1",
        retry_state=RetryState.CANCEL_REQUESTED,
    )
    assert not is_cancelled_exception(activity)
    activity.__cause__ = CancelledError()
    assert is_cancelled_exception(activity)
    assert is_cancelled_exception(round_trip(activity))
    assert is_cancelled_exception(asyncio.CancelledError())
    assert not is_cancelled_exception(ApplicationError("x"))


def test_decoded_failure_is_resent_unchanged() -> None:
    failure = CONVERTER.to_failure(ApplicationError("x", type="T"), PAYLOADS)
    error = CONVERTER.from_failure(failure, PAYLOADS)
    assert CONVERTER.to_failure(error, PAYLOADS) is failure


def test_foreign_and_partial_failures_decode() -> None:
    # Another language's producer may leave optional fields out or use a newer branch.
    minimal: Failure = {
        "message": "m",
        "source": "GoSDK",
        "stack_trace": "",
        "cause": None,
        "info": ["cadenza.common.ApplicationFailureInfo", {"type": "", "non_retryable": False}],  # type: ignore[typeddict-item]
    }
    error = CONVERTER.from_failure(minimal, PAYLOADS)
    assert isinstance(error, ApplicationError)
    assert error.type is None and error.details == ()
    newer: Failure = {
        "message": "",
        "source": "",
        "stack_trace": "",
        "cause": None,
        "info": ("cadenza.common.FutureFailureInfo", {}),
    }
    assert type(CONVERTER.from_failure(newer, PAYLOADS)) is FailureError


def test_encoded_attributes_hide_message_and_stack_trace() -> None:
    converter = DefaultFailureConverterWithEncodedAttributes()
    error = raised(ApplicationError("secret account 42", type="T"), cause=ValueError("secret"))
    failure = converter.to_failure(error, PAYLOADS)
    assert failure["message"] == "Encoded failure"
    assert failure["stack_trace"] == ""
    assert failure["cause"] is not None and failure["cause"]["message"] == "Encoded failure"
    back = converter.from_failure(failure, PAYLOADS)
    assert back.message == "secret account 42"  # type: ignore[attr-defined]
    assert back.cause.message == "secret"  # type: ignore[union-attr]


def test_data_converter_encodes_and_decodes_failures() -> None:
    async def main() -> None:
        converter = DataConverter.default
        failure = await converter.encode_failure(ApplicationError("x", 1, type="T"))
        back = await converter.decode_failure(failure)
        assert isinstance(back, ApplicationError) and back.details == (1,)

    asyncio.run(main())


def every_failure() -> BaseException:
    chain: BaseException = raised(ValueError("root"))
    for error in (
        ApplicationError("app", "d", type="T", next_retry_delay=timedelta(seconds=1)),
        ApplicationError("untyped"),
        CancelledError("c", 1),
        TerminatedError("t"),
        TimeoutError("to", type=TimeoutType.SCHEDULE_TO_CLOSE, last_heartbeat_details=[1]),
        ServerError("s", non_retryable=True),
        FailureError("bare"),
        ActivityError(
            "a",
            scheduled_event_id=1,
            started_event_id=2,
            identity="i",
            activity_type="at",
            activity_id="aid",
            retry_state=None,
        ),
        ChildWorkflowError(
            "cw",
            namespace="default",
            workflow_id="w",
            run_id="r",
            workflow_type="wt",
            initiated_event_id=3,
            started_event_id=4,
            retry_state=RetryState.TIMEOUT,
        ),
    ):
        chain = raised(error, cause=chain)
    return chain


def test_failures_fit_the_avro_schema() -> None:
    # Every failure kind, chained, through the real Avro codec and back.
    failure = CONVERTER.to_failure(every_failure(), PAYLOADS)
    name, decoded = schemas.decode(schemas.encode("cadenza.common.Failure", failure))
    assert name == "cadenza.common.Failure"
    back = CONVERTER.from_failure(decoded, PAYLOADS)  # type: ignore[arg-type]
    kinds = []
    node: BaseException | None = back
    while node is not None:
        kinds.append(type(node).__name__)
        node = node.__cause__
    assert kinds == [
        "ChildWorkflowError",
        "ActivityError",
        "FailureError",
        "ServerError",
        "TimeoutError",
        "TerminatedError",
        "CancelledError",
        "ApplicationError",
        "ApplicationError",
        "ApplicationError",
    ]
    assert isinstance(back, ChildWorkflowError) and back.retry_state is RetryState.TIMEOUT


def test_client_errors() -> None:
    cause = ApplicationError("x")
    assert WorkflowFailureError(cause=cause).cause is cause
    assert WorkflowUpdateFailedError(cause).cause is cause
    assert WorkflowContinuedAsNewError("r-2").new_execution_run_id == "r-2"
    from cadenza.common import WorkflowExecutionStatus

    rejected = WorkflowQueryRejectedError(WorkflowExecutionStatus.COMPLETED)
    assert rejected.status is WorkflowExecutionStatus.COMPLETED
    assert str(rejected) == "Query rejected, status: COMPLETED"
    assert WorkflowQueryFailedError("boom").message == "boom"
    already = WorkflowAlreadyStartedError("w-1", "Order", run_id="r-1")
    assert (already.workflow_id, already.workflow_type, already.run_id) == ("w-1", "Order", "r-1")
    service = CadenzaServiceError("workflow 'w' not found", "NOT_FOUND")
    assert (service.code, service.message) == ("NOT_FOUND", "workflow 'w' not found")
    assert str(service) == "NOT_FOUND: workflow 'w' not found"
