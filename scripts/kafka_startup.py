"""Measure the local broker: start time (median of N cold starts) and the jar cache size.

    .venv/bin/python scripts/kafka_startup.py [--runs 5]

Each run starts the broker on a fresh data directory (format + start + first
metadata answer), then stops it; the jar cache is shared and fetched once.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

from cadenza import Settings
from cadenza.localkafka import LocalKafka


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    settings = Settings.from_env()
    LocalKafka(settings).fetch()
    starts, stops = [], []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as data:
            broker = LocalKafka(
                dataclasses.replace(settings, data_dir=data), port=0, progress=lambda _: None
            )
            t0 = time.monotonic()
            broker.start()
            starts.append(time.monotonic() - t0)
            t0 = time.monotonic()
            broker.stop()
            stops.append(time.monotonic() - t0)
        print(
            f"run {i + 1}/{args.runs}: start {starts[-1]:.2f}s, stop {stops[-1]:.2f}s", flush=True
        )
    jars = LocalKafka(settings).jar_dir
    size = sum(f.stat().st_size for f in Path(jars).iterdir())
    print(
        f"start (format + start + first answer): median {statistics.median(starts):.2f}s, "
        f"min {min(starts):.2f}s, max {max(starts):.2f}s over {args.runs} runs"
    )
    print(f"stop: median {statistics.median(stops):.2f}s")
    print(f"jar cache {jars}: {len(list(Path(jars).glob('*.jar')))} jars, {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
