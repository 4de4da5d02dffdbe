"""``cadenza topics create|verify|describe``: the namespace's Kafka topics."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from cadenza._settings import Settings
from cadenza.cli._common import fail, settings_options
from cadenza.topics import (
    TopicAdmin,
    TopicAdminError,
    TopicNameError,
    TopicRow,
    format_retention,
)
from cadenza.topics._admin import DEFAULT_TIMEOUT

_task_queue_option = click.option(
    "--task-queue",
    "-q",
    "task_queues",
    multiple=True,
    metavar="QUEUE",
    help="Include the workflow-task and activity-task topics of this task queue (repeatable).",
)

_timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds to wait for Kafka on each request.",
)


@click.group()
def topics() -> None:
    """Create, verify and describe the namespace's Kafka topics."""


@contextmanager
def _errors() -> Iterator[None]:
    # Library errors already say what to do; show them without a traceback.
    try:
        yield
    except TopicNameError as exc:
        raise click.UsageError(str(exc)) from None
    except TopicAdminError as exc:
        fail(str(exc))


def _where(settings: Settings) -> str:
    return f"namespace {settings.namespace} on {settings.resolved_bootstrap_servers}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


@topics.command()
@settings_options
@_task_queue_option
@_timeout_option
def create(settings: Settings, task_queues: tuple[str, ...], timeout: float) -> None:
    """Create the namespace's topics; existing topics are left as they are.

    Makes commands, history, replies, dead-letters, the changelogs of the known
    state stores, and the two task topics of each --task-queue.
    """
    started = time.monotonic()
    with _errors():
        result = TopicAdmin(settings, timeout=timeout).create(task_queues)
    elapsed = time.monotonic() - started
    for name in result.created:
        click.echo(f"  created {name}")
    click.echo(
        f"created {_plural(len(result.created), 'topic')}, {len(result.existed)} already "
        f"existed in {_where(settings)} ({elapsed:.2f}s)"
    )
    if result.existed:
        click.echo("existing topics were not changed; `cadenza topics verify` checks them")


@topics.command()
@settings_options
@_timeout_option
@click.option("--yes", is_flag=True, help="Do delete (without it, only list what would go).")
def delete(settings: Settings, timeout: float, yes: bool) -> None:
    """Delete every topic of the namespace: its workflows and history are gone for good.

    Meant for throw-away namespaces (benchmarks, experiments). Without --yes it
    lists the topics and deletes nothing.
    """
    with _errors():
        admin = TopicAdmin(settings, timeout=timeout)
        if not yes:
            existing = admin.namespace_topic_names()
            for name in existing:
                click.echo(f"  would delete {name}")
            click.echo(
                f"{_plural(len(existing), 'topic')} of namespace {settings.namespace!r}; "
                "run again with --yes to delete them"
            )
            return
        deleted = admin.delete_namespace()
    for name in deleted:
        click.echo(f"  deleted {name}")
    click.echo(f"deleted {_plural(len(deleted), 'topic')} of namespace {settings.namespace!r}")


@topics.command()
@settings_options
@_task_queue_option
@_timeout_option
def verify(settings: Settings, task_queues: tuple[str, ...], timeout: float) -> None:
    """Check the namespace's topics against the catalog; exit 1 on any difference.

    Checks existence, partition count, replication, cleanup.policy, retention.ms and
    the changelogs' compaction configs, of the fixed topics, the --task-queue topics
    and every task-queue topic the namespace already has.
    """
    with _errors():
        rows = TopicAdmin(settings, timeout=timeout).describe(task_queues)
    drifts = [drift for row in rows for drift in row.drift]
    if not drifts:
        click.echo(f"ok: the {_plural(len(rows), 'topic')} of {_where(settings)} match the catalog")
        return
    for drift in drifts:
        click.echo(f"- {drift.message}")
    fail(
        f"{_plural(len(drifts), 'difference')} from the catalog in {_where(settings)} "
        f"({sum(1 for row in rows if row.drift)} of {_plural(len(rows), 'topic')})"
    )


_COLUMNS: tuple[tuple[str, Callable[[TopicRow], str]], ...] = (
    ("TOPIC", lambda row: row.name),
    ("PARTITIONS", lambda row: str(row.partitions)),
    ("REPLICAS", lambda row: str(row.replication_factor)),
    ("CLEANUP", lambda row: row.cleanup_policy),
    ("RETENTION", lambda row: format_retention(row.retention_ms)),
    ("STATUS", lambda row: row.status),
)


def _table(rows: list[TopicRow]) -> list[str]:
    cells = [[header for header, _ in _COLUMNS]]
    cells.extend([cell(row) for _, cell in _COLUMNS] for row in rows)
    widths = [max(len(line[i]) for line in cells) for i in range(len(_COLUMNS))]
    return [
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in cells
    ]


@topics.command()
@settings_options
@_task_queue_option
@_timeout_option
def describe(settings: Settings, task_queues: tuple[str, ...], timeout: float) -> None:
    """List the namespace's topics with their partitions, cleanup policy and retention.

    Shows the cluster's values for topics that exist and the catalog's for missing
    ones; STATUS is ok, missing or drift (`cadenza topics verify` explains a drift).
    """
    with _errors():
        rows = TopicAdmin(settings, timeout=timeout).describe(task_queues)
    click.echo(_where(settings))
    for line in _table(rows):
        click.echo(line)
