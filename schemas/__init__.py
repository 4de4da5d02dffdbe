"""Avro schemas of every record on every Cadenza topic, and the codec.

Every record value is Avro single-object encoded: ``C3 01``, the 8-byte
CRC-64-AVRO fingerprint of the writer schema, then the Avro binary body. The
``.avsc`` files under ``avro/`` (one named type per file) are the contract for
clients in other languages; see ``README.md`` beside this file.

Example:
    >>> from cadenza import schemas
    >>> data = schemas.encode(schemas.COMMAND, {
    ...     "command_id": "c-1", "workflow_id": "order-42", "sent_time_ms": 1700000000000,
    ...     "body": ("cadenza.command.GetWorkflowResult", {"follow_runs": True}),
    ... })
    >>> name, datum = schemas.decode(data)
    >>> name, datum["body"]
    ('cadenza.command.Command', ('cadenza.command.GetWorkflowResult', {'follow_runs': True}))
"""

from ._codec import (
    ACTIVITY_TASK,
    COMMAND,
    ENVELOPES,
    HISTORY_EVENT,
    MAGIC,
    REPLY,
    VISIBILITY_REQUEST,
    WORKFLOW_TASK,
    Registry,
    decode,
    decode_as,
    default_registry,
    encode,
    fingerprint,
    parsing_canonical_form_of,
    schema,
    schema_names,
)
from ._errors import DecodeError, EncodeError, SchemaError
from ._fingerprint import crc64_avro

__all__ = [
    "ACTIVITY_TASK",
    "COMMAND",
    "ENVELOPES",
    "HISTORY_EVENT",
    "MAGIC",
    "REPLY",
    "VISIBILITY_REQUEST",
    "WORKFLOW_TASK",
    "DecodeError",
    "EncodeError",
    "Registry",
    "SchemaError",
    "crc64_avro",
    "decode",
    "decode_as",
    "default_registry",
    "encode",
    "fingerprint",
    "parsing_canonical_form_of",
    "schema",
    "schema_names",
]
