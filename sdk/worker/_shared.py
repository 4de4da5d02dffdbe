"""What the worker needs of a client, and helpers its two halves share."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from confluent_kafka import KafkaError

from .. import schemas
from .._settings import Settings
from ..converter import DataConverter

_log = logging.getLogger("cadenza.worker")

WORKFLOW_TASK_COMPLETED = "cadenza.command.WorkflowTaskCompleted"
WORKFLOW_TASK_FAILED = "cadenza.command.WorkflowTaskFailed"
WORKFLOW_TASK_STARTED = "cadenza.command.WorkflowTaskStarted"
RESET_STICKY = "cadenza.command.ResetStickyTaskQueue"
ACTIVITY_TASK_STARTED = "cadenza.command.ActivityTaskStarted"
ACTIVITY_TASK_COMPLETED = "cadenza.command.ActivityTaskCompleted"
ACTIVITY_TASK_FAILED = "cadenza.command.ActivityTaskFailed"
ACTIVITY_TASK_CANCELED = "cadenza.command.ActivityTaskCanceled"
ACTIVITY_TASK_HEARTBEAT = "cadenza.command.ActivityTaskHeartbeat"
QUERY_RESULT = "cadenza.reply.QueryResult"
HEARTBEAT_RESPONSE = "cadenza.reply.HeartbeatResponse"
COMMAND_REJECTED = "cadenza.reply.CommandRejected"


class WorkerTransport(Protocol):
    """The part of ``cadenza._transport.Transport`` a worker uses."""

    async def send_command(
        self,
        workflow_id: str,
        body: tuple[str, dict[str, Any]],
        *,
        run_id: str | None = None,
        want_reply: bool = False,
        timeout: float | None = None,
    ) -> dict[str, Any] | None:
        """Send a command (see ``Transport.send_command``)."""
        ...

    async def send_reply(
        self,
        reply_to: dict[str, Any],
        *,
        workflow_id: str,
        run_id: str | None,
        body: tuple[str, dict[str, Any]],
    ) -> None:
        """Answer a request (see ``Transport.send_reply``)."""
        ...


class WorkerClient(Protocol):
    """The part of ``cadenza.client.Client`` a worker uses: any object with these works."""

    @property
    def settings(self) -> Settings:
        """Cluster, security and namespace."""
        ...

    @property
    def namespace(self) -> str:
        """The namespace (shown in ``workflow.info()`` and ``activity.info()``)."""
        ...

    @property
    def identity(self) -> str:
        """The default worker identity."""
        ...

    @property
    def data_converter(self) -> DataConverter:
        """Converts values and failures; its codec is applied at the worker's boundary."""
        ...

    @property
    def transport(self) -> WorkerTransport:
        """Sends commands and replies."""
        ...


class AnswerNotSent(Exception):
    """An answer could not be written to Kafka for a reason other than the record itself."""


def is_record_problem(error: BaseException) -> bool:
    """Whether a failed send is the record's fault (too large, not encodable), not Kafka's.

    Such an answer is replaced by a failure (of the workflow task or activity
    attempt); any other send failure means Kafka cannot be written to.
    """
    if isinstance(error, schemas.EncodeError):
        return True
    kafka_error: Any = getattr(error, "error", None)
    code = getattr(kafka_error, "code", None)
    if callable(code):
        return bool(code() in (KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.INVALID_RECORD))
    return False
