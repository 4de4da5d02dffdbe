"""Workflow updates from the client: the wait stage and the handle of a sent update."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Generic

from ..common._payload import Payload
from ..common._types import ReturnType
from ..exceptions import CadenzaServiceError, WorkflowUpdateFailedError
from ._wire import COMMAND, decode_values, expect

if TYPE_CHECKING:
    from ._client import Client


class WorkflowUpdateStage(IntEnum):
    """How far an update must have gone before ``start_update`` returns."""

    ADMITTED = 1
    """The engine has the update (not supported as a wait stage, as in Temporal)."""
    ACCEPTED = 2
    """The workflow's validator accepted it (or it was rejected)."""
    COMPLETED = 3
    """The handler finished: the result (or failure) is known."""


def update_body(
    *,
    update_id: str,
    name: str,
    args: Sequence[Payload],
    identity: str,
    wait_stage: WorkflowUpdateStage,
    header: Mapping[str, Payload] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The ``UpdateWorkflow`` body."""
    return (
        COMMAND + "UpdateWorkflow",
        {
            "request": {
                "update_id": update_id,
                "name": name,
                "args": list(args),
                "header": dict(header or {}),
                "identity": identity,
            },
            "wait_stage": wait_stage.name,
        },
    )


class WorkflowUpdateHandle(Generic[ReturnType]):
    """An update that was sent to a workflow; :meth:`result` waits for its outcome.

    Returned by ``WorkflowHandle.start_update``. Asking for the result of an update
    whose outcome is not known yet sends the same update again (same id, name and
    arguments) asking for the ``COMPLETED`` stage; the engine recognises the update
    id and does not run it twice.
    """

    def __init__(
        self,
        client: Client,
        id: str,
        workflow_id: str,
        *,
        workflow_run_id: str | None = None,
        result_type: type | None = None,
        name: str,
        args: Sequence[Payload],
        known_outcome: dict[str, Any] | None = None,
    ) -> None:
        """Internal: use ``WorkflowHandle.start_update``."""
        self._client = client
        self._id = id
        self._workflow_id = workflow_id
        self._workflow_run_id = workflow_run_id
        self._result_type = result_type
        self._name = name
        self._args = list(args)
        self._known_outcome = known_outcome

    @property
    def id(self) -> str:
        """The update's id."""
        return self._id

    @property
    def workflow_id(self) -> str:
        """Id of the workflow the update was sent to."""
        return self._workflow_id

    @property
    def workflow_run_id(self) -> str | None:
        """Run the update was sent to, when known."""
        return self._workflow_run_id

    @property
    def name(self) -> str:
        """Name of the update handler."""
        return self._name

    async def result(self, *, rpc_timeout: timedelta | None = None) -> ReturnType:
        """Wait for the update's outcome (no time limit unless ``rpc_timeout``).

        Raises:
            WorkflowUpdateFailedError: The validator rejected the update or the
                handler raised; ``cause`` is the decoded failure.
            RPCTimeoutOrCancelledError: ``rpc_timeout`` passed first.
            CadenzaServiceError: The engine rejected the request (e.g. NOT_FOUND).
        """
        outcome = self._known_outcome
        if outcome is None:
            body = update_body(
                update_id=self._id,
                name=self._name,
                args=self._args,
                identity=self._client.identity,
                wait_stage=WorkflowUpdateStage.COMPLETED,
            )
            reply = await self._client._request(
                self._workflow_id,
                body,
                run_id=self._workflow_run_id,
                timeout=None if rpc_timeout is None else rpc_timeout.total_seconds(),
            )
            record = expect(reply, "UpdateResult")
            outcome = record.get("outcome")
            if outcome is None:
                raise CadenzaServiceError(
                    f"update {self._id} reached stage {record['stage']} without an outcome",
                    "INTERNAL",
                )
            self._known_outcome = outcome
        converter = self._client.data_converter
        failure = outcome.get("failure")
        if failure is not None:
            raise WorkflowUpdateFailedError(await converter.decode_failure(failure))
        value: ReturnType = await decode_values(converter, outcome["success"], self._result_type)
        return value
