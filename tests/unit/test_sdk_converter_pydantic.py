"""cadenza.converter with pydantic models (pydantic is imported lazily, never required)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from enum import Enum

from cadenza.converter import PayloadConverter

CONVERTER = PayloadConverter.default


class Colour(Enum):
    RED = "red"


@dataclasses.dataclass
class Address:
    street: str
    city: str


@dataclasses.dataclass
class Holder:
    basket: Basket


import pydantic  # noqa: E402 - a dev dependency; the SDK itself never imports it


class Item(pydantic.BaseModel):  # type: ignore[name-defined,misc]
    sku: str
    qty: int = 1
    added: datetime
    colour: Colour


class Basket(pydantic.BaseModel):  # type: ignore[name-defined,misc]
    items: list[Item]
    owner: Address | None = None


def test_pydantic_models_round_trip() -> None:
    basket = Basket(
        items=[Item(sku="a", qty=2, added=datetime(2024, 1, 1, tzinfo=UTC), colour=Colour.RED)],
        owner=Address("s", "c"),
    )
    payload = CONVERTER.to_payload(basket)
    assert json.loads(payload["data"])["items"][0]["colour"] == "red"
    assert CONVERTER.from_payload(payload, Basket) == basket
    assert CONVERTER.from_payload(CONVERTER.to_payload([basket]), list[Basket]) == [basket]

    assert CONVERTER.from_payload(CONVERTER.to_payload(Holder(basket)), Holder) == Holder(basket)


def test_pydantic_v1_models_round_trip() -> None:
    import pydantic.v1 as v1

    class Legacy(v1.BaseModel):  # type: ignore[name-defined,misc]
        name: str
        when: datetime

    legacy = Legacy(name="x", when=datetime(2024, 1, 1, tzinfo=UTC))
    payload = CONVERTER.to_payload(legacy)
    assert json.loads(payload["data"]) == {"name": "x", "when": "2024-01-01T00:00:00+00:00"}
    assert CONVERTER.from_payload(payload, Legacy) == legacy
