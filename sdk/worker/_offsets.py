"""Which offsets a task consumer may commit: in order per partition, whatever order tasks end in.

Tasks of one partition run concurrently (activities) or per workflow (workflow
tasks), so they finish out of order. Kafka keeps one committed offset per
partition, meaning "everything before this is done": committing offset ``n + 1``
after task ``n`` finished while task ``n - 1`` still runs would lose task
``n - 1`` on a crash. :class:`OffsetTracker` commits only past the longest
finished prefix of each partition.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

TopicPartitionKey = tuple[str, int]
"""``(topic, partition)``."""


@dataclass(frozen=True)
class Ticket:
    """One received record, as the tracker knows it; hand it back to :meth:`OffsetTracker.done`."""

    topic: str
    partition: int
    offset: int
    generation: int
    """Assignment generation of the partition when the record arrived: a record that
    finishes after its partition was revoked (and maybe assigned again) is ignored."""


@dataclass
class _Partition:
    generation: int
    in_flight: deque[int] = field(default_factory=deque)
    finished: set[int] = field(default_factory=set)
    committable: int | None = None
    """Offset to commit next (the one after the finished prefix), not yet committed."""


class OffsetTracker:
    """Commit positions of the partitions a consumer holds, in order per partition.

    Not thread-safe: the consumer's thread owns it.

    Example:
        >>> tracker = OffsetTracker()
        >>> a, b = tracker.received("t", 0, 10), tracker.received("t", 0, 11)
        >>> tracker.done(b), tracker.done(a)
        (None, 12)
        >>> tracker.take_commits()
        {('t', 0): 12}
    """

    def __init__(self) -> None:
        self._partitions: dict[TopicPartitionKey, _Partition] = {}
        self._generation = 0

    def assigned(self, topic: str, partition: int) -> None:
        """The partition was (re)assigned: forget anything known about it before."""
        self._generation += 1
        self._partitions[(topic, partition)] = _Partition(self._generation)

    def revoked(self, topic: str, partition: int) -> None:
        """The partition was taken away: records of it still running are ignored when done."""
        self._partitions.pop((topic, partition), None)

    def received(self, topic: str, partition: int, offset: int) -> Ticket:
        """A record was handed out for processing.

        Offsets of one partition arrive in increasing order (Kafka's order); a
        partition not announced with :meth:`assigned` is tracked from here on.
        """
        state = self._partitions.get((topic, partition))
        if state is None:
            self.assigned(topic, partition)
            state = self._partitions[(topic, partition)]
        if state.in_flight and offset <= state.in_flight[-1]:
            raise ValueError(
                f"{topic}[{partition}]: offset {offset} received after {state.in_flight[-1]}"
            )
        state.in_flight.append(offset)
        return Ticket(topic, partition, offset, state.generation)

    def done(self, ticket: Ticket) -> int | None:
        """The record of ``ticket`` is finished (its answer acknowledged).

        Returns:
            The partition's new commit position when the finished prefix grew,
            else ``None`` (an earlier record still runs, or the partition was revoked).
        """
        state = self._partitions.get((ticket.topic, ticket.partition))
        if state is None or state.generation != ticket.generation:
            return None
        if ticket.offset not in state.in_flight or ticket.offset in state.finished:
            return None
        state.finished.add(ticket.offset)
        advanced: int | None = None
        while state.in_flight and state.in_flight[0] in state.finished:
            offset = state.in_flight.popleft()
            state.finished.discard(offset)
            advanced = offset + 1
        if advanced is not None:
            state.committable = advanced
        return advanced

    def take_commits(self) -> dict[TopicPartitionKey, int]:
        """Commit positions that advanced since the last call, by partition."""
        commits: dict[TopicPartitionKey, int] = {}
        for key, state in self._partitions.items():
            if state.committable is not None:
                commits[key] = state.committable
                state.committable = None
        return commits

    def in_flight(self, topic: str, partition: int) -> int:
        """How many records of the partition are received and not yet done."""
        state = self._partitions.get((topic, partition))
        return 0 if state is None else len(state.in_flight)
