"""Conversion of values and exceptions to the wire, and back.

A :class:`DataConverter` combines a :class:`PayloadConverter` (values <->
:class:`Payload` dicts), an optional :class:`PayloadCodec` (compression,
encryption) and a :class:`FailureConverter` (exceptions <-> :class:`Failure`
dicts). Payloads and failures are plain dicts in the shape of the Avro
schemas, so the Avro codec writes them as they are.

Example:
    >>> from cadenza.converter import DataConverter
    >>> DataConverter.default.payload_converter.to_payload({"a": 1})["data"]
    b'{"a":1}'
"""

from ..common._failure import (
    FAILURE_SOURCE,
    ActivityFailureInfo,
    ApplicationFailureInfo,
    CanceledFailureInfo,
    ChildWorkflowFailureInfo,
    Failure,
    ServerFailureInfo,
    TerminatedFailureInfo,
    TimeoutFailureInfo,
)
from ..common._payload import Payload
from ._data_converter import DataConverter, default
from ._failure_converter import (
    DefaultFailureConverter,
    DefaultFailureConverterWithEncodedAttributes,
    FailureConverter,
)
from ._payload_codec import PayloadCodec
from ._payload_converter import (
    AdvancedJSONEncoder,
    BinaryNullPayloadConverter,
    BinaryPlainPayloadConverter,
    BinaryProtoPayloadConverter,
    CompositePayloadConverter,
    DefaultPayloadConverter,
    EncodingPayloadConverter,
    JSONPlainPayloadConverter,
    JSONProtoPayloadConverter,
    PayloadConverter,
)
from ._value_to_type import JSONTypeConverter, JSONTypeConverterUnhandled, value_to_type

__all__ = [
    "FAILURE_SOURCE",
    "ActivityFailureInfo",
    "AdvancedJSONEncoder",
    "ApplicationFailureInfo",
    "BinaryNullPayloadConverter",
    "BinaryPlainPayloadConverter",
    "BinaryProtoPayloadConverter",
    "CanceledFailureInfo",
    "ChildWorkflowFailureInfo",
    "CompositePayloadConverter",
    "DataConverter",
    "DefaultFailureConverter",
    "DefaultFailureConverterWithEncodedAttributes",
    "DefaultPayloadConverter",
    "EncodingPayloadConverter",
    "Failure",
    "FailureConverter",
    "JSONPlainPayloadConverter",
    "JSONProtoPayloadConverter",
    "JSONTypeConverter",
    "JSONTypeConverterUnhandled",
    "Payload",
    "PayloadCodec",
    "PayloadConverter",
    "ServerFailureInfo",
    "TerminatedFailureInfo",
    "TimeoutFailureInfo",
    "default",
    "value_to_type",
]

DataConverter.default = DataConverter()
PayloadConverter.default = DataConverter.default.payload_converter
FailureConverter.default = DataConverter.default.failure_converter
