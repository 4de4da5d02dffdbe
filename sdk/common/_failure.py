"""The wire shape of a failure (an error that crosses a process boundary).

Plain dicts in fastavro's notation, so the Avro codec writes them as they are:
``info`` is a union of records written as ``(full branch name, record)``.
Public under ``cadenza.converter``; declared here so ``cadenza.exceptions`` can
refer to it without importing the converter.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

from ._payload import Payload

FAILURE_SOURCE = "CadenzaPython"
"""Value of ``Failure["source"]`` for failures made by this SDK."""

APPLICATION_FAILURE_INFO = "cadenza.common.ApplicationFailureInfo"
TIMEOUT_FAILURE_INFO = "cadenza.common.TimeoutFailureInfo"
CANCELED_FAILURE_INFO = "cadenza.common.CanceledFailureInfo"
TERMINATED_FAILURE_INFO = "cadenza.common.TerminatedFailureInfo"
SERVER_FAILURE_INFO = "cadenza.common.ServerFailureInfo"
ACTIVITY_FAILURE_INFO = "cadenza.common.ActivityFailureInfo"
CHILD_WORKFLOW_FAILURE_INFO = "cadenza.common.ChildWorkflowFailureInfo"


class Failure(TypedDict):
    """A failure on the wire; ``cause`` chains to the failure that caused it."""

    message: str
    source: str
    stack_trace: str
    encoded_attributes: NotRequired[Payload | None]
    """With ``DefaultFailureConverterWithEncodedAttributes``: message and stack
    trace, moved into a payload so a codec can encrypt them."""
    cause: Failure | None
    info: tuple[str, dict[str, Any]] | None
    """``(branch full name, record)`` or ``None`` for a bare failure."""


class ApplicationFailureInfo(TypedDict):
    """``cadenza.common.ApplicationFailureInfo``: an ``ApplicationError``."""

    type: str
    """Error type name; ``""`` for none."""
    non_retryable: bool
    details: list[Payload]
    next_retry_delay_ms: int | None
    category: NotRequired[str]
    """``ApplicationErrorCategory`` name; optional on the wire (``UNSPECIFIED``)."""


TimeoutTypeName = Literal["START_TO_CLOSE", "SCHEDULE_TO_START", "SCHEDULE_TO_CLOSE", "HEARTBEAT"]


class TimeoutFailureInfo(TypedDict):
    """``cadenza.common.TimeoutFailureInfo``: a ``TimeoutError``.

    ``timeout_type`` is ``None`` only for a ``TimeoutError`` created without a
    type, which the engine never does.
    """

    timeout_type: TimeoutTypeName | None
    last_heartbeat_details: list[Payload]


class CanceledFailureInfo(TypedDict):
    """``cadenza.common.CanceledFailureInfo``: a ``CancelledError``."""

    details: list[Payload]


class TerminatedFailureInfo(TypedDict):
    """``cadenza.common.TerminatedFailureInfo``: a ``TerminatedError``."""

    reason: str


class ServerFailureInfo(TypedDict):
    """``cadenza.common.ServerFailureInfo``: a ``ServerError`` made by the engine."""

    non_retryable: bool


class ActivityFailureInfo(TypedDict):
    """``cadenza.common.ActivityFailureInfo``: an ``ActivityError``.

    ``retry_state`` is a ``RetryState`` member name, or ``UNSPECIFIED``.
    """

    scheduled_event_id: int
    started_event_id: int
    identity: str
    activity_type: str
    activity_id: str
    retry_state: str


class ChildWorkflowFailureInfo(TypedDict):
    """``cadenza.common.ChildWorkflowFailureInfo``: a ``ChildWorkflowError``.

    ``namespace`` is optional on the wire (readers default it to ``default``).
    """

    namespace: NotRequired[str]
    workflow_id: str
    run_id: str
    workflow_type: str
    initiated_event_id: int
    started_event_id: int
    retry_state: str
