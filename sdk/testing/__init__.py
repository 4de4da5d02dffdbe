"""Test helpers: a workflow environment on the real broker with a skippable clock.

The offline ``Replayer`` lives in :mod:`cadenza.worker`, as in temporalio.
"""

from cadenza.testing._environment import WorkflowEnvironment

__all__ = ["WorkflowEnvironment"]
