"""Handles to activities and workflows started or addressed from a workflow.

The runtime subclasses these; the methods here only raise
``NotImplementedError`` so the classes can serve as types.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from ..common._typing import _arg_unset

ReturnType = TypeVar("ReturnType")
SelfType = TypeVar("SelfType")


class ActivityHandle(asyncio.Task[ReturnType], Generic[ReturnType]):
    """An activity started with ``workflow.start_activity``; an :class:`asyncio.Task`.

    Await it for the result; ``cancel()`` requests cancellation.
    """


class ChildWorkflowHandle(asyncio.Task[ReturnType], Generic[SelfType, ReturnType]):
    """A child workflow started with ``workflow.start_child_workflow``; an :class:`asyncio.Task`.

    Await it for the child's result; ``cancel()`` cancels the child.
    """

    @property
    def id(self) -> str:
        """The child's workflow id."""
        raise NotImplementedError

    @property
    def first_execution_run_id(self) -> str | None:
        """The child's first run id, once started."""
        raise NotImplementedError

    async def signal(
        self,
        signal: str | Callable[..., Any],
        arg: Any = _arg_unset,
        *,
        args: Sequence[Any] = (),
    ) -> None:
        """Signal the child.

        Args:
            signal: Signal name or ``@workflow.signal`` method.
            arg: The single argument.
            args: Several arguments (instead of ``arg``).
        """
        raise NotImplementedError


class ExternalWorkflowHandle(Generic[SelfType]):
    """Another workflow, addressed by id, from ``workflow.get_external_workflow_handle``."""

    @property
    def id(self) -> str:
        """The workflow's id."""
        raise NotImplementedError

    @property
    def run_id(self) -> str | None:
        """The run addressed, or ``None`` for the latest run."""
        raise NotImplementedError

    async def signal(
        self,
        signal: str | Callable[..., Any],
        arg: Any = _arg_unset,
        *,
        args: Sequence[Any] = (),
    ) -> None:
        """Signal the workflow.

        Args:
            signal: Signal name or ``@workflow.signal`` method.
            arg: The single argument.
            args: Several arguments (instead of ``arg``).
        """
        raise NotImplementedError

    async def cancel(self, *, reason: str = "") -> None:
        """Request cancellation of the workflow."""
        raise NotImplementedError
