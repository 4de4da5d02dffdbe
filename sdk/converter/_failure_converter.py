"""Failure converters: exceptions <-> the wire ``Failure`` dict."""

from __future__ import annotations

import asyncio
import traceback
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

from ..common._failure import (
    ACTIVITY_FAILURE_INFO,
    APPLICATION_FAILURE_INFO,
    CANCELED_FAILURE_INFO,
    CHILD_WORKFLOW_FAILURE_INFO,
    FAILURE_SOURCE,
    SERVER_FAILURE_INFO,
    TERMINATED_FAILURE_INFO,
    TIMEOUT_FAILURE_INFO,
    Failure,
)
from ..common._payload import Payload
from ..exceptions import (
    ActivityError,
    ApplicationError,
    ApplicationErrorCategory,
    CancelledError,
    ChildWorkflowError,
    FailureError,
    RetryState,
    ServerError,
    TerminatedError,
    TimeoutError,
    TimeoutType,
)
from ._payload_converter import PayloadConverter

_MS = timedelta(milliseconds=1)
_MAX_CAUSE_DEPTH = 64


class FailureConverter(ABC):
    """Converts exceptions to wire ``Failure`` dicts and back.

    Unlike Temporal's, which fills a protobuf passed in, :meth:`to_failure`
    returns a new dict. Payloads inside are converted but not codec-encoded:
    ``DataConverter.encode_failure`` does that.
    """

    default: ClassVar[FailureConverter]
    """The default failure converter (a :class:`DefaultFailureConverter`)."""

    @abstractmethod
    def to_failure(self, exception: BaseException, payload_converter: PayloadConverter) -> Failure:
        """Convert ``exception`` (and its cause chain). Must not alter it."""
        raise NotImplementedError

    @abstractmethod
    def from_failure(self, failure: Failure, payload_converter: PayloadConverter) -> BaseException:
        """Convert ``failure`` (and its cause chain). Must not alter it."""
        raise NotImplementedError


def _retry_state_name(state: RetryState | None) -> str:
    return state.name if state is not None else "UNSPECIFIED"


def _retry_state(name: Any) -> RetryState | None:
    if isinstance(name, str) and name in RetryState.__members__:
        return RetryState[name]
    return None


def _branch(info: Any) -> tuple[str, Mapping[str, Any]] | None:
    # fastavro returns (name, record) with return_record_name=True; JSON turns
    # the tuple into a list. Anything else is a failure without info.
    if isinstance(info, tuple | list) and len(info) == 2 and isinstance(info[1], Mapping):
        return str(info[0]), info[1]
    return None


