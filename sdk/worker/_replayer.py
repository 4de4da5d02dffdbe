"""``Replayer``: run saved histories through the current workflow code.

Use it in tests and before deploys, to prove that changed workflow code still
replays the histories of runs started with the old code::

    replayer = Replayer(workflows=[OrderWorkflow])
    await replayer.replay_workflow(WorkflowHistory.from_json("order-42", text))
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..converter import DataConverter
from ..workflow._definition import _Definition
from ..workflow._history import (
    WORKFLOW_EXECUTION_STARTED,
    event_attributes,
    event_kind,
    missing_event_error,
)
from ..workflow._instance import WorkflowInstance
from ._codec import decode_in
from ._history import WorkflowHistory
from ._interceptor import Interceptor, workflow_interceptor_classes


@dataclass(frozen=True)
class WorkflowReplayResult:
    """The outcome of replaying one history."""

    history: WorkflowHistory
    """The history replayed."""
    replay_failure: Exception | None
    """Why replay failed (a :class:`NondeterminismError`, or what the workflow
    code raised that fails a workflow task), or ``None``."""


@dataclass(frozen=True)
class WorkflowReplayResults:
    """The outcome of replaying several histories."""

    replay_failures: Mapping[str, Exception]
    """Failures by run id; empty when every history replayed."""


class Replayer:
    """Replays workflow histories against workflow classes, with no broker.

    Args:
        workflows: The ``@workflow.defn`` classes to replay with.
        namespace: The namespace shown in ``workflow.info()``.
        data_converter: Converts payloads and failures. Its payload codec, if
            any, decodes the history's payloads first, as a worker's does.
        interceptors: Worker interceptors; their workflow interceptors run in the
            replay as in a worker (their activity ones have nothing to run).
        failure_exception_types: Exception types that fail the workflow rather
            than the task, for every workflow (as the worker's option).
    """

    def __init__(
        self,
        *,
        workflows: Sequence[type],
        namespace: str = "default",
        data_converter: DataConverter = DataConverter.default,
        interceptors: Sequence[Interceptor] = (),
        failure_exception_types: Sequence[type[BaseException]] = (),
    ) -> None:
        self._definitions: dict[str | None, _Definition] = {}
        for cls in workflows:
            definition = _Definition.must_from_class(cls)
            if definition.name in self._definitions:
                shown = definition.name or "<dynamic>"
                raise ValueError(f"More than one workflow named {shown!r}")
            self._definitions[definition.name] = definition
        self._namespace = namespace
        self._data_converter = data_converter
        self._interceptors = list(interceptors)
        self._interceptor_classes = workflow_interceptor_classes(self._interceptors)
        self._failure_exception_types = tuple(failure_exception_types)

    def config(self) -> dict[str, Any]:
        """The options this replayer was created with (to make a changed copy)."""
        return {
            "workflows": [d.cls for d in self._definitions.values()],
            "namespace": self._namespace,
            "data_converter": self._data_converter,
            "interceptors": self._interceptors,
            "failure_exception_types": self._failure_exception_types,
        }

    async def replay_workflow(
        self, history: WorkflowHistory, *, raise_on_replay_failure: bool = True
    ) -> WorkflowReplayResult:
        """Replay one history.

        Raises:
            NondeterminismError: The code does not produce the history's
                commands (when ``raise_on_replay_failure``).
            Exception: The code raised an exception that fails a workflow task
                (when ``raise_on_replay_failure``).
        """
        events = list(history.events)
        # Payloads as workflow code sees them, as a worker decodes a task's history.
        events = await decode_in(events, self._data_converter.payload_codec)
        failure = self._replay(history.workflow_id, events)
        if failure is not None and raise_on_replay_failure:
            raise failure
        return WorkflowReplayResult(history=history, replay_failure=failure)

    async def replay_workflows(
        self,
        histories: Iterable[WorkflowHistory] | AsyncIterator[WorkflowHistory],
        *,
        raise_on_replay_failure: bool = True,
    ) -> WorkflowReplayResults:
        """Replay several histories; stop at the first failure if ``raise_on_replay_failure``."""
        failures: dict[str, Exception] = {}

        async def each() -> AsyncIterator[WorkflowHistory]:
            if isinstance(histories, AsyncIterator):
                async for history in histories:
                    yield history
            else:
                for history in histories:
                    yield history

        async for history in each():
            result = await self.replay_workflow(
                history, raise_on_replay_failure=raise_on_replay_failure
            )
            if result.replay_failure is not None:
                failures[history.run_id] = result.replay_failure
        return WorkflowReplayResults(replay_failures=failures)

    def _replay(self, workflow_id: str, events: list[Mapping[str, Any]]) -> Exception | None:
        if not events or event_kind(events[0]) != WORKFLOW_EXECUTION_STARTED:
            raise ValueError("A history must start with its WorkflowExecutionStarted event")
        workflow_type = event_attributes(events[0])["workflow_type"]
        definition = self._definitions.get(workflow_type) or self._definitions.get(None)
        if definition is None:
            known = sorted(n for n in self._definitions if n is not None)
            raise ValueError(
                f"History is of workflow type {workflow_type!r}; this replayer knows {known}"
            )
        instance = WorkflowInstance(
            definition,
            workflow_id=workflow_id,
            run_id=str(events[0]["run_id"]),
            started_event=events[0],
            payload_converter=self._data_converter.payload_converter,
            failure_converter=self._data_converter.failure_converter,
            namespace=self._namespace,
            failure_exception_types=self._failure_exception_types,
            interceptor_classes=self._interceptor_classes,
        )
        result = instance.activate(events)
        if result.failure is not None:
            error = result.failure.error
            return error if isinstance(error, Exception) else RuntimeError(str(error))
        unmatched = instance.pending_commands()
        if unmatched and not result.ran_live:
            return missing_event_error(unmatched[0], None)
        return None
