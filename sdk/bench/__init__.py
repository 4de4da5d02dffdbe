"""``cadenza bench``: workloads, load generation and measurement.

Example::

    from cadenza import Settings
    from cadenza.bench import BenchOptions, TemporalTarget, run_bench

    report = run_bench(Settings.from_env(), BenchOptions("one-activity", rate=20, duration=30))
    print(report["latency_ms"])

    # The same workload with temporalio on Temporal's dev server (the ``bench`` extra):
    peer = run_bench(
        Settings.from_env(),
        BenchOptions("one-activity", rate=20, duration=30, temporal=TemporalTarget()),
    )
"""

from ._harness import (
    TEMPORAL_WORKLOADS,
    WORKLOADS,
    BenchOptions,
    TemporalTarget,
    percentile,
    run_bench,
)

__all__ = [
    "TEMPORAL_WORKLOADS",
    "WORKLOADS",
    "BenchOptions",
    "TemporalTarget",
    "percentile",
    "run_bench",
]
