"""The web UI in a real browser: ``cadenza processors run --http`` serves the page and its
JSON API, a worker runs in this test, and headless Chromium (Debian's, driven by
Playwright) lists, filters, opens, signals and terminates runs as a user would."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Coroutine, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from cadenza import Settings, workflow
from cadenza.client import Client, WorkflowExecutionStatus
from cadenza.topics import TopicAdmin
from cadenza.worker import Worker

from ..conftest import _NAMESPACES

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Response

QUEUE = "web-ui"
CHROMIUM = os.environ.get("CADENZA_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path("/tmp/cadenza-ui.png")
WAIT_MS = 20_000  # the list is eventually consistent: visibility folds history behind the engine
T = TypeVar("T")


@workflow.defn(name="WebApproval")
class Approval:
    def __init__(self) -> None:
        self.answer: str | None = None

    @workflow.run
    async def run(self, who: str) -> str:
        await workflow.wait_condition(lambda: self.answer is not None)
        return f"{who}: {self.answer}"

    @workflow.signal
    def approve(self, answer: str) -> None:
        self.answer = answer


@workflow.defn(name="WebQuick")
class Quick:
    @workflow.run
    async def run(self, n: int) -> int:
        return n * 2


@workflow.defn(name="WebBroken")
class Broken:
    @workflow.run
    async def run(self) -> None:
        raise RuntimeError("a bug in the workflow code")  # fails the task, which is retried


class _LoopThread:
    """An event loop in a thread of its own, for the client and the worker: Playwright's
    sync API, which drives the browser from the test's thread, refuses to run inside one."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def _processors(settings: Settings, data_dir: Path) -> Iterator[str]:
    """``cadenza processors run --http`` as an operator starts it; yields the UI's URL."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CADENZA_")}
    env.update(settings.to_env())
    env["CADENZA_DATA_DIR"] = str(data_dir)
    command = [sys.executable, "-m", "cadenza.cli", "processors", "run", "--log-level", "WARNING"]
    proc = subprocess.Popen([*command, "--http", f"127.0.0.1:{port}"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"`cadenza processors run` exited with {proc.returncode}"
            try:
                with urllib.request.urlopen(f"{url}/api/v1/namespace", timeout=2) as answer:
                    assert answer.status == 200
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, f"nothing answers on {url} after 30 s"
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@contextlib.contextmanager
def _chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, offline; a missing browser fails the test and says why."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "the web UI test needs Playwright for Python: `.venv/bin/pip install playwright` "
            "(`make browser` installs it); never `playwright install`, the browser is Debian's"
        )
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"the web UI test needs Chromium at {CHROMIUM}: `apt-get install -y chromium` "
            "(`make browser` installs it), or set CADENZA_TEST_CHROMIUM to a Chromium binary"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _record_failure(answer: Response, failed: list[str]) -> None:
    """Keeps an HTTP error's body for the assertion message (it is gone after a reload)."""
    if answer.status >= 400:
        try:
            body = answer.text()
        except Exception as exc:  # only for the message
            body = f"(no body: {exc})"
        failed.append(f"{answer.request.method} {answer.url} -> {answer.status} {body}")


def _row(page: Page, workflow_id: str) -> Any:
    return page.locator(f'[data-testid="workflow-row"][data-workflow-id="{workflow_id}"]')


