"""Options every CLI command shares, resolved into one :class:`cadenza.Settings`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from cadenza._settings import Settings, SettingsError

F = TypeVar("F", bound=Callable[..., Any])


def settings_options(func: F) -> F:
    """Add --namespace/--bootstrap-servers/--partitions and pass ``settings=`` to the command."""

    @click.option(
        "--namespace",
        "-n",
        default=None,
        help="Topic prefix [env CADENZA_NAMESPACE, default 'cadenza'].",
    )
    @click.option(
        "--bootstrap-servers",
        default=None,
        help="Existing Kafka cluster [env CADENZA_BOOTSTRAP_SERVERS, default: the local broker].",
    )
    @click.option(
        "--partitions",
        type=int,
        default=None,
        help="Partitions of commands/history when creating topics [env CADENZA_PARTITIONS, 16].",
    )
    @functools.wraps(func)
    def wrapper(
        *args: Any,
        namespace: str | None,
        bootstrap_servers: str | None,
        partitions: int | None,
        **kwargs: Any,
    ) -> Any:
        try:
            settings = Settings.from_env(
                namespace=namespace,
                bootstrap_servers=bootstrap_servers,
                partitions=str(partitions) if partitions is not None else None,
            )
        except SettingsError as exc:
            raise click.UsageError(str(exc)) from None
        return func(*args, settings=settings, **kwargs)

    return wrapper  # type: ignore[return-value]


def fail(message: str) -> None:
    """Stop the command with ``message`` on stderr and exit status 1."""
    raise click.ClickException(message)
