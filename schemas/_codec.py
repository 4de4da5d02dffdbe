"""The codec: Avro single-object encoding of Cadenza's records.

Wire format of every record value on every Cadenza topic::

    C3 01 | 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema | Avro binary body

Datums are plain dicts. A union of several record types (an envelope's ``body``,
``HistoryEvent.attributes``, ``Failure.info``, the items of
``WorkflowTaskCompleted.commands``) is written and read in fastavro's tuple
notation, ``("cadenza.command.StartWorkflow", {...})``, so the writer never
guesses a branch and a decoded datum equals the one encoded. An optional single
record (``["null", Failure]``) is a plain dict or ``None``.

Current schemas encode and decode through code generated from them
(:mod:`._compiled`); fastavro decodes records written with older schema versions
(it implements Avro schema resolution) and explains encode errors field by field.
"""

from __future__ import annotations

import copy
import functools
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from io import BytesIO
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.validation import ValidationError, validate

from ._compiled import CompiledCodec, Malformed, Unsupported, compile_codecs
from ._errors import DecodeError, EncodeError, SchemaError
from ._fingerprint import fingerprint_of, parsing_canonical_form
from ._loader import Definitions, read_definitions, read_previous, standalone

__all__ = [
    "ACTIVITY_TASK",
    "COMMAND",
    "ENVELOPES",
    "HISTORY_EVENT",
    "MAGIC",
    "REPLY",
    "VISIBILITY_REQUEST",
    "WORKFLOW_TASK",
    "Registry",
    "decode",
    "decode_as",
    "default_registry",
    "encode",
    "fingerprint",
    "parsing_canonical_form_of",
    "schema",
    "schema_names",
]

#: The two bytes that open every Avro single-object encoded record.
MAGIC = b"\xc3\x01"
_HEADER_LEN = len(MAGIC) + 8

#: Envelope on ``<ns>.commands``.
COMMAND = "cadenza.command.Command"
#: Envelope on ``<ns>.history``.
HISTORY_EVENT = "cadenza.history.HistoryEvent"
#: Record on ``<ns>.workflow-tasks.<queue>``.
WORKFLOW_TASK = "cadenza.task.WorkflowTask"
#: Record on ``<ns>.activity-tasks.<queue>``.
ACTIVITY_TASK = "cadenza.task.ActivityTask"
#: Envelope on ``<ns>.replies``.
REPLY = "cadenza.reply.Reply"
#: Envelope on ``<ns>.visibility-requests``.
VISIBILITY_REQUEST = "cadenza.visibility.VisibilityRequest"
#: The top-level records that go on topics, in topic order.
ENVELOPES = (COMMAND, HISTORY_EVENT, WORKFLOW_TASK, ACTIVITY_TASK, REPLY, VISIBILITY_REQUEST)


@dataclass(frozen=True, slots=True)
class _Writer:
    """A current schema, ready to encode with."""

    name: str
    #: fastavro's parsed schema: the fallback writer and the error explainer.
    parsed: Any
    header: bytes
    #: The generated codec; None only for a schema the compiler does not handle.
    compiled: CompiledCodec | None


@dataclass(frozen=True, slots=True)
class _Reader:
    """How to decode bytes that carry one fingerprint."""

    name: str
    writer: Any
    #: The current schema of the same name when the writer is an older version;
    #: None when the writer is current (no resolution needed) or has no current
    #: counterpart (decoded as written).
    reader: Any
    #: Set for a current schema: the fast path, no resolution needed.
    compiled: CompiledCodec | None


