"""One partition's RocksDB store: run states, history, the timer index and offsets.

Keys (one byte of kind first, so kinds never interleave):

- ``s`` workflow id -> the current run's state (``cadenza.state.WorkflowState``)
- ``a`` workflow id NUL run id -> a closed run's state (for results and describe)
- ``h`` workflow id NUL run id NUL event id (8 bytes, big-endian) -> HistoryEvent bytes
- ``t`` due time (8 bytes, big-endian) ... -> b"" (see ``_timers``)
- ``m`` name -> metadata (the offsets this store reflects)

A batch of changes and the offsets they reflect are written in one RocksDB
write batch, so the store and its offsets always move together.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer
from rocksdict import Options, Rdict, WriteBatch, WriteOptions

from cadenza import schemas
from cadenza.topics import changelog_partition

_EVENT_ID = struct.Struct(">Q")
_OFFSETS = b"m\x00offsets"


def state_key(workflow_id: str) -> bytes:
    return b"s" + workflow_id.encode()


def run_key(workflow_id: str, run_id: str) -> bytes:
    return b"a" + workflow_id.encode() + b"\x00" + run_id.encode()


def history_prefix(workflow_id: str, run_id: str) -> bytes:
    return b"h" + workflow_id.encode() + b"\x00" + run_id.encode() + b"\x00"


def history_key(workflow_id: str, run_id: str, event_id: int) -> bytes:
    return history_prefix(workflow_id, run_id) + _EVENT_ID.pack(event_id)


class PartitionStore:
    """RocksDB store of one ``commands`` partition."""

    def __init__(self, path: Path, *, wal: bool = True, cache_runs: int = 0) -> None:
        """Open (or create) the store at ``path``.

        Args:
            wal: log writes ahead. Without the log a crash loses what was not
                flushed yet, so only a store that is thrown away after a crash
                (one being rebuilt) goes without; :meth:`flush` it when done.
            cache_runs: how many current run states to keep decoded in memory
                (see :meth:`take_cached`).
        """
        self.cache_runs = cache_runs
        self._cache: dict[str, tuple[dict[str, Any], Any]] = {}
        self._offsets: dict[str, int] | None = None
        """The offsets as last read or written: only this object writes the store, so
        each write need not read and parse them again (3% of the engine's time)."""
        new = not (path / "CURRENT").exists()
        path.mkdir(parents=True, exist_ok=True)
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        if new:
            # RocksDB starts max_file_opening_threads (16) threads at open to load
            # table files, which a new store has none of: a quarter of the CPU an
            # open takes (a rebuild opens a store per partition).
            options.set_max_file_opening_threads(1)
        self.path = path
        self._db = Rdict(str(path), options=options)
        if not wal:
            write_options = WriteOptions()
            # A property at run time, though rocksdict's stubs say a method.
            write_options.disable_wal = True  # type: ignore[method-assign,assignment]
            self._db.set_write_options(write_options)

    def flush(self) -> None:
        """Write what is in memory to disk (what a store without a log needs before it is used)."""
        self._db.flush(True)

    def close(self) -> None:
        self._db.close()

    # -- reads --------------------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        value = self._db.get(key)
        return None if value is None else bytes(value)

    def state(self, workflow_id: str) -> dict[str, Any] | None:
        raw = self._db.get(state_key(workflow_id))
        return None if raw is None else schemas.decode_as(raw, "cadenza.state.WorkflowState")

    def run_state(self, workflow_id: str, run_id: str) -> dict[str, Any] | None:
        raw = self._db.get(run_key(workflow_id, run_id))
        return None if raw is None else schemas.decode_as(raw, "cadenza.state.WorkflowState")

    def history_bytes(self, workflow_id: str, run_id: str, from_event_id: int) -> Iterator[bytes]:
        """Encoded events of a run from ``from_event_id`` on, in order."""
        prefix = history_prefix(workflow_id, run_id)
        it = self._db.iter()
        it.seek(prefix + _EVENT_ID.pack(from_event_id))
        while it.valid():
            key = it.key()
            if not key.startswith(prefix):
                break
            yield bytes(it.value())
            it.next()

    def due(self, until_key: bytes, limit: int, start: bytes = b"t") -> list[bytes]:
        """Timer index keys from ``start`` on that sort before ``until_key``, oldest first."""
        out: list[bytes] = []
        it = self._db.iter()
        it.seek(start)
        while it.valid() and len(out) < limit:
            key = bytes(it.key())
            if key >= until_key or not key.startswith(b"t"):
                break
            out.append(key)
            it.next()
        return out

    def offsets(self) -> dict[str, int]:
        """Next offsets (of commands, changelog, history) this store reflects."""
        if self._offsets is None:
            raw = self._db.get(_OFFSETS)
            self._offsets = {} if raw is None else dict(json.loads(bytes(raw)))
        return dict(self._offsets)

    # -- the state cache ----------------------------------------------------------------------
    #
    # Decoding a run's state was a seventh of the engine's time per command. The
    # states a committed batch wrote are kept as objects, with a derived value (the
    # engine keeps their timers); the caller takes one out for a batch and gives it
    # back only after that batch's commit, so a state a batch changed but did not
    # write (a rejected command) is never kept.

    def take_cached(self, workflow_id: str) -> tuple[dict[str, Any], Any] | None:
        """The state (and derived value) last given to :meth:`keep`, removed from the cache."""
        return self._cache.pop(workflow_id, None)

    def keep(self, workflow_id: str, state: dict[str, Any], derived: Any) -> None:
        """Cache ``state``, which the store now holds for ``workflow_id``; the oldest
        entry goes when the cache is full."""
        if self.cache_runs <= 0:
            return
        self._cache[workflow_id] = (state, derived)
        if len(self._cache) > self.cache_runs:
            del self._cache[next(iter(self._cache))]

    # -- writes -------------------------------------------------------------------------------

    def write(self, batch: WriteBatch, offsets: dict[str, int] | None) -> None:
        """Apply ``batch`` and, in the same write, the offsets it reflects."""
        if offsets is not None:
            merged = {**self.offsets(), **offsets}
            batch.put(_OFFSETS, json.dumps(merged).encode())
            self._db.write(batch)
            self._offsets = merged
        else:
            self._db.write(batch)


STORE_HEADER = "store-partition"
"""Header of a changelog record: the store partition it belongs to (decimal), where the
changelog has fewer partitions than ``commands``."""

ChangelogTarget = tuple[int, list[tuple[str, bytes]] | None]
"""A store partition's changelog partition, and the headers its records carry."""


def changelog_targets(
    consumer: Consumer, commands: str, changelog: str, namespace: str
) -> dict[int, ChangelogTarget]:
    """Where each store partition's changelog records go, from the partition counts the
    topics have: a namespace created before changelogs were narrowed has as many
    changelog partitions as ``commands`` (p -> p, no header); a newer one a quarter, so
    several stores share a partition and each record names its store.

    Raises:
        RuntimeError: a topic is missing or has no partitions.
    """
    counts = {}
    for topic in (commands, changelog):
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            reason = "missing" if metadata is None else metadata.error or "no partitions"
            raise RuntimeError(
                f"cannot read the partitions of {topic} ({reason}): run "
                f"`cadenza topics create --namespace {namespace}`"
            )
        counts[topic] = len(metadata.partitions)
    partitions, width = counts[commands], counts[changelog]
    return {
        p: (
            changelog_partition(p, partitions, width),
            None if width == partitions else [(STORE_HEADER, str(p).encode())],
        )
        for p in range(partitions)
    }


def new_batch() -> WriteBatch:
    return WriteBatch(raw_mode=True)
