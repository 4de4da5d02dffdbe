"""``cadenza processors run`` as an operator runs it: the engine process and its
visibility child, on the real broker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cadenza import Settings, workflow
from cadenza.client import Client, WorkflowExecutionStatus
from cadenza.topics import TopicAdmin


@workflow.defn
class Idle:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _wait_until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_visibility_runs_as_a_child_and_dies_with_its_engine(
    settings: Settings, tmp_path: Path
) -> None:
    TopicAdmin(settings).create()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CADENZA_")}
    env.update(settings.to_env())
    env["CADENZA_DATA_DIR"] = str(tmp_path)
    engine = subprocess.Popen(
        [sys.executable, "-m", "cadenza.cli", "processors", "run", "--log-level", "WARNING"],
        env=env,
    )
    try:
        _wait_until(lambda: _children(engine.pid), 30, "the visibility child to start")
        [child] = _children(engine.pid)

        async def listed() -> list[str]:
            client = await Client.connect(settings=settings)
            try:
                await client.start_workflow(Idle.run, id="idle-1", task_queue="cli")
                for _ in range(100):
                    found = [w async for w in client.list_workflows("WorkflowType = 'Idle'")]
                    if found:
                        assert found[0].status == WorkflowExecutionStatus.RUNNING
                        return [w.id for w in found]
                    await asyncio.sleep(0.2)
                return []
            finally:
                await client.close()

        # The child answers list requests: the projection runs in its own process.
        assert asyncio.run(asyncio.wait_for(listed(), 60)) == ["idle-1"]
        assert _alive(child)

        # An engine killed outright does not leave its projection behind.
        os.kill(engine.pid, signal.SIGKILL)
        engine.wait(10)
        _wait_until(lambda: not _alive(child), 10, "the visibility child to exit")
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait(10)
