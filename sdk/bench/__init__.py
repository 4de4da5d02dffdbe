"""``cadenza bench``: workloads, load generation and measurement.

Example::

    from cadenza import Settings
    from cadenza.bench import BenchOptions, run_bench

    report = run_bench(Settings.from_env(), BenchOptions("one-activity", rate=20, duration=30))
    print(report["latency_ms"])
"""

from ._harness import WORKLOADS, BenchOptions, percentile, run_bench

__all__ = ["WORKLOADS", "BenchOptions", "percentile", "run_bench"]
