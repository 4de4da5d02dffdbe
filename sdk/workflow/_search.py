"""Search attributes and memo values <-> the payload maps of the wire records.

Each search attribute is one JSON payload whose ``metadata["type"]`` names its
indexed type (``Keyword``, ``Int``, ...), as in Temporal; an untyped attribute
(the deprecated mapping form) is a JSON list without a type. Unsetting sends
a JSON ``null``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ..common._payload import Payload
from ..common._search_attributes import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributes,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)
from ..converter import PayloadConverter


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def encode_updates(
    updates: Sequence[SearchAttributeUpdate[Any]] | SearchAttributes,
    converter: PayloadConverter,
) -> dict[str, Payload]:
    """The wire map of search attribute changes."""
    encoded: dict[str, Payload] = {}
    if isinstance(updates, Mapping):
        for name, values in updates.items():
            encoded[name] = converter.to_payload(_plain(list(values)))
        return encoded
    for update in updates:
        payload = converter.to_payload(None if update.value is None else _plain(update.value))
        payload["metadata"] = {
            **payload["metadata"],
            "type": update.key._metadata_type.encode(),
        }
        encoded[update.key.name] = payload
    return encoded


def encode_typed(
    attributes: SearchAttributes | TypedSearchAttributes | None, converter: PayloadConverter
) -> dict[str, Payload]:
    """The wire map of a whole set of search attributes (start, continue-as-new)."""
    if attributes is None:
        return {}
    if isinstance(attributes, TypedSearchAttributes):
        return encode_updates([p.key.value_set(p.value) for p in attributes], converter)
    return encode_updates(attributes, converter)


def _typed_value(key: SearchAttributeKey[Any], value: Any) -> Any:
    if key.origin_value_type is datetime and isinstance(value, str):
        return datetime.fromisoformat(value)
    if key.origin_value_type is float and isinstance(value, int):
        return float(value)
    return value


def decode(
    payloads: Mapping[str, Payload], converter: PayloadConverter
) -> tuple[dict[str, Any], list[SearchAttributePair[Any]]]:
    """``(untyped, typed pairs)`` from a wire map; ``None`` values mean unset."""
    untyped: dict[str, Any] = {}
    typed: list[SearchAttributePair[Any]] = []
    for name, payload in payloads.items():
        try:
            value = converter.from_payload(payload)
        except Exception:
            continue
        untyped[name] = None if value is None else (value if isinstance(value, list) else [value])
        label = payload.get("metadata", {}).get("type")
        key = SearchAttributeKey._from_metadata_type(name, label.decode()) if label else None
        if key is not None:
            typed.append(
                SearchAttributePair(key, None if value is None else _typed_value(key, value))
            )
    return untyped, typed


def apply(
    untyped: Mapping[str, Any],
    typed: TypedSearchAttributes,
    payloads: Mapping[str, Payload],
    converter: PayloadConverter,
) -> tuple[dict[str, Any], TypedSearchAttributes]:
    """Search attributes after applying a wire map of changes."""
    changes, pairs = decode(payloads, converter)
    new_untyped = dict(untyped)
    for name, values in changes.items():
        if values is None:
            new_untyped.pop(name, None)
        else:
            new_untyped[name] = values
    unset = {p.key.name for p in pairs if p.value is None}
    kept = [p for p in typed if p.key.name not in unset]
    updated = TypedSearchAttributes(kept).updated(*(p for p in pairs if p.value is not None))
    return new_untyped, updated