class DefaultFailureConverter(FailureConverter):
    """Converts every ``cadenza.exceptions`` failure to its info branch.

    Any other exception becomes an ``ApplicationError`` whose ``type`` is the
    exception's class name (so ``RetryPolicy.non_retryable_error_types`` can
    name it); ``asyncio.CancelledError`` becomes a cancellation.

    Example:
        >>> from cadenza.exceptions import ApplicationError
        >>> from cadenza.converter import PayloadConverter
        >>> conv = DefaultFailureConverter()
        >>> error = ApplicationError("nope", type="Bad")
        >>> failure = conv.to_failure(error, PayloadConverter.default)
        >>> failure["info"][0], failure["info"][1]["type"]
        ('cadenza.common.ApplicationFailureInfo', 'Bad')
        >>> conv.from_failure(failure, PayloadConverter.default).type
        'Bad'
    """

    def __init__(self, *, encode_common_attributes: bool = False) -> None:
        """Create the converter.

        Args:
            encode_common_attributes: Move each failure's message and stack
                trace into ``encoded_attributes`` (a payload, so a codec can
                encrypt them), leaving ``"Encoded failure"`` as the message.
        """
        self._encode_common_attributes = encode_common_attributes

    def to_failure(self, exception: BaseException, payload_converter: PayloadConverter) -> Failure:
        """See :meth:`FailureConverter.to_failure`."""
        return self._to_failure(exception, payload_converter, 0)

    def _to_failure(
        self, exception: BaseException, payload_converter: PayloadConverter, depth: int
    ) -> Failure:
        error = self._as_failure_error(exception)
        if error.failure is not None:
            return error.failure
        failure: Failure = {
            "message": error.message,
            "source": FAILURE_SOURCE,
            "stack_trace": (
                "".join(traceback.format_tb(error.__traceback__)) if error.__traceback__ else ""
            ),
            "cause": None,
            "info": self._info(error, payload_converter),
        }
        cause = error.__cause__
        if cause is None and not error.__suppress_context__:
            cause = error.__context__
        if cause is not None and depth < _MAX_CAUSE_DEPTH:
            failure["cause"] = self._to_failure(cause, payload_converter, depth + 1)
        if self._encode_common_attributes:
            failure["encoded_attributes"] = payload_converter.to_payload(
                {"message": failure["message"], "stack_trace": failure["stack_trace"]}
            )
            failure["message"] = "Encoded failure"
            failure["stack_trace"] = ""
        return failure

    @staticmethod
    def _as_failure_error(exception: BaseException) -> FailureError:
        if isinstance(exception, FailureError):
            return exception
        if isinstance(exception, asyncio.CancelledError):
            converted: FailureError = CancelledError(str(exception) or "Cancelled")
        else:
            converted = ApplicationError(str(exception), type=type(exception).__name__)
        converted.__traceback__ = exception.__traceback__
        converted.__cause__ = exception.__cause__
        converted.__context__ = exception.__context__
        converted.__suppress_context__ = exception.__suppress_context__
        return converted

    @staticmethod
    def _info(
        error: FailureError, payload_converter: PayloadConverter
    ) -> tuple[str, dict[str, Any]] | None:
        def payloads(values: Any) -> list[Any]:
            return payload_converter.to_payloads(values) if values else []

        if isinstance(error, ApplicationError):
            return APPLICATION_FAILURE_INFO, {
                "type": error.type or "",
                "non_retryable": error.non_retryable,
                "details": payloads(error.details),
                "next_retry_delay_ms": (
                    error.next_retry_delay // _MS if error.next_retry_delay is not None else None
                ),
                "category": error.category.name,
            }
        if isinstance(error, TimeoutError):
            return TIMEOUT_FAILURE_INFO, {
                "timeout_type": error.type.name if error.type is not None else None,
                "last_heartbeat_details": payloads(error.last_heartbeat_details),
            }
        if isinstance(error, CancelledError):
            return CANCELED_FAILURE_INFO, {"details": payloads(error.details)}
        if isinstance(error, TerminatedError):
            return TERMINATED_FAILURE_INFO, {"reason": error.message}
        if isinstance(error, ServerError):
            return SERVER_FAILURE_INFO, {"non_retryable": error.non_retryable}
        if isinstance(error, ActivityError):
            return ACTIVITY_FAILURE_INFO, {
                "scheduled_event_id": error.scheduled_event_id,
                "started_event_id": error.started_event_id,
                "identity": error.identity,
                "activity_type": error.activity_type,
                "activity_id": error.activity_id,
                "retry_state": _retry_state_name(error.retry_state),
            }
        if isinstance(error, ChildWorkflowError):
            return CHILD_WORKFLOW_FAILURE_INFO, {
                "namespace": error.namespace,
                "workflow_id": error.workflow_id,
                "run_id": error.run_id,
                "workflow_type": error.workflow_type,
                "initiated_event_id": error.initiated_event_id,
                "started_event_id": error.started_event_id,
                "retry_state": _retry_state_name(error.retry_state),
            }
        return None

    def from_failure(self, failure: Failure, payload_converter: PayloadConverter) -> BaseException:
        """See :meth:`FailureConverter.from_failure`."""
        return self._from_failure(failure, payload_converter, 0)

    def _from_failure(
        self, failure: Failure, payload_converter: PayloadConverter, depth: int
    ) -> BaseException:
        encoded = failure.get("encoded_attributes")
        if encoded is not None:
            failure = self._with_decoded_attributes(failure, encoded, payload_converter)
        error = self._error(failure, payload_converter)
        error._failure = failure
        cause = failure.get("cause")
        if cause is not None and depth < _MAX_CAUSE_DEPTH:
            error.__cause__ = self._from_failure(cause, payload_converter, depth + 1)
        return error

    @staticmethod
    def _with_decoded_attributes(
        failure: Failure, encoded: Payload, payload_converter: PayloadConverter
    ) -> Failure:
        try:
            attributes = payload_converter.from_payload(encoded)
        except Exception:
            # Undecodable (e.g. no codec configured): keep the placeholders.
            return failure
        if not isinstance(attributes, dict):
            return failure
        decoded: Failure = dict(failure)  # type: ignore[assignment]
        if isinstance(attributes.get("message"), str):
            decoded["message"] = attributes["message"]
        if isinstance(attributes.get("stack_trace"), str):
            decoded["stack_trace"] = attributes["stack_trace"]
        return decoded

    @staticmethod
    def _error(failure: Failure, payload_converter: PayloadConverter) -> FailureError:
        message = failure.get("message") or ""
        branch = _branch(failure.get("info"))
        if branch is None:
            return FailureError(message or "Failure error")
        name, info = branch

        def values(field: str) -> list[Any]:
            payloads = info.get(field) or []
            return payload_converter.from_payloads(payloads) if payloads else []

        if name == APPLICATION_FAILURE_INFO:
            delay_ms = info.get("next_retry_delay_ms")
            category = info.get("category") or "UNSPECIFIED"
            return ApplicationError(
                message or "Application error",
                *values("details"),
                type=info.get("type") or None,
                non_retryable=bool(info.get("non_retryable")),
                next_retry_delay=timedelta(milliseconds=delay_ms) if delay_ms is not None else None,
                category=ApplicationErrorCategory.__members__.get(
                    category, ApplicationErrorCategory.UNSPECIFIED
                ),
            )
        if name == TIMEOUT_FAILURE_INFO:
            timeout_type = info.get("timeout_type")
            return TimeoutError(
                message or "Timeout",
                type=TimeoutType.__members__.get(timeout_type) if timeout_type else None,
                last_heartbeat_details=values("last_heartbeat_details"),
            )
        if name == CANCELED_FAILURE_INFO:
            return CancelledError(message or "Cancelled", *values("details"))
        if name == TERMINATED_FAILURE_INFO:
            return TerminatedError(message or info.get("reason") or "Terminated")
        if name == SERVER_FAILURE_INFO:
            return ServerError(
                message or "Server error", non_retryable=bool(info.get("non_retryable"))
            )
        if name == ACTIVITY_FAILURE_INFO:
            return ActivityError(
                message or "Activity error",
                scheduled_event_id=int(info.get("scheduled_event_id") or 0),
                started_event_id=int(info.get("started_event_id") or 0),
                identity=info.get("identity") or "",
                activity_type=info.get("activity_type") or "",
                activity_id=info.get("activity_id") or "",
                retry_state=_retry_state(info.get("retry_state")),
            )
        if name == CHILD_WORKFLOW_FAILURE_INFO:
            return ChildWorkflowError(
                message or "Child workflow error",
                namespace=info.get("namespace") or "default",
                workflow_id=info.get("workflow_id") or "",
                run_id=info.get("run_id") or "",
                workflow_type=info.get("workflow_type") or "",
                initiated_event_id=int(info.get("initiated_event_id") or 0),
                started_event_id=int(info.get("started_event_id") or 0),
                retry_state=_retry_state(info.get("retry_state")),
            )
        # A branch this SDK does not know (a newer producer): keep the message.
        return FailureError(message or f"Failure ({name})")


class DefaultFailureConverterWithEncodedAttributes(DefaultFailureConverter):
    """Moves message and stack trace into ``encoded_attributes``, so a codec can encrypt them.

    Use it with an encrypting codec::

        DataConverter(
            payload_codec=my_encrypting_codec,
            failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
        )
    """

    def __init__(self) -> None:
        """Create the converter."""
        super().__init__(encode_common_attributes=True)
