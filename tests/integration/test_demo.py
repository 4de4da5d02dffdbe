"""`cadenza demo` (the quick start's main job) works against the real broker."""

import os
import subprocess
import sys

from cadenza import Settings


def test_demo_runs_to_the_end(settings: Settings) -> None:
    env = {
        **os.environ,
        "CADENZA_BOOTSTRAP_SERVERS": settings.resolved_bootstrap_servers,
        "CADENZA_NAMESPACE": settings.namespace,
        "CADENZA_PARTITIONS": "2",
    }
    out = subprocess.run(
        [sys.executable, "-m", "cadenza.cli", "demo"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "verified: every topic matches the catalog" in out.stdout
    assert "done: the workflow returned 'Hello, Kafka!'" in out.stdout
