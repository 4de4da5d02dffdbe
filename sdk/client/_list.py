"""What ``Client.list_workflows`` and ``Client.count_workflows`` return (temporalio's names)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
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

FetchPage = Callable[[int, bytes], Awaitable[tuple[list[dict[str, Any]], bytes]]]
"""``(page_size, next_page_token) -> (WorkflowExecutionInfo records, next token)``."""


def execution_fields(
    record: Mapping[str, Any],
    *,
    workflow_id: str,
    run_id: str,
    parent_id: str | None,
    parent_run_id: str | None,
    data_converter: DataConverter,
) -> dict[str, Any]:
    """The fields a ``WorkflowExecutionInfo`` and a ``WorkflowDescription`` record share."""
    untyped, pairs = _search.decode(
        record.get("search_attributes", {}), data_converter.payload_converter
    )
    start_time = from_ms(record["start_time_ms"])
    execution_time = from_ms(record["execution_time_ms"])
    assert start_time is not None and execution_time is not None
    return {
        "id": workflow_id,
        "run_id": run_id,
        "workflow_type": str(record["workflow_type"]),
        "task_queue": str(record["task_queue"]),
        "status": WorkflowExecutionStatus[str(record["status"])],
        "start_time": start_time,
        "close_time": from_ms(record.get("close_time_ms")),
        "execution_time": execution_time,
        "history_length": int(record["history_length"]),
        "parent_id": parent_id,
        "parent_run_id": parent_run_id,
        "search_attributes": {k: v for k, v in untyped.items() if v is not None},
        "typed_search_attributes": TypedSearchAttributes([p for p in pairs if p.value is not None]),
        "data_converter": data_converter,
        "raw_memo": dict(record.get("memo", {})),
    }


@dataclass(frozen=True)
class WorkflowExecution:
    """One workflow run as the visibility projection knows it.

    The memo stays encoded until asked for: ``await execution.memo()``.
    """

    id: str
    """Workflow id."""

    run_id: str
    """Run id."""

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
    """Number of events in the run's history, as far as the projection has read it."""

    parent_id: str | None
    """Workflow id of the parent, for a child workflow."""

    parent_run_id: str | None
    """Run id of the parent, for a child workflow."""

    search_attributes: SearchAttributes
    """Search attributes, untyped (name to list of values); prefer the typed ones."""

    typed_search_attributes: TypedSearchAttributes
    """Search attributes whose type is known."""

    raw_info: Mapping[str, Any]
    """The ``cadenza.reply.WorkflowExecutionInfo`` record as received."""

    data_converter: DataConverter = field(repr=False, compare=False)
    """Converter used to decode the memo."""

    raw_memo: Mapping[str, Payload] = field(default_factory=dict, repr=False)
    """The memo as encoded payloads, by key."""

    @classmethod
    def from_info(cls, info: Mapping[str, Any], data_converter: DataConverter) -> WorkflowExecution:
        """Build an execution from a ``WorkflowExecutionInfo`` record."""
        return cls(
            **execution_fields(
                info,
                workflow_id=str(info["workflow_id"]),
                run_id=str(info["run_id"]),
                parent_id=info.get("parent_workflow_id"),
                parent_run_id=info.get("parent_run_id"),
                data_converter=data_converter,
            ),
            raw_info=info,
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


@dataclass(frozen=True)
class WorkflowExecutionCountAggregationGroup:
    """One group of a ``GROUP BY`` count (Cadenza does not group yet, so none appear)."""

    count: int
    """Runs in the group."""

    group_values: Sequence[Any]
    """The values the group shares."""


@dataclass(frozen=True)
class WorkflowExecutionCount:
    """What :meth:`Client.count_workflows` returns."""

    count: int
    """Number of runs the query matches."""

    groups: Sequence[WorkflowExecutionCountAggregationGroup] = ()
    """Per-group counts of a ``GROUP BY`` query; always empty (no grouping yet)."""


class WorkflowExecutionAsyncIterator:
    """The runs a query matches, page by page: ``async for execution in ...``.

    Pages are fetched as iteration needs them; :attr:`current_page` and
    :attr:`next_page_token` show where it is, and :meth:`fetch_next_page` fetches a
    page by hand.
    """

    def __init__(
        self,
        fetch: FetchPage,
        data_converter: DataConverter,
        *,
        page_size: int,
        next_page_token: bytes | None,
        limit: int | None,
    ) -> None:
        """Internal: use :meth:`Client.list_workflows`."""
        if page_size <= 0:
            raise ValueError(f"page_size must be positive, not {page_size}")
        if limit is not None and limit < 0:
            raise ValueError(f"limit cannot be negative, not {limit}")
        self._fetch = fetch
        self._data_converter = data_converter
        self._page_size = page_size
        self._limit = limit
        self._yielded = 0
        self.next_page_token: bytes | None = next_page_token or b""
        """Token of the next page; ``None`` once the last page has been fetched."""
        self.current_page: list[WorkflowExecution] | None = None
        """The page being iterated, or ``None`` before the first fetch."""
        self.current_page_index = 0
        """Position of the next execution in :attr:`current_page`."""

    async def fetch_next_page(self, *, page_size: int | None = None) -> None:
        """Fetch the next page into :attr:`current_page` (empty when there is none)."""
        if self.next_page_token is None:
            self.current_page, self.current_page_index = [], 0
            return
        size = page_size or self._page_size
        if self._limit is not None:
            size = max(1, min(size, self._limit - self._yielded))
        infos, token = await self._fetch(size, self.next_page_token)
        self.current_page = [WorkflowExecution.from_info(i, self._data_converter) for i in infos]
        self.current_page_index = 0
        self.next_page_token = token or None

    def __aiter__(self) -> WorkflowExecutionAsyncIterator:
        return self

    async def __anext__(self) -> WorkflowExecution:
        if self._limit is not None and self._yielded >= self._limit:
            raise StopAsyncIteration
        while self.current_page is None or self.current_page_index >= len(self.current_page):
            if self.current_page is not None and self.next_page_token is None:
                raise StopAsyncIteration
            await self.fetch_next_page()
        execution = self.current_page[self.current_page_index]
        self.current_page_index += 1
        self._yielded += 1
        return execution