class Registry:
    """The known schemas: current ones to encode with, and every writer schema to decode.

    Most code uses the module-level functions, which share :func:`default_registry`.
    Build your own to decode with extra writer schemas (an older version kept in a
    test) or from another schema folder.

    Example:
        >>> reg = Registry.from_directory()
        >>> data = reg.encode("cadenza.common.ReplyTo",
        ...                   {"client_id": "c1", "partition": 3, "request_id": "r1"})
        >>> reg.decode(data)
        ('cadenza.common.ReplyTo', {'client_id': 'c1', 'partition': 3, 'request_id': 'r1'})
    """

    def __init__(
        self,
        definitions: Definitions,
        previous: Iterable[Mapping[str, Any]] = (),
        native: bool | None = None,
    ):
        """Build a registry from named-type definitions.

        Args:
            definitions: Full name -> definition, as :func:`read_definitions` returns.
            previous: Older standalone writer schemas to accept when decoding.
            native: The C codec (True), the generated Python one (False), or the C
                one when it was built (None); see :func:`compile_codecs`.

        Raises:
            SchemaError: A definition or previous schema is invalid.
        """
        self._definitions = definitions
        self._standalone: dict[str, dict[str, Any]] = {}
        self._writers: dict[str, _Writer] = {}
        self._readers: dict[bytes, _Reader] = {}
        for name in sorted(definitions):
            self._standalone[name] = standalone(name, definitions)
        records = {n: s for n, s in self._standalone.items() if s["type"] in ("record", "error")}
        headers = {name: MAGIC + fingerprint_of(schema) for name, schema in records.items()}
        # Only envelopes (records that are a topic's values) are ever spliced.
        compiled = _compile(records, {n: h for n, h in headers.items() if n in ENVELOPES}, native)
        for name, schema_json in records.items():
            parsed = _parse(schema_json, name)
            fp = headers[name][len(MAGIC) :]
            if fp in self._readers:
                other = self._readers[fp].name
                raise SchemaError(f"{name} and {other} have the same fingerprint {fp.hex()}")
            codec = compiled.get(name)
            self._writers[name] = _Writer(name, parsed, MAGIC + fp, codec)
            self._readers[fp] = _Reader(name, parsed, None, codec)
        for old in previous:
            self.register(old)

    @classmethod
    def from_directory(
        cls, root: Traversable | None = None, native: bool | None = None
    ) -> Registry:
        """Load the current schemas and the older versions under ``root/previous``.

        Args:
            root: A folder laid out like the packaged ``avro`` folder; the packaged
                one when ``None``.
            native: Which codec; see :class:`Registry`.

        Returns:
            A new registry.
        """
        return cls(read_definitions(root), read_previous(root), native)

    def register(self, writer_schema: Mapping[str, Any]) -> bytes:
        """Accept records written with ``writer_schema`` when decoding.

        When the schema's full name has a current version, records written with
        it are resolved against the current one (Avro schema resolution: new
        fields get their defaults, removed fields are skipped), so callers only
        ever see the current shape.

        Args:
            writer_schema: A standalone record schema (named types defined inline).

        Returns:
            Its fingerprint (8 bytes, as on the wire).

        Raises:
            SchemaError: The schema does not parse or is not a record.
        """
        if writer_schema.get("type") not in ("record", "error"):
            raise SchemaError("a writer schema must be a record")
        name = str(writer_schema.get("name", ""))
        namespace = writer_schema.get("namespace")
        if "." not in name and isinstance(namespace, str) and namespace:
            name = f"{namespace}.{name}"
        parsed = _parse(writer_schema, name)
        fp = fingerprint_of(writer_schema)
        known = self._readers.get(fp)
        if known is not None:
            return fp  # the same schema (maybe with other docs): nothing to add
        current = self._writers.get(name)
        # Older versions go through fastavro, which implements schema resolution.
        self._readers[fp] = _Reader(name, parsed, current.parsed if current else None, None)
        return fp

    def encode(self, name: str, datum: Mapping[str, Any]) -> bytes:
        """Encode ``datum`` with the current schema of record ``name``.

        Args:
            name: Full name, e.g. ``"cadenza.command.Command"``.
            datum: The record as a dict; fields with a default may be left out. An
                item of an array of envelopes (:data:`ENVELOPES`) may be given
                already encoded, as the ``bytes`` this method returned for it: its
                body is copied as it is (a workflow task repeats the events just
                encoded for ``history``).

        Returns:
            ``C3 01`` + fingerprint + Avro binary body.

        Raises:
            EncodeError: ``name`` is unknown or ``datum`` does not fit its schema.
        """
        writer = self._writers.get(name)
        if writer is None:
            raise EncodeError(f"unknown record schema {name!r}; known: {_short_list(self)}")
        out = bytearray(writer.header)
        try:
            if writer.compiled is not None:
                writer.compiled.write(out, datum)
            else:
                buf = BytesIO()
                schemaless_writer(buf, writer.parsed, datum)
                out += buf.getbuffer()
        except Exception as exc:  # the writers raise many types; callers need one
            detail = str(exc) if isinstance(exc, Malformed) else _explain(writer.parsed, datum, exc)
            raise EncodeError(f"datum does not fit schema {name}: {detail}") from exc
        return bytes(out)

    def decode(self, data: bytes | bytearray | memoryview) -> tuple[str, dict[str, Any]]:
        """Decode a single-object encoded record.

        Args:
            data: A record value as read from a topic.

        Returns:
            ``(full record name, datum)``; the datum has the current schema's shape
            even when an older schema wrote it.

        Raises:
            DecodeError: What is wrong with the bytes.
        """
        if not data:
            raise DecodeError("empty record")
        if not isinstance(data, bytes):
            data = bytes(data)
        if data[:2] != MAGIC:
            first = " ".join(f"0x{b:02X}" for b in data[:2])
            raise DecodeError(
                f"not Avro single-object encoding (first bytes {first}, expected C3 01)"
            )
        if len(data) < _HEADER_LEN:
            raise DecodeError(
                f"truncated header: {len(data)} bytes, the marker and fingerprint need "
                f"{_HEADER_LEN}"
            )
        fp = data[2:_HEADER_LEN]
        reader = self._readers.get(fp)
        if reader is None:
            raise DecodeError(
                f"unknown schema fingerprint {fp.hex()}: written by a newer Cadenza or "
                f"another producer? known: {_known_fingerprints(self)}"
            )
        # Garbage from a topic must surface as DecodeError, never as whatever the
        # reader tripped on (IndexError, EOFError, UnicodeDecodeError, struct.error,
        # fastavro's SchemaResolutionError...), hence the broad except clauses.
        try:
            datum: Any
            if reader.compiled is not None:
                datum, end = reader.compiled.read(data, _HEADER_LEN)
            else:
                buf = BytesIO(data)
                buf.seek(_HEADER_LEN)
                datum = schemaless_reader(
                    buf,
                    reader.writer,
                    reader.reader,
                    return_record_name=True,
                    # Tuples only where the union has several records, so an
                    # optional record (["null", Failure]) reads back as the dict
                    # that was written.
                    return_record_name_override=True,
                )
                end = buf.tell()
        except Exception as exc:
            raise DecodeError(
                f"body does not match schema {reader.name}: {_describe_read(exc)}"
            ) from exc
        left = len(data) - end
        if left:
            # A body that parses but leaves bytes over was not written with this
            # schema: better an error than a datum silently built from garbage.
            raise DecodeError(f"body does not match schema {reader.name}: {left} trailing bytes")
        if not isinstance(datum, dict):  # pragma: no cover - writers are records
            raise DecodeError(f"schema {reader.name} did not decode to a record")
        return reader.name, datum

    def decode_as(self, data: bytes | bytearray | memoryview, name: str) -> dict[str, Any]:
        """Decode a record that must be of record type ``name``.

        Args:
            data: A record value as read from a topic.
            name: The expected full name, e.g. ``"cadenza.history.HistoryEvent"``.

        Returns:
            The datum.

        Raises:
            DecodeError: The bytes are bad, or hold another record type.
        """
        got, datum = self.decode(data)
        if got != name:
            raise DecodeError(f"expected a {name} record, got {got}")
        return datum

    def encoder(self, name: str) -> Callable[[Mapping[str, Any]], bytes]:
        """A function that does what ``encode(name, datum)`` does, for hot loops.

        It goes straight to the generated writer of ``name``; a datum that does
        not fit takes :meth:`encode`, so errors are the same.

        Args:
            name: Full record name, e.g. ``"cadenza.state.WorkflowState"``.

        Returns:
            ``encode(datum) -> bytes``.

        Raises:
            KeyError: ``name`` is not a known record.
        """
        writer = self._writer(name)
        if writer.compiled is None:
            return lambda datum: self.encode(name, datum)
        header, write = writer.header, writer.compiled.write

        def encode(datum: Mapping[str, Any]) -> bytes:
            out = bytearray(header)
            try:
                write(out, datum)
            except Exception:  # encode says what is wrong
                return self.encode(name, datum)
            return bytes(out)

        return encode

    def decoder(self, name: str) -> Callable[[bytes], dict[str, Any]]:
        """A function that does what ``decode_as(data, name)`` does, for hot loops.

        Records written with the current schema go straight to its generated
        reader; anything else (an older schema, bad bytes) takes
        :meth:`decode_as`, so results and errors are the same.

        Args:
            name: Full record name, e.g. ``"cadenza.history.HistoryEvent"``.

        Returns:
            ``decode(data) -> datum``.

        Raises:
            KeyError: ``name`` is not a known record.
        """
        writer = self._writer(name)
        if writer.compiled is None:
            return lambda data: self.decode_as(data, name)
        header, read = writer.header, writer.compiled.read

        def decode(data: bytes) -> dict[str, Any]:
            if data.__class__ is bytes and data[:_HEADER_LEN] == header:
                try:
                    datum, end = read(data, _HEADER_LEN)
                except Exception:  # decode_as says what is wrong
                    return self.decode_as(data, name)
                if end == len(data):
                    return datum
            return self.decode_as(data, name)

        return decode

    def fingerprint(self, name: str) -> bytes:
        """The 8-byte fingerprint of the current schema of record ``name``.

        Args:
            name: Full record name.

        Returns:
            The bytes that follow ``C3 01`` in every record encoded with it.

        Raises:
            KeyError: ``name`` is not a known record.
        """
        return self._writer(name).header[len(MAGIC) :]

    def schema(self, name: str) -> dict[str, Any]:
        """The standalone schema of named type ``name`` (a copy, safe to change).

        Every named type in it has its full name and is defined at first use, so
        it can be given as is to any Avro library.

        Args:
            name: Full name of a record, enum or fixed type.

        Returns:
            The schema as JSON-like dicts and lists.

        Raises:
            KeyError: ``name`` is not defined.
        """
        try:
            return copy.deepcopy(self._standalone[name])
        except KeyError:
            raise KeyError(f"unknown schema {name!r}") from None

    def parsing_canonical_form(self, name: str) -> str:
        """The Parsing Canonical Form of the current schema of ``name``.

        Args:
            name: Full name of a named type.

        Returns:
            The text whose CRC-64-AVRO is the fingerprint.
        """
        return parsing_canonical_form(self.schema(name))

    def schema_names(self) -> list[str]:
        """Full names of the records that can be encoded, sorted.

        Returns:
            Envelopes and every record they contain (enums are not listed).
        """
        return sorted(self._writers)

    def _writer(self, name: str) -> _Writer:
        try:
            return self._writers[name]
        except KeyError:
            raise KeyError(f"unknown record schema {name!r}") from None


