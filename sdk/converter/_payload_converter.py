"""Payload converters: Python values <-> ``Payload`` dicts.

The default composite tries, in Temporal's order: ``binary/null`` (``None``),
``binary/plain`` (``bytes``), then ``json/plain`` (everything JSON can carry,
plus dataclasses, pydantic models, enums, datetimes and UUIDs). Temporal's two
protobuf converters (``json/protobuf``, ``binary/protobuf``) sit between them;
Cadenza has no protobuf support yet, so they are skipped (and their classes
raise ``NotImplementedError``).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from enum import Enum
from itertools import zip_longest
from typing import Any, ClassVar, TypeVar, overload

from ..common._payload import Payload, RawValue
from ._value_to_type import JSONTypeConverter, value_to_type

_T = TypeVar("_T")


class PayloadConverter(ABC):
    """Converts values to payloads and back (no codec, no I/O: safe in workflows)."""

    default: ClassVar[PayloadConverter]
    """The default payload converter (a :class:`DefaultPayloadConverter`)."""

    @abstractmethod
    def to_payloads(self, values: Sequence[Any]) -> list[Payload]:
        """Convert values to payloads (a :class:`~cadenza.common.RawValue` passes through).

        Raises:
            TypeError: A value has no converter.
        """
        raise NotImplementedError

    @abstractmethod
    def from_payloads(
        self, payloads: Sequence[Payload], type_hints: list[Any] | None = None
    ) -> list[Any]:
        """Convert payloads to values, guided by ``type_hints`` when given.

        A hint of :class:`~cadenza.common.RawValue` returns the payload wrapped,
        unconverted.

        Raises:
            KeyError: A payload's encoding has no converter.
            TypeError: A payload does not fit its type hint.
            RuntimeError: A payload's data is malformed.
        """
        raise NotImplementedError

    def to_payload(self, value: Any) -> Payload:
        """Convert one value."""
        return self.to_payloads([value])[0]

    @overload
    def from_payload(self, payload: Payload) -> Any: ...

    @overload
    def from_payload(self, payload: Payload, type_hint: type[_T]) -> _T: ...

    def from_payload(self, payload: Payload, type_hint: Any = None) -> Any:
        """Convert one payload, to ``type_hint`` if given."""
        return self.from_payloads([payload], [type_hint] if type_hint is not None else None)[0]


class EncodingPayloadConverter(ABC):
    """Converts values of one encoding; a part of a :class:`CompositePayloadConverter`."""

    @property
    @abstractmethod
    def encoding(self) -> str:
        """The ``metadata["encoding"]`` value this converter reads and writes."""
        raise NotImplementedError

    @abstractmethod
    def to_payload(self, value: Any) -> Payload | None:
        """Convert ``value``, or return ``None`` to let the next converter try."""
        raise NotImplementedError

    @abstractmethod
    def from_payload(self, payload: Payload, type_hint: Any = None) -> Any:
        """Convert a payload of this encoding (raise if it cannot be converted)."""
        raise NotImplementedError


class CompositePayloadConverter(PayloadConverter):
    """Tries each encoding converter in order to encode; picks by encoding to decode.

    Attributes:
        converters: The converters, keyed by encoding (as bytes), in order.
    """

    converters: Mapping[bytes, EncodingPayloadConverter]

    def __init__(self, *converters: EncodingPayloadConverter) -> None:
        """Create a composite of ``converters``, tried in the given order."""
        self.converters = {c.encoding.encode(): c for c in converters}

    def to_payloads(self, values: Sequence[Any]) -> list[Payload]:
        """See :meth:`PayloadConverter.to_payloads`."""
        payloads: list[Payload] = []
        for index, value in enumerate(values):
            if isinstance(value, RawValue):
                payloads.append(value.payload)
                continue
            payload: Payload | None = None
            for converter in self.converters.values():
                try:
                    payload = converter.to_payload(value)
                except (TypeError, ValueError) as err:
                    raise TypeError(
                        f"Value at index {index} of type {type(value).__qualname__} could not "
                        f"be converted to {converter.encoding}: {err}"
                    ) from err
                if payload is not None:
                    break
            if payload is None:
                raise TypeError(
                    f"Value at index {index} of type {type(value).__qualname__} has no converter"
                )
            payloads.append(payload)
        return payloads

    def from_payloads(
        self, payloads: Sequence[Payload], type_hints: list[Any] | None = None
    ) -> list[Any]:
        """See :meth:`PayloadConverter.from_payloads`."""
        values: list[Any] = []
        for index, (payload, hint) in enumerate(zip_longest(payloads, type_hints or [])):
            if payload is None:
                break  # more hints than payloads: missing arguments are the caller's business
            if hint is RawValue:
                values.append(RawValue(payload))
                continue
            encoding = payload.get("metadata", {}).get("encoding", b"<missing>")
            converter = self.converters.get(encoding)
            if converter is None:
                name = encoding.decode(errors="replace")
                raise KeyError(f"Payload at index {index} has unknown encoding {name!r}")
            try:
                values.append(converter.from_payload(payload, hint))
            except RuntimeError as err:
                raise RuntimeError(
                    f"Payload at index {index} with encoding {converter.encoding} "
                    f"could not be converted: {err}"
                ) from err
            except (TypeError, ValueError) as err:
                raise TypeError(
                    f"Payload at index {index} with encoding {converter.encoding} could not be "
                    f"converted to {hint!r}: {err}"
                ) from err
        return values


class BinaryNullPayloadConverter(EncodingPayloadConverter):
    """``None`` as ``binary/null`` with empty data."""

    @property
    def encoding(self) -> str:
        """``binary/null``."""
        return "binary/null"

    def to_payload(self, value: Any) -> Payload | None:
        """Convert ``None``; leave anything else."""
        if value is None:
            return {"metadata": {"encoding": b"binary/null"}, "data": b""}
        return None

    def from_payload(self, payload: Payload, type_hint: Any = None) -> Any:
        """Always ``None``."""
        if payload["data"]:
            raise RuntimeError("binary/null payload has data")
        return None


class BinaryPlainPayloadConverter(EncodingPayloadConverter):
    """``bytes`` as ``binary/plain``, data unchanged."""

    @property
    def encoding(self) -> str:
        """``binary/plain``."""
        return "binary/plain"

    def to_payload(self, value: Any) -> Payload | None:
        """Convert ``bytes``; leave anything else."""
        if isinstance(value, bytes):
            return {"metadata": {"encoding": b"binary/plain"}, "data": value}
        return None

    def from_payload(self, payload: Payload, type_hint: Any = None) -> Any:
        """The data, as ``bytes``."""
        return bytes(payload["data"])


class _ProtobufPayloadConverter(EncodingPayloadConverter):
    """Base of Temporal's protobuf converters, which Cadenza does not support yet."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Raises ``NotImplementedError``."""
        raise NotImplementedError(
            f"{type(self).__name__}: protobuf payloads are not supported by Cadenza yet; "
            "use dataclasses or pydantic models (json/plain)"
        )

    @property
    def encoding(self) -> str:
        """Unreachable: the constructor raises."""
        raise NotImplementedError

    def to_payload(self, value: Any) -> Payload | None:
        """Unreachable: the constructor raises."""
        raise NotImplementedError

    def from_payload(self, payload: Payload, type_hint: Any = None) -> Any:
        """Unreachable: the constructor raises."""
        raise NotImplementedError


