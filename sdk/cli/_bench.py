"""``cadenza bench``: run a workload and report rate, latency and resource use."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
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


def _rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    lat = report["latency_ms"]
    rows = [
        ("workload", report["workload"]),
        ("target", report.get("target", "cadenza")),
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
    if "worker_rss_mib" in report:
        rss = report["worker_rss_mib"]
        rows += [
            ("cached workflows", _fmt(report["cached_workflows"])),
            ("seconds to start and cache", _fmt(report["seconds_to_start_and_cache"], " s")),
            (
                "worker rss baseline / cached / peak",
                " / ".join(_fmt(rss[k]) for k in ("baseline", "cached", "peak")) + " MiB",
            ),
            ("rss per cached workflow", _fmt(report["rss_per_workflow_kib"], " KiB")),
        ]
    if "recovery" in report:
        rows.append(
            (
                "recovery (restart -> first completion)",
                _fmt(report["recovery"]["seconds_to_first_completion_after_restart"], " s"),
            )
        )
        for key, seconds in report["recovery"].get("timeline_s", {}).items():
            shown = "-" if seconds is None else f"{seconds:.2f} s"
            rows.append((f"  restart -> {key.replace('_', ' ')}", shown))
    if (report.get("engines") or 1) > 1:
        rows.append(("engine processes (cpu summed)", str(report["engines"])))
    if (report.get("worker_processes") or 1) > 1:
        rows.append(("worker processes (cpu summed)", str(report["worker_processes"])))
    for name, proc in report["processes"].items():
        if not name.endswith("_pid") and proc is not None:
            shown = f"{proc['cpu_seconds']:.1f} s / {proc['peak_rss_mib']:.0f} MiB"
            if proc.get("jit_cpu_seconds") is not None:
                shown += f" (JIT compiler {proc['jit_cpu_seconds']:.1f} s)"
            rows.append((f"{name} cpu / peak rss", shown))
    loop = report.get("reference_loop_ms")
    if loop:
        rows.append(("reference loop before / after", f"{loop['before']} / {loop['after']} ms"))
    warming = _warming_up(report["processes"].get("broker"))
    if warming:
        rows.append(("note", warming))
    if "engine_consumer_lag" in report:
        rows.append(("engine consumer lag", _fmt(report["engine_consumer_lag"])))
    if report.get("engine_commands"):
        rows.append(
            (
                "engine commands / cpu per command",
                f"{report['engine_commands']} / {_fmt(report['engine_cpu_us_per_command'])} us",
            )
        )
    if "eager_starts" in report:
        rows.append(("eager starts (warm-up included)", _fmt(report["eager_starts"])))
    return rows


JIT_SHARE_WARNING = 0.1
"""Above this share of the broker's CPU in its JIT compiler, the run says so."""


def _warming_up(broker: dict[str, Any] | None) -> str | None:
    """A note when the broker's JVM spent much of the run compiling: its figures
    (and everything sharing its cores) are not yet steady-state ones."""
    if not broker or not broker.get("jit_cpu_seconds") or not broker.get("cpu_seconds"):
        return None
    share = broker["jit_cpu_seconds"] / broker["cpu_seconds"]
    if share <= JIT_SHARE_WARNING:
        return None
    return (
        f"the broker's JIT compiler took {share:.0%} of its CPU: it is still warming up; "
        "run a load first (e.g. 60 s at --concurrency 200) for steady-state figures"
    )


