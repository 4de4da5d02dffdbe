"""The ``cadenza`` command group; each sub-group lives in its own module."""

from __future__ import annotations

import click

from cadenza import __version__
from cadenza._settings import describe_settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cadenza")
def cli() -> None:
    """Cadenza: durable workflows on Apache Kafka."""


@cli.command("settings")
def settings_cmd() -> None:
    """List every setting: environment variable, default and meaning."""
    for env, default, doc in describe_settings():
        click.echo(f"{env}={default}\n    {doc}")


def _register() -> None:
    # Sub-groups register themselves here so `cadenza --help` lists them all.
    from cadenza.cli import _bench, _demo, _kafka, _processors, _replay, _topics, _workflow

    cli.add_command(_kafka.kafka)
    cli.add_command(_topics.topics)
    cli.add_command(_demo.demo)
    cli.add_command(_processors.processors)
    cli.add_command(_replay.replay)
    cli.add_command(_bench.bench)
    cli.add_command(_workflow.workflow)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="cadenza")
