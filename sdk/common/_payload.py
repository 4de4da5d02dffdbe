"""The wire shape of one converted value, and the raw-value wrapper."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict


class Payload(TypedDict):
    """One converted value, exactly as the Avro codec writes it.

    Payloads stay plain dicts (never objects) so the Avro codec encodes them
    without any conversion. ``metadata["encoding"]`` names the converter that
    produced ``data`` (for example ``b"json/plain"``); codecs may add their own
    metadata keys.

    Example:
        >>> p: Payload = {"metadata": {"encoding": b"json/plain"}, "data": b'"hi"'}
        >>> p["metadata"]["encoding"]
        b'json/plain'
    """

    metadata: dict[str, bytes]
    """Metadata about ``data``; ``encoding`` is always present."""

    data: bytes
    """The encoded value."""


@dataclass(frozen=True)
class RawValue:
    """A payload passed through unconverted.

    Use it as a parameter or return type (or ``Sequence[RawValue]`` for dynamic
    workflows, activities and handlers) to receive or send a payload as is. The
    payload codec still applies.
    """

    payload: Payload
    """The unconverted payload."""
