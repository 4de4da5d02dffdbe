"""``cadenza workflow ...``: start, list, inspect and operate workflows as ``temporal workflow``.

The subcommands and their flags follow the Temporal CLI (``list -q``, ``describe
-w``, ``show --follow``, ``start --type -t -w -i``, ``signal --name``, ``query
--type``, ...). Each connects a :class:`~cadenza.client.Client` from the shared
settings options, does one thing and closes it. ``-o json`` prints the JSON view
of ``cadenza.client._json``, the same one the HTTP API serves.

Failures exit with status 1 and one message that says what to do, never a
traceback: a workflow that does not exist, a query that does not parse, an
``--input`` that is not JSON, an engine or visibility processor that does not
answer, a broker that cannot be reached.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click

from cadenza._settings import Settings
from cadenza.cli._common import settings_options

if TYPE_CHECKING:
    from cadenza.client import Client, WorkflowExecution

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

Answerer = Literal["engine", "visibility", "worker"]
"""Who must answer a command: decides what a timeout means and what to advise."""

_CLOSING_EVENTS = frozenset(
    {
        "WorkflowExecutionCompleted",
        "WorkflowExecutionFailed",
        "WorkflowExecutionTimedOut",
        "WorkflowExecutionCanceled",
        "WorkflowExecutionTerminated",
        "WorkflowExecutionContinuedAsNew",
    }
)

_FOLLOW_INTERVAL = 1.0
"""Seconds between two reads of history under ``show --follow``."""


class _BadInput(click.UsageError):
    """A usage error (shown with the usage line) that exits 1, as every failure here does."""

    exit_code = 1


# -- options shared by the subcommands -------------------------------------------------


def _parse_inputs(ctx: click.Context, param: click.Parameter, texts: tuple[str, ...]) -> list[Any]:
    values = []
    for number, text in enumerate(texts, 1):
        try:
            values.append(json.loads(text))
        except json.JSONDecodeError as exc:
            raise _BadInput(
                f"--input #{number} ({text!r}) is not valid JSON ({exc.msg} at column "
                f"{exc.colno}): each --input is one JSON value, so quote strings, e.g. "
                "-i '\"Kafka\"' -i 42 -i '{\"id\": 7}'",
                ctx,
            ) from None
    return values


_input_option = click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    metavar="JSON",
    callback=_parse_inputs,
    help="One argument as a JSON value; repeat it for several arguments.",
)
_workflow_id_option = click.option("--workflow-id", "-w", required=True, help="Workflow id.")
_run_id_option = click.option(
    "--run-id", "-r", default=None, help="Run id [default: the latest run of the workflow]."
)
_output_option = click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
_timeout_option = click.option(
    "--command-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds to wait for Kafka, and for the engine's answer to each request.",
)


def _start_options(func: F) -> F:
    """The options ``start`` and ``execute`` share: what to start, and where."""
    func = click.option(
        "--workflow-id", "-w", default=None, help="Workflow id [default: a new UUID]."
    )(func)
    func = click.option(
        "--task-queue", "-t", required=True, help="Task queue of the workflow's workers."
    )(func)
    return click.option("--type", "workflow_type", required=True, help="Workflow type name.")(func)


@click.group()
def workflow() -> None:
    """Start, list, inspect and operate workflows (the `temporal workflow` commands)."""


# -- running a client call, and what its errors mean ---------------------------------


def _run(
    settings: Settings,
    command_timeout: float,
    action: Callable[[Client], Awaitable[T]],
    *,
    answered_by: Answerer = "engine",
    workflow_id: str | None = None,
    run_id: str | None = None,
) -> T:
    """Connect a client, run ``action`` with it, close it; turn errors into messages."""
    from cadenza.client import (
        CadenzaServiceError,
        Client,
        RPCTimeoutOrCancelledError,
        TransportError,
        WorkflowAlreadyStartedError,
        WorkflowFailureError,
        WorkflowQueryFailedError,
    )
    from cadenza.topics import TopicNameError

    timeout = timedelta(seconds=command_timeout)

    async def main() -> T:
        client = await Client.connect(
            settings=settings, rpc_timeout=timeout, connect_timeout=timeout
        )
        try:
            return await action(client)
        finally:
            await client.close()

    ns = settings.namespace
    try:
        return asyncio.run(main())
    except CadenzaServiceError as exc:
        if exc.code == "NOT_FOUND" and workflow_id is not None:
            run = f" run {run_id!r}" if run_id else ""
            raise click.ClickException(
                f"workflow {workflow_id!r}{run} not found in namespace {ns!r}: check "
                f"--workflow-id{' and --run-id' if run_id else ''} and --namespace "
                f"(`cadenza workflow list -n {ns}` lists the namespace's workflows)"
            ) from None
        if exc.code == "INVALID_ARGUMENT" and answered_by == "visibility":
            reason = exc.message.removeprefix("invalid query: ")
            raise _BadInput(
                f"invalid --query: {reason} (the syntax is Temporal's list filter, e.g. "
                "\"WorkflowType = 'Order' AND ExecutionStatus = 'Running'\")",
                click.get_current_context(silent=True),
            ) from None
        if exc.code == "ALREADY_CLOSED" and workflow_id is not None:
            raise click.ClickException(
                f"workflow {workflow_id!r} is already closed ({exc.message}): "
                f"`cadenza workflow describe -w {workflow_id} -n {ns}` shows how it ended"
            ) from None
        raise click.ClickException(f"the engine rejected the request: {exc}") from None
    except RPCTimeoutOrCancelledError as exc:
        raise click.ClickException(
            _no_answer(settings, command_timeout, answered_by, exc)
        ) from None
    except TransportError as exc:  # Kafka unreachable, topics missing: the message says what to do
        raise click.ClickException(str(exc)) from None
    except WorkflowAlreadyStartedError:
        raise click.ClickException(
            f"workflow {workflow_id!r} is already running in namespace {ns!r}: choose another "
            f"--workflow-id, or wait for it (`cadenza workflow result -w {workflow_id} -n {ns}`)"
        ) from None
    except WorkflowQueryFailedError as exc:
        raise click.ClickException(f"the query failed: {exc}") from None
    except WorkflowFailureError as exc:
        raise click.ClickException(_failure_text(workflow_id, exc.cause)) from None
    except TopicNameError as exc:
        raise _BadInput(str(exc), click.get_current_context(silent=True)) from None


def _no_answer(
    settings: Settings, command_timeout: float, answered_by: Answerer, exc: Exception
) -> str:
    ns = settings.namespace
    running = f"is `cadenza processors run` running for namespace {ns}"
    where = f"on {settings.resolved_bootstrap_servers}"
    if answered_by == "visibility":
        headline = (
            f"the visibility processor did not answer within {command_timeout:g}s: {running} "
            f"{where}? (With --no-visibility, run `cadenza processors visibility -n {ns}`.)"
        )
    elif answered_by == "worker":
        headline = (
            f"no answer to the query within {command_timeout:g}s: {running} {where}, and is a "
            "worker polling the workflow's task queue? (A worker answers queries.)"
        )
    else:
        headline = f"the engine did not answer within {command_timeout:g}s: {running} {where}?"
    return f"{headline}\n  ({exc})"


def _failure_text(workflow_id: str | None, cause: BaseException) -> str:
    from cadenza.exceptions import CancelledError, TerminatedError, TimeoutError

    if isinstance(cause, CancelledError):
        ended = "was canceled"
    elif isinstance(cause, TerminatedError):
        ended = "was terminated"
    elif isinstance(cause, TimeoutError):
        ended = "timed out"
    else:
        ended = "failed"
    lines = [f"workflow {workflow_id!r} {ended}: {_exception_text(cause)}"]
    seen = {id(cause)}
    inner = cause.__cause__
    while inner is not None and id(inner) not in seen:
        seen.add(id(inner))
        lines.append(f"  caused by {_exception_text(inner)}")
        inner = inner.__cause__
    return "\n".join(lines)


def _exception_text(exc: BaseException) -> str:
    from cadenza.exceptions import ApplicationError, FailureError

    name = type(exc).__name__
    if isinstance(exc, ApplicationError):
        kind = f" ({exc.type})" if exc.type else ""
        return f"{name}{kind}: {exc.message}"
    if isinstance(exc, FailureError):
        return f"{name}: {exc.message}"
    return f"{name}: {exc}"


# -- formatting ------------------------------------------------------------------------


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _one_line_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _status_name(status: str) -> str:
    """``CONTINUED_AS_NEW`` -> ``ContinuedAsNew``, as ``ExecutionStatus`` is spelled in queries."""
    return "".join(part.title() for part in status.split("_"))


def _when(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    cells = [list(headers), *[list(row) for row in rows]]
    widths = [max(len(line[i]) for line in cells) for i in range(len(headers))]
    return [
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in cells
    ]


def _block(title: str, pairs: Sequence[tuple[str, str]]) -> list[str]:
    width = max(len(key) for key, _ in pairs)
    return [title, *(f"  {key.ljust(width)}  {value}" for key, value in pairs)]


# -- list, count -----------------------------------------------------------------------

_query_option = click.option(
    "--query",
    "-q",
    default=None,
    help="Temporal list filter, e.g. \"WorkflowType = 'Order' AND ExecutionStatus = 'Running'\".",
)


@workflow.command("list")
@settings_options
@_query_option
@click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="Show at most this many runs."
)
@_output_option
@_timeout_option
def list_(
    settings: Settings, query: str | None, limit: int | None, output: str, command_timeout: float
) -> None:
    """List workflow runs, newest first (or as the query's ORDER BY says).

    Needs the visibility processor, which `cadenza processors run` runs.
    """
    from cadenza.client._json import execution_json

    async def fetch(client: Client) -> list[WorkflowExecution]:
        return [e async for e in client.list_workflows(query, limit=limit)]

    executions = _run(settings, command_timeout, fetch, answered_by="visibility")
    if output == "json":
        _echo_json([execution_json(e) for e in executions])
        return
    rows = [
        (
            _status_name(e.status.name),
            e.id,
            e.workflow_type,
            _when(e.start_time),
            _when(e.close_time),
        )
        for e in executions
    ]
    for line in _table(("Status", "WorkflowId", "Type", "StartTime", "CloseTime"), rows):
        click.echo(line)


@workflow.command()
@settings_options
@_query_option
@_timeout_option
def count(settings: Settings, query: str | None, command_timeout: float) -> None:
    """Count the workflow runs the query matches (all runs without one)."""

    async def fetch(client: Client) -> int:
        return (await client.count_workflows(query)).count

    total = _run(settings, command_timeout, fetch, answered_by="visibility")
    click.echo(f"Total: {total}")


# -- describe --------------------------------------------------------------------------


@workflow.command()
@settings_options
@_workflow_id_option
@_run_id_option
@_output_option
@_timeout_option
def describe(
    settings: Settings, workflow_id: str, run_id: str | None, output: str, command_timeout: float
) -> None:
    """Show a run's status, type, task queue, times, history length and pending work."""
    from cadenza.client._json import description_json, execution_json

    async def fetch(client: Client) -> dict[str, Any]:
        description = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
        return description_json(description.raw_description, execution_json(description))

    view = _run(settings, command_timeout, fetch, workflow_id=workflow_id, run_id=run_id)
    if output == "json":
        _echo_json(view)
        return
    for line in _describe_lines(view):
        click.echo(line)


def _iso_text(value: str | None) -> str:
    if value is None:
        return "-"
    return _when(datetime.fromisoformat(value.replace("Z", "+00:00")))


def _describe_lines(view: Mapping[str, Any]) -> list[str]:
    pairs = [
        ("WorkflowId", str(view["workflowId"])),
        ("RunId", str(view["runId"])),
        ("Type", str(view["type"])),
        ("TaskQueue", str(view["taskQueue"])),
        ("Status", _status_name(str(view["status"]))),
        ("StartTime", _iso_text(view["startTime"])),
        ("ExecutionTime", _iso_text(view["executionTime"])),
        ("CloseTime", _iso_text(view["closeTime"])),
        ("HistoryLength", str(view["historyLength"])),
    ]
    if view.get("parentWorkflowId"):
        pairs.append(("Parent", f"{view['parentWorkflowId']} (run {view['parentRunId']})"))
    if view.get("memo"):
        pairs.append(("Memo", _one_line_json(view["memo"])))
    if view.get("searchAttributes"):
        pairs.append(("SearchAttributes", _one_line_json(view["searchAttributes"])))
    lines = _block("Execution Info:", pairs)

    activities = list(view.get("pendingActivities") or [])
    lines += ["", f"Pending Activities: {len(activities)}"]
    if activities:
        rows = [
            (
                str(a.get("activity_id", "")),
                str(a.get("activity_type", "")),
                str(a.get("state", "")),
                str(a.get("attempt", "")),
                _failure_summary(a.get("last_failure")) or "-",
            )
            for a in activities
        ]
        table = _table(("ActivityId", "Type", "State", "Attempt", "LastFailure"), rows)
        lines += [f"  {line}" for line in table]

    children = list(view.get("pendingChildren") or [])
    lines += ["", f"Pending Child Workflows: {len(children)}"]
    if children:
        child_rows = [
            (
                str(c.get("workflow_id", "")),
                str(c.get("run_id") or "-"),
                str(c.get("workflow_type", "")),
            )
            for c in children
        ]
        lines += [f"  {line}" for line in _table(("WorkflowId", "RunId", "Type"), child_rows)]

    task = view.get("pendingWorkflowTask")
    if task:
        # Attempts after the first are not in history (as in Temporal): say so here.
        lines += ["", f"Pending Workflow Task: {task['state']}, attempt {task['attempt']}"]
        if task["attempt"] > 1:
            lines.append("  its earlier attempts failed or timed out: see the worker's log")
    return lines


# -- show ------------------------------------------------------------------------------


@workflow.command()
@settings_options
@_workflow_id_option
@_run_id_option
@_output_option
@click.option(
    "--follow",
    "-f",
    is_flag=True,
    help="Keep printing new events until the run closes (with -o json: one event per line).",
)
@_timeout_option
def show(
    settings: Settings,
    workflow_id: str,
    run_id: str | None,
    output: str,
    follow: bool,
    command_timeout: float,
) -> None:
    """Show a run's history: one line per event with its id, time, type and a summary.

    History is read from the namespace's `history` topic, so this works without the
    engine. Without --run-id it shows the latest run.
    """
    from cadenza.client import CadenzaServiceError
    from cadenza.client._history import RunHistory, read_history
    from cadenza.client._json import event_json
    from cadenza.topics import history_topic

    collected: list[dict[str, Any]] = []

    def emit(event: Mapping[str, Any]) -> None:
        view = event_json(event)
        if output == "json" and not follow:
            collected.append(view)
        elif output == "json":
            click.echo(json.dumps(view, ensure_ascii=False))
        else:
            click.echo(_event_line(view))

    async def read(client: Client) -> None:
        partitions = client.transport.partitions_of(history_topic(client.settings))
        history: RunHistory | None = None
        last_id = 0
        while True:
            # After the first read, read only what was written since; stay on the
            # run first shown, even when it continues as new meanwhile.
            history = await asyncio.to_thread(
                read_history,
                client.settings,
                workflow_id,
                run_id if history is None else history.run_id,
                partitions=partitions,
                since=history,
            )
            events = history.events
            if not events:
                if last_id == 0:
                    raise CadenzaServiceError("no history", "NOT_FOUND")
                await asyncio.sleep(_FOLLOW_INTERVAL)
                continue
            history.latest = False
            for event in events:
                if int(event["event_id"]) > last_id:
                    emit(event)
                    last_id = int(event["event_id"])
            if not follow or _event_type(events[-1]) in _CLOSING_EVENTS:
                return
            await asyncio.sleep(_FOLLOW_INTERVAL)

    _run(settings, command_timeout, read, workflow_id=workflow_id, run_id=run_id)
    if collected:
        _echo_json({"events": collected})


def _event_type(event: Mapping[str, Any]) -> str:
    return str(event["attributes"][0]).rsplit(".", 1)[-1]


def _event_line(view: Mapping[str, Any]) -> str:
    when = _iso_text(view["eventTime"])
    return f"{view['eventId']:>4}  {when}  {view['eventType']:<32}  {_summary(view)}".rstrip()


# Fields worth a glance, for the events whose attributes are long; other events
# show every field that has a value, less those in _QUIET.
_SUMMARY_FIELDS: dict[str, tuple[str, ...]] = {
    "WorkflowExecutionStarted": ("workflow_type", "task_queue", "input", "parent", "attempt"),
    "WorkflowExecutionContinuedAsNew": ("new_execution_run_id", "workflow_type", "input"),
    "ActivityTaskScheduled": ("activity_id", "activity_type", "task_queue", "input"),
    "StartChildWorkflowExecutionInitiated": ("workflow_id", "workflow_type", "task_queue", "input"),
    "WorkflowExecutionUpdateAccepted": ("update_id",),
    "WorkflowExecutionUpdateAdmitted": (),
}
_QUIET = frozenset(
    {
        "header",
        "identity",
        "request_id",
        "binary_checksum",
        "workflow_task_completed_event_id",
        "memo",
        "search_attributes",
    }
)
_PLAIN = re.compile(r"^[\w.:/@+-]+$")
_MAX_VALUE = 80


def _summary(view: Mapping[str, Any]) -> str:
    attributes: Mapping[str, Any] = view["attributes"]
    if not isinstance(attributes, Mapping):
        return ""
    chosen = _SUMMARY_FIELDS.get(str(view["eventType"]))
    if chosen is None:
        keys = [k for k in attributes if k not in _QUIET]
    else:
        keys = [k for k in chosen if k in attributes]
    parts = []
    for key in keys:
        value = attributes[key]
        if value is None or value == "" or value == [] or value == {}:
            continue
        if key == "attempt" and value == 1:
            continue
        parts.append(_field_text(key, value))
    return ", ".join(parts)


def _field_text(key: str, value: Any) -> str:
    if key in ("failure", "last_failure", "continued_failure") and isinstance(value, Mapping):
        text = _one_line_json(_failure_summary(value))
    elif key.endswith("_time_ms") and isinstance(value, int):
        key, text = key[: -len("_ms")], _when(datetime.fromtimestamp(value / 1000, tz=UTC))
    elif key.endswith("_ms") and isinstance(value, int):
        key, text = key[: -len("_ms")], f"{value / 1000:g}s"
    elif isinstance(value, str) and _PLAIN.match(value):
        text = value
    else:
        text = _one_line_json(value)
    if len(text) > _MAX_VALUE:
        text = text[: _MAX_VALUE - 1] + "…"
    return f"{key}={text}"


def _failure_summary(failure: Any) -> str:
    """A failure view's messages, outermost first, with the application error type where
    there is one: ``Activity task failed: Declined: card declined``."""
    messages = []
    while isinstance(failure, Mapping):
        message = str(failure.get("message") or "")
        info = failure.get("info")
        if isinstance(info, Mapping) and info.get("@type") == "ApplicationFailureInfo":
            kind = str(info.get("type") or "")
            message = f"{kind}: {message}" if kind else message
        messages.append(message)
        failure = failure.get("cause")
    return ": ".join(m for m in messages if m)


# -- start, execute, result ------------------------------------------------------------


@workflow.command()
@settings_options
@_start_options
@_input_option
@_timeout_option
def start(
    settings: Settings,
    workflow_type: str,
    task_queue: str,
    workflow_id: str | None,
    inputs: list[Any],
    command_timeout: float,
) -> None:
    """Start a workflow by type name and print its workflow id and run id."""
    wid = workflow_id or str(uuid.uuid4())

    async def begin(client: Client) -> str:
        handle = await client.start_workflow(
            workflow_type, args=inputs, id=wid, task_queue=task_queue
        )
        return handle.result_run_id or ""

    started = _run(settings, command_timeout, begin, workflow_id=wid)
    for line in _started_lines(settings, wid, started, workflow_type, task_queue):
        click.echo(line)


@workflow.command()
@settings_options
@_start_options
@_input_option
@_timeout_option
def execute(
    settings: Settings,
    workflow_type: str,
    task_queue: str,
    workflow_id: str | None,
    inputs: list[Any],
    command_timeout: float,
) -> None:
    """Start a workflow by type name, wait for it to close and print its result as JSON.

    A run that does not complete prints why and exits 1.
    """
    from cadenza.common import RawValue

    wid = workflow_id or str(uuid.uuid4())

    async def begin_and_wait(client: Client) -> Any:
        handle = await client.start_workflow(
            workflow_type, args=inputs, id=wid, task_queue=task_queue, result_type=RawValue
        )
        for line in _started_lines(
            settings, wid, handle.result_run_id or "", workflow_type, task_queue
        ):
            click.echo(line)
        return _result_json(await handle.result())

    result = _run(settings, command_timeout, begin_and_wait, workflow_id=wid)
    click.echo("Results:")
    click.echo("  Status  Completed")
    click.echo(f"  Result  {_one_line_json(result)}")


def _started_lines(
    settings: Settings, workflow_id: str, run_id: str, workflow_type: str, task_queue: str
) -> list[str]:
    return _block(
        "Running execution:",
        [
            ("WorkflowId", workflow_id),
            ("RunId", run_id),
            ("Type", workflow_type),
            ("Namespace", settings.namespace),
            ("TaskQueue", task_queue),
        ],
    )


def _result_json(value: Any) -> Any:
    """A result asked for as ``RawValue``, as JSON (``None`` when the run returned nothing)."""
    from cadenza.client._json import payload_json
    from cadenza.common import RawValue

    return payload_json(value.payload) if isinstance(value, RawValue) else None


@workflow.command()
@settings_options
@_workflow_id_option
@_run_id_option
@_timeout_option
def result(
    settings: Settings, workflow_id: str, run_id: str | None, command_timeout: float
) -> None:
    """Wait for a run to close and print its result as JSON.

    Follows the run's successors (continue-as-new, retries, cron) to the last one. A
    run that does not complete prints why and exits 1.
    """
    from cadenza.common import RawValue

    async def wait(client: Client) -> Any:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id, result_type=RawValue)
        # Waiting for a result has no time limit: ask for something that has one first,
        # so a wrong id or a stopped engine is an error rather than a silent wait.
        await handle.describe()
        return _result_json(await handle.result())

    value = _run(settings, command_timeout, wait, workflow_id=workflow_id, run_id=run_id)
    click.echo(_one_line_json(value))


