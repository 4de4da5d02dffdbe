"""Random ids: version 4 UUIDs, unique, and not repeated by a forked child."""

from __future__ import annotations

import os
import uuid

from cadenza._ids import new_id


def test_ids_are_version_4_uuids_in_canonical_text() -> None:
    for _ in range(1000):
        text = new_id()
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text


def test_ids_do_not_repeat() -> None:
    ids = {new_id() for _ in range(100_000)}
    assert len(ids) == 100_000


def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write its next ids and leave at once
        os.write(write, " ".join(new_id() for _ in range(5)).encode())
        os._exit(0)
    os.close(write)
    mine = {new_id() for _ in range(5)}
    with os.fdopen(read) as pipe:
        childs = set(pipe.read().split())
    os.waitpid(pid, 0)
    assert len(childs) == 5
    assert not mine & childs


def test_run_ids_are_the_uuid5_of_the_start_unchanged() -> None:
    # Run ids already in histories were uuid.uuid5 text: the fast path must not change one.
    from cadenza.processors.engine._common import _RUN_ID_NAMESPACE, run_id_for

    names = [new_id() for _ in range(1000)]
    names += ["", "a", "x" * 300, "run/é/ü/漢字", f"{new_id()}/continued-as-new"]
    for name in names:
        assert run_id_for(name) == str(uuid.uuid5(_RUN_ID_NAMESPACE, name))
