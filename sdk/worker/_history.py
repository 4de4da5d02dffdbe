"""``WorkflowHistory``: one run's history events, and their JSON form.

The JSON form follows the Avro schema of ``cadenza.history.HistoryEvent``:
``bytes`` are base64 strings, a union of several records (an event's
``attributes``, a failure's ``info``) is ``{"type": "<full name>", "value":
{...}}``, an optional value is the value or ``null``. ``from_json(to_json())``
gives back exactly the events it was given.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import schemas

_EVENT_SCHEMA = "cadenza.history.HistoryEvent"
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "string"})


class _Schema:
    """The HistoryEvent schema, with every named type findable by full name."""

    def __init__(self) -> None:
        self.root = schemas.schema(_EVENT_SCHEMA)
        self.named: dict[str, Any] = {}
        self._index(self.root)

    def _index(self, node: Any) -> None:
        if isinstance(node, list):
            for branch in node:
                self._index(branch)
        elif isinstance(node, dict):
            kind = node.get("type")
            if kind in ("record", "enum", "fixed"):
                self.named[node["name"]] = node
            if kind == "record":
                for field in node["fields"]:
                    self._index(field["type"])
            elif kind == "array":
                self._index(node["items"])
            elif kind == "map":
                self._index(node["values"])
            elif isinstance(kind, dict | list):
                self._index(kind)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, str) and node not in _PRIMITIVES and node != "bytes":
            return self.named[node]
        if isinstance(node, dict) and isinstance(node.get("type"), dict | list):
            return node["type"]
        return node

    def name_of(self, node: Any) -> str:
        node = self.resolve(node)
        return str(node["name"]) if isinstance(node, dict) and "name" in node else str(node)

    def convert(self, node: Any, datum: Any, *, to_json: bool) -> Any:
        node = self.resolve(node)
        if isinstance(node, list):
            return self._union(node, datum, to_json=to_json)
        if isinstance(node, str):
            if node == "bytes":
                return base64.b64encode(datum).decode() if to_json else base64.b64decode(datum)
            return datum
        kind = node["type"]
        if kind == "record":
            return {
                f["name"]: self.convert(f["type"], datum[f["name"]], to_json=to_json)
                for f in node["fields"]
            }
        if kind == "array":
            return [self.convert(node["items"], d, to_json=to_json) for d in datum]
        if kind == "map":
            return {k: self.convert(node["values"], v, to_json=to_json) for k, v in datum.items()}
        if kind == "fixed":
            return base64.b64encode(datum).decode() if to_json else base64.b64decode(datum)
        if kind in _PRIMITIVES or kind == "bytes":
            return self.convert(kind, datum, to_json=to_json)
        return datum  # enum symbols are strings both ways

    def _union(self, branches: list[Any], datum: Any, *, to_json: bool) -> Any:
        if datum is None:
            return None
        others = [b for b in branches if b != "null"]
        if len(others) == 1:
            return self.convert(others[0], datum, to_json=to_json)
        by_name = {self.name_of(b): b for b in others}
        if to_json:
            name, record = datum
            return {"type": name, "value": self.convert(by_name[name], record, to_json=True)}
        name = datum["type"]
        return (name, self.convert(by_name[name], datum["value"], to_json=False))


_schema: _Schema | None = None


def _get_schema() -> _Schema:
    global _schema
    if _schema is None:
        _schema = _Schema()
    return _schema


@dataclass(frozen=True)
class WorkflowHistory:
    """The history of one workflow run, e.g. to replay it with a ``Replayer``.

    Attributes:
        workflow_id: The workflow's id.
        events: ``cadenza.history.HistoryEvent`` dicts, from the run's first event.

    Example:
        >>> history = WorkflowHistory("wf-1", [])
        >>> WorkflowHistory.from_json("wf-1", history.to_json()) == history
        True
    """

    workflow_id: str
    events: Sequence[Mapping[str, Any]]

    @property
    def run_id(self) -> str:
        """The run id of the first event (``""`` for an empty history)."""
        return str(self.events[0]["run_id"]) if self.events else ""

    def to_json_dict(self) -> dict[str, Any]:
        """The history as JSON-ready data: ``{"events": [...]}``."""
        schema = _get_schema()
        return {"events": [schema.convert(schema.root, e, to_json=True) for e in self.events]}

    def to_json(self) -> str:
        """The history as a JSON string (see the module docstring for the format)."""
        return json.dumps(self.to_json_dict())

    @staticmethod
    def from_json(workflow_id: str, history: str | Mapping[str, Any]) -> WorkflowHistory:
        """Read a history written by :meth:`to_json` (or :meth:`to_json_dict`).

        Args:
            workflow_id: The workflow's id.
            history: The JSON string, or its parsed data.
        """
        data: Any = json.loads(history) if isinstance(history, str) else history
        schema = _get_schema()
        events = [schema.convert(schema.root, e, to_json=False) for e in data.get("events", [])]
        return WorkflowHistory(workflow_id, events)