def test_web_ui_lists_opens_signals_and_terminates_runs(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    namespace = f"hweb-{uuid.uuid4().hex[:10]}"
    _NAMESPACES.add(namespace)  # the session deletes its topics at the end
    settings = dataclasses.replace(kafka_settings, namespace=namespace, partitions=2)
    TopicAdmin(settings).create(task_queues=[QUEUE])

    background = _LoopThread()
    errors: list[str] = []
    try:
        with contextlib.ExitStack() as stack:
            browser = stack.enter_context(_chromium())  # first: a missing browser fails fast
            from playwright.sync_api import expect

            url = stack.enter_context(_processors(settings, tmp_path / "data"))
            client = background.run(Client.connect(settings=settings))
            stack.callback(lambda: background.run(client.close()))
            worker = Worker(client, task_queue=QUEUE, workflows=[Approval, Quick, Broken])
            background.run(worker.__aenter__())
            stack.callback(lambda: background.run(worker.__aexit__(None, None, None)))
            alice = background.run(
                client.start_workflow(Approval.run, "alice", id="approve-alice", task_queue=QUEUE)
            )
            bob = background.run(
                client.start_workflow(Approval.run, "bob", id="approve bob/2", task_queue=QUEUE)
            )
            quick = background.run(
                client.start_workflow(Quick.run, 21, id="quick-1", task_queue=QUEUE)
            )
            assert background.run(quick.result()) == 42

            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
            page.on(
                "console",
                lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None,
            )
            failed: list[str] = []
            page.on("response", lambda answer: _record_failure(answer, failed))

            # The list: every run, with its status, newest first.
            page.goto(f"{url}/#/workflows")
            expect(page.get_by_test_id("namespace")).to_have_text(namespace)
            rows = page.get_by_test_id("workflow-row")
            expect(rows).to_have_count(3, timeout=WAIT_MS)
            expect(_row(page, "approve-alice").get_by_test_id("status-badge")).to_have_text(
                "RUNNING"
            )
            expect(_row(page, "quick-1").get_by_test_id("status-badge")).to_have_text("COMPLETED")
            expect(page.get_by_test_id("workflow-count")).to_have_text("3 workflows")
            listed = rows.evaluate_all("rows => rows.map(row => row.dataset.workflowId)")
            assert listed == ["quick-1", "approve bob/2", "approve-alice"]

            # A visibility query narrows it, and the URL keeps it.
            page.get_by_test_id("query-input").fill("ExecutionStatus = 'Running'")
            page.get_by_test_id("query-input").press("Enter")
            expect(rows).to_have_count(2, timeout=WAIT_MS)
            expect(
                page.locator('[data-testid="workflow-row"][data-status="RUNNING"]')
            ).to_have_count(2)
            expect(page.get_by_test_id("workflow-count")).to_have_text("2 workflows")
            assert "query=ExecutionStatus" in page.url

            # So does a status button, alone or beside a query (both must hold).
            page.get_by_test_id("query-clear").click()
            page.get_by_test_id("status-filter-COMPLETED").click()
            expect(rows).to_have_count(1, timeout=WAIT_MS)
            expect(_row(page, "quick-1")).to_be_visible()
            page.get_by_test_id("query-input").fill("WorkflowType = 'WebApproval'")
            page.get_by_test_id("query-submit").click()
            expect(page.get_by_test_id("list-empty")).to_be_visible(timeout=WAIT_MS)
            expect(rows).to_have_count(0)
            page.get_by_test_id("status-filter-ALL").click()
            expect(rows).to_have_count(2, timeout=WAIT_MS)
            page.get_by_test_id("query-clear").click()
            expect(rows).to_have_count(3, timeout=WAIT_MS)

            # A query that does not parse says why, next to the box.
            page.get_by_test_id("query-input").fill("ExecutionStatus = ")
            page.get_by_test_id("query-submit").click()
            query_error = page.get_by_test_id("query-error")
            expect(query_error).to_be_visible(timeout=WAIT_MS)
            expect(query_error).to_contain_text("query")
            expect(rows).to_have_count(0)
            page.get_by_test_id("query-clear").click()
            expect(query_error).to_be_hidden()
            expect(rows).to_have_count(3, timeout=WAIT_MS)

            # A run's page: summary, where it waits, its history; it survives a reload.
            _row(page, "approve-alice").get_by_test_id("workflow-link").click()
            expect(page.get_by_test_id("detail-id")).to_have_text("approve-alice")
            expect(page.get_by_test_id("detail-status")).to_have_text("RUNNING")
            expect(page.get_by_test_id("summary-type")).to_have_text("WebApproval")
            history = page.get_by_test_id("history-row")
            expect(history.first).to_have_attribute("data-event-type", "WorkflowExecutionStarted")
            expect(page.get_by_test_id("last-event")).to_have_count(1)
            expect(page.get_by_test_id("stuck-panel")).to_contain_text("waiting for a signal")
            page.reload()
            expect(page.get_by_test_id("detail-id")).to_have_text("approve-alice")
            history.first.get_by_test_id("event-toggle").click()
            expect(page.get_by_test_id("event-detail").first).to_be_visible()
            expect(page.get_by_test_id("event-detail").first).to_contain_text('"alice"')
            page.screenshot(path=str(SCREENSHOT), full_page=True)

            # Signal it: bad JSON is caught in the page, a good one reaches the workflow.
            page.get_by_test_id("action-signal").click()
            page.get_by_test_id("signal-name").fill("approve")
            page.get_by_test_id("signal-input").fill("yes")
            page.get_by_test_id("signal-confirm").click()
            expect(page.get_by_test_id("signal-error")).to_contain_text("not valid JSON")
            page.get_by_test_id("signal-input").fill('"yes"')
            page.get_by_test_id("signal-confirm").click()
            expect(page.get_by_test_id("signal-dialog")).to_be_hidden()
            assert background.run(alice.result()) == "alice: yes"
            page.get_by_test_id("refresh").click()
            expect(page.get_by_test_id("detail-status")).to_have_text("COMPLETED", timeout=WAIT_MS)
            expect(history.last).to_have_attribute("data-event-type", "WorkflowExecutionCompleted")
            expect(page.get_by_test_id("summary-result")).to_contain_text("alice: yes")
            expect(page.locator('[data-event-type="WorkflowExecutionSignaled"]')).to_contain_text(
                "approve"
            )
            expect(page.get_by_test_id("actions")).to_be_hidden()

            # Terminate the other one from its page (its id needs URL encoding).
            page.get_by_test_id("back-link").click()
            _row(page, "approve bob/2").get_by_test_id("workflow-link").click()
            expect(page.get_by_test_id("detail-status")).to_have_text("RUNNING")
            page.get_by_test_id("action-terminate").click()
            page.get_by_test_id("terminate-reason").fill("stopped from the web UI test")
            page.get_by_test_id("terminate-confirm").click()
            expect(page.get_by_test_id("terminate-dialog")).to_be_hidden()
            expect(page.get_by_test_id("detail-status")).to_have_text("TERMINATED", timeout=WAIT_MS)
            expect(history.last).to_contain_text("stopped from the web UI test")
            described = background.run(bob.describe())
            assert described.status == WorkflowExecutionStatus.TERMINATED

            # And the list catches up with both.
            page.get_by_test_id("back-link").click()
            expect(_row(page, "approve-alice").get_by_test_id("status-badge")).to_have_text(
                "COMPLETED", timeout=WAIT_MS
            )
            expect(_row(page, "approve bob/2").get_by_test_id("status-badge")).to_have_text(
                "TERMINATED", timeout=WAIT_MS
            )

            # A run whose queue has no worker: the page says so, and what to check.
            background.run(
                client.start_workflow(
                    Quick.run,
                    1,
                    id="stranded",
                    task_queue="nobody-serves-this",
                    task_timeout=timedelta(seconds=1),
                )
            )
            page.goto(f"{url}/#/workflows/stranded")
            stuck = page.get_by_test_id("stuck-panel")
            expect(stuck).to_contain_text("for a worker on task queue", timeout=WAIT_MS)
            expect(stuck).to_contain_text("nobody-serves-this")
            expect(stuck).not_to_contain_text("timed out")

            # A run whose workflow code fails: history keeps the first failure only
            # (later attempts are transient), and the page names the current attempt.
            background.run(client.start_workflow(Broken.run, id="broken", task_queue=QUEUE))
            page.goto(f"{url}/#/workflows/broken")
            expect(stuck).to_contain_text("The workflow task is failing", timeout=WAIT_MS)
            expect(stuck).to_contain_text("a bug in the workflow code")
            expect(stuck).to_contain_text(re.compile(r"Attempt [3-9] is"), timeout=WAIT_MS)
            page.close()  # before the server stops under its auto-refresh
        # Chromium logs the API's answers to the bad query (list and count, 400) as console
        # errors; those are expected, and nothing else may be there.
        assert [e for e in errors if "status of 400" not in e] == [], failed
        assert len(errors) <= 2, failed
    finally:
        background.close()
