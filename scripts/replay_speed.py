"""Measure ``cadenza replay`` alone: rebuild a namespace's stores from its history, repeatedly.

    .venv/bin/python scripts/replay_speed.py --namespace NS [--repeat 5] [--profile out.html]

Reads the ``history`` topic of an existing namespace (fill one first with
``cadenza bench replay --count 20000 --namespace NS``) and rebuilds its engine
stores into fresh temporary directories, reporting events/s per run and the
process's CPU time (a steadier figure than wall time on a shared machine). Needs a
broker (CADENZA_BOOTSTRAP_SERVERS, or the local one).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time

from cadenza import Settings
from cadenza.processors.engine import rebuild


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", help="write a pyinstrument HTML profile of the last run here")
    args = parser.parse_args()
    settings = dataclasses.replace(Settings.from_env(), namespace=args.namespace)
    rates = []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="replay-speed-") as target:
            profiler = None
            if args.profile and i == args.repeat - 1:
                from pyinstrument import Profiler

                profiler = Profiler(interval=0.0005)
                profiler.start()
            cpu = time.process_time()
            report = rebuild(settings, target, progress=lambda _line: None)
            cpu = time.process_time() - cpu
            if profiler is not None:
                profiler.stop()
                with open(args.profile, "w") as out:
                    out.write(profiler.output_html())
                print(profiler.output_text(unicode=False, color=False))
        rates.append(report.events_per_second)
        print(
            f"run {i + 1}: {report.events} events, {report.runs} runs, "
            f"{report.partitions} partitions in {report.seconds:.3f} s: "
            f"{report.events_per_second:,.0f} events/s (cpu {cpu:.3f} s: "
            f"{report.events / cpu:,.0f} events per cpu-second)"
        )
    rates.sort()
    print(f"median {rates[len(rates) // 2]:,.0f} events/s, best {rates[-1]:,.0f} events/s")


if __name__ == "__main__":
    main()
