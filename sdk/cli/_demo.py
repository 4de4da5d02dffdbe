"""``cadenza demo``: the main job of the quick start, end to end on a real broker.

It starts the local broker (unless CADENZA_BOOTSTRAP_SERVERS names a cluster),
creates and verifies the namespace's topics, starts the engine as its own
process, runs a worker and a client in this one, and takes a sample workflow
(an activity, a durable timer, a signal) to completion.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import click

from cadenza._settings import Settings
from cadenza.cli._common import fail, settings_options
from cadenza.localkafka import LocalKafka, LocalKafkaError
from cadenza.topics import TopicAdmin, TopicAdminError


def _step(text: str) -> None:
    click.echo(click.style("==> ", fg="cyan") + text)


@click.command()
@settings_options
@click.option("--task-queue", default="demo", show_default=True, help="Task queue of the demo.")
@click.option(
    "--keep-running",
    is_flag=True,
    help="Leave the engine (and its web UI) running after the workflow, until Ctrl-C.",
)
def demo(settings: Settings, task_queue: str, keep_running: bool) -> None:
    """Run the quick-start job: broker, topics, engine, and a workflow to completion."""
    if settings.uses_local_broker:
        _step("starting the local Kafka broker")
        try:
            LocalKafka(settings).start()
        except LocalKafkaError as exc:
            fail(str(exc))
    _step(f"creating the topics of namespace {settings.namespace!r}")
    admin = TopicAdmin(settings)
    try:
        created = admin.create(task_queues=[task_queue])
        click.echo(f"    created {len(created.created)}, {len(created.existed)} already existed")
        drift = admin.verify(task_queues=[task_queue])
    except TopicAdminError as exc:
        fail(str(exc))
        return
    if drift:
        fail("topic drift:\n" + "\n".join(f"  - {d.message}" for d in drift))
    click.echo("    verified: every topic matches the catalog")

    _step("starting the engine (cadenza processors run) in the background")
    engine = _start_engine(settings)
    try:
        result = asyncio.run(_run_sample(settings, task_queue))
        _step(f"done: the workflow returned {result!r}")
        ui = "the web UI" if settings.http_address == "off" else f"http://{settings.http_address}"
        if keep_running:
            _step(f"the engine keeps running: open {ui}, or try `cadenza workflow list`")
            click.echo("    Ctrl-C stops it")
            signal.signal(signal.SIGTERM, _interrupt)  # stop the engine on a plain kill too
            try:
                engine.wait()
            except KeyboardInterrupt:
                pass
        else:
            click.echo(
                f"    to look at it: `cadenza processors run`, then open {ui} "
                "or run `cadenza workflow list` (or `cadenza demo --keep-running`)"
            )
    finally:
        engine.send_signal(signal.SIGTERM)
        engine.wait(30)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _start_engine(settings: Settings) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CADENZA_BOOTSTRAP_SERVERS": settings.resolved_bootstrap_servers,
        "CADENZA_NAMESPACE": settings.namespace,
    }
    log = Path(settings.data_dir) / "demo-engine.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cadenza.cli", "processors", "run"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def _run_sample(settings: Settings, task_queue: str) -> str:
    from cadenza.cli._demo_workflow import GreetingWorkflow, compose_greeting
    from cadenza.client import Client
    from cadenza.worker import Worker

    client = await Client.connect(settings=settings)
    try:
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[GreetingWorkflow],
            activities=[compose_greeting],
        ):
            workflow_id = f"greeting-{uuid.uuid4().hex[:8]}"
            _step(f"starting GreetingWorkflow {workflow_id} on task queue {task_queue!r}")
            handle = await client.start_workflow(
                GreetingWorkflow.run, "Kafka", id=workflow_id, task_queue=task_queue
            )
            _step("the workflow runs its activity, sleeps durably, then waits for a signal")
            await asyncio.sleep(1.0)
            await handle.signal(GreetingWorkflow.approve)
            _step("signalled approve; waiting for the result")
            result: str = await asyncio.wait_for(handle.result(), 60)
            history = await handle.fetch_history()
            click.echo(f"    history: {len(history.events)} events on Kafka")
            return result
    finally:
        await client.close()
