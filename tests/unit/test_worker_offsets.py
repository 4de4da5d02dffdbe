"""OffsetTracker: commit positions advance in order per partition, whatever order tasks end."""

from __future__ import annotations

import random

import pytest

from cadenza.worker._offsets import OffsetTracker


def test_commits_only_past_the_finished_prefix() -> None:
    tracker = OffsetTracker()
    tickets = [tracker.received("t", 0, offset) for offset in range(10, 15)]
    assert tracker.done(tickets[2]) is None  # 10 and 11 still run
    assert tracker.done(tickets[1]) is None
    assert tracker.take_commits() == {}
    assert tracker.done(tickets[0]) == 13  # 10, 11, 12 are done: next is 13
    assert tracker.take_commits() == {("t", 0): 13}
    assert tracker.take_commits() == {}  # nothing new
    assert tracker.done(tickets[4]) is None
    assert tracker.done(tickets[3]) == 15
    assert tracker.take_commits() == {("t", 0): 15}
    assert tracker.in_flight("t", 0) == 0


def test_partitions_are_independent() -> None:
    tracker = OffsetTracker()
    a0 = tracker.received("t", 0, 0)
    b0 = tracker.received("t", 1, 100)
    a1 = tracker.received("t", 0, 1)
    assert tracker.done(a1) is None
    assert tracker.done(b0) == 101  # partition 1 does not wait for partition 0
    assert tracker.take_commits() == {("t", 1): 101}
    assert tracker.done(a0) == 2
    assert tracker.take_commits() == {("t", 0): 2}


def test_gaps_between_offsets_are_fine() -> None:
    # Compacted or transactional topics skip offsets: only received ones count.
    tracker = OffsetTracker()
    first, second = tracker.received("t", 0, 3), tracker.received("t", 0, 9)
    assert tracker.done(first) == 4
    assert tracker.done(second) == 10


def test_a_revoked_partition_ignores_late_completions() -> None:
    tracker = OffsetTracker()
    old = tracker.received("t", 0, 5)
    tracker.revoked("t", 0)
    assert tracker.done(old) is None
    assert tracker.take_commits() == {}
    # Assigned again: records are redelivered from the committed offset.
    tracker.assigned("t", 0)
    again = tracker.received("t", 0, 5)
    assert tracker.done(old) is None  # the stale ticket still does not count
    assert tracker.done(again) == 6


def test_done_twice_counts_once() -> None:
    tracker = OffsetTracker()
    first, second = tracker.received("t", 0, 0), tracker.received("t", 0, 1)
    assert tracker.done(first) == 1
    assert tracker.done(first) is None
    assert tracker.done(second) == 2


def test_offsets_must_increase() -> None:
    tracker = OffsetTracker()
    tracker.received("t", 0, 7)
    with pytest.raises(ValueError, match="received after 7"):
        tracker.received("t", 0, 7)


def test_random_completion_order_commits_every_prefix() -> None:
    rng = random.Random(7)
    tracker = OffsetTracker()
    tickets = [tracker.received("t", 0, offset) for offset in range(200)]
    order = list(range(200))
    rng.shuffle(order)
    finished: set[int] = set()
    committed = 0
    for index in order:
        finished.add(index)
        advanced = tracker.done(tickets[index])
        expected = committed
        while expected in finished:
            expected += 1
        if expected != committed:
            assert advanced == expected
            committed = expected
        else:
            assert advanced is None
    assert committed == 200
    assert tracker.take_commits() == {("t", 0): 200}
