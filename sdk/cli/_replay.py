"""``cadenza replay``: rebuild the engine's stores from the ``history`` topic."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

import click

from cadenza._settings import Settings
from cadenza.cli._common import fail, settings_options


@click.command()
@settings_options
@click.option(
    "--data-dir",
    required=True,
    help="An empty directory for the rebuilt stores (point `processors run --data-dir` at it).",
)
@click.option(
    "--until-offset", type=int, default=None, help="Stop each partition before this offset."
)
@click.option(
    "--until-time",
    default=None,
    help="Ignore events after this time (ISO 8601, e.g. 2026-11-21T18:00:00+00:00).",
)
@click.option(
    "--json",
    "json_path",
    default=None,
    help="Write what was rebuilt (partitions, events, runs, seconds, CPU seconds) to this file.",
)
def replay(
    settings: Settings,
    data_dir: str,
    until_offset: int | None,
    until_time: str | None,
    json_path: str | None,
) -> None:
    """Rebuild the engine's stores from history, optionally as they were at an offset or time."""
    from cadenza.processors._runtime import tune_gc
    from cadenza.processors.engine import rebuild

    until_ms = None
    if until_time is not None:
        try:
            until_ms = int(datetime.fromisoformat(until_time).timestamp() * 1000)
        except ValueError:
            fail(f"--until-time {until_time!r} is not an ISO 8601 time (2026-11-21T18:00:00+00:00)")
    tune_gc()
    try:
        report = rebuild(
            settings,
            data_dir,
            until_offset=until_offset,
            until_time_ms=until_ms,
            progress=lambda line: click.echo(f"    {line}"),
        )
    except (FileExistsError, RuntimeError) as exc:
        fail(str(exc))
        return
    if json_path:
        with open(json_path, "w") as out:
            json.dump(
                {**dataclasses.asdict(report), "events_per_second": report.events_per_second},
                out,
                indent=2,
            )
    click.echo(
        f"rebuilt {report.runs} runs from {report.events} events in {report.partitions} "
        f"partitions in {report.seconds:.1f}s ({report.events_per_second:,.0f} events/s)"
    )
