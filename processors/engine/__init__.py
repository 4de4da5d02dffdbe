"""The workflow engine: event-sourced command processing on Kafka with RocksDB state."""

from ._common import Rejected, retry_delay_ms
from ._decide import decide
from ._processor import Engine, run_engine
from ._replay import RebuildReport, rebuild, scheduling_fields

__all__ = [
    "Engine",
    "RebuildReport",
    "Rejected",
    "decide",
    "rebuild",
    "retry_delay_ms",
    "run_engine",
    "scheduling_fields",
]
