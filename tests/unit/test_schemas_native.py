"""The native (C) codec against the generated Python one: same bytes, datums, errors.

test_schemas.py checks the default codec (the native one, when built) against
fastavro on every envelope branch; here every sample, every corruption and every
bad datum goes through both codecs, which must agree. The install (``make dev``)
builds the native codec with the machine's C compiler; a build that silently fell
back to Python is caught by the first test.
"""

from __future__ import annotations

import copy
import os
import random
from typing import Any

import pytest
from test_schemas import ATTRIBUTES_INDEX_AT, CASES, Samples, _samples_for, timer_fired_event

from cadenza.schemas import (
    COMMAND,
    HISTORY_EVENT,
    WORKFLOW_TASK,
    DecodeError,
    EncodeError,
    _compiled,
)
from cadenza.schemas._codec import Registry, default_registry
from cadenza.schemas._compiled import Malformed, compile_codecs

NATIVE = Registry.from_directory(native=True)
PYTHON = Registry.from_directory(native=False)


def _outcome(reg: Registry, data: bytes) -> Any:
    try:
        return reg.decode(data)
    except DecodeError:
        return DecodeError


def _encode_outcome(reg: Registry, name: str, datum: Any) -> Any:
    try:
        return reg.encode(name, datum)
    except EncodeError as exc:
        return ("EncodeError", str(exc))


def test_the_install_built_the_native_codec_and_uses_it() -> None:
    assert _compiled.NATIVE is not None, (
        f"schemas/_native.c was not built ({_compiled._NATIVE_ERROR}): install gcc and rerun "
        "make dev"
    )
    assert _compiled.NATIVE.K_UNION == _compiled._K_UNION  # the plan's node kinds agree
    if os.environ.get("CADENZA_CODEC", "auto") != "python":
        writer = default_registry()._writers[COMMAND]
        assert writer.compiled is not None and writer.compiled.source == ""  # no Python made
    assert "_native" in type(NATIVE._writers[COMMAND].compiled.write.__self__).__module__
    assert PYTHON._writers[COMMAND].compiled.source.startswith("def _w")  # type: ignore[union-attr]


def test_every_sample_gives_the_same_bytes_and_datums() -> None:
    samples = Samples()
    count = 0
    for envelope, branch in CASES:
        for datum in _samples_for(samples, envelope, branch, 3):
            original = copy.deepcopy(datum)
            data = NATIVE.encode(envelope, datum)
            assert datum == original, "encode must not change its input"
            assert data == PYTHON.encode(envelope, datum)
            assert NATIVE.decode(data) == PYTHON.decode(data) == (envelope, datum)
            assert NATIVE.decoder(envelope)(data) == datum
            assert NATIVE.encoder(envelope)(datum) == data
            count += 1
    assert count == 3 * len(CASES)


