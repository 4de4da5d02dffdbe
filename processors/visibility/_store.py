"""The visibility store: one record per run, indexes by status and type, and offsets.

Keys (one byte of kind first, so kinds never interleave):

- ``r`` workflow id NUL run id -> the run (``cadenza.reply.WorkflowExecutionInfo``)
- ``s`` status NUL start time (8 bytes, big-endian) workflow id NUL run id -> b""
- ``t`` workflow type NUL start time (8 bytes) workflow id NUL run id -> b""
- ``m`` NUL ``offsets`` -> the next offset of each ``history`` partition it reflects

A list by status or type reads its index range, never every run. A batch of
folded events and the offsets they reflect go in one RocksDB write batch, so the
store and its offsets always move together: after a crash the projection
resumes from exactly the history it reflects.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from rocksdict import Options, Rdict, WriteBatch

from cadenza import schemas

INFO = "cadenza.reply.WorkflowExecutionInfo"

_TIME = struct.Struct(">Q")
_OFFSETS = b"m\x00offsets"
_H = "cadenza.history."

_CLOSED = {
    _H + "WorkflowExecutionCompleted": "COMPLETED",
    _H + "WorkflowExecutionFailed": "FAILED",
    _H + "WorkflowExecutionTimedOut": "TIMED_OUT",
    _H + "WorkflowExecutionCanceled": "CANCELED",
    _H + "WorkflowExecutionTerminated": "TERMINATED",
    _H + "WorkflowExecutionContinuedAsNew": "CONTINUED_AS_NEW",
}


def run_key(workflow_id: str, run_id: str) -> bytes:
    return b"r" + workflow_id.encode() + b"\x00" + run_id.encode()


def _run_suffix(info: Mapping[str, Any]) -> bytes:
    return (
        _TIME.pack(max(0, info["start_time_ms"])) + run_key(info["workflow_id"], info["run_id"])[1:]
    )


def status_key(info: Mapping[str, Any]) -> bytes:
    return b"s" + str(info["status"]).encode() + b"\x00" + _run_suffix(info)


def type_key(info: Mapping[str, Any]) -> bytes:
    return b"t" + str(info["workflow_type"]).encode() + b"\x00" + _run_suffix(info)


def status_prefix(status: str) -> bytes:
    return b"s" + status.encode() + b"\x00"


def type_prefix(workflow_type: str) -> bytes:
    return b"t" + workflow_type.encode() + b"\x00"


def workflow_prefix(workflow_id: str) -> bytes:
    return b"r" + workflow_id.encode() + b"\x00"


def run_key_of_index(key: bytes, prefix_len: int) -> bytes:
    """The ``r`` key an ``s`` or ``t`` index key points at."""
    return b"r" + key[prefix_len + _TIME.size :]


class VisibilityStore:
    """RocksDB store of the projection (all partitions of ``history`` in one store)."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        self.path = path
        self._db = Rdict(str(path), options=options)
        self._offsets: dict[int, int] | None = None
        """The offsets as last read or written (only this object writes them)."""

    def close(self) -> None:
        self._db.close()

    def info(self, key: bytes) -> dict[str, Any] | None:
        raw = self._db.get(key)
        return None if raw is None else schemas.decode_as(bytes(raw), INFO)

    def keys(self, prefix: bytes) -> Iterator[bytes]:
        """Every key that starts with ``prefix``, in order."""
        it = self._db.iter()
        it.seek(prefix)
        while it.valid():
            key = bytes(it.key())
            if not key.startswith(prefix):
                return
            yield key
            it.next()

    def offsets(self) -> dict[int, int]:
        """Next offset of each ``history`` partition this store reflects."""
        if self._offsets is None:
            raw = self._db.get(_OFFSETS)
            loaded = {} if raw is None else json.loads(bytes(raw))
            self._offsets = {int(p): o for p, o in loaded.items()}
        return dict(self._offsets)

    def write(self, batch: WriteBatch, offsets: Mapping[int, int]) -> None:
        """Apply ``batch`` and, in the same write, the offsets it reflects."""
        merged = {**self.offsets(), **offsets}
        batch.put(_OFFSETS, json.dumps({str(p): o for p, o in merged.items()}).encode())
        self._db.write(batch)
        self._offsets = merged


class Fold:
    """Folds history events into run records; :meth:`flush` makes the write batch."""

    def __init__(self, store: VisibilityStore) -> None:
        self.store = store
        self.runs: dict[bytes, dict[str, Any] | None] = {}
        self.old_index: dict[bytes, tuple[bytes, bytes] | None] = {}

    def _load(self, key: bytes) -> dict[str, Any] | None:
        if key not in self.runs:
            info = self.store.info(key)
            self.runs[key] = info
            self.old_index[key] = None if info is None else (status_key(info), type_key(info))
        return self.runs[key]

    def apply(self, event: Mapping[str, Any]) -> None:
        """Fold one history event into its run's record."""
        key = run_key(event["workflow_id"], event["run_id"])
        name, attrs = event["attributes"]
        info = self._load(key)
        if name == _H + "WorkflowExecutionStarted":
            if info is not None:
                return  # a replayed start: the record already has it
            parent = attrs.get("parent")
            start = event["event_time_ms"]
            info = {
                "workflow_id": event["workflow_id"],
                "run_id": event["run_id"],
                "workflow_type": attrs["workflow_type"],
                "task_queue": attrs["task_queue"],
                "status": "RUNNING",
                "start_time_ms": start,
                "close_time_ms": None,
                "execution_time_ms": start + (attrs.get("first_workflow_task_backoff_ms") or 0),
                "history_length": 0,
                "parent_workflow_id": None if parent is None else parent["workflow_id"],
                "parent_run_id": None if parent is None else parent["run_id"],
                "memo": dict(attrs.get("memo") or {}),
                "search_attributes": dict(attrs.get("search_attributes") or {}),
            }
            self.runs[key] = info
        if info is None:
            return  # its start is gone (history retention): nothing to show
        info["history_length"] = max(info["history_length"], event["event_id"])
        status = _CLOSED.get(name)
        if status is not None:
            info["status"] = status
            info["close_time_ms"] = event["event_time_ms"]
        elif name == _H + "UpsertWorkflowSearchAttributes":
            info["search_attributes"].update(attrs.get("search_attributes") or {})
        elif name == _H + "WorkflowPropertiesModified":
            info["memo"].update(attrs.get("upserted_memo") or {})

    def flush(self) -> WriteBatch:
        """The write batch of every changed run and its index entries."""
        wb = WriteBatch(raw_mode=True)
        for key, info in self.runs.items():
            if info is None:
                continue
            wb.put(key, schemas.encode(INFO, info))
            old = self.old_index.get(key)
            new = (status_key(info), type_key(info))
            if old != new:
                for stale in old or ():
                    if stale not in new:
                        wb.delete(stale)
                for fresh in new:
                    wb.put(fresh, b"")
        return wb
