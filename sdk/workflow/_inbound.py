"""Messages into a running workflow: signals and updates, and their handlers.

Signals without a handler wait, in order, until one is set (or a dynamic
handler is). An update is validated (unless replay already knows it was
accepted), accepted, then run; its outcome completes it.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..common._payload import Payload, RawValue
from ..common._typing import _type_hints_from_func
from ..exceptions import ApplicationError
from . import _history as h
from ._handlers import _QueryDefinition, _SignalDefinition, _UpdateDefinition
from ._info import UpdateInfo, _set_current_update_info
from ._interception import HandleSignalInput, HandleUpdateInput
from ._machines import UpdateState
from ._state import _ContinueAsNew, _State

_logger = logging.getLogger(__name__)


class _Inbound(_State):
    """Delivering signals and updates, and the handler registry."""

    __slots__ = ()

    def _handler_args(
        self,
        defn: _SignalDefinition | _QueryDefinition | _UpdateDefinition,
        name: str,
        payloads: Sequence[Payload],
    ) -> list[Any]:
        if defn.name is None:
            return [name, [RawValue(p) for p in payloads]]
        hints = defn.arg_types
        return self._pc.from_payloads(list(payloads), list(hints) if hints is not None else None)

    def _deliver_signal(self, attributes: Mapping[str, Any]) -> None:
        name = attributes["signal_name"]
        defn = self._signals.get(name) or self._signals.get(None)
        if defn is None:
            self._buffered_signals.append(attributes)
            return
        try:
            args = self._handler_args(defn, name, attributes.get("input") or [])
        except Exception as err:
            _logger.warning(
                "Workflow %s drops signal %r: its arguments cannot be decoded: %s",
                self._workflow_id,
                name,
                err,
            )
            return
        fn = defn.bind_fn(self._object)
        entry = (name, defn)
        self._running_signals.append(entry)
        interception = self._interception

        async def run() -> None:
            try:
                if interception is not None:
                    headers = attributes.get("header") or {}
                    signal = HandleSignalInput(signal=name, args=args, headers=headers)
                    await interception.inbound.handle_signal(signal)
                    return
                result = fn(*args)
                if inspect.isawaitable(result):
                    await result
            except BaseException as err:
                self._finish_with_exception(err)

        task = self._loop.create_task(run(), name=f"signal {name}")
        task.add_done_callback(lambda _: self._running_signals.remove(entry))

    def _deliver_update(self, request: Mapping[str, Any], *, validate: bool) -> None:
        update_id, name = request["update_id"], request["name"]
        if update_id in self._updates_seen:
            return
        self._updates_seen.add(update_id)
        defn = self._updates.get(name) or self._updates.get(None)
        if defn is None:
            known = sorted(k for k in self._updates if k is not None)
            self._reject_update(
                update_id,
                ApplicationError(
                    f"Update handler for {name!r} expected but not found, known updates: {known}",
                    type="UpdateNotFound",
                ),
            )
            return
        try:
            args = self._handler_args(defn, name, request.get("args") or [])
        except Exception as err:
            self._reject_update(update_id, err)
            return
        info = UpdateInfo(id=update_id, name=name)
        interception = self._interception
        update = None
        validator = defn.bind_validator(self._object)
        check = None if validator is None else functools.partial(validator, *args)
        if interception is not None:
            headers = request.get("header") or {}
            update = HandleUpdateInput(id=update_id, update=name, args=args, headers=headers)
            # The chain runs even without a validator: its innermost link has none to call.
            check = functools.partial(interception.inbound.handle_update_validator, update)
        if validate and check is not None:
            context = contextvars.copy_context()
            context.run(_set_current_update_info, info)
            try:
                with self._read_only_block():
                    context.run(check)
            except Exception as err:
                self._reject_update(update_id, err)
                return
        self._add_command(h.ACCEPT_UPDATE, {"update_id": update_id})
        state = UpdateState(update_id=update_id, name=name)
        self._running_updates[update_id] = (state, defn)
        fn = defn.bind_fn(self._object)

        async def run() -> None:
            try:
                if interception is not None and update is not None:
                    result = await interception.inbound.handle_update_handler(update)
                else:
                    result = fn(*args)
                    if inspect.isawaitable(result):
                        result = await result
                outcome: dict[str, Any] = {
                    "success": self._pc.to_payloads([result]),
                    "failure": None,
                }
            except BaseException as err:
                if isinstance(err, _ContinueAsNew) or not (
                    isinstance(err, asyncio.CancelledError)
                    or self.workflow_is_failure_exception(err)
                ):
                    self._finish_with_exception(err)
                    return
                outcome = {"success": [], "failure": self._fc.to_failure(err, self._pc)}
            self._add_command(h.COMPLETE_UPDATE, {"update_id": update_id, "outcome": outcome})

        context = contextvars.copy_context()
        context.run(_set_current_update_info, info)
        state.task = self._loop.create_task(run(), name=f"update {name}", context=context)
        state.task.add_done_callback(lambda _: self._running_updates.pop(update_id, None))

    def _reject_update(self, update_id: str, error: BaseException) -> None:
        failure = self._fc.to_failure(error, self._pc)
        self._add_command(
            h.REJECT_UPDATE, {"update_id": update_id, "failure": failure}, expects_event=False
        )

    # The innermost interceptor's handlers (see ``_interception``).

    def _signal_fn(self, name: str) -> Callable[..., Any]:
        defn = self._signals.get(name) or self._signals.get(None)
        if defn is None:
            raise LookupError(f"No handler for signal {name!r}")
        return defn.bind_fn(self._object)

    def _update_definition(self, name: str) -> _UpdateDefinition:
        defn = self._updates.get(name) or self._updates.get(None)
        if defn is None:
            raise LookupError(f"No handler for update {name!r}")
        return defn

    def _update_validator(self, name: str) -> Callable[..., None] | None:
        return self._update_definition(name).bind_validator(self._object)

    def _update_fn(self, name: str) -> Callable[..., Any]:
        return self._update_definition(name).bind_fn(self._object)

    # _Runtime: handlers.

    def workflow_all_handlers_finished(self) -> bool:
        """See :meth:`_Runtime.workflow_all_handlers_finished`."""
        return not self._running_signals and not self._running_updates

    def workflow_get_signal_handler(self, name: str | None) -> Callable[..., Any] | None:
        """See :meth:`_Runtime.workflow_get_signal_handler`."""
        defn = self._signals.get(name)
        return defn.bind_fn(self._object) if defn is not None else None

    def workflow_set_signal_handler(
        self, name: str | None, handler: Callable[..., Any] | None
    ) -> None:
        """See :meth:`_Runtime.workflow_set_signal_handler`."""
        if handler is None:
            self._signals.pop(name, None)
            return
        arg_types, _ = _type_hints_from_func(handler)
        self._signals[name] = _SignalDefinition(
            name=name, fn=handler, is_method=False, arg_types=arg_types
        )
        buffered, self._buffered_signals = self._buffered_signals, []
        for attributes in buffered:
            self._deliver_signal(attributes)

    def workflow_get_query_handler(self, name: str | None) -> Callable[..., Any] | None:
        """See :meth:`_Runtime.workflow_get_query_handler`."""
        defn = self._queries.get(name)
        return defn.bind_fn(self._object) if defn is not None else None

    def workflow_set_query_handler(
        self, name: str | None, handler: Callable[..., Any] | None
    ) -> None:
        """See :meth:`_Runtime.workflow_set_query_handler`."""
        if handler is None:
            self._queries.pop(name, None)
            return
        arg_types, ret_type = _type_hints_from_func(handler)
        self._queries[name] = _QueryDefinition(
            name=name, fn=handler, is_method=False, arg_types=arg_types, ret_type=ret_type
        )

    def workflow_get_update_handler(self, name: str | None) -> Callable[..., Any] | None:
        """See :meth:`_Runtime.workflow_get_update_handler`."""
        defn = self._updates.get(name)
        return defn.bind_fn(self._object) if defn is not None else None

    def workflow_set_update_handler(
        self,
        name: str | None,
        handler: Callable[..., Any] | None,
        validator: Callable[..., None] | None,
    ) -> None:
        """See :meth:`_Runtime.workflow_set_update_handler`."""
        if handler is None:
            self._updates.pop(name, None)
            return
        arg_types, ret_type = _type_hints_from_func(handler)
        self._updates[name] = _UpdateDefinition(
            name=name,
            fn=handler,
            is_method=False,
            arg_types=arg_types,
            ret_type=ret_type,
            validator=validator,
        )