def _parse(schema_json: Mapping[str, Any], name: str) -> Any:
    try:
        # A copy: fastavro annotates the dict it parses.
        return parse_schema(copy.deepcopy(dict(schema_json)))
    except Exception as exc:  # fastavro raises several types for a bad schema
        raise SchemaError(f"schema {name} does not parse: {exc}") from exc


def _compile(
    records: Mapping[str, Mapping[str, Any]], headers: Mapping[str, bytes], native: bool | None
) -> dict[str, CompiledCodec]:
    try:
        return compile_codecs(records.values(), headers, native)
    except Unsupported:
        pass
    # Some schema has a shape the compiler does not handle: compile the others
    # one by one, and let fastavro encode and decode that one.
    compiled: dict[str, CompiledCodec] = {}
    for name, schema_json in records.items():
        try:
            compiled[name] = compile_codecs([schema_json], headers, native)[name]
        except Unsupported:
            continue
    return compiled


def _explain(parsed: Any, datum: Any, exc: BaseException) -> str:
    """Say which field is wrong: fastavro's validator names it, the writers may not."""
    try:
        validate(datum, parsed, raise_errors=True)
    except ValidationError as invalid:
        errors = [str(e) for e in invalid.errors]
        # A union reports every branch it tried; "expected null" for the null
        # branch of an optional field is noise when a deeper error says more.
        useful = [e for e in errors if not e.endswith("expected null")] or errors
        return _clip("; ".join(useful))
    except Exception:  # the validator choked on the datum too: use the first error
        pass
    return _describe(exc)


