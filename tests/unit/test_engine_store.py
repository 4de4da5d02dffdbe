"""The engine store's cache of decoded run states."""

from __future__ import annotations

from pathlib import Path

from cadenza.processors.engine._store import PartitionStore, new_batch


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


def test_due_starts_where_asked(tmp_path: Path) -> None:
    from cadenza.processors.engine._timers import (
        Due,
        due_prefix_end,
        due_prefix_start,
        index_key,
    )

    store = PartitionStore(tmp_path)
    batch = new_batch()
    keys = [index_key("w", Due(t, "TIMER", 5, 0, str(t))) for t in (100, 200, 300)]
    for key in keys:
        batch.put(key, b"")
    store.write(batch, None)
    assert store.due(due_prefix_end(250), 10) == keys[:2]
    # From past the first key (what the engine does after firing it): the rest only.
    assert store.due(due_prefix_end(250), 10, keys[0] + b"\x00") == keys[1:2]
    assert store.due(due_prefix_end(1000), 10, due_prefix_start(300)) == keys[2:]
    store.close()
