"""Kafka's default (Java) partitioner: which partition a record key lands in.

The engine relies on every producer to ``commands`` partitioning as the Java
client does (``partitioner=murmur2_random`` in librdkafka), so a workflow's
commands and its history share one partition number. Readers that must find a
workflow's partition without producing (the client's ``fetch_history``) compute
it here.

Example:
    >>> murmur2(b"foobar")
    -790332482
    >>> partition_for(b"order-42", 16) == partition_for(b"order-42", 16)
    True
"""

from __future__ import annotations

__all__ = ["murmur2", "partition_for"]

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """The 32-bit murmur2 hash of ``data``, as Kafka's ``Utils.murmur2`` returns it (signed).

    Java's ``int`` arithmetic wraps at 32 bits and ``>>>`` is an unsigned shift;
    here every intermediate is kept as an unsigned 32-bit value, then the result
    is reinterpreted as signed.
    """
    length = len(data)
    h = (_SEED ^ length) & _MASK32
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK32
        k ^= k >> 24
        k = (k * _M) & _MASK32
        h = (h * _M) & _MASK32
        h ^= k
    tail = length % 4
    if tail:
        # The Java switch falls through from the highest remaining byte down.
        if tail == 3:
            h ^= data[whole + 2] << 16
        if tail >= 2:
            h ^= data[whole + 1] << 8
        h ^= data[whole]
        h = (h * _M) & _MASK32
    h ^= h >> 13
    h = (h * _M) & _MASK32
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for a non-empty ``key``.

    ``(murmur2(key) & 0x7fffffff) % partitions``, as the Java producer's
    ``BuiltInPartitioner.partitionForKey`` and librdkafka's ``murmur2_random``.

    Raises:
        ValueError: ``partitions`` is not positive.
    """
    if partitions <= 0:
        raise ValueError(f"partitions must be positive, not {partitions}")
    return (murmur2(key) & 0x7FFFFFFF) % partitions