def _describe_read(exc: BaseException) -> str:
    if isinstance(exc, (IndexError, EOFError, struct.error)):
        return "body ends early (truncated record?)"
    if isinstance(exc, Malformed):
        return str(exc)
    return _describe(exc)


def _clip(text: str) -> str:
    # fastavro can print a whole union schema in its messages.
    return text if len(text) <= 500 else text[:500] + "..."


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {_clip(str(exc) or 'no detail')}"


def _short_list(reg: Registry) -> str:
    return ", ".join(ENVELOPES) + f" and {len(reg.schema_names()) - len(ENVELOPES)} more"


def _known_fingerprints(reg: Registry) -> str:
    shown = [f"{n}={reg.fingerprint(n).hex()}" for n in ENVELOPES if n in reg.schema_names()]
    rest = len(reg._readers) - len(shown)
    return ", ".join(shown) + f" and {rest} more"


@functools.cache
def default_registry() -> Registry:
    """The registry of the packaged schemas, loaded on first use and then shared.

    Returns:
        The process-wide registry behind :func:`encode` and :func:`decode`.
    """
    from cadenza._settings import resolve  # the one place settings are read

    codec = resolve("codec")
    return Registry.from_directory(native={"auto": None, "native": True, "python": False}[codec])


def encode(name: str, datum: Mapping[str, Any]) -> bytes:
    """Encode ``datum`` as record ``name`` with single-object encoding.

    Args:
        name: Full record name, e.g. :data:`COMMAND`.
        datum: The record; unions of several records take
            ``("full.Name", {...})`` tuples.

    Returns:
        The bytes to use as a Kafka record value.

    Raises:
        EncodeError: ``name`` is unknown or ``datum`` does not fit.

    Example:
        >>> data = encode("cadenza.command.Command", {
        ...     "command_id": "c-1", "workflow_id": "order-42", "run_id": None,
        ...     "sent_time_ms": 1700000000000,
        ...     "body": ("cadenza.command.SignalWorkflow",
        ...              {"signal_name": "approve", "signal_id": "s-1"}),
        ... })
        >>> data[:2]
        b'\\xc3\\x01'
    """
    return default_registry().encode(name, datum)


