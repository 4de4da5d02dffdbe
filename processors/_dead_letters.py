"""Parking a record the processors cannot take on ``<ns>.dead-letters``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka import Message, Producer

_log = logging.getLogger("cadenza.processors")


def dead_letter(
    producer: Producer,
    topic: str,
    msg: Message,
    reason: str,
    *,
    on_delivery: Callable[[Any, Any], None] | None = None,
) -> None:
    """Produce ``msg`` unchanged to ``topic`` with the reason and where it came from.

    The headers are ``cadenza-error``, ``cadenza-source-topic``,
    ``cadenza-source-partition`` and ``cadenza-source-offset``; key and value are the
    original record's, so an operator can fix the cause and produce it again.
    """
    _log.warning("dead-lettered %s[%d]@%d: %s", msg.topic(), msg.partition(), msg.offset(), reason)
    headers: list[tuple[str, str | bytes | None]] = [
        ("cadenza-error", reason.encode()),
        ("cadenza-source-topic", (msg.topic() or "").encode()),
        ("cadenza-source-partition", str(msg.partition()).encode()),
        ("cadenza-source-offset", str(msg.offset()).encode()),
    ]
    if on_delivery is None:
        producer.produce(topic, key=msg.key(), value=msg.value(), headers=headers)
    else:
        producer.produce(
            topic, key=msg.key(), value=msg.value(), headers=headers, on_delivery=on_delivery
        )
