"""The engine store's cache of decoded run states."""

from __future__ import annotations

from pathlib import Path

from cadenza.processors.engine._store import PartitionStore


def test_a_kept_state_is_taken_out_once(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path, cache_runs=2)
    state = {"workflow_id": "w"}
    store.keep("w", state, {"timer"})
    cached = store.take_cached("w")
    assert cached is not None and cached[0] is state and cached[1] == {"timer"}
    # Taken out: a batch that changes it without writing it leaves nothing behind.
    assert store.take_cached("w") is None
    store.close()


def test_the_oldest_state_goes_when_the_cache_is_full(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path, cache_runs=2)
    for name in ("a", "b", "c"):
        store.keep(name, {"workflow_id": name}, set())
    assert store.take_cached("a") is None
    assert store.take_cached("b") is not None
    assert store.take_cached("c") is not None
    store.close()


def test_no_cache_by_default(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path)
    store.keep("w", {"workflow_id": "w"}, set())
    assert store.take_cached("w") is None
    store.close()
