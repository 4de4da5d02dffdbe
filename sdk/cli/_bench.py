"""``cadenza bench``: run a workload and report rate, latency and resource use."""

from __future__ import annotations

import dataclasses
import json
import sys
import uuid
from typing import Any

import click

from cadenza._settings import Settings
from cadenza.cli._common import fail, settings_options


def _progress(line: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r" + line)
    else:
        sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}{unit}"
    return f"{value}{unit}"


def _table(report: dict[str, Any]) -> str:
    lat = report["latency_ms"]
    rows = [
        ("workload", report["workload"]),
        ("mode", report["mode"]),
        ("offered rate", _fmt(report["offered_rate"], " /s")),
        ("achieved rate", _fmt(report["achieved_rate"], " /s")),
        ("completed", _fmt(report["completed"])),
        ("failed", _fmt(report["failed"])),
        (
            "latency p50/p95/p99/max",
            " / ".join(_fmt(lat[k]) for k in ("p50", "p95", "p99", "max")) + " ms",
        ),
    ]
    for key in ("per_step_ms", "timer_fire_lag_ms"):
        if key in report:
            part = report[key]
            rows.append(
                (
                    key.replace("_ms", "").replace("_", " ") + " p50/p99",
                    f"{_fmt(part['p50'])} / {_fmt(part['p99'])} ms",
                )
            )
    for key in ("starts_accepted_per_second", "events_per_second"):
        if key in report:
            rows.append((key.replace("_", " "), _fmt(report[key])))
    if "recovery" in report:
        rows.append(
            (
                "recovery (restart -> first completion)",
                _fmt(report["recovery"]["seconds_to_first_completion_after_restart"], " s"),
            )
        )
    for name, proc in report["processes"].items():
        if name != "broker_pid" and proc is not None:
            rows.append(
                (
                    f"{name} cpu / peak rss",
                    f"{proc['cpu_seconds']:.1f} s / {proc['peak_rss_mib']:.0f} MiB",
                )
            )
    rows.append(("engine consumer lag", _fmt(report["engine_consumer_lag"])))
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


@click.command()
@click.argument("workload")
@settings_options
@click.option("--rate", type=float, default=None, help="Open loop: workflows started per second.")
@click.option("--concurrency", type=int, default=None, help="Closed loop: workflows in flight.")
@click.option("--duration", type=float, default=30.0, show_default=True, help="Measured seconds.")
@click.option("--warmup", type=float, default=3.0, show_default=True, help="Unmeasured seconds.")
@click.option("--drain", type=float, default=30.0, show_default=True, help="Wait for stragglers.")
@click.option("--count", type=int, default=20_000, show_default=True, help="ingest/replay size.")
@click.option("--sleep", type=float, default=2.0, show_default=True, help="timers: seconds.")
@click.option("--kill-at", type=float, default=None, help="recovery: seconds into the load.")
@click.option(
    "--engine",
    type=click.Choice(["subprocess", "external"]),
    default="subprocess",
    show_default=True,
    help="Start the engine as a process of its own, or use one already running.",
)
@click.option("--json", "json_path", default=None, help="Write the report to this file.")
def bench(
    workload: str,
    settings: Settings,
    rate: float | None,
    concurrency: int | None,
    duration: float,
    warmup: float,
    drain: float,
    count: int,
    sleep: float,
    kill_at: float | None,
    engine: str,
    json_path: str | None,
) -> None:
    """Run WORKLOAD (one-activity, ten-steps, fan-out, signals, timers, ingest, replay,
    recovery) in a fresh namespace and print what it measured."""
    from cadenza.bench import WORKLOADS, BenchOptions, run_bench

    if workload not in WORKLOADS:
        fail(f"unknown workload {workload!r}: one of {', '.join(WORKLOADS)}")
    if workload not in ("ingest", "replay") and (rate is None) == (concurrency is None):
        raise click.UsageError("give exactly one of --rate (open loop) or --concurrency")
    if engine == "subprocess" and not _namespace_given():
        # A fresh namespace per run: no state of an earlier run can leak in.
        settings = dataclasses.replace(settings, namespace=f"bench{uuid.uuid4().hex[:8]}")
    options = BenchOptions(
        workload,
        rate=rate,
        concurrency=concurrency,
        duration=duration,
        warmup=warmup,
        drain=drain,
        count=count,
        sleep=sleep,
        kill_at=kill_at,
        external_engine=engine == "external",
    )
    click.echo(
        f"bench {workload} in namespace {settings.namespace!r} on "
        f"{settings.resolved_bootstrap_servers}",
        err=True,
    )
    try:
        report = run_bench(settings, options, progress=_progress)
    except (RuntimeError, ValueError) as exc:
        fail(str(exc))
        return
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    click.echo(_table(report))
    if report["not_completed"]:
        click.echo(f"  not completed ({report['failed']}):")
        for item in report["not_completed"][:20]:
            click.echo(f"    {item}")
    if json_path:
        with open(json_path, "w") as out:
            json.dump(report, out, indent=2)
        click.echo(f"  report written to {json_path}")


def _namespace_given() -> bool:
    ctx = click.get_current_context()
    return ctx.params.get("namespace") is not None
