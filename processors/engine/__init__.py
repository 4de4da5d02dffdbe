"""The workflow engine: event-sourced command processing on Kafka with RocksDB state."""

from ._decide import Rejected, decide, retry_delay_ms
from ._processor import Engine, run_engine

__all__ = ["Engine", "Rejected", "decide", "retry_delay_ms", "run_engine"]
