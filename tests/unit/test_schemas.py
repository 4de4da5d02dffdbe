"""Tests of the Avro schemas and the codec (no broker).

Sample datums are generated from the schemas themselves, so a branch added to an
envelope union (a new command, event or reply) is round-tripped without touching
this file, and a test fails if some union branch was never exercised.
"""

from __future__ import annotations

import copy
import json
import random
import shutil
from collections import Counter
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.repository.base import AbstractSchemaRepository
from fastavro.schema import fingerprint as fastavro_fingerprint
from fastavro.schema import load_schema, to_parsing_canonical_form

import cadenza.schemas as schemas
from cadenza.schemas import (
    ACTIVITY_TASK,
    COMMAND,
    ENVELOPES,
    HISTORY_EVENT,
    REPLY,
    WORKFLOW_TASK,
    DecodeError,
    EncodeError,
    Registry,
    SchemaError,
)

SCHEMAS_DIR = Path(schemas.__file__).parent
AVRO_DIR = SCHEMAS_DIR / "avro"
FIXTURES = SCHEMAS_DIR / "fixtures"
PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
NAMED_KINDS = {"record", "error", "enum", "fixed"}

REG = schemas.default_registry()


# --------------------------------------------------------------------------- exports


def test_public_api_is_pinned() -> None:
    assert sorted(schemas.__all__) == sorted(
        [
            "ACTIVITY_TASK",
            "COMMAND",
            "ENVELOPES",
            "HISTORY_EVENT",
            "MAGIC",
            "REPLY",
            "VISIBILITY_REQUEST",
            "WORKFLOW_TASK",
            "DecodeError",
            "EncodeError",
            "Registry",
            "SchemaError",
            "crc64_avro",
            "decode",
            "decode_as",
            "default_registry",
            "encode",
            "fingerprint",
            "parsing_canonical_form_of",
            "schema",
            "schema_names",
        ]
    )
    for name in schemas.__all__:
        assert getattr(schemas, name) is not None
    assert issubclass(DecodeError, ValueError)
    assert issubclass(EncodeError, ValueError)


# --------------------------------------------------------------------------- the files


def _avsc_files() -> list[Path]:
    return sorted(p for p in AVRO_DIR.rglob("*.avsc") if "previous" not in p.parts)