def test_decoded_values_have_the_python_types() -> None:
    body = {"cadenza.command.Command.body": "cadenza.command.StartWorkflow"}
    datum = Samples().make(COMMAND, body)
    data = NATIVE.encode(COMMAND, datum)
    a, b = NATIVE.decode(data)[1], PYTHON.decode(data)[1]

    def shape(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: shape(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return type(x), [shape(v) for v in x]
        return type(x)

    assert shape(a) == shape(b)
    # bytearray and memoryview input decode as bytes do.
    assert NATIVE.decode(bytearray(data)) == NATIVE.decode(memoryview(data)) == (COMMAND, a)


def test_random_corruption_gives_the_same_outcome() -> None:
    rng = random.Random(11)
    samples = Samples()
    valid = [
        NATIVE.encode(envelope, datum)
        for envelope, branch in CASES[::3]
        for datum in _samples_for(samples, envelope, branch, 1)
    ]
    rejected = 0
    for _ in range(4000):
        data = bytearray(rng.choice(valid))
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(10, len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            del data[rng.randrange(10, len(data)) :]
        native, python = _outcome(NATIVE, bytes(data)), _outcome(PYTHON, bytes(data))
        assert native == python, bytes(data).hex()
        rejected += native is DecodeError
    assert 1000 < rejected < 4000  # both kinds of outcome were compared


def test_malformed_bodies_get_the_same_messages() -> None:
    event = NATIVE.encode(HISTORY_EVENT, timer_fired_event())
    at = ATTRIBUTES_INDEX_AT
    cases = {
        "union index 63": event[:at] + b"\x7e" + event[at + 1 :],
        "negative length -1": event[:12] + b"\x01" + event[13:],
        "a length of 60 runs past the end": event[:12] + b"\x78" + event[13:],
        "varint longer than 10 bytes": event[:10] + b"\xff" * 11,
        "varint does not fit in a long": event[:10] + b"\xff" * 9 + b"\x02",
        "truncated record": event[:-1],
    }
    for message, data in cases.items():
        for reg in (NATIVE, PYTHON):
            with pytest.raises(DecodeError, match=message):
                reg.decode(data)


def _good_command() -> dict[str, Any]:
    return {
        "command_id": "c-1",
        "workflow_id": "w",
        "run_id": None,
        "sent_time_ms": 1,
        "body": ("cadenza.command.SignalWorkflow", {"signal_name": "s", "signal_id": "i"}),
    }


@pytest.mark.parametrize(
    "change",
    [
        {"sent_time_ms": "1"},
        {"sent_time_ms": 2**63},
        {"sent_time_ms": 1.0},
        {"workflow_id": b"w"},
        {"workflow_id": None},
        {"body": ("cadenza.command.Nope", {})},
        {"body": {"signal_name": "s"}},
        {"body": ("cadenza.command.SignalWorkflow",)},
        {"body": ("cadenza.command.SignalWorkflow", {"signal_id": "i"})},
        {"body": ("cadenza.command.SignalWorkflow", {"signal_name": 5, "signal_id": "i"})},
        {"reply_to": {"client_id": "c", "partition": 2**31, "request_id": "r"}},
        {"reply_to": {"client_id": "c", "partition": "0", "request_id": "r"}},
        {"reply_to": ("cadenza.common.Nope", {})},
        {"command_id": "\ud800"},
    ],
    ids=str,
)
def test_bad_datums_fail_alike(change: dict[str, Any]) -> None:
    datum = {**_good_command(), **change}
    native = _encode_outcome(NATIVE, COMMAND, datum)
    python = _encode_outcome(PYTHON, COMMAND, datum)
    assert native[0] == python[0] == "EncodeError"
    if "tuple index out of range" in python[1]:
        # The generated Python trips over the short tuple; the C codec says what it is.
        assert "got a tuple of another length" in native[1]
    else:
        assert native == python


def test_good_datums_in_other_spellings_encode_alike() -> None:
    for change in (
        {
            "reply_to": (
                "cadenza.common.ReplyTo",
                {"client_id": "c", "partition": 0, "request_id": ""},
            )
        },
        {"sent_time_ms": True},  # a bool is an int, as in Python
        {"run_id": "r"},
    ):
        datum = {**_good_command(), **change}
        assert NATIVE.encode(COMMAND, datum) == PYTHON.encode(COMMAND, datum)
    missing = _good_command()
    del missing["run_id"]  # optional: missing is null
    assert NATIVE.encode(COMMAND, missing) == PYTHON.encode(COMMAND, _good_command())


def test_spliced_envelopes_are_checked_alike() -> None:
    samples = Samples()
    task = samples.make(WORKFLOW_TASK)
    event = samples.make(HISTORY_EVENT)
    task["history"] = [NATIVE.encode(HISTORY_EVENT, event), event]
    assert NATIVE.encode(WORKFLOW_TASK, task) == PYTHON.encode(WORKFLOW_TASK, task)
    task["history"] = [NATIVE.encode(COMMAND, _good_command())]
    for reg in (NATIVE, PYTHON):
        with pytest.raises(EncodeError, match="an already encoded .*HistoryEvent must be its"):
            reg.encode(WORKFLOW_TASK, task)


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    failure: dict[str, Any] = {"message": "m", "source": "s", "stack_trace": ""}
    for _ in range(100_000):
        failure = {"message": "m", "source": "s", "stack_trace": "", "cause": failure}
    name = "cadenza.common.Failure"
    for reg in (NATIVE, PYTHON):
        with pytest.raises(EncodeError, match="recursion"):
            reg.encode(name, failure)
    # A forged body of 100,000 nested causes: each level is message, source,
    # stack_trace, no encoded_attributes, then the cause's union byte (branch 1).
    fingerprint = NATIVE.fingerprint(name)
    level = b"\x02m\x02s\x00\x00\x02"
    for reg in (NATIVE, PYTHON):
        with pytest.raises(DecodeError, match="recursion"):
            reg.decode(b"\xc3\x01" + fingerprint + level * 100_000)


def test_compile_codecs_refuses_native_when_it_was_not_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_compiled, "NATIVE", None)
    monkeypatch.setattr(_compiled, "_NATIVE_ERROR", "no compiler")
    schema = {"type": "record", "name": "x.R", "fields": [{"name": "a", "type": "long"}]}
    with pytest.raises(ImportError, match=r"no compiler.*CADENZA_CODEC=python"):
        compile_codecs([schema], native=True)
    assert compile_codecs([schema])["x.R"].source.startswith("def _w")  # auto: Python


def test_the_native_reader_raises_malformed() -> None:
    schema = {"type": "record", "name": "x.B", "fields": [{"name": "b", "type": "boolean"}]}
    codec = compile_codecs([schema], native=True)["x.B"]
    assert codec.read(b"\x01", 0) == ({"b": True}, 1)
    with pytest.raises(Malformed, match="boolean byte 2"):
        codec.read(b"\x02", 0)
    with pytest.raises(Malformed, match="truncated"):
        codec.read(b"", 0)
    with pytest.raises(ValueError, match="position 5 is outside"):
        codec.read(b"\x01", 5)


def test_a_list_changed_while_encoding_is_an_error_not_a_crash() -> None:
    schema = {
        "type": "record",
        "name": "x.A",
        "fields": [{"name": "xs", "type": {"type": "array", "items": "double"}}],
    }
    codec = compile_codecs([schema], native=True)["x.A"]
    xs: list[Any] = []

    class Shrinking:
        def __float__(self) -> float:
            xs.clear()
            return 1.0

    xs += [Shrinking(), 2.0, 3.0]
    with pytest.raises(RuntimeError, match="changed size"):
        codec.write(bytearray(), {"xs": xs})
