"""cadenza.converter: payload conversion, type hints, codecs, DataConverter."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import types
import uuid
import zlib
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from enum import Enum, IntEnum, StrEnum
from types import MappingProxyType
from typing import Any, Literal, NewType, TypedDict

import pytest

from cadenza.common import RawValue
from cadenza.converter import (
    BinaryProtoPayloadConverter,
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    JSONProtoPayloadConverter,
    JSONTypeConverter,
    Payload,
    PayloadCodec,
    PayloadConverter,
    value_to_type,
)
from cadenza.exceptions import ApplicationError, TimeoutError, TimeoutType

CONVERTER = PayloadConverter.default


class Colour(Enum):
    RED = "red"
    BLUE = "blue"


class Size(IntEnum):
    S = 1
    L = 3


class Mood(StrEnum):
    HAPPY = "happy"


@dataclasses.dataclass
class Address:
    street: str
    city: str


@dataclasses.dataclass
class Customer:
    id: uuid.UUID
    name: str
    address: Address
    colour: Colour
    since: datetime
    tags: list[str] = dataclasses.field(default_factory=list)
    previous: list[Address] = dataclasses.field(default_factory=list)
    nickname: str | None = None
    scores: dict[int, float] = dataclasses.field(default_factory=dict)


CUSTOMER = Customer(
    id=uuid.UUID("12345678-1234-5678-1234-567812345678"),
    name="Ada",
    address=Address("1 Main St", "Springfield"),
    colour=Colour.BLUE,
    since=datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
    tags=["vip"],
    previous=[Address("2 Side St", "Shelbyville")],
    scores={1: 0.5, 2: 1.0},
)


def round_trip(value: Any, hint: Any = None) -> Any:
    payload = CONVERTER.to_payload(value)
    return (
        CONVERTER.from_payload(payload, hint)
        if hint is not None
        else CONVERTER.from_payload(payload)
    )


@pytest.mark.parametrize(
    ("value", "encoding"),
    [
        (None, b"binary/null"),
        (b"\x00raw\xff", b"binary/plain"),
        ("text", b"json/plain"),
        (42, b"json/plain"),
        (2.5, b"json/plain"),
        (True, b"json/plain"),
        ([1, "two", None], b"json/plain"),
        ({"a": [1, 2], "b": {"c": None}}, b"json/plain"),
    ],
)
def test_plain_values_round_trip(value: Any, encoding: bytes) -> None:
    payload = CONVERTER.to_payload(value)
    assert payload["metadata"]["encoding"] == encoding
    assert set(payload) == {"metadata", "data"}
    assert CONVERTER.from_payload(payload) == value
    assert round_trip(value, type(value)) == value


def test_json_is_compact_and_key_sorted() -> None:
    assert CONVERTER.to_payload({"b": 1, "a": 2})["data"] == b'{"a":2,"b":1}'


def test_nested_dataclass_round_trip() -> None:
    payload = CONVERTER.to_payload(CUSTOMER)
    raw = json.loads(payload["data"])
    assert raw["colour"] == "blue"
    assert raw["since"] == "2024-05-06T07:08:09+00:00"
    assert raw["id"] == "12345678-1234-5678-1234-567812345678"
    assert raw["scores"] == {"1": 0.5, "2": 1.0}
    assert CONVERTER.from_payload(payload, Customer) == CUSTOMER


def test_without_a_hint_json_comes_back_plain() -> None:
    assert CONVERTER.from_payload(CONVERTER.to_payload(Address("s", "c"))) == {
        "street": "s",
        "city": "c",
    }


def test_enums_datetimes_and_uuids() -> None:
    assert round_trip(Colour.RED, Colour) is Colour.RED
    assert round_trip(Size.L, Size) is Size.L
    assert round_trip(Mood.HAPPY, Mood) is Mood.HAPPY
    moment = datetime(2020, 1, 1, 12, 30, tzinfo=UTC)
    assert round_trip(moment, datetime) == moment
    assert round_trip(date(2020, 2, 29), date) == date(2020, 2, 29)
    assert round_trip(timedelta(minutes=90), timedelta) == timedelta(minutes=90)
    ident = uuid.uuid4()
    assert round_trip(ident, uuid.UUID) == ident


def test_containers_of_typed_values() -> None:
    addresses = [Address("a", "b"), Address("c", "d")]
    assert round_trip(addresses, list[Address]) == addresses
    assert round_trip({"home": Address("a", "b")}, dict[str, Address]) == {
        "home": Address("a", "b")
    }
    assert round_trip({Size.S: "s"}, dict[Size, str]) == {Size.S: "s"}
    assert round_trip((1, "x"), tuple[int, str]) == (1, "x")
    assert round_trip((1, 2, 3), tuple[int, ...]) == (1, 2, 3)
    assert round_trip({3, 1, 2}, set[int]) == {1, 2, 3}
    assert CONVERTER.to_payload({3, 1, 2})["data"] == b"[1,2,3]"
    assert round_trip(frozenset({"a"}), frozenset[str]) == frozenset({"a"})
    assert round_trip([Colour.RED, None], list[Colour | None]) == [Colour.RED, None]
    assert round_trip(None, Address | None) is None
    assert round_trip(Address("a", "b"), Address | None) == Address("a", "b")
    assert round_trip({"bin": b"\x01\x02"}, dict[str, bytes]) == {"bin": b"\x01\x02"}
    assert round_trip({True: "y"}, dict[bool, str]) == {True: "y"}
    assert round_trip("b", Literal["a", "b"]) == "b"
    user_id = NewType("user_id", int)
    assert round_trip(5, user_id) == 5

    class Point(TypedDict):
        x: int
        where: Address

    assert round_trip({"x": 1, "where": Address("s", "c")}, Point) == {
        "x": 1,
        "where": Address("s", "c"),
    }
    assert round_trip([1, 2], Sequence[int]) == [1, 2]
    assert round_trip(MappingProxyType({"k": 1}), dict[str, int]) == {"k": 1}
    assert round_trip((n * n for n in range(3)), list[int]) == [0, 1, 4]
    assert round_trip({"any": 1}, Any) == {"any": 1}


def test_conversion_errors_name_the_problem() -> None:
    with pytest.raises(
        TypeError, match="index 0 .* could not be converted .*Expected int, got str"
    ):
        CONVERTER.from_payloads([CONVERTER.to_payload("x")], [int])
    with pytest.raises(TypeError, match="field 'city' of dataclass Address"):
        CONVERTER.from_payload(CONVERTER.to_payload({"street": "s", "city": 3}), Address)
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'city'"):
        CONVERTER.from_payload(CONVERTER.to_payload({"street": "s"}), Address)
    with pytest.raises(TypeError, match="'green' is not a valid Colour"):
        CONVERTER.from_payload(CONVERTER.to_payload("green"), Colour)
    with pytest.raises(TypeError, match="has no converter|could not be converted to json/plain"):
        CONVERTER.to_payload(object())
    with pytest.raises(KeyError, match="unknown encoding 'binary/zstd'"):
        CONVERTER.from_payload({"metadata": {"encoding": b"binary/zstd"}, "data": b""})
    with pytest.raises(RuntimeError, match="Invalid JSON"):
        CONVERTER.from_payload({"metadata": {"encoding": b"json/plain"}, "data": b"{oops"})


def test_scalars_keep_json_semantics_on_the_fast_path() -> None:
    def from_json(text: str, hint: Any) -> Any:
        return CONVERTER.from_payload(
            {"metadata": {"encoding": b"json/plain"}, "data": text.encode()}, hint
        )

    assert from_json('"x"', str) == "x" and from_json("3", int) == 3
    assert from_json("true", bool) is True
    assert type(from_json("2", float)) is float and from_json("2", float) == 2.0
    assert type(from_json("2.0", int)) is int
    for text, hint in [("1", bool), ("true", int), ("true", float), ("1", str), ('"1"', int)]:
        with pytest.raises(TypeError, match="Expected"):
            from_json(text, hint)


def test_a_dataclass_whose_hints_resolve_later_converts_once_they_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Field hints are cached per class, but a failed resolution is not: the class
    # converts as soon as the name it refers to exists in its module.
    module = types.ModuleType("cadenza_test_later")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    code = "from __future__ import annotations\nimport dataclasses\n"
    exec(code + "@dataclasses.dataclass\nclass Later:\n    part: Part\n", module.__dict__)
    payload = CONVERTER.to_payload({"part": {"name": "p"}})
    with pytest.raises(NameError, match="Part"):
        CONVERTER.from_payload(payload, module.Later)
    exec(code + "@dataclasses.dataclass\nclass Part:\n    name: str\n", module.__dict__)
    assert CONVERTER.from_payload(payload, module.Later) == module.Later(module.Part("p"))


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    payload = CONVERTER.to_payload({"street": "s", "city": "c", "zip": "00000"})
    assert CONVERTER.from_payload(payload, Address) == Address("s", "c")


def test_raw_value_passes_through() -> None:
    payload: Payload = {"metadata": {"encoding": b"custom/thing"}, "data": b"opaque"}
    assert CONVERTER.to_payloads([RawValue(payload)]) == [payload]
    [raw] = CONVERTER.from_payloads([payload], [RawValue])
    assert raw == RawValue(payload)


def test_protobuf_converters_are_not_supported_yet() -> None:
    for cls in (JSONProtoPayloadConverter, BinaryProtoPayloadConverter):
        with pytest.raises(NotImplementedError, match="protobuf payloads are not supported"):
            cls()
    encodings = list(DefaultPayloadConverter().converters)
    assert encodings == [b"binary/null", b"binary/plain", b"json/plain"]


def test_custom_json_type_converter_runs_first() -> None:
    class Money:
        def __init__(self, cents: int) -> None:
            self.cents = cents

    class MoneyConverter(JSONTypeConverter):
        def to_typed_value(self, hint: Any, value: Any) -> Any:
            if hint is Money:
                return Money(int(value))
            return JSONTypeConverter.Unhandled

    converter = CompositePayloadConverter(
        JSONPlainPayloadConverter(custom_type_converters=[MoneyConverter()])
    )
    money = converter.from_payload(converter.to_payload(250), Money)
    assert isinstance(money, Money) and money.cents == 250
    assert value_to_type(list[Money], [1, 2], [MoneyConverter()])[1].cents == 2


def test_a_custom_encoder_class_encodes_every_value() -> None:
    class Money:
        def __init__(self, cents: int) -> None:
            self.cents = cents

    class MoneyEncoder(json.JSONEncoder):
        def default(self, o: Any) -> Any:
            return {"cents": o.cents} if isinstance(o, Money) else super().default(o)

    converter = JSONPlainPayloadConverter(encoder=MoneyEncoder)
    for cents in (1, 250):
        payload = converter.to_payload({"z": Money(cents), "a": "é"})
        assert payload is not None
        assert payload["data"] == b'{"a":"\\u00e9","z":{"cents":%d}}' % cents
        assert payload["metadata"] == {"encoding": b"json/plain"}
    with pytest.raises(TypeError, match="not JSON serializable"):
        converter.to_payload(object())


class ZlibCodec(PayloadCodec):
    """Compresses payload data; keeps the original encoding in the metadata."""

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [
            {
                "metadata": {
                    **p["metadata"],
                    "encoding": b"binary/zlib",
                    "zlib-encoding": p["metadata"]["encoding"],
                },
                "data": zlib.compress(p["data"]),
            }
            for p in payloads
        ]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        decoded: list[Payload] = []
        for p in payloads:
            if p["metadata"].get("encoding") != b"binary/zlib":
                decoded.append(p)
                continue
            metadata = dict(p["metadata"])
            metadata["encoding"] = metadata.pop("zlib-encoding")
            decoded.append({"metadata": metadata, "data": zlib.decompress(p["data"])})
        return decoded


def test_data_converter_default_round_trip() -> None:
    async def main() -> None:
        converter = DataConverter.default
        payloads = await converter.encode([CUSTOMER, None, b"x", 3])
        assert [p["metadata"]["encoding"] for p in payloads] == [
            b"json/plain",
            b"binary/null",
            b"binary/plain",
            b"json/plain",
        ]
        assert await converter.decode(payloads, [Customer, type(None), bytes, int]) == [
            CUSTOMER,
            None,
            b"x",
            3,
        ]

    asyncio.run(main())


def test_zlib_codec_round_trip_including_failure_details() -> None:
    async def main() -> None:
        converter = DataConverter(payload_codec=ZlibCodec())
        big = ["repeat"] * 1000
        [payload] = await converter.encode([big])
        assert payload["metadata"]["encoding"] == b"binary/zlib"
        assert len(payload["data"]) < len(json.dumps(big))
        assert await converter.decode([payload], [list[str]]) == [big]

        error = TimeoutError(
            "hb", type=TimeoutType.HEARTBEAT, last_heartbeat_details=[{"done": 10}]
        )
        error.__cause__ = ApplicationError("inner", Address("s", "c"), type="T")
        failure = await converter.encode_failure(error)
        assert failure["info"] is not None
        [hb] = failure["info"][1]["last_heartbeat_details"]
        assert hb["metadata"]["encoding"] == b"binary/zlib"
        assert failure["cause"] is not None and failure["cause"]["info"] is not None
        assert failure["cause"]["info"][1]["details"][0]["metadata"]["encoding"] == b"binary/zlib"
        back = await converter.decode_failure(failure)
        assert isinstance(back, TimeoutError)
        assert back.last_heartbeat_details == [{"done": 10}]
        assert isinstance(back.cause, ApplicationError)
        assert back.cause.details == ({"street": "s", "city": "c"},)

    asyncio.run(main())


def test_data_converter_is_frozen_and_replaceable() -> None:
    converter = DataConverter.default
    with pytest.raises(dataclasses.FrozenInstanceError):
        converter.payload_codec = ZlibCodec()  # type: ignore[misc]
    with_codec = dataclasses.replace(converter, payload_codec=ZlibCodec())
    assert with_codec.payload_codec is not None
    assert converter.payload_codec is None
    assert isinstance(with_codec.payload_converter, DefaultPayloadConverter)


def test_pydantic_is_not_imported_by_the_converter() -> None:
    import subprocess
    import sys

    code = (
        "import sys, cadenza.converter, cadenza.workflow, cadenza.activity; "
        "print('pydantic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
