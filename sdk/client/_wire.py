"""Client calls <-> wire records: the command bodies the client sends, and what replies mean.

Pure functions over plain dicts (and the data converter), so every option and
every reply is tested without a broker. Command bodies are ``("cadenza.command.
<Name>", record)`` tuples, as the Avro codec writes a union branch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from .._ids import new_id as new_id  # a request, signal, query or update id
from ..common._enums import WorkflowExecutionStatus, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from ..common._payload import Payload
from ..common._retry import RetryPolicy
from ..common._search_attributes import SearchAttributes, TypedSearchAttributes
from ..converter import DataConverter
from ..exceptions import (
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
from ..workflow import _search

Body = tuple[str, dict[str, Any]]
"""A union branch as the codec writes it: ``(full record name, record)``."""

COMMAND = "cadenza.command."
REPLY = "cadenza.reply."

_MS = timedelta(milliseconds=1)


def to_ms(value: timedelta | None, what: str) -> int | None:
    """``value`` in whole milliseconds (``None`` stays ``None``).

    Raises:
        TypeError: ``value`` is not a timedelta.
        ValueError: ``value`` is negative.
    """
    if value is None:
        return None
    if not isinstance(value, timedelta):
        raise TypeError(f"{what} must be a timedelta, not {type(value).__name__}")
    if value < timedelta(0):
        raise ValueError(f"{what} cannot be negative (got {value})")
    return value // _MS


def from_ms(value: int | None) -> datetime | None:
    """An epoch-milliseconds wire time as an aware UTC datetime."""
    if value is None:
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)


async def encode_memo(
    converter: DataConverter, memo: Mapping[str, Any] | None
) -> dict[str, Payload]:
    """Memo values as payloads, the codec applied (memo is user data, as arguments are)."""
    if not memo:
        return {}
    keys = list(memo)
    payloads = await converter.encode([memo[k] for k in keys])
    return dict(zip(keys, payloads, strict=True))


def encode_search_attributes(
    converter: DataConverter, attributes: SearchAttributes | TypedSearchAttributes | None
) -> dict[str, Payload]:
    """Search attributes as typed payloads; no codec, since the visibility store reads them."""
    return _search.encode_typed(attributes, converter.payload_converter)


async def start_workflow_body(
    converter: DataConverter,
    *,
    workflow_type: str,
    args: Sequence[Any],
    task_queue: str,
    request_id: str,
    execution_timeout: timedelta | None = None,
    run_timeout: timedelta | None = None,
    task_timeout: timedelta | None = None,
    id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    id_conflict_policy: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.UNSPECIFIED,
    retry_policy: RetryPolicy | None = None,
    cron_schedule: str = "",
    memo: Mapping[str, Any] | None = None,
    search_attributes: SearchAttributes | TypedSearchAttributes | None = None,
    start_delay: timedelta | None = None,
    start_signal: str | None = None,
    start_signal_args: Sequence[Any] = (),
    signal_id: str | None = None,
    header: Mapping[str, Any] | None = None,
) -> Body:
    """The ``StartWorkflow`` body for a ``Client.start_workflow`` call."""
    signal = None
    if start_signal is not None:
        signal = {
            "signal_name": start_signal,
            "input": await converter.encode(list(start_signal_args)),
            "signal_id": signal_id or new_id(),
            "header": {},
        }
    elif start_signal_args:
        raise ValueError("start_signal_args given without start_signal")
    record = {
        "workflow_type": workflow_type,
        "task_queue": task_queue,
        "input": await converter.encode(list(args)),
        "request_id": request_id,
        "id_reuse_policy": WorkflowIDReusePolicy(id_reuse_policy).name,
        "id_conflict_policy": WorkflowIDConflictPolicy(id_conflict_policy).name,
        "execution_timeout_ms": to_ms(execution_timeout, "execution_timeout"),
        "run_timeout_ms": to_ms(run_timeout, "run_timeout"),
        "task_timeout_ms": to_ms(task_timeout, "task_timeout"),
        "retry_policy": None if retry_policy is None else dict(retry_policy.to_avro()),
        "cron_schedule": cron_schedule or None,
        "memo": await encode_memo(converter, memo),
        "search_attributes": encode_search_attributes(converter, search_attributes),
        "header": dict(header or {}),
        "start_delay_ms": to_ms(start_delay, "start_delay"),
        "signal": signal,
        "parent": None,
        "result_reply_to": None,
        "request_eager_execution": False,
    }
    return (COMMAND + "StartWorkflow", record)


def short_name(full_name: str) -> str:
    """``cadenza.reply.WorkflowStarted`` -> ``WorkflowStarted``."""
    return full_name.rsplit(".", 1)[-1]


def raise_rejection(reply: Mapping[str, Any], *, workflow_type: str | None = None) -> NoReturn:
    """Raise the error a ``CommandRejected`` reply stands for.

    ``ALREADY_STARTED`` (to a start) is :class:`WorkflowAlreadyStartedError`;
    every other code is :class:`CadenzaServiceError` carrying the code.
    """
    _, rejected = reply["body"]
    code = str(rejected["code"])
    if code == "ALREADY_STARTED" and workflow_type is not None:
        raise WorkflowAlreadyStartedError(
            str(reply["workflow_id"]), workflow_type, run_id=reply.get("run_id")
        )
    raise CadenzaServiceError(str(rejected["message"]), code)


def expect(
    reply: Mapping[str, Any] | None, name: str, *, workflow_type: str | None = None
) -> dict[str, Any]:
    """The body record of ``reply`` if it is ``cadenza.reply.<name>``; raise otherwise.

    Raises:
        WorkflowAlreadyStartedError: ``CommandRejected`` ALREADY_STARTED to a start
            (``workflow_type`` given).
        CadenzaServiceError: Any other ``CommandRejected``, or an unexpected reply.
    """
    if reply is None:
        raise CadenzaServiceError(f"no reply where a {name} was expected", "INTERNAL")
    body_name, body = reply["body"]
    if body_name == REPLY + name:
        return dict(body)
    if body_name == REPLY + "CommandRejected":
        raise_rejection(reply, workflow_type=workflow_type)
    raise CadenzaServiceError(f"expected a {name} reply, got {short_name(body_name)}", "INTERNAL")


async def decode_values(
    converter: DataConverter, payloads: Sequence[Payload], type_hint: Any | None
) -> Any:
    """The first value of ``payloads`` (``None`` when there is none), converted to ``type_hint``."""
    if not payloads:
        return None
    values = await converter.decode(list(payloads[:1]), [type_hint] if type_hint else None)
    return values[0]


class FollowRun:
    """What :func:`workflow_result` returns when the result lies in a later run."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def __repr__(self) -> str:
        return f"FollowRun({self.run_id!r})"


