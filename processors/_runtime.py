"""Process-wide settings for the processors' own processes (never for a library user's)."""

from __future__ import annotations

import gc

GC_THRESHOLD = (50_000, 10, 10)
"""Collect the youngest generation every 50,000 net allocations instead of CPython's 700.

A processor allocates a handful of dicts per event and frees them by reference
counting; what it keeps (run states, cached decoded values) is long-lived. At
the default threshold the collector ran every few commands and its older-
generation passes walked the whole state cache: about a third of the engine's
CPU on StartWorkflow (scripts/engine_ingest.py: 81-94 -> 60-64 CPU-us per
start). Cycles are still collected, just in larger steps."""


def tune_gc() -> None:
    """Apply :data:`GC_THRESHOLD` and move what startup allocated (modules, generated
    codec code) out of the collector's way: call once a process's imports are done."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
