"""Errors raised by the codec and the schema loader."""

from __future__ import annotations

__all__ = ["DecodeError", "EncodeError", "SchemaError"]


class SchemaError(ValueError):
    """A schema file, or a schema given to :meth:`Registry.register`, is not usable.

    Raised at load time (a malformed ``.avsc``, a reference to an unknown type, a
    file whose name does not match its type) so a broken schema fails on import
    of the registry, not in the middle of a stream.
    """


class EncodeError(ValueError):
    """A datum does not fit the schema it was encoded with.

    The message names the schema and, when fastavro says which, the field.
    """


class DecodeError(ValueError):
    """Bytes are not a record Cadenza can decode.

    The message says what is wrong: an empty record, a missing single-object
    marker, an unknown schema fingerprint, or a body that does not match the
    schema its fingerprint names.
    """
