"""What one cached workflow run costs the worker in Python memory, and where it goes.

    .venv/bin/python scripts/cached_instance_memory.py [--count 5000] [--top 20]

Builds ``count`` ``WorkflowInstance``s of the ``cached`` benchmark's workflow
(``cadenza.bench._workloads.CachedWorkflow``), each activated with its first
workflow task as the worker gets it (events through the Avro codec), keeps
them as the worker's cache does, and reports with ``tracemalloc`` the bytes per
run, by allocating source line, plus the objects per run by type. No broker.
``cadenza bench cached`` measures the same thing as the worker process's RSS.
"""

from __future__ import annotations

import argparse
import collections
import gc
import tracemalloc
import uuid
from typing import Any

from cadenza import schemas
from cadenza.bench import _workloads as w
from cadenza.converter import DataConverter
from cadenza.workflow._definition import _Definition
from cadenza.workflow._runtime import WorkflowInstance

_H = "cadenza.history."


def _event(event_id: int, kind: str, attributes: dict[str, Any], wid: str, rid: str) -> Any:
    datum = {
        "event_id": event_id,
        "event_time_ms": 1_700_000_000_000 + event_id,
        "workflow_id": wid,
        "run_id": rid,
        "attributes": (_H + kind, attributes),
    }
    return schemas.decode_as(schemas.encode(schemas.HISTORY_EVENT, datum), schemas.HISTORY_EVENT)


def _first_task(wid: str, rid: str) -> list[Any]:
    payload = dict(DataConverter.default.payload_converter.to_payload(wid))
    started = {
        "workflow_type": "CachedWorkflow",
        "task_queue": "bench",
        "input": [payload],
        "first_execution_run_id": rid,
        "original_execution_run_id": rid,
        "task_timeout_ms": 10_000,
    }
    scheduled = {"task_queue": "bench", "start_to_close_timeout_ms": 10_000, "attempt": 1}
    return [
        _event(1, "WorkflowExecutionStarted", started, wid, rid),
        _event(2, "WorkflowTaskScheduled", scheduled, wid, rid),
        _event(3, "WorkflowTaskStarted", {"scheduled_event_id": 2}, wid, rid),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    n = args.count
    definition = _Definition.must_from_class(w.CachedWorkflow)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    types_before = collections.Counter(type(o).__name__ for o in gc.get_objects())
    cache = []
    for i in range(n):
        wid, rid = f"cached-{i}", str(uuid.uuid4())
        events = _first_task(wid, rid)
        instance = WorkflowInstance(
            definition, workflow_id=wid, run_id=rid, started_event=events[0]
        )
        result = instance.activate(events)
        assert result.ran_live and result.failure is None
        cache.append(instance)
    del events
    gc.collect()
    after = tracemalloc.take_snapshot()
    types_after = collections.Counter(type(o).__name__ for o in gc.get_objects())
    diff = after.compare_to(before, "lineno")
    total = sum(d.size_diff for d in diff)
    print(f"{total / n:,.0f} bytes per cached run ({n} runs)")
    for d in diff[: args.top]:
        frame = d.traceback[0]
        print(f"  {d.size_diff / n:7,.0f} B  {d.count_diff / n:4.1f} blocks  {frame}")
    print("objects per cached run:")
    for name, count in (types_after - types_before).most_common(args.top):
        print(f"  {count / n:6.2f}  {name}")


if __name__ == "__main__":
    main()
