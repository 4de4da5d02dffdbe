"""The processors' own processes tune the garbage collector; a library user's never is."""

from __future__ import annotations

import subprocess
import sys

from cadenza.processors._runtime import GC_THRESHOLD


def _in_fresh_interpreter(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


def test_tune_gc_sets_the_threshold_and_freezes_what_startup_allocated() -> None:
    out = _in_fresh_interpreter(
        "import gc\n"
        "from cadenza.processors._runtime import tune_gc\n"
        "tune_gc()\n"
        "print(gc.get_threshold(), gc.get_freeze_count() > 0)\n"
    )
    assert out == f"{GC_THRESHOLD} True"


def test_importing_the_sdk_and_the_processors_leaves_the_collector_alone() -> None:
    out = _in_fresh_interpreter(
        "import gc\n"
        "default = gc.get_threshold()\n"
        "import cadenza, cadenza.client, cadenza.worker, cadenza.processors.engine\n"
        "import cadenza.processors.visibility\n"
        "print(gc.get_threshold() == default, gc.get_freeze_count())\n"
    )
    assert out == "True 0"
