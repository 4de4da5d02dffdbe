"""Payload codecs: bytes-to-bytes transforms (compression, encryption) of payloads."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..common._failure import (
    APPLICATION_FAILURE_INFO,
    CANCELED_FAILURE_INFO,
    TIMEOUT_FAILURE_INFO,
    Failure,
)
from ..common._payload import Payload

_DETAIL_FIELDS = {
    APPLICATION_FAILURE_INFO: "details",
    CANCELED_FAILURE_INFO: "details",
    TIMEOUT_FAILURE_INFO: "last_heartbeat_details",
}


class PayloadCodec(ABC):
    """Encodes payloads after conversion and decodes them before it.

    Codecs run at the worker's and client's boundaries, never inside workflow
    code (they may do I/O, e.g. fetch a key). They also apply to the payloads
    inside failures (application and cancellation details, heartbeat details,
    encoded attributes).

    Example (compression; the original encoding is kept in the metadata)::

        class ZlibCodec(PayloadCodec):
            async def encode(self, payloads):
                return [
                    {
                        "metadata": {
                            **p["metadata"],
                            "encoding": b"binary/zlib",
                            "zlib-encoding": p["metadata"]["encoding"],
                        },
                        "data": zlib.compress(p["data"]),
                    }
                    for p in payloads
                ]

            async def decode(self, payloads):
                decoded = []
                for p in payloads:
                    if p["metadata"].get("encoding") != b"binary/zlib":
                        decoded.append(p)
                        continue
                    metadata = dict(p["metadata"])
                    metadata["encoding"] = metadata.pop("zlib-encoding")
                    decoded.append({"metadata": metadata, "data": zlib.decompress(p["data"])})
                return decoded

        converter = DataConverter(payload_codec=ZlibCodec())
    """

    @abstractmethod
    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encode payloads (do not mutate the input).

        Returns:
            The encoded payloads: one or more, no more than given.
        """
        raise NotImplementedError

    @abstractmethod
    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decode payloads (do not mutate the input); inverse of :meth:`encode`."""
        raise NotImplementedError

    async def encode_failure(self, failure: Failure) -> Failure:
        """A copy of ``failure`` with every payload in it (and its causes) encoded."""
        return await _map_failure_payloads(failure, self.encode)

    async def decode_failure(self, failure: Failure) -> Failure:
        """A copy of ``failure`` with every payload in it (and its causes) decoded."""
        return await _map_failure_payloads(failure, self.decode)


async def _map_failure_payloads(
    failure: Failure,
    transform: Callable[[Sequence[Payload]], Awaitable[list[Payload]]],
) -> Failure:
    result: Failure = dict(failure)  # type: ignore[assignment]
    encoded = failure.get("encoded_attributes")
    if encoded is not None:
        result["encoded_attributes"] = (await transform([encoded]))[0]
    info = failure.get("info")
    if info is not None:
        branch, record = info[0], info[1]
        field = _DETAIL_FIELDS.get(branch)
        if field is not None and record.get(field):
            new_record: dict[str, Any] = dict(record)
            new_record[field] = await transform(record[field])
            result["info"] = (branch, new_record)
    cause = failure.get("cause")
    if cause is not None:
        result["cause"] = await _map_failure_payloads(cause, transform)
    return result