def decode(data: bytes | bytearray | memoryview) -> tuple[str, dict[str, Any]]:
    """Decode a record value written by :func:`encode` (or any Avro library).

    Args:
        data: The Kafka record value.

    Returns:
        ``(full record name, datum)``.

    Raises:
        DecodeError: What is wrong with the bytes.
    """
    return default_registry().decode(data)


def decode_as(data: bytes | bytearray | memoryview, name: str) -> dict[str, Any]:
    """Decode a record value that must be a ``name`` record.

    Args:
        data: The Kafka record value.
        name: The expected full record name.

    Returns:
        The datum.

    Raises:
        DecodeError: The bytes are bad or hold another record type.
    """
    return default_registry().decode_as(data, name)


def fingerprint(name: str) -> bytes:
    """The 8-byte CRC-64-AVRO fingerprint of record ``name``'s current schema.

    Args:
        name: Full record name.

    Returns:
        The bytes that follow ``C3 01`` on the wire.
    """
    return default_registry().fingerprint(name)


def schema(name: str) -> dict[str, Any]:
    """The standalone current schema of named type ``name`` (a copy).

    Args:
        name: Full name of a record, enum or fixed type.

    Returns:
        The schema as JSON-like data, usable by any Avro library.
    """
    return default_registry().schema(name)


def parsing_canonical_form_of(name: str) -> str:
    """The Parsing Canonical Form of named type ``name``'s current schema.

    Args:
        name: Full name of a named type.

    Returns:
        The canonical text the fingerprint is computed over.
    """
    return default_registry().parsing_canonical_form(name)


def schema_names() -> list[str]:
    """Full names of every record the codec can encode, sorted.

    Returns:
        The names.
    """
    return default_registry().schema_names()
