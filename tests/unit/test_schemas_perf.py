"""Codec speed: prints the encode+decode rate (run with -s to see it).

The floor is far below what the codec does on a developer machine (~85k/s for
the Command, ~100k/s for the event) so a slow CI box does not flake; it catches
an accidental fall back to a much slower path.
"""

from __future__ import annotations

import cadenza.schemas as schemas
from cadenza.schemas.__main__ import bench, typical_records


def test_typical_records_round_trip() -> None:
    for name, datum in typical_records().items():
        data = schemas.encode(name, datum)
        decoded = schemas.decode_as(data, name)
        # The typical records leave defaulted fields out; the decoded datum has
        # them all, and encodes to the same bytes.
        assert {k: decoded[k] for k in datum if k not in ("body", "attributes")} == {
            k: v for k, v in datum.items() if k not in ("body", "attributes")
        }
        assert schemas.encode(name, decoded) == data


def test_encode_decode_rate() -> None:
    rates = bench(seconds=0.5)
    for name, rate in rates.items():
        print(f"\n{name}: {rate:,.0f} encode+decode per second")
        assert rate > 15_000, f"{name}: {rate:,.0f}/s"
