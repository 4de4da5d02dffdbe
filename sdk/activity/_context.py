"""The in-activity API, and the context the activity worker sets for it.

Every function here reads :class:`_Context` from a :mod:`contextvars`
variable. The worker builds one ``_Context`` per attempt and sets it around
the call::

    context = _Context(
        info=info,
        heartbeat=send_heartbeat,                     # called with the details
        cancelled_event=_ActivityEvent(loop),         # loop=None for sync activities
        worker_shutdown_event=worker_shutdown_event,
        payload_converter=data_converter.payload_converter,
    )
    token = _Context.set(context)
    try:
        result = await fn(*args)      # sync: contextvars.copy_context().run in a thread
    finally:
        _Context.reset(token)

and, on a cancel request, ``context.cancel(ActivityCancellationDetails(...))``.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NoReturn

from ..common._metric import MetricMeter
from ..common._retry import RetryPolicy
from ..converter import PayloadConverter


@dataclass(frozen=True, kw_only=True)
class Info:
    """Facts about the running activity attempt; read with :func:`info`.

    Built by the worker; tests may build one directly.
    """

    activity_id: str
    """The activity's id (unique within its workflow)."""
    activity_type: str
    """The activity's type name."""
    attempt: int
    """Attempt number, starting at 1."""
    current_attempt_scheduled_time: datetime
    """When this attempt was scheduled."""
    heartbeat_details: Sequence[Any]
    """Details of the previous attempt's last heartbeat (resume from there)."""
    heartbeat_timeout: timedelta | None
    """Longest allowed gap between heartbeats."""
    is_local: bool = False
    """Always ``False``: Cadenza has no local activities yet."""
    namespace: str = "default"
    """Namespace of the workflow that scheduled the activity."""
    schedule_to_close_timeout: timedelta | None
    """Limit from first scheduling to completion, retries included."""
    scheduled_time: datetime
    """When the activity was first scheduled."""
    start_to_close_timeout: timedelta | None
    """Limit for one attempt."""
    started_time: datetime
    """When this attempt started."""
    task_queue: str
    """Task queue the activity runs on."""
    task_token: bytes
    """Opaque token identifying this attempt (for asynchronous completion)."""
    workflow_id: str | None
    """Id of the workflow that scheduled the activity."""
    workflow_namespace: str | None
    """Namespace of that workflow (kept for Temporal compatibility; see ``namespace``)."""
    workflow_run_id: str | None
    """Run id of that workflow."""
    workflow_type: str | None
    """Type name of that workflow."""
    retry_policy: RetryPolicy | None = None
    """The activity's retry policy, if known."""

    @property
    def in_workflow(self) -> bool:
        """Whether a workflow scheduled this activity."""
        return self.workflow_id is not None

    def _logger_details(self) -> Mapping[str, Any]:
        return {
            "activity_id": self.activity_id,
            "activity_type": self.activity_type,
            "attempt": self.attempt,
            "namespace": self.namespace,
            "task_queue": self.task_queue,
            "workflow_id": self.workflow_id,
            "workflow_run_id": self.workflow_run_id,
            "workflow_type": self.workflow_type,
        }


@dataclass(frozen=True)
class ActivityCancellationDetails:
    """Why an activity was cancelled; set once, read with :func:`cancellation_details`."""

    not_found: bool = False
    """The engine no longer knows the attempt (completed, timed out or reset)."""
    cancel_requested: bool = False
    """The workflow asked for cancellation."""
    paused: bool = False
    """The activity was paused."""
    reset: bool = False
    """The workflow was reset."""
    timed_out: bool = False
    """The attempt timed out."""
    worker_shutdown: bool = False
    """The worker is shutting down."""


class _ActivityEvent:
    """A set-once flag readable from threads and awaitable in one event loop.

    Sync activities wait on it with :meth:`wait_sync` from their thread; async
    activities await :meth:`wait` in ``loop``. :meth:`set` may be called from
    any thread.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Create the event; pass the activity's loop for async activities."""
        self._set = False
        # Made by the first wait_sync only: most attempts are never waited on from a
        # thread, and a threading.Event (a Condition and its locks) costs 4-6 us.
        self._thread_event: threading.Event | None = None
        self._loop = loop
        self._async_event = asyncio.Event() if loop is not None else None

    def set(self) -> None:
        """Set the flag and wake every waiter."""
        with _THREAD_EVENTS:
            self._set = True
            thread_event = self._thread_event
        if thread_event is not None:
            thread_event.set()
        if self._async_event is None or self._loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._async_event.set()
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._async_event.set)

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._set

    async def wait(self) -> None:
        """Wait until set (async activities only)."""
        if self._async_event is None:
            raise RuntimeError("Not in an async activity; use the _sync variant")
        await self._async_event.wait()

    def wait_sync(self, timeout: float | None = None) -> None:
        """Block until set or ``timeout`` seconds pass."""
        with _THREAD_EVENTS:
            if self._set:
                return
            if self._thread_event is None:
                self._thread_event = threading.Event()
            thread_event = self._thread_event
        thread_event.wait(timeout)


