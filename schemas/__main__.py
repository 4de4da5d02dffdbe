"""``python -m cadenza.schemas``: inspect the schemas and time the codec.

Commands:
    list                  the record names the codec encodes
    dump NAME             the standalone schema (every type inline), as JSON
    canonical NAME        the Parsing Canonical Form
    fingerprint [NAME]    the CRC-64-AVRO fingerprint(s), wire byte order, hex
    bench                 encode+decode rate of a typical Command and HistoryEvent
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from ._codec import COMMAND, ENVELOPES, HISTORY_EVENT, default_registry


def typical_records() -> dict[str, dict[str, Any]]:
    """A StartWorkflow command with one small payload, and an ActivityTaskScheduled event.

    Returns:
        Envelope name -> datum.
    """
    payload = {"metadata": {"encoding": b"json/plain"}, "data": b'{"order": 42}'}
    return {
        COMMAND: {
            "command_id": "6f1c3e0a-5b8e-4c1e-9d7e-3a2b1c0d9e8f",
            "workflow_id": "order-42",
            "run_id": None,
            "sent_time_ms": 1_700_000_000_000,
            "identity": "1234@worker-1",
            "reply_to": {"client_id": "client-1", "partition": 3, "request_id": "req-1"},
            "body": (
                "cadenza.command.StartWorkflow",
                {
                    "workflow_type": "OrderWorkflow",
                    "task_queue": "orders",
                    "input": [payload],
                    "request_id": "start-order-42",
                },
            ),
        },
        HISTORY_EVENT: {
            "event_id": 5,
            "event_time_ms": 1_700_000_000_000,
            "workflow_id": "order-42",
            "run_id": "6f1c3e0a-5b8e-4c1e-9d7e-3a2b1c0d9e8f",
            "attributes": (
                "cadenza.history.ActivityTaskScheduled",
                {
                    "activity_id": "1",
                    "activity_type": "charge_card",
                    "task_queue": "orders",
                    "input": [payload],
                    "start_to_close_timeout_ms": 10_000,
                    "workflow_task_completed_event_id": 4,
                },
            ),
        },
    }


def bench(seconds: float = 1.0) -> dict[str, float]:
    """Measure encode+decode round trips per second of :func:`typical_records`.

    Args:
        seconds: How long to run each measurement.

    Returns:
        Envelope name -> round trips per second.
    """
    registry = default_registry()
    rates: dict[str, float] = {}
    for name, datum in typical_records().items():
        count = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(1000):
                registry.decode(registry.encode(name, datum))
            count += 1000
            now = time.perf_counter()
            if now >= deadline:
                break
        rates[name] = count / (now - start)
    return rates


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments (without the program name); ``sys.argv[1:]`` when None.

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(
        prog="python -m cadenza.schemas",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["list", "dump", "canonical", "fingerprint", "bench"])
    parser.add_argument("name", nargs="?")
    args = parser.parse_args(argv)
    registry = default_registry()
    try:
        if args.command == "list":
            print("\n".join(registry.schema_names()))
        elif args.command == "bench":
            for name, rate in bench().items():
                print(f"{name}: {rate:,.0f} encode+decode per second")
        elif args.command == "fingerprint":
            for name in [args.name] if args.name else list(ENVELOPES):
                print(f"{registry.fingerprint(name).hex()}  {name}")
        elif not args.name:
            parser.error(f"{args.command} needs a NAME")
        elif args.command == "dump":
            print(json.dumps(registry.schema(args.name), indent=2))
        else:
            print(registry.parsing_canonical_form(args.name))
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
