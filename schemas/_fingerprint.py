"""Schema fingerprints: CRC-64-AVRO of the Parsing Canonical Form.

This is the fingerprint Avro's single-object encoding puts after the ``C3 01``
marker, as 8 little-endian bytes (the byte order Java's ``SchemaNormalization``
and every other implementation use).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from fastavro.schema import to_parsing_canonical_form

__all__ = ["EMPTY_64", "crc64_avro", "fingerprint_of", "parsing_canonical_form"]

#: The Avro spec's seed and polynomial for the 64-bit Rabin fingerprint.
EMPTY_64 = 0xC15D213AA4D7A795


def _make_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (EMPTY_64 & -(fp & 1))
        table.append(fp)
    return tuple(table)


_TABLE = _make_table()


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO (Rabin) fingerprint of ``data``, as an unsigned 64-bit int.

    Args:
        data: The bytes to fingerprint, normally a UTF-8 canonical form.

    Returns:
        The fingerprint; ``.to_bytes(8, "little")`` gives the wire bytes.
    """
    fp = EMPTY_64
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


def parsing_canonical_form(schema: Mapping[str, Any] | list[Any] | str) -> str:
    """The Parsing Canonical Form of a standalone schema.

    Args:
        schema: A self-contained schema (named types defined inline).

    Returns:
        The canonical JSON text: full names, no docs, defaults or whitespace.
    """
    # fastavro parses the schema first; give it a copy so the caller's dict is
    # never annotated with fastavro's private markers.
    return to_parsing_canonical_form(copy.deepcopy(schema))  # type: ignore[arg-type]


def fingerprint_of(schema: Mapping[str, Any] | list[Any] | str) -> bytes:
    """The 8 wire bytes of a schema's CRC-64-AVRO fingerprint.

    Args:
        schema: A self-contained schema.

    Returns:
        The fingerprint, little-endian, as it follows ``C3 01`` on the wire.
    """
    form = parsing_canonical_form(schema)
    return crc64_avro(form.encode("utf-8")).to_bytes(8, "little")