def _walk(node: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every (location, schema node) in a file's JSON."""
    yield where, node
    if isinstance(node, list):
        for branch in node:
            yield from _walk(branch, where)
    elif isinstance(node, dict):
        for field in node.get("fields", []):
            yield from _walk(field["type"], f"{where}.{field['name']}")
        for key in ("items", "values"):
            if key in node:
                yield from _walk(node[key], where)
        if isinstance(node.get("type"), (dict, list)):
            yield from _walk(node["type"], where)


def test_one_named_type_per_file_with_docs() -> None:
    files = _avsc_files()
    assert len(files) > 100
    for path in files:
        data = json.loads(path.read_text())
        where = f"{path.parent.name}/{path.name}"
        assert data["type"] in ("record", "enum"), where
        assert data["name"] == path.stem, where
        assert data["namespace"] == f"cadenza.{path.parent.name}", where
        assert data.get("doc"), f"{where} has no doc"
        assert path.parent.name in {
            "common",
            "command",
            "history",
            "task",
            "reply",
            "state",
            "visibility",
        }
        for loc, node in _walk(data, where):
            if isinstance(node, dict) and node is not data:
                # Named types live in their own files and are referenced by name.
                assert node.get("type") not in NAMED_KINDS, f"inline named type at {loc}"
                assert "logicalType" not in node, f"logicalType at {loc}"


def test_field_conventions() -> None:
    """Times and durations are long ms; optional fields are ["null", T] default null."""
    for path in _avsc_files():
        data = json.loads(path.read_text())
        for field in data.get("fields", []):
            where = f"{data['namespace']}.{data['name']}.{field['name']}"
            ftype = field["type"]
            if field["name"].endswith("_ms"):
                assert ftype in ("long", ["null", "long"]), where
            if isinstance(ftype, list) and "null" in ftype:
                assert ftype[0] == "null", where
                assert "default" in field and field["default"] is None, where
            if isinstance(ftype, dict) and ftype["type"] in ("array", "map"):
                assert field.get("default") in ([], {}), f"{where}: lists and maps default empty"


def test_enum_defaults_are_symbols() -> None:
    for path in (AVRO_DIR / "common").glob("*.avsc"):
        data = json.loads(path.read_text())
        if data["type"] == "enum" and "default" in data:
            assert data["default"] in data["symbols"]


def test_every_record_compiles_to_the_fast_path() -> None:
    # A schema shape the compiler cannot handle silently falls back to fastavro
    # (5x slower): make that a visible decision, not an accident.
    slow = [w.name for w in REG._writers.values() if w.compiled is None]
    assert slow == []


def test_schema_names_and_schema_copies() -> None:
    names = schemas.schema_names()
    for envelope in ENVELOPES:
        assert envelope in names
    assert "cadenza.common.Failure" in names
    assert "cadenza.common.RetryState" not in names  # enums are not encodable records
    assert schemas.schema("cadenza.common.RetryState")["type"] == "enum"
    s = schemas.schema(COMMAND)
    s["fields"].clear()
    assert schemas.schema(COMMAND)["fields"], "schema() must hand out copies"
    with pytest.raises(KeyError, match="nope"):
        schemas.schema("cadenza.nope")


def test_a_broken_schema_folder_fails_to_load(tmp_path: Path) -> None:
    shutil.copytree(AVRO_DIR, tmp_path / "avro")
    (tmp_path / "avro" / "common" / "Payload.avsc").rename(
        tmp_path / "avro" / "common" / "Payload2.avsc"
    )
    with pytest.raises(SchemaError, match="expected cadenza.common.Payload2"):
        Registry.from_directory(tmp_path / "avro")
    (tmp_path / "avro" / "common" / "Payload2.avsc").unlink()
    with pytest.raises(SchemaError, match="unknown type 'cadenza.common.Payload'"):
        Registry.from_directory(tmp_path / "avro")


# --------------------------------------------------------------------------- samples


def _named_types() -> dict[str, dict[str, Any]]:
    named: dict[str, dict[str, Any]] = {}
    for name in [*REG.schema_names(), "cadenza.common.RetryState"]:
        for _, node in _walk(REG.schema(name), name):
            if isinstance(node, dict) and node.get("type") in NAMED_KINDS:
                named.setdefault(node["name"], node)
    return named


NAMED = _named_types()


def _branch_name(branch: Any) -> str:
    if isinstance(branch, dict):
        return str(branch.get("name", branch["type"]))
    return str(branch)


def _resolve(node: Any) -> Any:
    if isinstance(node, str) and node not in PRIMITIVES:
        return NAMED[node]
    if isinstance(node, dict) and node.get("type") not in (*NAMED_KINDS, "array", "map"):
        return _resolve(node["type"])
    return node


def _is_record(node: Any) -> bool:
    node = _resolve(node)
    return isinstance(node, dict) and node["type"] == "record"


class Samples:
    """Makes datums from schemas, varying values and union branches.

    ``force`` picks a branch for a union by its location; other unions of several
    records take their branches in turn, arrays of such unions get one item per
    branch, and every branch taken is recorded in ``covered``.
    """

    def __init__(self) -> None:
        self.n = 0
        self.turn: Counter[str] = Counter()
        self.covered: set[tuple[str, str]] = set()

    def _next(self) -> int:
        self.n += 1
        return self.n

    def make(self, name: str, force: dict[str, str] | None = None) -> dict[str, Any]:
        value = self.value(NAMED[name], name, force or {}, [])
        assert isinstance(value, dict)
        return value

    def value(self, node: Any, loc: str, force: dict[str, str], stack: list[str]) -> Any:
        node = _resolve(node)
        n = self._next()
        if isinstance(node, list):
            return self.union(node, loc, force, stack)
        kind = node if isinstance(node, str) else node["type"]
        if kind == "null":
            return None
        if kind == "boolean":
            return n % 2 == 0
        if kind == "int":
            return [0, 1, -1, 63, 64, -65, 2**31 - 1, -(2**31), 300][n % 9]
        if kind == "long":
            return [0, 5, -5, 1_700_000_000_000, 2**63 - 1, -(2**63), 8191, -8193][n % 8]
        if kind in ("double", "float"):
            return [0.0, 1.5, -2.25, 1e300][n % 4]
        if kind == "string":
            text = f"{loc.rsplit('.', 1)[-1]}-{n}-é✓"
            return text * 20 if n % 5 == 0 else text  # > 63 bytes: a 2-byte length
        if kind == "bytes":
            return bytes((n + i) % 256 for i in range(n % 7 * 30))  # not UTF-8 either
        if kind == "enum":
            return node["symbols"][n % len(node["symbols"])]
        if kind == "array":
            items = _resolve(node["items"])
            if isinstance(items, list) and sum(map(_is_record, items)) > 1:
                # One item per branch: all workflow commands in one completion.
                return [
                    self.union(items, loc, {loc: _branch_name(b)}, stack)
                    for b in items
                    if b != "null"
                ]
            return [self.value(items, loc, force, stack) for _ in range(2)]
        if kind == "map":
            values = node["values"]
            return {
                f"k{n}": self.value(values, loc, force, stack),
                "ключ": self.value(values, loc, force, stack),
            }
        if kind == "record":
            name = node["name"]
            return {
                f["name"]: self.value(f["type"], f"{name}.{f['name']}", force, [*stack, name])
                for f in node["fields"]
            }
        raise AssertionError(f"no sample for {node!r}")

    def union(self, node: list[Any], loc: str, force: dict[str, str], stack: list[str]) -> Any:
        branches = [b for b in node if b != "null"]
        if loc in force:
            chosen = next(b for b in branches if _branch_name(b) == force[loc])
        elif len(branches) == 1:
            chosen = branches[0]
            # Recursive records (Failure.cause): stop after two levels.
            if "null" in node and stack.count(_branch_name(chosen)) >= 2:
                return None
        else:
            chosen = branches[self.turn[loc] % len(branches)]
            self.turn[loc] += 1
        self.covered.add((loc, _branch_name(chosen)))
        value = self.value(chosen, loc, force, stack)
        if sum(map(_is_record, node)) > 1 and _is_record(chosen):
            return (_branch_name(chosen), value)
        return value


def _envelope_union(name: str) -> tuple[str, list[str]] | None:
    """(location, branch names) of an envelope's top-level union field, if any."""
    for field in NAMED[name]["fields"]:
        if isinstance(field["type"], list) and len(field["type"]) > 2:
            return f"{name}.{field['name']}", [_branch_name(b) for b in field["type"]]
    return None


def _cases() -> list[tuple[str, str | None]]:
    cases: list[tuple[str, str | None]] = []
    for envelope in ENVELOPES:
        union = _envelope_union(envelope)
        if union is None:
            cases.append((envelope, None))
        else:
            cases += [(envelope, branch) for branch in union[1]]
    return cases


CASES = _cases()


def _samples_for(samples: Samples, envelope: str, branch: str | None, count: int) -> list[Any]:
    union = _envelope_union(envelope)
    force = {union[0]: branch} if union and branch else {}
    return [samples.make(envelope, force) for _ in range(count)]


def _fastavro_bytes(name: str, datum: dict[str, Any]) -> bytes:
    buf = BytesIO()
    schemaless_writer(buf, parse_schema(REG.schema(name)), datum)
    return b"\xc3\x01" + REG.fingerprint(name) + buf.getvalue()


def _fastavro_decode(name: str, data: bytes) -> Any:
    return schemaless_reader(
        BytesIO(data[10:]),
        parse_schema(REG.schema(name)),
        None,
        return_record_name=True,
        return_record_name_override=True,
    )


def test_every_envelope_branch_is_a_case() -> None:
    assert len([c for c in CASES if c[0] == COMMAND]) == 24
    assert len([c for c in CASES if c[0] == HISTORY_EVENT]) == 45
    assert len([c for c in CASES if c[0] == REPLY]) == 10
    # A two-branch body is sampled as one case; test_every_union_branch_is_exercised
    # sees that both branches are taken.
    assert (schemas.VISIBILITY_REQUEST, None) in CASES
    assert (WORKFLOW_TASK, None) in CASES and (ACTIVITY_TASK, None) in CASES


@pytest.mark.parametrize(
    ("envelope", "branch"),
    CASES,
    ids=[f"{e.rsplit('.', 1)[1]}-{(b or '').rsplit('.', 1)[-1]}" for e, b in CASES],
)
def test_round_trip(envelope: str, branch: str | None) -> None:
    for datum in _samples_for(Samples(), envelope, branch, 3):
        original = copy.deepcopy(datum)
        data = schemas.encode(envelope, datum)
        assert datum == original, "encode must not change its input"
        assert data[:2] == b"\xc3\x01"
        assert data[2:10] == schemas.fingerprint(envelope)
        name, decoded = schemas.decode(data)
        assert name == envelope
        assert decoded == datum
        assert schemas.decode_as(data, envelope) == datum
        # The compiled codec and fastavro agree byte for byte and datum for datum.
        assert data == _fastavro_bytes(envelope, datum)
        assert _fastavro_decode(envelope, data) == datum


def test_every_union_branch_is_exercised() -> None:
    samples = Samples()
    for envelope, branch in CASES:
        for datum in _samples_for(samples, envelope, branch, 3):
            assert schemas.decode(schemas.encode(envelope, datum))[1] == datum
    universe = set()
    for envelope in ENVELOPES:
        for loc, node in _walk_named(envelope):
            if isinstance(node, list):
                universe |= {(loc, _branch_name(b)) for b in node if b != "null"}
    missing = sorted(universe - samples.covered)
    assert not missing, f"union branches no sample took: {missing}"


def _walk_named(name: str, seen: set[str] | None = None) -> Iterator[tuple[str, Any]]:
    """Every (location, node) reachable from named type ``name``, following references."""
    seen = set() if seen is None else seen
    if name in seen:
        return
    seen.add(name)
    for field in NAMED[name].get("fields", []):
        loc = f"{name}.{field['name']}"
        pending = [field["type"]]
        while pending:
            node = pending.pop()
            yield loc, node
            if isinstance(node, list):
                pending += node
            elif isinstance(node, dict):
                if node.get("type") in NAMED_KINDS:
                    yield from _walk_named(node["name"], seen)
                else:
                    pending += [node[k] for k in ("items", "values") if k in node]
            elif node not in PRIMITIVES:
                yield from _walk_named(node, seen)


def test_minimal_datums_get_the_defaults() -> None:
    data = schemas.encode(
        COMMAND,
        {
            "command_id": "c-1",
            "workflow_id": "wf",
            "sent_time_ms": 1,
            "body": (
                "cadenza.command.StartWorkflow",
                {"workflow_type": "T", "task_queue": "q", "request_id": "r"},
            ),
        },
    )
    _, datum = schemas.decode(data)
    assert datum["run_id"] is None and datum["identity"] == "" and datum["reply_to"] is None
    body_name, body = datum["body"]
    assert body_name == "cadenza.command.StartWorkflow"
    assert body["input"] == [] and body["memo"] == {} and body["retry_policy"] is None
    assert body["id_reuse_policy"] == "ALLOW_DUPLICATE"
    assert body["id_conflict_policy"] == "UNSPECIFIED"
    _, wtc = schemas.decode(
        schemas.encode(
            COMMAND,
            {
                "command_id": "c-2",
                "workflow_id": "wf",
                "sent_time_ms": 1,
                "body": (
                    "cadenza.command.WorkflowTaskCompleted",
                    {"scheduled_event_id": 3, "attempt": 1},
                ),
            },
        )
    )
    assert wtc["body"][1]["commands"] == [] and wtc["body"][1]["sticky"] is True


def test_optional_record_accepts_tuple_notation_and_reads_back_plain() -> None:
    reply_to = {"client_id": "c", "partition": 1, "request_id": "r"}
    base = {
        "command_id": "c",
        "workflow_id": "w",
        "sent_time_ms": 0,
        "body": ("cadenza.command.GetWorkflowResult", {}),
    }
    data = schemas.encode(COMMAND, {**base, "reply_to": ("cadenza.common.ReplyTo", reply_to)})
    assert data == schemas.encode(COMMAND, {**base, "reply_to": reply_to})
    assert schemas.decode(data)[1]["reply_to"] == reply_to


# --------------------------------------------------------------------------- evolution


def _v0_schema() -> dict[str, Any]:
    result = json.loads((FIXTURES / "command_v0" / "Command.avsc").read_text())
    assert isinstance(result, dict)
    return result


V0_BYTES = (FIXTURES / "command_v0" / "start_workflow.bin").read_bytes()


def _check_v0_datum(name: str, datum: dict[str, Any]) -> None:
    assert name == COMMAND
    assert datum["command_id"] == "cmd-v0-1" and datum["workflow_id"] == "order-7"
    assert datum["sent_time_ms"] == 1690000000000
    assert datum["identity"] == ""  # the field v0 lacked, at its default
    assert datum["reply_to"] == {"client_id": "client-a", "partition": 2, "request_id": "req-9"}
    body_name, body = datum["body"]
    assert body_name == "cadenza.command.StartWorkflow"
    assert body["workflow_type"] == "OrderWorkflow" and body["task_queue"] == "orders"
    assert body["input"] == [{"metadata": {"encoding": b"json/plain"}, "data": b'{"order": 7}'}]
    assert body["id_reuse_policy"] == "REJECT_DUPLICATE"
    assert body["run_timeout_ms"] == 3600000 and body["task_timeout_ms"] == 10000
    assert body["retry_policy"]["non_retryable_error_types"] == ["ValueError"]
    assert body["memo"] == {"customer": {"metadata": {"encoding": b"json/plain"}, "data": b'"ada"'}}
    # New in the current version, so the reader's defaults:
    assert body["id_conflict_policy"] == "UNSPECIFIED"
    assert body["start_delay_ms"] is None
    assert body["signal"] is None
    # And the datum has exactly the current shape: it re-encodes as a current record.
    assert schemas.decode(schemas.encode(COMMAND, datum))[1] == datum


def test_decodes_a_command_written_with_schema_v0() -> None:
    registry = Registry.from_directory()
    with pytest.raises(DecodeError, match="unknown schema fingerprint dd2c5375aa6f5cad"):
        registry.decode(V0_BYTES)
    fp = registry.register(_v0_schema())
    assert V0_BYTES[2:10] == fp
    assert fp != registry.fingerprint(COMMAND)
    _check_v0_datum(*registry.decode(V0_BYTES))
    assert registry.register(_v0_schema()) == fp  # registering twice is harmless


def test_previous_folder_is_loaded(tmp_path: Path) -> None:
    root = tmp_path / "avro"
    shutil.copytree(AVRO_DIR, root)
    (root / "previous" / "command").mkdir(parents=True, exist_ok=True)
    shutil.copy(
        FIXTURES / "command_v0" / "Command.avsc", root / "previous" / "command" / "Command.v0.avsc"
    )
    _check_v0_datum(*Registry.from_directory(root).decode(V0_BYTES))


def test_a_reply_written_before_the_visibility_bodies_still_decodes() -> None:
    # avro/previous/reply/Reply.v1.avsc is Reply as it was before ListWorkflowsResult
    # and CountWorkflowsResult were added to its body union.
    old = json.loads((AVRO_DIR / "previous" / "reply" / "Reply.v1.avsc").read_text())
    datum = {
        "request_id": "r1",
        "workflow_id": "w1",
        "run_id": None,
        "body": ("cadenza.reply.CommandAccepted", {"note": "ok"}),
    }
    data = _written_with(old, datum)
    assert data[2:10] != schemas.fingerprint(REPLY)
    name, decoded = schemas.decode(data)
    assert (name, decoded["body"]) == (REPLY, ("cadenza.reply.CommandAccepted", {"note": "ok"}))


def test_a_command_written_before_reset_sticky_task_queue_still_decodes() -> None:
    # avro/previous/command/Command.v1.avsc is Command as it was before
    # ResetStickyTaskQueue was added to its body union.
    old = json.loads((AVRO_DIR / "previous" / "command" / "Command.v1.avsc").read_text())
    datum = {
        "command_id": "c1",
        "workflow_id": "w1",
        "run_id": None,
        "sent_time_ms": 1,
        "identity": "",
        "reply_to": None,
        "body": ("cadenza.command.GetWorkflowResult", {"follow_runs": True}),
    }
    data = _written_with(old, datum)
    assert data[2:10] != schemas.fingerprint(COMMAND)
    assert schemas.decode(data) == (COMMAND, datum)


def _written_with(writer_schema: dict[str, Any], datum: dict[str, Any]) -> bytes:
    """``datum`` single-object encoded by fastavro with an older ``writer_schema``."""
    parsed = parse_schema(writer_schema)
    buf = BytesIO()
    schemaless_writer(buf, parsed, datum)
    fp = bytes.fromhex(fastavro_fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))
    return b"\xc3\x01" + fp + buf.getvalue()