# -- signal, query, cancel, terminate --------------------------------------------------


@workflow.command()
@settings_options
@_workflow_id_option
@_run_id_option
@click.option("--name", required=True, help="Signal name.")
@_input_option
@_timeout_option
def signal(
    settings: Settings,
    workflow_id: str,
    run_id: str | None,
    name: str,
    inputs: list[Any],
    command_timeout: float,
) -> None:
    """Send a signal to a workflow."""

    async def send(client: Client) -> None:
        await client.get_workflow_handle(workflow_id, run_id=run_id).signal(name, args=inputs)

    _run(settings, command_timeout, send, workflow_id=workflow_id, run_id=run_id)
    click.echo(f"Signal {name!r} sent to workflow {workflow_id!r}.")


@workflow.command()
@settings_options
@_workflow_id_option
@_run_id_option
@click.option("--type", "query_type", required=True, help="Query name.")
@_input_option
@_timeout_option
def query(
    settings: Settings,
    workflow_id: str,
    run_id: str | None,
    query_type: str,
    inputs: list[Any],
    command_timeout: float,
) -> None:
    """Query a workflow and print the answer as JSON (a worker of its task queue answers)."""
    from cadenza.common import RawValue

    async def ask(client: Client) -> Any:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        return _result_json(await handle.query(query_type, args=inputs, result_type=RawValue))

    answer = _run(
        settings,
        command_timeout,
        ask,
        answered_by="worker",
        workflow_id=workflow_id,
        run_id=run_id,
    )
    click.echo(_one_line_json(answer))


@workflow.command()
@settings_options
@_workflow_id_option
@_run_id_option
@_timeout_option
def cancel(
    settings: Settings, workflow_id: str, run_id: str | None, command_timeout: float
) -> None:
    """Ask a workflow to cancel: its code sees the cancellation and may clean up."""

    async def request(client: Client) -> None:
        await client.get_workflow_handle(workflow_id, run_id=run_id).cancel()

    _run(settings, command_timeout, request, workflow_id=workflow_id, run_id=run_id)
    click.echo(f"Cancellation requested for workflow {workflow_id!r}.")


@workflow.command()
@settings_options
@_workflow_id_option
@_run_id_option
@click.option("--reason", default=None, help="Why; recorded in the run's history.")
@_timeout_option
def terminate(
    settings: Settings,
    workflow_id: str,
    run_id: str | None,
    reason: str | None,
    command_timeout: float,
) -> None:
    """Close a workflow at once, without running its code."""

    async def stop(client: Client) -> None:
        await client.get_workflow_handle(workflow_id, run_id=run_id).terminate(reason=reason)

    _run(settings, command_timeout, stop, workflow_id=workflow_id, run_id=run_id)
    click.echo(f"Workflow {workflow_id!r} terminated.")
