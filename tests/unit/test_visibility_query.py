"""The visibility query language and the store's indexes, without a broker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cadenza import schemas
from cadenza.processors.visibility import QueryError, parse
from cadenza.processors.visibility._listing import candidates, count, list_page
from cadenza.processors.visibility._query import And, Compare, Not, Or
from cadenza.processors.visibility._store import Fold, VisibilityStore

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


# -- parsing ---------------------------------------------------------------------------------


def test_an_empty_query_matches_everything_newest_first() -> None:
    for text in (None, "", "   "):
        query = parse(text)
        assert query.where is None
        assert (query.order_by, query.descending) == ("StartTime", True)


def test_comparisons_and_precedence() -> None:
    query = parse("WorkflowType = 'A' AND ExecutionStatus = 'Completed' OR WorkflowId != \"x\"")
    assert query.where == Or(
        (
            And(
                (
                    Compare("WorkflowType", "workflow_type", "=", ("A",)),
                    Compare("ExecutionStatus", "status", "=", ("COMPLETED",)),
                )
            ),
            Compare("WorkflowId", "workflow_id", "!=", ("x",)),
        )
    )
    grouped = parse("WorkflowType = 'A' and (ExecutionStatus = 'Failed' or TaskQueue = 'q')")
    assert isinstance(grouped.where, And)
    assert isinstance(grouped.where.parts[1], Or)


def test_every_operator() -> None:
    def where(text: str) -> Any:
        return parse(text).where

    assert where("ExecutionStatus IN ('Running', 'TimedOut', 'ContinuedAsNew')") == Compare(
        "ExecutionStatus", "status", "IN", ("RUNNING", "TIMED_OUT", "CONTINUED_AS_NEW")
    )
    assert where("WorkflowId NOT IN ('a','b')").op == "NOT IN"
    assert where("WorkflowId STARTS_WITH 'order-'") == Compare(
        "WorkflowId", "workflow_id", "STARTS_WITH", ("order-",)
    )
    between = where("StartTime BETWEEN '2026-01-01T00:00:00Z' AND '2026-01-01T00:00:01Z'")
    assert between == Compare("StartTime", "start_time_ms", "BETWEEN", (T0, T0 + 1000))
    assert where("CloseTime IS NULL").op == "IS NULL"
    assert where("CloseTime is not null").op == "IS NOT NULL"
    assert where("StartTime >= '2026-01-01T01:00:00+01:00'").values == (T0,)
    assert where("ExecutionTime < '2026-01-01T00:00:00'").values == (T0,)  # naive is UTC
    assert where("TaskQueue <> 'q'").op == "!="
    assert where("NOT WorkflowType = 'A'") == Not(
        Compare("WorkflowType", "workflow_type", "=", ("A",))
    )
    assert where("CustomerId = 'c-1'") == Compare("CustomerId", None, "=", ("c-1",))
    assert where("Priority > 3") == Compare("Priority", None, ">", (3,))
    assert where("`Order Id` = 'it''s'") == Compare("Order Id", None, "=", ("it's",))


def test_order_by() -> None:
    assert (parse("ORDER BY CloseTime").order_by, parse("ORDER BY CloseTime").descending) == (
        "CloseTime",
        True,
    )
    query = parse("WorkflowType = 'A' order by StartTime asc")
    assert (query.order_by, query.descending, query.order_attr) == (
        "StartTime",
        False,
        "start_time_ms",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("WorkflowType = ", "expected a value for WorkflowType =, found the end of the query"),
        ("WorkflowType = A", "quote strings"),
        ("WorkflowType == 'A'", "expected a value for WorkflowType ="),
        ("ExecutionStatus = 'Sleeping'", "'Sleeping' is not an ExecutionStatus"),
        ("ExecutionStatus > 'Running'", "ExecutionStatus supports =, !=, IN and NOT IN"),
        ("StartTime > 'yesterday'", "'yesterday' is not an RFC 3339 time"),
        ("StartTime > 5", "StartTime takes an RFC 3339 time"),
        ("WorkflowType = 'A' AND", "expected a field name, found the end of the query"),
        ("(WorkflowType = 'A'", "expected ')'"),
        ("WorkflowType = 'A' WorkflowId = 'b'", "unexpected 'WorkflowId' at 19"),
        ("WorkflowType LIKE 'A'", "expected an operator after WorkflowType"),
        ("WorkflowType IN 'A'", "expected '(' after WorkflowType IN"),
        ("StartTime BETWEEN '2026-01-01T00:00:00Z'", "expected AND after StartTime BETWEEN"),
        ("ORDER BY WorkflowType", "cannot ORDER BY 'WorkflowType'"),
        ("ORDER StartTime", "expected BY after ORDER"),
        ("WorkflowType = 'A' ; drop", "unexpected character ';' at position 19"),
        ("WorkflowId = 'unterminated", 'unexpected character "\'"'),
        ("StartTime STARTS_WITH '2026'", "STARTS_WITH needs a text field"),
        ("WorkflowId = 42", "WorkflowId is text: quote the value"),
    ],
)
def test_invalid_queries_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse(text)
    assert message in str(caught.value)


# -- folding and listing ---------------------------------------------------------------------


def _event(wf: str, run: str, event_id: int, t: int, name: str, **attrs: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_time_ms": t,
        "workflow_id": wf,
        "run_id": run,
        "attributes": (f"cadenza.history.{name}", attrs),
    }


def _started(wf: str, wtype: str, t: int, **extra: Any) -> dict[str, Any]:
    return _event(
        wf,
        f"{wf}-r",
        1,
        t,
        "WorkflowExecutionStarted",
        workflow_type=wtype,
        task_queue="q",
        first_execution_run_id=f"{wf}-r",
        original_execution_run_id=f"{wf}-r",
        **extra,
    )


def _keyword(value: str) -> dict[str, Any]:
    return {
        "metadata": {"encoding": b"json/plain", "type": b"Keyword"},
        "data": json.dumps(value).encode(),
    }


@pytest.fixture
def store(tmp_path: Path) -> Any:
    store = VisibilityStore(tmp_path / "vis")
    fold = Fold(store)
    for i in range(6):
        wtype = "A" if i % 2 == 0 else "B"
        fold.apply(
            _started(
                f"wf-{i}",
                wtype,
                T0 + i * 1000,
                search_attributes={"Customer": _keyword(f"c{i % 3}")},
            )
        )
    store.write(fold.flush(), {0: 6})
    # A second batch closes some runs: the status index must move with them.
    fold = Fold(store)
    fold.apply(_event("wf-0", "wf-0-r", 5, T0 + 9000, "WorkflowExecutionCompleted"))
    fold.apply(_event("wf-1", "wf-1-r", 5, T0 + 9500, "WorkflowExecutionFailed"))
    fold.apply(_event("wf-2", "wf-2-r", 7, T0 + 8000, "WorkflowExecutionCompleted"))
    fold.apply(
        _event(
            "wf-3",
            "wf-3-r",
            2,
            T0 + 3500,
            "UpsertWorkflowSearchAttributes",
            search_attributes={"Customer": _keyword("vip")},
            workflow_task_completed_event_id=1,
        )
    )
    store.write(fold.flush(), {0: 10, 1: 2})
    yield store
    store.close()


def test_fold_keeps_runs_indexes_and_offsets_together(store: VisibilityStore) -> None:
    assert store.offsets() == {0: 10, 1: 2}
    info = store.info(b"rwf-0\x00wf-0-r")
    assert info is not None
    assert (info["status"], info["close_time_ms"], info["history_length"]) == (
        "COMPLETED",
        T0 + 9000,
        5,
    )
    assert len(list(store.keys(b"sRUNNING\x00"))) == 3
    assert len(list(store.keys(b"sCOMPLETED\x00"))) == 2
    assert len(list(store.keys(b"tA\x00"))) == 3
    # The record decodes as the wire type the reply carries.
    assert (
        schemas.decode_as(
            schemas.encode("cadenza.reply.WorkflowExecutionInfo", info),
            "cadenza.reply.WorkflowExecutionInfo",
        )
        == info
    )


def test_a_pinned_status_or_type_reads_only_its_index(store: VisibilityStore) -> None:
    assert len(list(candidates(store, parse("ExecutionStatus = 'Running'")))) == 3
    assert (
        len(
            list(
                candidates(
                    store, parse("WorkflowType = 'B' AND StartTime > '2020-01-01T00:00:00Z'")
                )
            )
        )
        == 3
    )
    assert len(list(candidates(store, parse("WorkflowId = 'wf-4'")))) == 1
    assert len(list(candidates(store, parse("WorkflowType = 'A' OR WorkflowType = 'B'")))) == 6


def test_count_and_list_in_order(store: VisibilityStore) -> None:
    assert count(store, parse("WorkflowType = 'A'")) == 3
    assert count(store, parse("ExecutionStatus IN ('Completed', 'Failed')")) == 3
    assert count(store, parse("CloseTime IS NULL")) == 3
    assert count(store, parse("Customer = 'vip'")) == 1
    assert count(store, parse("Customer STARTS_WITH 'c'")) == 5
    assert count(store, parse("NOT WorkflowType = 'A' AND ExecutionStatus = 'Running'")) == 2
    assert (
        count(store, parse("StartTime BETWEEN '2026-01-01T00:00:01Z' AND '2026-01-01T00:00:03Z'"))
        == 3
    )

    text = "WorkflowType = 'A' AND ExecutionStatus = 'Completed' ORDER BY StartTime ASC"
    page, token = list_page(store, parse(text), text, 10, b"")
    assert [i["workflow_id"] for i in page] == ["wf-0", "wf-2"] and token == b""
    page, _ = list_page(store, parse("ORDER BY CloseTime ASC"), "", 3, b"")
    assert [i["workflow_id"] for i in page] == ["wf-2", "wf-0", "wf-1"]


def test_pages_cover_every_run_once(store: VisibilityStore) -> None:
    query = parse(None)
    seen: list[str] = []
    token = b""
    pages = 0
    while True:
        page, token = list_page(store, query, "", 4, token)
        seen += [i["workflow_id"] for i in page]
        pages += 1
        if not token:
            break
    assert seen == [f"wf-{i}" for i in range(5, -1, -1)] and pages == 2
    # Pages are cut by size too: a tiny budget gives one run per page, still each once.
    seen, token = [], b""
    while True:
        page, token = list_page(store, query, "", 100, token, max_bytes=10)
        assert len(page) == 1
        seen += [i["workflow_id"] for i in page]
        if not token:
            break
    assert seen == [f"wf-{i}" for i in range(5, -1, -1)]
    with pytest.raises(QueryError, match="another query"):
        _, token = list_page(store, query, "", 2, b"")
        list_page(store, parse("WorkflowType = 'A'"), "WorkflowType = 'A'", 2, token)
    with pytest.raises(QueryError, match="not a token"):
        list_page(store, query, "", 2, b"garbage")
