"""The workflow logger, and ``workflow.unsafe``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

from ._context import _Runtime
from ._info import current_update_info

_flags = threading.local()


def _flag(name: str) -> bool:
    return bool(getattr(_flags, name, False))


@contextmanager
def _flag_set(name: str) -> Iterator[None]:
    if _flag(name):
        yield
        return
    setattr(_flags, name, True)
    try:
        yield
    finally:
        setattr(_flags, name, False)


class unsafe:
    """Escape hatches that normal workflow code should not need."""

    def __init__(self) -> None:
        """Not instantiable: use the static methods."""
        raise NotImplementedError("workflow.unsafe only has static methods")

    @staticmethod
    def is_replaying() -> bool:
        """Whether the workflow is replaying history (e.g. to skip side effects like logging)."""
        return _Runtime.current().workflow_is_replaying()

    @staticmethod
    def in_sandbox() -> bool:
        """Whether the code runs in a workflow sandbox (Cadenza has none yet: always False)."""
        return _flag("in_sandbox")

    @staticmethod
    def is_sandbox_unrestricted() -> bool:
        """Whether the caller is inside :meth:`sandbox_unrestricted`."""
        return _flag("sandbox_unrestricted")

    @staticmethod
    @contextmanager
    def sandbox_unrestricted() -> Iterator[None]:
        """Run the block without sandbox restrictions (recorded for a future sandbox)."""
        with _flag_set("sandbox_unrestricted"):
            yield

    @staticmethod
    def is_imports_passed_through() -> bool:
        """Whether the caller is inside :meth:`imports_passed_through`."""
        return _flag("imports_passed_through")

    @staticmethod
    @contextmanager
    def imports_passed_through() -> Iterator[None]:
        """Import modules shared with the worker rather than reloaded per workflow.

        Wrap imports of activity modules and third-party libraries in workflow
        files, as with Temporal::

            with workflow.unsafe.imports_passed_through():
                from myapp.activities import charge

        Cadenza has no import sandbox yet, so this only marks the block.
        """
        with _flag_set("imports_passed_through"):
            yield


class LoggerAdapter(logging.LoggerAdapter[logging.Logger]):
    """Adds the running workflow's details to each record; silent while replaying.

    Attributes:
        workflow_info_on_message: Append the details to the message. Default True.
        workflow_info_on_extra: Add them as ``record.cadenza_workflow``. Default True.
        full_workflow_info_on_extra: Add the whole ``Info`` as
            ``record.workflow_info``. Default False.
        log_during_replay: Also log while replaying. Default False.
    """

    def __init__(self, logger: logging.Logger, extra: Mapping[str, Any] | None) -> None:
        """Wrap ``logger``."""
        super().__init__(logger, extra or {})
        self.workflow_info_on_message = True
        self.workflow_info_on_extra = True
        self.full_workflow_info_on_extra = False
        self.log_during_replay = False

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        """Add the workflow (and update) details, if in a workflow."""
        runtime = _Runtime.maybe_current()
        update = current_update_info()
        details: dict[str, Any] = {}
        if runtime is not None:
            details.update(runtime.logger_details)
        if update is not None:
            details.update(update._logger_details)
        if not details:
            return msg, kwargs
        if self.workflow_info_on_message:
            msg = f"{msg} ({details})"
        if self.workflow_info_on_extra or self.full_workflow_info_on_extra:
            extra = dict(kwargs.get("extra") or {})
            if self.workflow_info_on_extra:
                extra.setdefault("cadenza_workflow", details)
            if self.full_workflow_info_on_extra and runtime is not None:
                extra.setdefault("workflow_info", runtime.workflow_info())
            kwargs["extra"] = extra
        return msg, kwargs

    def isEnabledFor(self, level: int) -> bool:
        """Disabled while replaying, unless :attr:`log_during_replay`."""
        if not self.log_during_replay:
            runtime = _Runtime.maybe_current()
            if runtime is not None and runtime.workflow_is_replaying():
                return False
        return super().isEnabledFor(level)

    @property
    def base_logger(self) -> logging.Logger:
        """The wrapped logger (to add handlers or formatters)."""
        return self.logger


logger = LoggerAdapter(logging.getLogger("cadenza.workflow"), None)
"""Logger that adds the workflow's details to each record and is silent during replay."""
