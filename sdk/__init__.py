"""Cadenza: durable execution with Temporal's programming model on nothing but Apache Kafka."""

from cadenza._settings import Settings, SettingsError

__all__ = ["Settings", "SettingsError", "__version__"]

__version__ = "0.1.0"
