"""Measure ``cadenza replay`` alone: rebuild a namespace's stores from its history, repeatedly.

    .venv/bin/python scripts/replay_speed.py --namespace NS [--repeat 5] [--in-process]

Reads the ``history`` topic of an existing namespace (fill one first with
``cadenza bench replay --count 20000 --namespace NS --keep-topics``) and rebuilds
its engine stores into fresh temporary directories, reporting events/s per run
and the CPU time of the rebuild's processes (a steadier figure than wall time on
a shared machine). Each run is a ``cadenza replay`` process, as the bench runs it
(one that can fold in a process per CPU); ``--in-process`` calls ``rebuild()``
in this process instead, which has a Kafka client's threads after its first run
and so folds on one CPU, as a caller with threads does. Needs a broker
(CADENZA_BOOTSTRAP_SERVERS, or the local one).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

from cadenza import Settings
from cadenza.bench._replay import run_replay
from cadenza.processors.engine import rebuild


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--in-process", action="store_true", help="call rebuild() here")
    args = parser.parse_args()
    settings = dataclasses.replace(Settings.from_env(), namespace=args.namespace)
    rates = []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="replay-speed-") as target:
            data_dir = Path(target) / "rebuilt"
            if args.in_process:
                report = dataclasses.asdict(rebuild(settings, str(data_dir), progress=_quiet))
                whole = ""
            else:
                run = run_replay(settings, data_dir)
                report = run.report
                whole = (
                    f"; the command {run.process_seconds:.3f} s, "
                    f"cpu {run.process_cpu_seconds:.3f} s"
                )
        rate = report["events"] / report["seconds"]
        rates.append(rate)
        print(
            f"run {i + 1}: {report['events']} events, {report['runs']} runs, "
            f"{report['partitions']} partitions in {report['seconds']:.3f} s: "
            f"{rate:,.0f} events/s (cpu {report['cpu_seconds']:.3f} s){whole}"
        )
    rates.sort()
    print(f"median {rates[len(rates) // 2]:,.0f} events/s, best {rates[-1]:,.0f} events/s")


def _quiet(_line: str) -> None:
    pass


if __name__ == "__main__":
    main()
