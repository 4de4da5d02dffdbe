"""``cadenza processors run``: the engine, its timer service and the visibility projection."""

from __future__ import annotations

import logging

import click

from cadenza._settings import Settings, SettingsError
from cadenza.cli._common import settings_options


@click.group()
def processors() -> None:
    """Run Cadenza's stream processors."""


@processors.command()
@settings_options
@click.option("--data-dir", default=None, help="RocksDB stores [env CADENZA_DATA_DIR].")
@click.option("--log-level", default="INFO", show_default=True)
@click.option(
    "--visibility/--no-visibility",
    default=True,
    show_default=True,
    help="Also run the visibility projection (list_workflows, count_workflows).",
)
@click.option(
    "--http",
    "http_address",
    default=None,
    metavar="HOST:PORT",
    help="Serve the web UI, its JSON API and Prometheus /metrics here, or 'off' "
    "[env CADENZA_HTTP_ADDRESS, default 127.0.0.1:8233].",
)
def run(
    settings: Settings,
    data_dir: str | None,
    log_level: str,
    visibility: bool,
    http_address: str | None,
) -> None:
    """Run an engine instance in the foreground (start several to share the partitions).

    Beside it runs a visibility processor as a child process, which folds every
    partition of history into its own store and answers list and count requests.
    A thread serves the web UI (open http://127.0.0.1:8233), the JSON API behind it
    and /metrics.
    """
    from cadenza.processors.engine import run_engine

    if http_address is not None:
        try:
            settings = settings.replace(http_address=http_address)
        except SettingsError as exc:
            raise click.UsageError(str(exc)) from None
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run_engine(settings, data_dir=data_dir, visibility=visibility)


@processors.command()
@settings_options
@click.option("--data-dir", default=None, help="RocksDB store [env CADENZA_DATA_DIR].")
@click.option("--log-level", default="INFO", show_default=True)
@click.option(
    "--metrics",
    "metrics_address",
    default=None,
    metavar="HOST:PORT",
    help="Serve Prometheus /metrics here (e.g. 127.0.0.1:8234); not served by default.",
)
@click.option("--parent-pid", type=int, default=None, hidden=True)
@click.option("--metrics-port-fd", type=int, default=None, hidden=True)
def visibility(
    settings: Settings,
    data_dir: str | None,
    log_level: str,
    metrics_address: str | None,
    parent_pid: int | None,
    metrics_port_fd: int | None,
) -> None:
    """Run only the visibility processor (list_workflows, count_workflows).

    `cadenza processors run` starts one beside each engine (its metrics then appear on
    the engine's /metrics); run this instead with `--no-visibility` there to place
    and scale the projection on its own.
    """
    from cadenza.processors.visibility import MetricsAddressError, run_visibility

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if metrics_address is not None:
        from cadenza.runtime._prometheus import parse_bind_address

        try:
            parse_bind_address(metrics_address)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--metrics") from None
    try:
        run_visibility(
            settings,
            data_dir=data_dir,
            parent_pid=parent_pid,
            metrics_address=metrics_address,
            metrics_port_fd=metrics_port_fd,
        )
    except MetricsAddressError as exc:
        raise click.ClickException(f"{exc} (choose another with --metrics HOST:PORT)") from None
