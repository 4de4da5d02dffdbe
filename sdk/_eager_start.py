"""Eager workflow start: the workers of this process that take their task queue's
first workflow tasks straight from a start's reply.

A client sharing its transport with a running worker of the start's task queue may
ask for it (``request_eager_start=True``): the engine then records the run's first
workflow task as dispatched but sends it back in the ``WorkflowStarted`` reply
instead of writing it to the task queue's topic, and the client hands it to that
worker. A task lost on the way (the process dies, the worker stops) times out after
the run's workflow task timeout and its next attempt goes through the topic.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["EagerStarts", "EagerWorkflowTarget"]


class EagerWorkflowTarget(Protocol):
    """A workflow worker that takes eager first tasks."""

    def try_reserve_eager(self) -> bool:
        """Take a free workflow task slot for an eager start; False when full or stopping."""
        ...

    def release_eager(self) -> None:
        """Give back the reserved slot: the start brought no task."""
        ...

    def run_eager(self, task: bytes) -> None:
        """Run the task (an encoded ``WorkflowTask``) in the reserved slot, which it frees."""
        ...


class EagerStarts:
    """Per transport: the workers of each task queue that take eager starts."""

    def __init__(self) -> None:
        self._by_queue: dict[str, list[EagerWorkflowTarget]] = {}

    def register(self, task_queue: str, target: EagerWorkflowTarget) -> None:
        """``target`` takes eager starts of ``task_queue`` (after those registered before it)."""
        self._by_queue.setdefault(task_queue, []).append(target)

    def unregister(self, task_queue: str, target: EagerWorkflowTarget) -> None:
        """``target`` takes no more eager starts (a no-op if it was not registered)."""
        targets = self._by_queue.get(task_queue, [])
        if target in targets:
            targets.remove(target)
        if not targets:
            self._by_queue.pop(task_queue, None)

    def reserve(self, task_queue: str) -> EagerWorkflowTarget | None:
        """The worker that will run an eager start's task, a slot taken on it; None when
        no worker of ``task_queue`` runs here or none has a free slot."""
        for target in self._by_queue.get(task_queue, ()):
            if target.try_reserve_eager():
                return target
        return None
