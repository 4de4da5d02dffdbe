"""temporalio's workflow runners, accepted so that Temporal worker code runs unchanged.

temporalio runs workflow code in a sandbox (``SandboxedWorkflowRunner``, its
default) that re-imports modules per run and restricts non-deterministic calls;
``UnsandboxedWorkflowRunner`` turns it off. Cadenza runs workflow code without a
sandbox, always: determinism is the code's to keep (``workflow.now()``,
``workflow.random()``, ``workflow.uuid4()``), and a replay whose commands differ
from history fails the task with a ``NondeterminismError``, as in temporalio.
So either runner may be passed to ``Worker(workflow_runner=...)`` or
``unsandboxed_workflow_runner=``, and both mean the same thing here.

Example:
    >>> isinstance(SandboxedWorkflowRunner(), WorkflowRunner)
    True
"""

from __future__ import annotations

from typing import Any

__all__ = ["SandboxedWorkflowRunner", "UnsandboxedWorkflowRunner", "WorkflowRunner"]


class WorkflowRunner:
    """How a worker runs workflow code: Cadenza has one way (no sandbox)."""


class UnsandboxedWorkflowRunner(WorkflowRunner):
    """Workflow code runs in the worker's own interpreter: what Cadenza always does."""


class SandboxedWorkflowRunner(WorkflowRunner):
    """Accepted for temporalio compatibility; Cadenza runs workflows without a sandbox.

    Its options (``restrictions``, ``runner_class``) are accepted and ignored.
    """

    def __init__(self, **options: Any) -> None:
        self.options = options