def _table(*reports: dict[str, Any]) -> str:
    """One column per report; a row one report lacks shows ``-``."""
    columns = [dict(_rows(report)) for report in reports]
    labels = list(dict.fromkeys(label for column in columns for label in column))
    cells = [[label, *(column.get(label, "-") for column in columns)] for label in labels]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return "\n".join(
        "  "
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


@click.command()
@click.argument("workload")
@settings_options
@click.option("--rate", type=float, default=None, help="Open loop: workflows started per second.")
@click.option("--concurrency", type=int, default=None, help="Closed loop: workflows in flight.")
@click.option("--duration", type=float, default=30.0, show_default=True, help="Measured seconds.")
@click.option("--warmup", type=float, default=3.0, show_default=True, help="Unmeasured seconds.")
@click.option("--drain", type=float, default=30.0, show_default=True, help="Wait for stragglers.")
@click.option(
    "--count",
    type=int,
    default=None,
    help="ingest/replay: starts [default: 20,000]; cached: runs kept cached [default: 10,000].",
)
@click.option("--sleep", type=float, default=2.0, show_default=True, help="timers: seconds.")
@click.option("--kill-at", type=float, default=None, help="recovery: seconds into the load.")
@click.option(
    "--engine",
    type=click.Choice(["subprocess", "external"]),
    default="subprocess",
    show_default=True,
    help="Start the engine as a process of its own, or use one already running.",
)
@click.option(
    "--engines",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Engine processes to start; they share the partitions (one per core scales "
    "an engine-bound workload such as ingest).",
)
@click.option(
    "--target",
    type=click.Choice(["cadenza", "temporal"]),
    default="cadenza",
    show_default=True,
    help="Run on Cadenza, or the same workload with temporalio on a Temporal server "
    "(needs pip install 'cadenza[bench]').",
)
@click.option(
    "--temporal-address",
    default=None,
    metavar="HOST:PORT",
    help="Temporal server to use [default: start `temporal server start-dev` for the run].",
)
@click.option(
    "--temporal-db",
    default=None,
    metavar="FILE",
    help="The dev server started for the run keeps its state in this SQLite file "
    "[default: in memory].",
)
@click.option(
    "--compare",
    is_flag=True,
    help="Run on Cadenza, then on Temporal, each in a process of its own, and print both.",
)
@click.option(
    "--keep-topics",
    is_flag=True,
    help="Keep the topics of a namespace the run created (deleted after the run by default).",
)
@click.option(
    "--no-eager-activities",
    is_flag=True,
    help="Workers send every activity through the activity-tasks topic "
    "(Worker(disable_eager_activity_execution=True)).",
)
@click.option(
    "--eager-start",
    is_flag=True,
    help="Start every workflow with request_eager_start=True: its first workflow task "
    "comes back with the start's reply to the bench's own worker.",
)
@click.option(
    "--worker-processes",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Run the workers in this many processes of their own, the bench process keeping "
    "the client and the load generator (0: the worker runs in the bench process).",
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
    count: int | None,
    sleep: float,
    kill_at: float | None,
    engine: str,
    engines: int,
    target: str,
    temporal_address: str | None,
    temporal_db: str | None,
    compare: bool,
    keep_topics: bool,
    no_eager_activities: bool,
    eager_start: bool,
    worker_processes: int,
    json_path: str | None,
) -> None:
    """Run WORKLOAD (one-activity, ten-steps, fan-out, signals, timers, ingest, replay,
    recovery, cached) in a fresh namespace and print what it measured."""
    from cadenza.bench import TEMPORAL_WORKLOADS, WORKLOADS, BenchOptions, TemporalTarget, run_bench
    from cadenza.bench._harness import not_on_temporal

    if workload not in WORKLOADS:
        fail(f"unknown workload {workload!r}: one of {', '.join(WORKLOADS)}")
    if workload not in ("ingest", "replay") and (rate is None) == (concurrency is None):
        raise click.UsageError("give exactly one of --rate (open loop) or --concurrency")
    on_temporal = compare or target == "temporal"
    if compare and target != "cadenza":
        raise click.UsageError("--compare runs both targets: leave out --target")
    if (temporal_address or temporal_db) and not on_temporal:
        raise click.UsageError("--temporal-address/--temporal-db need --target temporal")
    if temporal_address and temporal_db:
        raise click.UsageError("--temporal-db is for the dev server the run starts, not an address")
    if engines > 1 and (engine == "external" or on_temporal):
        raise click.UsageError("--engines counts the engines the bench starts on Cadenza")
    if on_temporal and workload not in TEMPORAL_WORKLOADS:
        fail(not_on_temporal(workload))
    if worker_processes:
        if workload in ("ingest", "replay", "cached"):
            raise click.UsageError(
                f"--worker-processes is for the workloads driven through the client; "
                f"{workload!r} runs no bench worker or runs its own"
            )
        if eager_start:
            raise click.UsageError(
                "--eager-start hands first tasks to a worker in the client's own process: "
                "leave out --worker-processes"
            )
        if on_temporal:
            raise click.UsageError(
                "--worker-processes runs Cadenza's workers: the Temporal run keeps its "
                "worker in the bench process"
            )
    if compare:
        _compare(settings, json_path)
        return
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
        engines=engines,
        keep_topics=keep_topics,
        eager_activities=not no_eager_activities,
        eager_start=eager_start,
        worker_processes=worker_processes,
        temporal=(
            TemporalTarget(address=temporal_address, db_file=temporal_db)
            if target == "temporal"
            else None
        ),
    )
    if options.temporal is not None:
        where = temporal_address or "a Temporal dev server started for the run"
        click.echo(f"bench {workload} with temporalio on {where}", err=True)
    else:
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


def _compare(settings: Settings, json_path: str | None) -> None:
    """This command again, once per target, each in a fresh process (so neither inherits
    the other's peak RSS or threads), back to back; then both reports side by side."""
    params = click.get_current_context().params
    shared = ["bench", params["workload"]]
    for name in ("rate", "concurrency", "duration", "warmup", "drain", "sleep"):
        if params[name] is not None:
            shared += [f"--{name}", str(params[name])]
    cadenza = [
        "--target",
        "cadenza",
        "--engine",
        params["engine"],
        "--bootstrap-servers",
        settings.resolved_bootstrap_servers,
        "--partitions",
        str(settings.partitions),
    ]
    if params.get("namespace") is not None:
        cadenza += ["--namespace", settings.namespace]
    temporal = ["--target", "temporal"]
    if params["temporal_address"]:
        temporal += ["--temporal-address", params["temporal_address"]]
    if params["temporal_db"]:
        temporal += ["--temporal-db", params["temporal_db"]]
    reports: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="cadenza-bench-compare-") as tmp:
        for name, extra in (("cadenza", cadenza), ("temporal", temporal)):
            out = Path(tmp) / f"{name}.json"
            argv = [sys.executable, "-m", "cadenza.cli", *shared, *extra, "--json", str(out)]
            click.echo(f"-- {name}: cadenza {' '.join(argv[3:])}", err=True)
            done = subprocess.run(argv, stdout=subprocess.PIPE, text=True, check=False)
            if done.returncode != 0:
                click.echo(done.stdout, nl=False)
                fail(f"the {name} run failed (exit status {done.returncode})")
            reports[name] = json.loads(out.read_text())
    click.echo(_table(*reports.values()))
    for name, report in reports.items():
        if report["not_completed"]:
            click.echo(f"  {name}: not completed ({report['failed']}):")
            for item in report["not_completed"][:10]:
                click.echo(f"    {item}")
    if json_path:
        with open(json_path, "w") as out_file:
            json.dump(reports, out_file, indent=2)
        click.echo(f"  reports written to {json_path}")
