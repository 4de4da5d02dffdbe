"""``WorkflowExecutionDescription``: what ``WorkflowHandle.describe()`` returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..converter import DataConverter
from ._list import WorkflowExecution, execution_fields


@dataclass(frozen=True)
class WorkflowExecutionDescription(WorkflowExecution):
    """A workflow run as the engine describes it: a :class:`WorkflowExecution`, as in temporalio.

    The memo stays encoded until asked for: ``await description.memo()``.
    """

    @property
    def raw_description(self) -> Mapping[str, Any]:
        """The ``cadenza.reply.WorkflowDescription`` record as received (pending activities
        and children included)."""
        return self.raw_info

    @staticmethod
    def from_reply(
        workflow_id: str,
        run_id: str | None,
        description: Mapping[str, Any],
        data_converter: DataConverter,
    ) -> WorkflowExecutionDescription:
        """Build a description from a ``WorkflowDescription`` reply record."""
        parent = description.get("parent")
        return WorkflowExecutionDescription(
            **execution_fields(
                description,
                workflow_id=workflow_id,
                run_id=run_id or "",
                parent_id=None if parent is None else str(parent["workflow_id"]),
                parent_run_id=None if parent is None else str(parent["run_id"]),
                data_converter=data_converter,
            ),
            raw_info=description,
        )
