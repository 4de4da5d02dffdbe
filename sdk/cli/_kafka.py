"""``cadenza kafka start|stop|status|fetch``: the local development broker."""

from __future__ import annotations

import click

from cadenza._settings import Settings
from cadenza.cli._common import fail, settings_options
from cadenza.localkafka import LocalKafka, LocalKafkaError


@click.group()
def kafka() -> None:
    """Run a local single-node Apache Kafka broker (KRaft) on 127.0.0.1."""


def _external(settings: Settings) -> bool:
    if settings.uses_local_broker:
        return False
    click.echo(
        f"CADENZA_BOOTSTRAP_SERVERS points at an existing cluster ({settings.bootstrap_servers}); "
        "the local broker is not used. Unset it to run one."
    )
    return True


@kafka.command()
@settings_options
@click.option("--port", type=int, default=None, help="Client port [env CADENZA_KAFKA_PORT, 9092].")
def start(settings: Settings, port: int | None) -> None:
    """Start the broker (fetching Kafka from Maven Central the first time)."""
    if _external(settings):
        return
    try:
        info = LocalKafka(settings, port=port).start()
    except LocalKafkaError as exc:
        fail(str(exc))
        return
    click.echo(f"export CADENZA_BOOTSTRAP_SERVERS={info.bootstrap_servers}  # optional")


@kafka.command()
@settings_options
def stop(settings: Settings) -> None:
    """Stop the broker cleanly."""
    if _external(settings):
        return
    if LocalKafka(settings).stop():
        click.echo("Kafka stopped")
    else:
        click.echo("Kafka was not running")


@kafka.command()
@settings_options
def status(settings: Settings) -> None:
    """Say whether the broker runs and answers; exit 1 when it does not."""
    if not settings.uses_local_broker:
        from confluent_kafka.admin import AdminClient

        try:
            brokers = AdminClient(settings.kafka_config()).list_topics(timeout=5).brokers
        except Exception as exc:
            fail(f"cluster {settings.bootstrap_servers} does not answer: {exc}")
            return
        click.echo(f"cluster {settings.bootstrap_servers} answers: {len(brokers)} broker(s)")
        return
    broker = LocalKafka(settings)
    info = broker.info()
    if not info:
        fail("Kafka is not running: start it with `cadenza kafka start`")
        return
    if not broker.answers():
        fail(f"Kafka (pid {info.pid}) runs but does not answer yet; logs in {broker.log_dir}")
        return
    click.echo(f"Kafka {info.version} running (pid {info.pid}) on {info.bootstrap_servers}")


@kafka.command()
@settings_options
def fetch(settings: Settings) -> None:
    """Only download the broker's jars into the cache (for offline use later)."""
    try:
        path = LocalKafka(settings).fetch()
    except LocalKafkaError as exc:
        fail(str(exc))
        return
    click.echo(f"Kafka jars in {path}")
