"""``DataConverter``: payload converter + optional codec + failure converter."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..common._failure import Failure
from ..common._payload import Payload
from ._failure_converter import DefaultFailureConverter, FailureConverter
from ._payload_codec import PayloadCodec
from ._payload_converter import DefaultPayloadConverter, PayloadConverter


@dataclass(frozen=True)
class DataConverter:
    """Turns values and exceptions into wire payloads and failures, and back.

    Conversion (:attr:`payload_converter`, :attr:`failure_converter`) is pure
    and synchronous, so workflow code uses it directly. The codec is
    asynchronous and runs only at the worker's and client's boundaries: as in
    Temporal, workflow code never awaits it. Change a converter with
    :func:`dataclasses.replace`.

    Example:
        >>> import asyncio
        >>> conv = DataConverter.default
        >>> payloads = asyncio.run(conv.encode(["hi", 3]))
        >>> [p["data"] for p in payloads]
        [b'"hi"', b'3']
        >>> asyncio.run(conv.decode(payloads, [str, int]))
        ['hi', 3]
    """

    payload_converter_class: type[PayloadConverter] = DefaultPayloadConverter
    """Class instantiated (without arguments) as :attr:`payload_converter`."""

    payload_codec: PayloadCodec | None = None
    """Optional codec applied to every payload after conversion (compression, encryption)."""

    failure_converter_class: type[FailureConverter] = DefaultFailureConverter
    """Class instantiated (without arguments) as :attr:`failure_converter`."""

    payload_converter: PayloadConverter = dataclasses.field(init=False)
    """The payload converter (synchronous; safe in workflow code)."""

    failure_converter: FailureConverter = dataclasses.field(init=False)
    """The failure converter (synchronous; safe in workflow code)."""

    default: ClassVar[DataConverter]
    """The default data converter: default payload and failure converters, no codec."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "payload_converter", self.payload_converter_class())
        object.__setattr__(self, "failure_converter", self.failure_converter_class())

    async def encode(self, values: Sequence[Any]) -> list[Payload]:
        """Convert values to payloads, then apply the codec."""
        payloads = self.payload_converter.to_payloads(values)
        if self.payload_codec is not None:
            payloads = await self.payload_codec.encode(payloads)
        return payloads

    async def decode(
        self, payloads: Sequence[Payload], type_hints: list[Any] | None = None
    ) -> list[Any]:
        """Undo the codec, then convert payloads to values (to ``type_hints`` if given)."""
        decoded = list(payloads)
        if self.payload_codec is not None:
            decoded = await self.payload_codec.decode(decoded)
        return self.payload_converter.from_payloads(decoded, type_hints)

    async def encode_failure(self, exception: BaseException) -> Failure:
        """Convert an exception (and its causes) to a wire failure, then apply the codec."""
        failure = self.failure_converter.to_failure(exception, self.payload_converter)
        if self.payload_codec is not None:
            failure = await self.payload_codec.encode_failure(failure)
        return failure

    async def decode_failure(self, failure: Failure) -> BaseException:
        """Undo the codec on a wire failure, then convert it to an exception."""
        if self.payload_codec is not None:
            failure = await self.payload_codec.decode_failure(failure)
        return self.failure_converter.from_failure(failure, self.payload_converter)


def default() -> DataConverter:
    """The default data converter (prefer :attr:`DataConverter.default`)."""
    return DataConverter.default
