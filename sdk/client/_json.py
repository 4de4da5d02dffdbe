"""Workflow runs and history events as plain JSON, for people: the CLI and the HTTP API.

This is a view, not a wire format. Payloads are decoded where their encoding
says JSON (``json/plain``), so an input of ``"order-42"`` reads as
``"order-42"`` rather than base64; any other encoding keeps its bytes as
``{"encoding": ..., "base64": ...}``. An event's attributes union becomes
``eventType`` (the short name, e.g. ``WorkflowExecutionStarted``) and
``attributes``. For the exact, reversible Avro form of a history, use
``WorkflowHistory.to_json``.

Example:
    >>> payload_json({"metadata": {"encoding": b"json/plain"}, "data": b'{"a": 1}'})
    {'a': 1}
    >>> payload_json({"metadata": {"encoding": b"binary/null"}, "data": b""}) is None
    True
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ._list import WorkflowExecution
from ._wire import from_ms


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _is_payload(value: Mapping[str, Any]) -> bool:
    return (
        len(value) == 2
        and isinstance(value.get("metadata"), Mapping)
        and isinstance(value.get("data"), bytes)
    )


def payload_json(payload: Mapping[str, Any]) -> Any:
    """One payload's value where it is JSON (or null), its bytes in base64 otherwise."""
    encoding = bytes(payload["metadata"].get("encoding", b"")).decode("utf-8", "replace")
    data = bytes(payload["data"])
    if encoding == "json/plain":
        try:
            return json.loads(data)
        except ValueError:
            pass
    if encoding == "binary/null":
        return None
    return {"encoding": encoding, "base64": base64.b64encode(data).decode()}


def value_json(value: Any) -> Any:
    """Any decoded Avro datum as JSON-ready data: payloads decoded, bytes as text or
    base64, unions as ``{"@type": <short name>, **fields}`` (``@`` cannot begin an Avro
    field name, so the tag never hides a field called ``type``)."""
    if isinstance(value, Mapping):
        if _is_payload(value):
            return payload_json(value)
        return {str(k): value_json(v) for k, v in value.items()}
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        inner = value_json(value[1])
        name = value[0].rsplit(".", 1)[-1]
        if isinstance(inner, dict):
            return {"@type": name, **inner}
        return {"@type": name, "value": inner}
    if isinstance(value, list | tuple):
        return [value_json(v) for v in value]
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return _iso(value)
    return value


def event_json(event: Mapping[str, Any]) -> dict[str, Any]:
    """One ``cadenza.history.HistoryEvent`` record: id, time, type, run and attributes."""
    name, attributes = event["attributes"]
    return {
        "eventId": int(event["event_id"]),
        "eventTime": _iso(from_ms(event.get("event_time_ms"))),
        "eventType": str(name).rsplit(".", 1)[-1],
        "runId": str(event["run_id"]),
        "attributes": value_json(attributes),
    }


def execution_json(execution: WorkflowExecution) -> dict[str, Any]:
    """A run from ``list_workflows`` or ``describe`` (a description adds ``pending``)."""
    view: dict[str, Any] = {
        "workflowId": execution.id,
        "runId": execution.run_id,
        "type": execution.workflow_type,
        "taskQueue": execution.task_queue,
        "status": execution.status.name,
        "startTime": _iso(execution.start_time),
        "executionTime": _iso(execution.execution_time),
        "closeTime": _iso(execution.close_time),
        "historyLength": execution.history_length,
        "parentWorkflowId": execution.parent_id,
        "parentRunId": execution.parent_run_id,
        "searchAttributes": value_json(dict(execution.search_attributes)),
        "memo": {k: payload_json(v) for k, v in execution.raw_memo.items()},
    }
    return view


def description_json(raw_description: Mapping[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """``base`` (an :func:`execution_json`) with the description's pending work added:
    ``pendingActivities``, ``pendingChildren`` and ``pendingWorkflowTask`` (or None), as
    the engine reported them."""
    view = dict(base)
    view["pendingActivities"] = value_json(list(raw_description.get("pending_activities") or []))
    view["pendingChildren"] = value_json(list(raw_description.get("pending_children") or []))
    task = raw_description.get("pending_workflow_task")
    view["pendingWorkflowTask"] = None if task is None else value_json(dict(task))
    return view
