"""Defining activities, and the API available while one runs.

The same names as ``temporalio.activity``::

    from cadenza import activity

    @activity.defn
    async def charge(order_id: str) -> str:
        activity.heartbeat("charging")
        return f"charged {order_id}"

The in-activity functions raise ``RuntimeError("Not in activity context")``
outside an activity. The worker drives them through the private
``cadenza.activity._context._Context`` and reads definitions with
``cadenza.activity._definition._Definition``.
"""

from ._context import (
    ActivityCancellationDetails,
    Info,
    LoggerAdapter,
    cancellation_details,
    client,
    heartbeat,
    in_activity,
    info,
    is_cancelled,
    is_worker_shutdown,
    logger,
    metric_meter,
    payload_converter,
    raise_complete_async,
    shield_thread_cancel_exception,
    wait_for_cancelled,
    wait_for_cancelled_sync,
    wait_for_worker_shutdown,
    wait_for_worker_shutdown_sync,
)
from ._definition import defn

__all__ = [
    "ActivityCancellationDetails",
    "Info",
    "LoggerAdapter",
    "cancellation_details",
    "client",
    "defn",
    "heartbeat",
    "in_activity",
    "info",
    "is_cancelled",
    "is_worker_shutdown",
    "logger",
    "metric_meter",
    "payload_converter",
    "raise_complete_async",
    "shield_thread_cancel_exception",
    "wait_for_cancelled",
    "wait_for_cancelled_sync",
    "wait_for_worker_shutdown",
    "wait_for_worker_shutdown_sync",
]
