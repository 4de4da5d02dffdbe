"""`cadenza demo` (the quick start's main job) works against the real broker."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

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


def test_demo_keep_running_leaves_the_web_ui_up_until_stopped(settings: Settings) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "CADENZA_BOOTSTRAP_SERVERS": settings.resolved_bootstrap_servers,
        "CADENZA_NAMESPACE": settings.namespace,
        "CADENZA_PARTITIONS": "2",
        "CADENZA_HTTP_ADDRESS": f"127.0.0.1:{port}",
    }
    demo = subprocess.Popen(
        [sys.executable, "-m", "cadenza.cli", "demo", "--keep-running"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stdout is not None
        lines = []
        for line in demo.stdout:
            lines.append(line)
            if "keeps running" in line:
                break
        assert f"open http://127.0.0.1:{port}" in lines[-1], lines
        [engine] = Path(f"/proc/{demo.pid}/task/{demo.pid}/children").read_text().split()
        url = (
            f"http://127.0.0.1:{port}/api/v1/workflows?query=WorkflowType%3D%27GreetingWorkflow%27"
        )
        deadline = time.monotonic() + 30
        while True:
            with urllib.request.urlopen(url, timeout=10) as response:
                runs = json.loads(response.read())["executions"]
            if runs or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert [r["status"] for r in runs] == ["COMPLETED"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert b"<html" in response.read()
        # A plain kill stops the demo and the engine it started.
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(30) == 0
        assert not Path(f"/proc/{engine}").exists() or _zombie(int(engine))
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)


def _zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
