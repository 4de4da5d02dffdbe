"""``cadenza processors run``: the engine and its timer service."""

from __future__ import annotations

import logging

import click

from cadenza._settings import Settings
from cadenza.cli._common import settings_options


@click.group()
def processors() -> None:
    """Run Cadenza's stream processors."""


@processors.command()
@settings_options
@click.option("--data-dir", default=None, help="RocksDB stores [env CADENZA_DATA_DIR].")
@click.option("--log-level", default="INFO", show_default=True)
def run(settings: Settings, data_dir: str | None, log_level: str) -> None:
    """Run an engine instance in the foreground (start several to share the partitions)."""
    from cadenza.processors.engine import run_engine

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run_engine(settings, data_dir=data_dir)