_THREAD_EVENTS = threading.Lock()
"""Orders ``_ActivityEvent.set`` against a ``wait_sync`` that makes the thread event."""


_current: contextvars.ContextVar[_Context] = contextvars.ContextVar("cadenza_activity_context")


@dataclass
class _Context:
    """What the activity worker provides to one running attempt.

    Attributes:
        info: The attempt's :class:`Info`.
        heartbeat: Records a heartbeat; called with the user's details
            (unconverted). Must not block for long; the worker batches.
        cancelled_event: Set when the attempt is cancelled (use :meth:`cancel`).
        worker_shutdown_event: Set when the worker starts shutting down.
        payload_converter: The worker's payload converter.
        shield_thread_cancel_exception: For threaded sync activities, a context
            manager factory that defers the cancellation exception raised in
            the thread; ``None`` elsewhere.
        client: The worker's client (async activities), if any.
        cancellation_details: Why it was cancelled; set by :meth:`cancel`.
        runtime_metric_meter: The meter of the worker's runtime (``None``: no-op).
    """

    info: Info
    heartbeat: Callable[..., None]
    cancelled_event: _ActivityEvent
    worker_shutdown_event: _ActivityEvent
    payload_converter: PayloadConverter
    shield_thread_cancel_exception: Callable[[], AbstractContextManager[None]] | None = None
    client: Any | None = None
    cancellation_details: ActivityCancellationDetails | None = None
    runtime_metric_meter: MetricMeter | None = None
    outbound: Any | None = None
    """The worker interceptors' ``ActivityOutboundInterceptor`` chain, or None."""
    _logger_details: Mapping[str, Any] | None = field(default=None, repr=False)
    _metric_meter: MetricMeter | None = field(default=None, repr=False)

    @staticmethod
    def current() -> _Context:
        """The running attempt's context.

        Raises:
            RuntimeError: ``Not in activity context``.
        """
        context = _current.get(None)
        if context is None:
            raise RuntimeError("Not in activity context")
        return context

    @staticmethod
    def maybe_current() -> _Context | None:
        """The running attempt's context, or ``None``."""
        return _current.get(None)

    @staticmethod
    def set(context: _Context) -> contextvars.Token[_Context]:
        """Make ``context`` current; undo with :meth:`reset`."""
        return _current.set(context)

    @staticmethod
    def reset(token: contextvars.Token[_Context]) -> None:
        """Restore the context that was current before :meth:`set`."""
        _current.reset(token)

    def cancel(self, details: ActivityCancellationDetails | None = None) -> None:
        """Cancel the attempt: record why (first reason wins) and set the event."""
        if self.cancellation_details is None:
            self.cancellation_details = details or ActivityCancellationDetails(
                cancel_requested=True
            )
        self.cancelled_event.set()

    @property
    def metric_meter(self) -> MetricMeter:
        """The attempt's meter: the runtime's, with the activity's namespace, task
        queue and type as attributes (made on first use)."""
        meter = self._metric_meter
        if meter is None:
            root = self.runtime_metric_meter
            if root is None or root is MetricMeter.noop:
                meter = MetricMeter.noop
            else:
                meter = root.with_additional_attributes(
                    {
                        "namespace": self.info.namespace,
                        "task_queue": self.info.task_queue,
                        "activity_type": self.info.activity_type,
                    }
                )
            self._metric_meter = meter
        return meter

    @property
    def logger_details(self) -> Mapping[str, Any]:
        """Info fields added to log records."""
        if self._logger_details is None:
            self._logger_details = self.info._logger_details()
        return self._logger_details


def in_activity() -> bool:
    """Whether the caller runs inside an activity."""
    return _current.get(None) is not None


def info() -> Info:
    """The running activity's :class:`Info`.

    Raises:
        RuntimeError: Not in an activity.
    """
    context = _Context.current()
    if context.outbound is not None:
        info: Info = context.outbound.info()
        return info
    return context.info


def heartbeat(*details: Any) -> None:
    """Tell the engine the activity is alive, with progress ``details``.

    The last details reach the next attempt as ``info().heartbeat_details``.
    Cancellation is delivered through heartbeats: an activity that wants to be
    cancellable must heartbeat.

    Raises:
        RuntimeError: Not in an activity.
    """
    context = _Context.current()
    if context.outbound is not None:
        context.outbound.heartbeat(*details)
        return
    context.heartbeat(*details)


