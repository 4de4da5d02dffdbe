"""Answer list and count queries from the visibility store, using its indexes.

A query that pins ``ExecutionStatus`` (``=`` or ``IN`` at the top level) reads
only the status index ranges of those statuses; one that pins ``WorkflowType``
reads the type index; one that pins ``WorkflowId`` reads that workflow's runs.
Only a query that pins none of them reads every run.

Pages are cursors, not offsets: ``next_page_token`` holds the sort key of the
page's last run, and the next page starts strictly after it, so runs that
appear or change between pages shift nothing.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterator, Mapping
from typing import Any

from cadenza import schemas

from ._query import Query, QueryError
from ._store import (
    INFO,
    VisibilityStore,
    run_key_of_index,
    status_prefix,
    type_prefix,
    workflow_prefix,
)

_NEVER = 2**63 - 1
"""Sort value of a missing time (CloseTime of a running run): after every real time."""


def candidates(store: VisibilityStore, query: Query) -> Iterator[bytes]:
    """The ``r`` keys of the runs that may match, read through the narrowest index."""
    for attr, prefix_of in (("status", status_prefix), ("workflow_type", type_prefix)):
        pinned = query.equalities(attr)
        if pinned is not None:
            for value in sorted(pinned):
                prefix = prefix_of(value)
                for key in store.keys(prefix):
                    yield run_key_of_index(key, len(prefix))
            return
    ids = query.equalities("workflow_id")
    if ids is not None:
        for workflow_id in sorted(ids):
            yield from store.keys(workflow_prefix(workflow_id))
        return
    yield from store.keys(b"r")


def search_values(payloads: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Search attributes as plain values (JSON payloads decoded; others left out)."""
    out: dict[str, Any] = {}
    for name, payload in payloads.items():
        if payload["metadata"].get("encoding") != b"json/plain":
            continue
        try:
            out[name] = json.loads(payload["data"])
        except ValueError:
            continue
    return out


def matching(store: VisibilityStore, query: Query) -> Iterator[dict[str, Any]]:
    """Every run record the query matches (in index order, not query order)."""
    for key in candidates(store, query):
        info = store.info(key)
        if info is not None and query.matches(info, search_values(info["search_attributes"])):
            yield info


def count(store: VisibilityStore, query: Query) -> int:
    """How many runs the query matches."""
    return sum(1 for _ in matching(store, query))


MAX_PAGE_BYTES = 512 * 1024
"""A page is cut short past this many encoded bytes: the reply must fit in one Kafka
record (1 MiB by default) whatever the memos and search attributes weigh."""


def list_page(
    store: VisibilityStore,
    query: Query,
    text: str,
    page_size: int,
    token: bytes,
    *,
    max_bytes: int = MAX_PAGE_BYTES,
) -> tuple[list[dict[str, Any]], bytes]:
    """One page of matching runs in the query's order, and the token of the next page.

    The page holds at most ``page_size`` runs, fewer when they pass ``max_bytes``
    encoded (always at least one); the token is empty after the last page.

    Raises:
        QueryError: ``page_size`` is not positive, or ``token`` is not a token of
            this query.
    """
    if page_size <= 0:
        raise QueryError(f"page_size must be positive, not {page_size}")
    sign = -1 if query.descending else 1

    def sort_key(info: Mapping[str, Any]) -> tuple[int, str, str]:
        value = info.get(query.order_attr)
        value = _NEVER if value is None else int(value)
        return (sign * value, info["workflow_id"], info["run_id"])

    after: tuple[int, str, str] | None = None
    if token:
        try:
            saved = json.loads(token)
            value, workflow_id, run_id = saved["after"]
            after = (int(value), str(workflow_id), str(run_id))
            same_query = saved["q"] == text
        except (ValueError, KeyError, TypeError):
            raise QueryError("next_page_token is not a token this service gave out") from None
        if not same_query:
            raise QueryError("next_page_token belongs to another query")
    keyed = ((sort_key(info), info) for info in matching(store, query))
    if after is not None:
        keyed = ((k, info) for k, info in keyed if k > after)
    page = heapq.nsmallest(page_size + 1, keyed, key=lambda item: item[0])
    size = 0
    for kept, (_, info) in enumerate(page):
        size += len(schemas.encode(INFO, info))
        if size > max_bytes and kept > 0:
            page = page[: kept + 1]  # one past the cut, so a token is made below
            page_size = kept
            break
    if len(page) <= page_size:
        return [info for _, info in page], b""
    page = page[:page_size]
    last = page[-1][0]
    next_token = json.dumps({"q": text, "after": list(last)}).encode()
    return [info for _, info in page], next_token
