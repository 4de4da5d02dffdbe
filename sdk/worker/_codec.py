"""Applying a :class:`PayloadCodec` to every payload inside a wire record.

Workflow code never sees encoded payloads: the worker decodes the payloads of
the history events (and updates, query arguments) it receives before
activating, and encodes those of the commands (and query results) it sends.
As in Temporal, headers and search attributes are left alone (they are read by
the engine and by other tools, and are not user data to encrypt).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from ..common._payload import Payload
from ..converter import PayloadCodec

T = TypeVar("T")

_SKIPPED_FIELDS = frozenset({"header", "search_attributes"})

_Transform = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]


def _is_payload(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and len(value) == 2
        and isinstance(value.get("data"), bytes)
        and isinstance(value.get("metadata"), dict)
    )


async def decode_in(value: T, codec: PayloadCodec | None) -> T:
    """A copy of ``value`` (a record, list or tuple) with every payload in it decoded."""
    if codec is None:
        return value
    result: T = await _walk(value, codec.decode)
    return result


async def encode_in(value: T, codec: PayloadCodec | None) -> T:
    """A copy of ``value`` (a record, list or tuple) with every payload in it encoded."""
    if codec is None:
        return value
    result: T = await _walk(value, codec.encode)
    return result


async def _walk(value: Any, transform: _Transform) -> Any:
    if isinstance(value, dict):
        if _is_payload(value):
            return await _one(value, transform)
        return {
            key: item if key in _SKIPPED_FIELDS else await _walk(item, transform)
            for key, item in value.items()
        }
    if isinstance(value, list):
        if value and all(_is_payload(item) for item in value):
            # One codec call per list, as Temporal's codecs see a payload list at once.
            return list(await transform(value))
        return [await _walk(item, transform) for item in value]
    if isinstance(value, tuple):
        return tuple([await _walk(item, transform) for item in value])
    return value


async def _one(payload: Any, transform: _Transform) -> Payload:
    result = await transform([payload])
    if len(result) != 1:
        raise ValueError(f"The payload codec turned one payload into {len(result)}")
    return result[0]