async def workflow_result(
    converter: DataConverter,
    result: Mapping[str, Any],
    *,
    result_type: Any | None,
    follow_runs: bool,
) -> Any:
    """Interpret a ``WorkflowResult``: the decoded value, a :class:`FollowRun`, or an error.

    Raises:
        WorkflowFailureError: The run failed, was cancelled, terminated or timed out;
            the cause is the decoded failure (or, when the engine sent none, a
            ``CancelledError``, ``TerminatedError`` or ``TimeoutError``).
        WorkflowContinuedAsNewError: The run continued as new and ``follow_runs`` is off.
        CadenzaServiceError: The reply names a status a closed run cannot have.
    """
    status = WorkflowExecutionStatus[str(result["status"])]
    new_run_id = result.get("new_run_id")
    if follow_runs and new_run_id:
        # The engine follows the chain itself when asked; this covers a reply that
        # stops at a run with a successor (retry, cron, continue-as-new).
        return FollowRun(str(new_run_id))
    if status is WorkflowExecutionStatus.COMPLETED:
        return await decode_values(converter, result["result"], result_type)
    if status is WorkflowExecutionStatus.CONTINUED_AS_NEW:
        if not follow_runs:
            raise WorkflowContinuedAsNewError(str(new_run_id or ""))
        raise CadenzaServiceError(
            f"run {result['run_id']} continued as new but the reply names no new run",
            "INTERNAL",
        )
    failure = result.get("failure")
    cause: BaseException
    if failure is not None:
        cause = await converter.decode_failure(failure)
    elif status is WorkflowExecutionStatus.CANCELED:
        cause = CancelledError("Workflow cancelled")
    elif status is WorkflowExecutionStatus.TERMINATED:
        cause = TerminatedError("Workflow terminated")
    elif status is WorkflowExecutionStatus.TIMED_OUT:
        cause = TimeoutError(
            "Workflow timed out", type=TimeoutType.START_TO_CLOSE, last_heartbeat_details=[]
        )
    elif status is WorkflowExecutionStatus.FAILED:
        cause = ApplicationError("Workflow failed (the engine sent no failure)")
    else:
        raise CadenzaServiceError(
            f"a WorkflowResult for run {result['run_id']} says it is {status.name}", "INTERNAL"
        )
    raise WorkflowFailureError(cause=cause)
