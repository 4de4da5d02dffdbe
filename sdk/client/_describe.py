"""``WorkflowExecutionDescription``: what ``WorkflowHandle.describe()`` returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, overload

from ..common._enums import WorkflowExecutionStatus
from ..common._payload import Payload
from ..common._search_attributes import SearchAttributes, TypedSearchAttributes
from ..common._typing import _arg_unset
from ..converter import DataConverter
from ..workflow import _search
from ._wire import from_ms

_T = TypeVar("_T")


@dataclass(frozen=True)
class WorkflowExecutionDescription:
    """A workflow run as the engine describes it (temporalio's field names where they apply).

    The memo stays encoded until asked for: ``await description.memo()``.
    """

    id: str
    """Workflow id."""

    run_id: str
    """Run id of the described run."""

    workflow_type: str
    """Workflow type name."""

    task_queue: str
    """Task queue of the workflow's tasks."""

    status: WorkflowExecutionStatus
    """Status of the run."""

    start_time: datetime
    """When the run started (UTC)."""

    close_time: datetime | None
    """When the run closed (UTC); ``None`` while it is running."""

    execution_time: datetime
    """When the first workflow task was due: the start time plus any start delay."""

    history_length: int
    """Number of events in the run's history."""

    parent_id: str | None
    """Workflow id of the parent, for a child workflow."""

    parent_run_id: str | None
    """Run id of the parent, for a child workflow."""

    search_attributes: SearchAttributes
    """Search attributes, untyped (name to list of values); prefer the typed ones."""

    typed_search_attributes: TypedSearchAttributes
    """Search attributes whose type is known."""

    raw_description: Mapping[str, Any]
    """The ``cadenza.reply.WorkflowDescription`` record as received (pending activities and
    children included)."""

    data_converter: DataConverter = field(repr=False, compare=False)
    """Converter used to decode the memo."""

    raw_memo: Mapping[str, Payload] = field(default_factory=dict, repr=False)
    """The memo as encoded payloads, by key."""

    @staticmethod
    def from_reply(
        workflow_id: str,
        run_id: str | None,
        description: Mapping[str, Any],
        data_converter: DataConverter,
    ) -> WorkflowExecutionDescription:
        """Build a description from a ``WorkflowDescription`` reply record."""
        untyped, pairs = _search.decode(
            description.get("search_attributes", {}), data_converter.payload_converter
        )
        parent = description.get("parent")
        start_time = from_ms(description["start_time_ms"])
        execution_time = from_ms(description["execution_time_ms"])
        assert start_time is not None and execution_time is not None
        return WorkflowExecutionDescription(
            id=workflow_id,
            run_id=run_id or "",
            workflow_type=str(description["workflow_type"]),
            task_queue=str(description["task_queue"]),
            status=WorkflowExecutionStatus[str(description["status"])],
            start_time=start_time,
            close_time=from_ms(description.get("close_time_ms")),
            execution_time=execution_time,
            history_length=int(description["history_length"]),
            parent_id=None if parent is None else str(parent["workflow_id"]),
            parent_run_id=None if parent is None else str(parent["run_id"]),
            search_attributes={k: v for k, v in untyped.items() if v is not None},
            typed_search_attributes=TypedSearchAttributes(
                [p for p in pairs if p.value is not None]
            ),
            raw_description=description,
            data_converter=data_converter,
            raw_memo=dict(description.get("memo", {})),
        )

    async def memo(self) -> dict[str, Any]:
        """The memo, decoded without type hints (dataclasses come back as dicts)."""
        keys = list(self.raw_memo)
        values = await self.data_converter.decode([self.raw_memo[k] for k in keys])
        return dict(zip(keys, values, strict=True))

    @overload
    async def memo_value(self, key: str, default: Any = _arg_unset) -> Any: ...

    @overload
    async def memo_value(self, key: str, *, type_hint: type[_T]) -> _T: ...

    @overload
    async def memo_value(self, key: str, default: Any, *, type_hint: type[_T]) -> Any: ...

    async def memo_value(
        self, key: str, default: Any = _arg_unset, *, type_hint: Any | None = None
    ) -> Any:
        """One memo value, converted to ``type_hint`` if given.

        Raises:
            KeyError: ``key`` is not in the memo and no ``default`` was given.
        """
        payload = self.raw_memo.get(key)
        if payload is None:
            if default is _arg_unset:
                raise KeyError(f"Memo does not have a value for key {key}")
            return default
        values = await self.data_converter.decode([payload], [type_hint] if type_hint else None)
        return values[0]