def is_cancelled() -> bool:
    """Whether cancellation of this activity was requested."""
    return _Context.current().cancelled_event.is_set()


def cancellation_details() -> ActivityCancellationDetails | None:
    """Why the activity was cancelled, or ``None`` if it was not."""
    return _Context.current().cancellation_details


async def wait_for_cancelled() -> None:
    """Wait until cancellation is requested (async activities)."""
    await _Context.current().cancelled_event.wait()


def wait_for_cancelled_sync(timeout: timedelta | float | None = None) -> None:
    """Block until cancellation is requested or ``timeout`` passes (sync activities)."""
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    _Context.current().cancelled_event.wait_sync(seconds)


def is_worker_shutdown() -> bool:
    """Whether the worker is shutting down."""
    return _Context.current().worker_shutdown_event.is_set()


async def wait_for_worker_shutdown() -> None:
    """Wait until the worker starts shutting down (async activities)."""
    await _Context.current().worker_shutdown_event.wait()


def wait_for_worker_shutdown_sync(timeout: timedelta | float | None = None) -> None:
    """Block until the worker starts shutting down or ``timeout`` passes."""
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    _Context.current().worker_shutdown_event.wait_sync(seconds)


@contextmanager
def shield_thread_cancel_exception() -> Iterator[None]:
    """Defer the cancellation exception of a threaded sync activity to the block's end.

    A no-op in async activities.
    """
    shield = _Context.current().shield_thread_cancel_exception
    if shield is None:
        yield
        return
    with shield():
        yield


def payload_converter() -> PayloadConverter:
    """The worker's payload converter (e.g. to convert ``RawValue`` arguments)."""
    return _Context.current().payload_converter


def client() -> Any:
    """The worker's client, for async activities.

    Raises:
        RuntimeError: Not in an activity, or no client is available.
    """
    found = _Context.current().client
    if found is None:
        raise RuntimeError("No client available: the client is only given to async activities")
    return found


class _CompleteAsyncError(BaseException):
    """Raised by :func:`raise_complete_async`; the worker must not report a result."""


def raise_complete_async() -> NoReturn:
    """End the function without completing the activity; it is completed later by
    another process through the client: ``client.get_async_activity_handle(
    task_token=info().task_token)`` (or by workflow and activity id), then its
    ``complete``, ``fail``, ``report_cancellation`` or ``heartbeat``."""
    raise _CompleteAsyncError()


def metric_meter() -> MetricMeter:
    """The activity's metric meter: its metrics carry the ``namespace``,
    ``task_queue`` and ``activity_type`` attributes.

    The worker's client's ``Runtime`` decides where they go; with no metrics
    configured this is ``MetricMeter.noop``.

    Example::

        @activity.defn
        async def charge(order_id: str) -> None:
            activity.metric_meter().create_counter("charges").add(1)

    Raises:
        RuntimeError: Not in an activity.
    """
    return _Context.current().metric_meter


class LoggerAdapter(logging.LoggerAdapter[logging.Logger]):
    """Adds the running activity's details to each record.

    Attributes:
        activity_info_on_message: Append the details to the message. Default True.
        activity_info_on_extra: Add them as ``record.cadenza_activity``. Default True.
        full_activity_info_on_extra: Add the whole :class:`Info` as
            ``record.activity_info``. Default False.
    """

    def __init__(self, logger: logging.Logger, extra: Mapping[str, Any] | None) -> None:
        """Wrap ``logger``."""
        super().__init__(logger, extra or {})
        self.activity_info_on_message = True
        self.activity_info_on_extra = True
        self.full_activity_info_on_extra = False

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        """Add the activity details, if in an activity."""
        context = _current.get(None)
        if context is None:
            return msg, kwargs
        details = context.logger_details
        if self.activity_info_on_message:
            msg = f"{msg} ({dict(details)})"
        if self.activity_info_on_extra or self.full_activity_info_on_extra:
            extra = dict(kwargs.get("extra") or {})
            if self.activity_info_on_extra:
                extra.setdefault("cadenza_activity", dict(details))
            if self.full_activity_info_on_extra:
                extra.setdefault("activity_info", context.info)
            kwargs["extra"] = extra
        return msg, kwargs

    @property
    def base_logger(self) -> logging.Logger:
        """The wrapped logger (to add handlers or formatters)."""
        return self.logger


logger = LoggerAdapter(logging.getLogger("cadenza.activity"), None)
"""Logger that adds the running activity's details to each record."""