def test_register_rejects_what_is_not_a_record_schema() -> None:
    registry = Registry.from_directory()
    with pytest.raises(SchemaError):
        registry.register({"type": "enum", "name": "x.E", "symbols": ["A"]})
    with pytest.raises(SchemaError, match="does not parse"):
        registry.register(
            {"type": "record", "name": "x.R", "fields": [{"name": "a", "type": "x.Missing"}]}
        )


def test_a_registered_schema_without_current_version_decodes_as_written() -> None:
    registry = Registry.from_directory()
    other = {"type": "record", "name": "acme.Audit", "fields": [{"name": "who", "type": "string"}]}
    fp = registry.register(other)
    buf = BytesIO()
    schemaless_writer(buf, parse_schema(copy.deepcopy(other)), {"who": "ada"})
    assert registry.decode(b"\xc3\x01" + fp + buf.getvalue()) == ("acme.Audit", {"who": "ada"})


# --------------------------------------------------------------------------- garbage


def _valid_command() -> bytes:
    return schemas.encode(
        COMMAND,
        {
            "command_id": "c-1",
            "workflow_id": "order-42",
            "sent_time_ms": 1700000000000,
            "reply_to": {"client_id": "cl", "partition": 3, "request_id": "r1"},
            "body": (
                "cadenza.command.StartWorkflow",
                {
                    "workflow_type": "Order",
                    "task_queue": "q",
                    "request_id": "req",
                    "input": [{"metadata": {"encoding": b"json/plain"}, "data": b"{}"}],
                },
            ),
        },
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty record"),
        (
            b"\x00\x01\x02",
            r"not Avro single-object encoding \(first bytes 0x00 0x01, expected C3 01\)",
        ),
        (b"\xc3", r"not Avro single-object encoding \(first bytes 0xC3, expected C3 01\)"),
        (b'{"json": true}', r"first bytes 0x7B 0x22, expected C3 01"),
        (b"\xc3\x01\x00\x01", "truncated header: 4 bytes"),
        (
            b"\xc3\x01" + b"\x00" * 8 + b"\x02",
            r"unknown schema fingerprint 0000000000000000: written by a newer Cadenza or another "
            r"producer\? known: cadenza.command.Command=",
        ),
    ],
)
def test_garbage_is_rejected_with_a_clear_message(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        schemas.decode(data)


def test_truncated_and_padded_bodies_are_rejected() -> None:
    data = _valid_command()
    for cut in (11, 20, len(data) // 2, len(data) - 1):
        with pytest.raises(
            DecodeError,
            match="body does not match schema cadenza.command.Command: .*truncated record",
        ):
            schemas.decode(data[:cut])
    with pytest.raises(DecodeError, match="1 trailing bytes"):
        schemas.decode(data + b"\x00")


def test_body_of_another_schema_is_rejected() -> None:
    data = _valid_command()
    forged = data[:2] + schemas.fingerprint(REPLY) + data[10:]
    with pytest.raises(DecodeError, match="body does not match schema cadenza.reply.Reply"):
        schemas.decode(forged)


def timer_fired_event() -> dict[str, Any]:
    """A small HistoryEvent whose ``attributes`` index sits at :data:`ATTRIBUTES_INDEX_AT`."""
    return {
        "event_id": 1,
        "event_time_ms": 0,
        "workflow_id": "w",
        "run_id": "r",
        "attributes": ("cadenza.history.TimerFired", {"timer_id": "t", "started_event_id": 1}),
    }


#: In :func:`timer_fired_event`'s bytes: the header, two one-byte longs, two
#: two-byte strings, then the union index of ``attributes``.
ATTRIBUTES_INDEX_AT = 10 + 1 + 1 + 2 + 2


def test_bad_union_index_and_utf8_are_rejected() -> None:
    reply_to = schemas.encode(
        "cadenza.common.ReplyTo", {"client_id": "é", "partition": 1, "request_id": "r"}
    )
    bad_utf8 = reply_to.replace("é".encode(), b"\xff\xfe")
    with pytest.raises(DecodeError, match="UnicodeDecodeError"):
        schemas.decode(bad_utf8)
    event = schemas.encode(HISTORY_EVENT, timer_fired_event())
    header = ATTRIBUTES_INDEX_AT  # 0x7e there = index 63
    forged = event[:header] + b"\x7e" + event[header + 1 :]
    with pytest.raises(DecodeError, match="union index 63"):
        schemas.decode(forged)


def test_random_corruption_only_ever_raises_decode_error() -> None:
    rng = random.Random(7)
    started = Samples().make(
        HISTORY_EVENT,
        {"cadenza.history.HistoryEvent.attributes": "cadenza.history.WorkflowExecutionStarted"},
    )
    valid = [_valid_command(), schemas.encode(HISTORY_EVENT, started)]
    for _ in range(3000):
        data = bytearray(rng.choice(valid))
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(10, len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            del data[rng.randrange(10, len(data)) :]
        try:
            schemas.decode(bytes(data))
        except DecodeError:
            pass


def test_decode_as_checks_the_name() -> None:
    with pytest.raises(
        DecodeError, match="expected a cadenza.reply.Reply record, got cadenza.command.Command"
    ):
        schemas.decode_as(_valid_command(), REPLY)


def test_decode_accepts_bytearray_and_memoryview() -> None:
    data = _valid_command()
    assert (
        schemas.decode(bytearray(data)) == schemas.decode(memoryview(data)) == schemas.decode(data)
    )


# --------------------------------------------------------------------------- encode errors


def _command(**changes: Any) -> dict[str, Any]:
    datum: dict[str, Any] = {
        "command_id": "c-1",
        "workflow_id": "w",
        "sent_time_ms": 1,
        "reply_to": {"client_id": "cl", "partition": 3, "request_id": "r1"},
        "body": (
            "cadenza.command.StartWorkflow",
            {"workflow_type": "T", "task_queue": "q", "request_id": "r"},
        ),
    }
    datum.update(changes)
    return datum


@pytest.mark.parametrize(
    ("datum", "message"),
    [
        (_command(sent_time_ms="soon"), r"Command\.sent_time_ms is <soon>"),
        ({k: v for k, v in _command().items() if k != "workflow_id"}, "workflow_id"),
        (
            _command(reply_to={"client_id": "c", "partition": "3", "request_id": "r"}),
            r"ReplyTo\.partition is <3> of type <class 'str'> expected int",
        ),
        (_command(body={"workflow_type": "T"}), r"\('full\.Name', \{\.\.\.\}\) tuple"),
        (_command(body=("cadenza.command.Nope", {})), "cadenza.command.Nope"),
        (
            _command(
                body=(
                    "cadenza.command.StartWorkflow",
                    {
                        "workflow_type": "T",
                        "task_queue": "q",
                        "request_id": "r",
                        "input": [{"metadata": {"encoding": "json/plain"}, "data": b""}],
                    },
                )
            ),
            r"Payload\.metadata",
        ),
        (_command(body=("cadenza.command.GetWorkflowResult", {"follow_runs": 1})), "follow_runs"),
        (
            _command(
                body=(
                    "cadenza.command.StartWorkflow",
                    {
                        "workflow_type": "T",
                        "task_queue": "q",
                        "request_id": "r",
                        "id_reuse_policy": "SOMETIMES",
                    },
                )
            ),
            "id_reuse_policy",
        ),
        (_command(sent_time_ms=2**64), "sent_time_ms"),
    ],
)
def test_encode_errors_name_the_field(datum: dict[str, Any], message: str) -> None:
    with pytest.raises(EncodeError, match=r"datum does not fit schema cadenza\.command\.Command"):
        schemas.encode(COMMAND, datum)
    with pytest.raises(EncodeError, match=message):
        schemas.encode(COMMAND, datum)


def test_an_encoder_encodes_and_fails_as_encode_does() -> None:
    encode = schemas.default_registry().encoder(COMMAND)
    good = _command()
    assert encode(good) == schemas.encode(COMMAND, good)
    with pytest.raises(EncodeError, match="sent_time_ms"):
        encode(_command(sent_time_ms=2**64))
    with pytest.raises(KeyError, match="cadenza.command.Nope"):
        schemas.default_registry().encoder("cadenza.command.Nope")


def test_encode_of_an_unknown_schema() -> None:
    with pytest.raises(EncodeError, match="unknown record schema 'cadenza.command.Nope'"):
        schemas.encode("cadenza.command.Nope", {})


def _task_with(history: list[Any]) -> dict[str, Any]:
    return {
        "workflow_id": "w",
        "run_id": "r",
        "workflow_type": "T",
        "task_queue": "q",
        "scheduled_event_id": 2,
        "attempt": 1,
        "started_event_id": 3,
        "history_from_event_id": 2,
        "history": history,
        "next_event_id": 4,
        "scheduled_time_ms": 1,
    }


def test_already_encoded_events_are_spliced_into_a_task() -> None:
    events = [
        {
            "event_id": 2,
            "event_time_ms": 1_700_000_000_000,
            "workflow_id": "w",
            "run_id": "r",
            "attributes": (
                "cadenza.history.WorkflowTaskScheduled",
                {"task_queue": "q", "start_to_close_timeout_ms": 10_000, "attempt": 1},
            ),
        },
        {
            "event_id": 3,
            "event_time_ms": 1_700_000_000_001,
            "workflow_id": "w",
            "run_id": "r",
            "attributes": ("cadenza.history.WorkflowTaskStarted", {"scheduled_event_id": 2}),
        },
    ]
    plain = schemas.encode(WORKFLOW_TASK, _task_with(events))
    encoded = [schemas.encode(HISTORY_EVENT, e) for e in events]
    assert schemas.encode(WORKFLOW_TASK, _task_with(encoded)) == plain
    assert schemas.encode(WORKFLOW_TASK, _task_with([encoded[0], events[1]])) == plain
    assert schemas.decode_as(plain, WORKFLOW_TASK)["history"] == [
        schemas.decode_as(raw, HISTORY_EVENT) for raw in encoded
    ]


def test_a_spliced_item_of_another_schema_is_refused() -> None:
    command = schemas.encode(COMMAND, _command())
    with pytest.raises(EncodeError, match="already encoded cadenza.history.HistoryEvent"):
        schemas.encode(WORKFLOW_TASK, _task_with([command]))
    with pytest.raises(EncodeError, match="already encoded cadenza.history.HistoryEvent"):
        schemas.encode(WORKFLOW_TASK, _task_with([b"not avro at all"]))


# --------------------------------------------------------------------------- fingerprints


def _crc64_bitwise(data: bytes) -> int:
    """CRC-64-AVRO straight from the spec's definition, one bit at a time."""
    fp = 0xC15D213AA4D7A795
    for byte in data:
        fp ^= byte
        for _ in range(8):
            fp = (fp >> 1) ^ (0xC15D213AA4D7A795 if fp & 1 else 0)
    return fp


def _pcf(node: Any, seen: set[str]) -> str:
    """Parsing Canonical Form per the Avro spec, for standalone full-name schemas."""
    if isinstance(node, str):
        return json.dumps(node, ensure_ascii=False)
    if isinstance(node, list):
        return "[" + ",".join(_pcf(b, seen) for b in node) + "]"
    kind = node["type"]
    if kind in NAMED_KINDS:
        name = (
            node["name"]
            if "." in node["name"] or not node.get("namespace")
            else f"{node['namespace']}.{node['name']}"
        )
        if name in seen:
            return json.dumps(name)
        seen.add(name)
        head = f'{{"name":{json.dumps(name)},"type":{json.dumps(kind)}'
        if kind == "record":
            fields = ",".join(
                f'{{"name":{json.dumps(f["name"])},"type":{_pcf(f["type"], seen)}}}'
                for f in node["fields"]
            )
            return f'{head},"fields":[{fields}]}}'
        if kind == "enum":
            return f'{head},"symbols":{json.dumps(node["symbols"], separators=(",", ":"))}}}'
        return f'{head},"size":{node["size"]}}}'
    if kind == "array":
        return f'{{"type":"array","items":{_pcf(node["items"], seen)}}}'
    if kind == "map":
        return f'{{"type":"map","values":{_pcf(node["values"], seen)}}}'
    return _pcf(kind, seen)


def test_crc64_avro_matches_the_spec_vector() -> None:
    # From Avro's own fingerprint tests: the schema "null" has fingerprint
    # 7195948357588979594 (a signed Java long).
    assert schemas.crc64_avro(b'"null"') == 7195948357588979594
    assert _crc64_bitwise(b'"null"') == 7195948357588979594


@pytest.mark.parametrize("name", REG.schema_names())
def test_fingerprint_is_crc64_of_the_canonical_form(name: str) -> None:
    form = _pcf(schemas.schema(name), set())
    assert schemas.parsing_canonical_form_of(name) == form
    assert schemas.fingerprint(name) == _crc64_bitwise(form.encode()).to_bytes(8, "little")


class _TreeRepository(AbstractSchemaRepository):
    """Finds cadenza.<ns>.<Name> in avro/<ns>/<Name>.avsc, for fastavro's own loader."""

    def load(self, name: str) -> dict[str, Any]:
        _, ns, short = name.split(".")
        result = json.loads((AVRO_DIR / ns / f"{short}.avsc").read_text())
        assert isinstance(result, dict)
        return result


@pytest.mark.parametrize("name", ENVELOPES)
def test_another_loader_of_the_separate_files_gets_the_same_fingerprint(name: str) -> None:
    # What a user of fastavro (or any Avro library) gets from the .avsc files
    # on their own, without our loader.
    loaded = load_schema(name, repo=_TreeRepository(), _write_hint=False)
    form = to_parsing_canonical_form(loaded)
    assert bytes.fromhex(fastavro_fingerprint(form, "CRC-64-AVRO")) == schemas.fingerprint(name)


def test_readme_example_produces_a_decodable_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plain-fastavro producer in README.md stays true."""
    readme = (SCHEMAS_DIR / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    # The example reads schemas/avro relative to the current directory.
    monkeypatch.chdir(SCHEMAS_DIR.parent)
    scope: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), scope)
    name, datum = schemas.decode(scope["value"])
    assert name == COMMAND
    assert scope["key"] == datum["workflow_id"].encode()
    assert datum["body"][0] == "cadenza.command.StartWorkflow"


# --------------------------------------------------------------------------- the compiler


@pytest.mark.parametrize("native", [True, False], ids=["native", "python"])
def test_compiler_matches_fastavro_on_shapes_cadenza_does_not_use_yet(native: bool) -> None:
    from cadenza.schemas._compiled import compile_codecs

    schema: dict[str, Any] = {
        "type": "record",
        "name": "x.R",
        "fields": [
            {"name": "a", "type": ["string", "null"]},
            {"name": "e", "type": ["null", {"type": "enum", "name": "x.E", "symbols": ["A", "B"]}]},
            {"name": "f", "type": "float"},
            {"name": "m", "type": {"type": "map", "values": {"type": "array", "items": "long"}}},
            {"name": "t", "type": {"type": "array", "items": "x.R"}},
            {"name": "z", "type": {"type": "record", "name": "x.Empty", "fields": []}},
        ],
    }
    inner: dict[str, Any] = {"a": "x", "e": None, "f": 0.0, "m": {}, "t": [], "z": {}}
    datum = {"a": None, "e": "B", "f": 1.5, "m": {"k": [1, -2, 2**40]}, "t": [inner], "z": {}}
    codec = compile_codecs([schema], native=native)["x.R"]
    out = bytearray()
    codec.write(out, datum)
    reference = BytesIO()
    schemaless_writer(reference, parse_schema(copy.deepcopy(schema)), datum)
    assert bytes(out) == reference.getvalue()
    assert codec.read(bytes(out), 0) == (datum, len(out))


def test_a_shape_the_compiler_rejects_falls_back_to_fastavro() -> None:
    odd = {
        "type": "record",
        "name": "x.Odd",
        "fields": [{"name": "u", "type": ["string", "long"]}],  # branch chosen by type
    }
    registry = Registry({"x.Odd": odd})
    assert registry._writers["x.Odd"].compiled is None
    for value in ("text", 42):
        assert registry.decode(registry.encode("x.Odd", {"u": value})) == ("x.Odd", {"u": value})


@pytest.mark.parametrize("native", [True, False], ids=["native", "python"])
def test_longs_of_every_varint_length_read_as_fastavro_writes_them(native: bool) -> None:
    from cadenza.schemas._compiled import compile_codecs

    schema: dict[str, Any] = {
        "type": "record",
        "name": "x.L",
        "fields": [{"name": "n", "type": "long"}, {"name": "s", "type": "string"}],
    }
    codec = compile_codecs([schema], native=native)["x.L"]
    parsed = parse_schema(copy.deepcopy(schema))
    # Both ends of every varint length (1 to 10 bytes), of either sign.
    edges = [0, 1, -1, 2**63 - 1, -(2**63)]
    for bits in range(6, 63, 7):
        edges += [2**bits - 1, 2**bits, -(2**bits), -(2**bits) - 1]
    for n in edges:
        buf = BytesIO()
        schemaless_writer(buf, parsed, {"n": n, "s": "é"})
        data = buf.getvalue()
        assert codec.read(data, 0) == ({"n": n, "s": "é"}, len(data)), n
        out = bytearray()
        codec.write(out, {"n": n, "s": "é"})
        assert bytes(out) == data, n