class JSONProtoPayloadConverter(_ProtobufPayloadConverter):
    """Temporal's ``json/protobuf`` converter. Not supported yet (raises)."""


class BinaryProtoPayloadConverter(_ProtobufPayloadConverter):
    """Temporal's ``binary/protobuf`` converter. Not supported yet (raises)."""


def _is_pydantic_v2_model(o: Any) -> bool:
    return callable(getattr(o, "model_dump", None)) and hasattr(type(o), "model_fields")


class AdvancedJSONEncoder(json.JSONEncoder):
    """JSON encoder for the values workflows pass around.

    Beyond what :mod:`json` handles: dataclasses (as objects of their fields),
    pydantic v2 models (``model_dump(mode="json")``) and v1 models
    (``dict()``), enums (their value), ``datetime``/``date``/``time``
    (ISO 8601), ``timedelta`` (seconds), ``UUID`` (string), and other
    iterables (sets sorted when possible, so equal sets encode equally).
    """

    def default(self, o: Any) -> Any:
        """Encode what :class:`json.JSONEncoder` cannot."""
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return {f.name: getattr(o, f.name) for f in dataclasses.fields(o)}
        if _is_pydantic_v2_model(o):
            return o.model_dump(mode="json")
        dict_fn = getattr(o, "dict", None)
        if callable(dict_fn) and hasattr(type(o), "parse_obj"):
            return dict_fn()
        if isinstance(o, Enum):
            return o.value
        if isinstance(o, datetime | date | dt_time):
            return o.isoformat()
        if isinstance(o, timedelta):
            return o.total_seconds()
        if isinstance(o, uuid.UUID):
            return str(o)
        if isinstance(o, Mapping):
            return dict(o)
        if isinstance(o, collections.abc.Set):
            try:
                return sorted(o)
            except TypeError:
                return list(o)
        if isinstance(o, collections.abc.Iterable) and not isinstance(o, str):
            return list(o)
        return super().default(o)


