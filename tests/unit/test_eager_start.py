"""Which worker of a process takes an eager start's first task."""

from __future__ import annotations

from cadenza._eager_start import EagerStarts


class _Worker:
    def __init__(self, slots: int) -> None:
        self.slots = slots

    def try_reserve_eager(self) -> bool:
        if self.slots == 0:
            return False
        self.slots -= 1
        return True

    def release_eager(self) -> None:
        self.slots += 1

    def run_eager(self, task: bytes) -> None:
        raise AssertionError("not called here")


def test_the_first_worker_of_the_queue_with_a_free_slot_takes_it() -> None:
    starts = EagerStarts()
    first, second, other = _Worker(1), _Worker(1), _Worker(5)
    starts.register("q", first)
    starts.register("q", second)
    starts.register("other", other)
    assert starts.reserve("q") is first
    assert starts.reserve("q") is second  # the first is full
    assert starts.reserve("q") is None  # both are
    assert starts.reserve("nobody") is None
    second.release_eager()
    starts.unregister("q", second)  # stopping: it takes no more
    assert starts.reserve("q") is None
    first.release_eager()
    assert starts.reserve("q") is first
    starts.unregister("q", first)
    starts.unregister("q", first)  # twice is harmless
    assert starts.reserve("q") is None
    assert starts.reserve("other") is other
