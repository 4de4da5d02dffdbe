"""A workflow whose worker is killed with SIGKILL mid-activity completes on another worker.

The first worker runs in a subprocess (``tests.integration.worker_process``); it is
killed while the activity runs, so it answers nothing and leaves its consumer groups
without a word. A second worker takes the task queue's partitions over once the
broker gives up on the dead one, and the activity runs again (at least once, as in
Temporal): its start-to-close timeout (3 s) re-dispatches the lost attempt.

Worker consumers use a 6 s session timeout (``cadenza.worker._consumer``); with
librdkafka's default of 45 s this test took 51 s.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from cadenza import Settings
from cadenza.client import Client
from cadenza.worker import Worker

from .sdk_support import attributes, event_name, run_scenario, wait_until
from .worker_process import CrashProof, slow_step, spawn

QUEUE = "sdk-kill"


def test_workflow_completes_after_its_worker_is_killed(settings: Settings, tmp_path: Path) -> None:
    marker = tmp_path / "attempts.log"
    marker.touch()
    log = tmp_path / "worker-process.log"

    def lines() -> list[str]:
        return marker.read_text().splitlines()

    async def scenario(client: Client) -> None:
        process = spawn(settings, QUEUE, log)
        try:
            assert process.stdout is not None
            ready = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 30)
            assert ready.strip() == "ready", f"worker process: {ready!r}\n{log.read_text()}"

            began = time.monotonic()
            handle = await client.start_workflow(
                CrashProof.run, str(marker), id="crash-proof", task_queue=QUEUE
            )
            await wait_until(
                lambda: f"start {process.pid} 1" in lines(),
                timeout=10,
                what="the worker process starting the activity",
            )
            os.kill(process.pid, signal.SIGKILL)
            assert await asyncio.to_thread(process.wait, 10) == -signal.SIGKILL
            assert f"done {process.pid} 1" not in lines(), "killed too late: the activity finished"

            async with Worker(
                client, task_queue=QUEUE, workflows=[CrashProof], activities=[slow_step]
            ):
                result = await handle.result()
            elapsed = time.monotonic() - began
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        assert result.startswith(f"done by {os.getpid()} on attempt "), result
        attempt = int(result.rsplit(" ", 1)[-1])
        assert f"done {os.getpid()} {attempt}" in lines(), lines()
        # The dead worker's partitions move after the 6 s session timeout; by then the
        # engine has re-dispatched the lost attempt (start-to-close 3 s) at least once.
        assert attempt >= 2, f"completed by attempt {attempt}: {lines()}"
        assert elapsed < 20, (
            f"the workflow took {elapsed:.1f}s to complete after its worker was killed: "
            "the new worker must take the dead one's partitions over in seconds"
        )
        history = await handle.fetch_history()
        names = [event_name(e) for e in history.events]
        assert names[-1] == "WorkflowExecutionCompleted", names
        started = [attributes(e) for e in history.events if event_name(e) == "ActivityTaskStarted"]
        assert [s["attempt"] for s in started] == [attempt]

    run_scenario(settings, tmp_path, scenario, task_queues=[QUEUE], timeout=90)