class JSONPlainPayloadConverter(EncodingPayloadConverter):
    """Anything JSON can carry (with :class:`AdvancedJSONEncoder`) as ``json/plain``.

    Encoding is compact and key-sorted, so equal values give equal bytes.
    Decoding rebuilds the type hint's type with :func:`value_to_type`.
    """

    def __init__(
        self,
        *,
        encoder: type[json.JSONEncoder] | None = AdvancedJSONEncoder,
        decoder: type[json.JSONDecoder] | None = None,
        encoding: str = "json/plain",
        custom_type_converters: Sequence[JSONTypeConverter] = (),
    ) -> None:
        """Create a JSON converter.

        Args:
            encoder: JSON encoder class (one instance encodes every value).
            decoder: JSON decoder class.
            encoding: Encoding name written to ``metadata``.
            custom_type_converters: Tried before the default rules when decoding.
        """
        self._encoder = encoder
        self._decoder = decoder
        self._encoding = encoding
        self._custom_type_converters = tuple(custom_type_converters)
        # One encoder for every value (json.dumps with options builds one per call,
        # twice the cost of encoding a short value); encoders keep no state between calls.
        self._dumps = (encoder or json.JSONEncoder)(separators=(",", ":"), sort_keys=True).encode
        self._encoding_bytes = encoding.encode()

    @property
    def encoding(self) -> str:
        """``json/plain`` unless set otherwise."""
        return self._encoding

    def to_payload(self, value: Any) -> Payload | None:
        """Encode ``value`` as JSON (raises ``TypeError`` if it cannot be)."""
        return {"metadata": {"encoding": self._encoding_bytes}, "data": self._dumps(value).encode()}

    def from_payload(self, payload: Payload, type_hint: Any = None) -> Any:
        """Decode JSON, then convert to ``type_hint`` if given."""
        try:
            value = json.loads(payload["data"], cls=self._decoder)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise RuntimeError(f"Invalid JSON: {err}") from err
        if type_hint is None:
            return value
        return value_to_type(type_hint, value, self._custom_type_converters)


class DefaultPayloadConverter(CompositePayloadConverter):
    """The default converter: ``binary/null``, ``binary/plain``, ``json/plain``.

    Example:
        >>> import dataclasses
        >>> @dataclasses.dataclass
        ... class Order:
        ...     id: str
        ...     qty: int
        >>> conv = DefaultPayloadConverter()
        >>> payload = conv.to_payload(Order("o-1", 2))
        >>> payload["metadata"]["encoding"], payload["data"]
        (b'json/plain', b'{"id":"o-1","qty":2}')
        >>> conv.from_payload(payload, Order)
        Order(id='o-1', qty=2)
    """

    default_encoding_payload_converters: ClassVar[tuple[EncodingPayloadConverter, ...]] = (
        BinaryNullPayloadConverter(),
        BinaryPlainPayloadConverter(),
        # Temporal has JSONProtoPayloadConverter and BinaryProtoPayloadConverter
        # here; Cadenza does not support protobuf payloads yet.
        JSONPlainPayloadConverter(),  # last: it accepts (or fails on) anything
    )
    """The encoding converters of every new default converter, in order."""

    def __init__(self) -> None:
        """Create the default converter."""
        super().__init__(*DefaultPayloadConverter.default_encoding_payload_converters)
