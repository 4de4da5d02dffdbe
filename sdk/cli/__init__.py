"""The ``cadenza`` command line."""

from cadenza.cli._main import cli, main

__all__ = ["cli", "main"]
