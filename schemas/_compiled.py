"""A schema compiler: one generated Python function per record type.

Why not fastavro alone: its writer and reader walk the schema for every value
(dict look-ups, a chain of type-name comparisons, a set of field names per
record), which puts a typical Command at ~15 microseconds each way. Every record
of every Cadenza topic goes through the codec, several times per workflow step,
so the current schemas are compiled here into straight-line code that is 2-3x
faster. fastavro stays the reference: it decodes older writer schemas (schema
resolution), and the tests check that both produce the same bytes and datums.

The compiler accepts the schema shapes Cadenza uses: primitives, records, enums,
arrays, maps, optional unions ``["null", T]`` and unions of several records (with
or without ``"null"``), the latter in fastavro's tuple notation. Anything else
raises :class:`Unsupported` and the caller falls back to fastavro.

The same walk also builds a plan for the C codec (``_native.c``), which is 4x
faster again (BENCHMARKS.md, entry 34) and is used whenever it was built; the
generated Python is the fallback without a C compiler, and the reference the
tests hold the C codec to.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["CompiledCodec", "Malformed", "Unsupported", "compile_codecs"]

try:
    from . import _native as _native_module  # type: ignore[attr-defined]
except ImportError as exc:  # built without a C compiler: the generated Python codec
    _native_module, _NATIVE_ERROR = None, str(exc)
else:
    _NATIVE_ERROR = ""

#: The C codec (``schemas/_native.c``), or None when it was not built.
NATIVE: Any = _native_module

_NATIVE_KINDS = {
    kind: i
    for i, kind in enumerate(
        ("null", "boolean", "int", "long", "float", "double", "bytes", "string")
    )
}
_K_ENUM, _K_ARRAY, _K_MAP, _K_RECORD, _K_OPTIONAL, _K_UNION = range(8, 14)
# A field the datum leaves out (the native plan's field modes, in _native.c's order).
_REQUIRED, _DEFAULT, _NULL = range(3)

_PRIMITIVES = ("null", "boolean", "int", "long", "float", "double", "bytes", "string")
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1
_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1


class Unsupported(Exception):
    """The schema uses a shape this compiler does not handle (use fastavro)."""


class Malformed(ValueError):
    """Bytes that cannot be a body of the schema (bad index, length, varint)."""


_LONGS: dict[int, bytes] = {}
"""Recently written longs and their varints: the same timestamps and ids recur
within a batch (every event of an engine step carries its time)."""


def _write_long(out: bytearray, n: int) -> None:
    # The slow path; generated code handles 0 <= n < 64 inline.
    encoded = _LONGS.get(n) if type(n) is int else None  # 5.0 == 5, but is not a long
    if encoded is None:
        if not _LONG_MIN <= n <= _LONG_MAX:
            raise OverflowError(f"{n!r} does not fit in an Avro long")
        z = (n << 1) ^ (n >> 63)
        buf = bytearray()
        while z > 0x7F:
            buf.append((z & 0x7F) | 0x80)
            z >>= 7
        buf.append(z)
        encoded = bytes(buf)
        if len(_LONGS) >= 4096:
            _LONGS.clear()
        _LONGS[n] = encoded
    out += encoded


def _write_int(out: bytearray, n: int) -> None:
    if not _INT_MIN <= n <= _INT_MAX:
        raise OverflowError(f"{n!r} does not fit in an Avro int")
    _write_long(out, n)


def _read_long(b: bytes, pos: int) -> tuple[int, int]:
    # The slow path for varints of two bytes or more (generated code reads one-byte
    # ones inline). Unrolled up to six bytes, a millisecond timestamp's length (one
    # in every event): a quarter less time than the loop, which reads the longer ones.
    n = b[pos]
    if n < 0x80:
        return (n >> 1) ^ -(n & 1), pos + 1
    x = b[pos + 1]
    n = (n & 0x7F) | (x & 0x7F) << 7
    if x < 0x80:
        return (n >> 1) ^ -(n & 1), pos + 2
    x = b[pos + 2]
    n |= (x & 0x7F) << 14
    if x < 0x80:
        return (n >> 1) ^ -(n & 1), pos + 3
    x = b[pos + 3]
    n |= (x & 0x7F) << 21
    if x < 0x80:
        return (n >> 1) ^ -(n & 1), pos + 4
    x = b[pos + 4]
    n |= (x & 0x7F) << 28
    if x < 0x80:
        return (n >> 1) ^ -(n & 1), pos + 5
    x = b[pos + 5]
    n |= (x & 0x7F) << 35
    if x < 0x80:
        return (n >> 1) ^ -(n & 1), pos + 6
    return _read_long_loop(b, pos)


def _read_long_loop(b: bytes, pos: int) -> tuple[int, int]:
    n = 0
    shift = 0
    while True:
        x = b[pos]
        pos += 1
        n |= (x & 0x7F) << shift
        if x < 0x80:
            if shift == 63 and x > 1:
                raise Malformed("varint does not fit in a long (64 bits)")
            return (n >> 1) ^ -(n & 1), pos
        shift += 7
        if shift > 63:
            raise Malformed("varint longer than 10 bytes")


def _write_bool_error(v: object) -> None:
    raise TypeError(f"{v!r} is not a boolean")


def _write_null_error(v: object) -> None:
    raise TypeError(f"{v!r} is not None (Avro null)")


def _union_tuple_error(v: object, names: tuple[str, ...]) -> None:
    raise TypeError(
        f"a union of several records takes a ('full.Name', {{...}}) tuple, got "
        f"{type(v).__name__}; branches: {', '.join(names)}"
    )


def _encoded_error(v: bytes, name: str) -> None:
    raise Malformed(
        f"an already encoded {name} must be its single-object encoding with the current "
        f"schema (header {v[:10].hex()} is another schema's or not one)"
    )


def _union_name_error(name: object, names: tuple[str, ...]) -> None:
    raise ValueError(f"union has no branch {name!r}; branches: {', '.join(names)}")


def _malformed(what: str) -> None:
    raise Malformed(what)


def _bad_length(n: int) -> None:
    if n < 0:
        raise Malformed(f"negative length {n}")
    raise Malformed(f"a length of {n} runs past the end (truncated record?)")


def _bad_count(n: int) -> None:
    raise Malformed(f"a block of {n} items runs past the end (truncated record?)")


_ZIGZAG = tuple((x >> 1) ^ -(x & 1) for x in range(128))
"""The long of each one-byte varint: a tuple index is half the time of the four
operations (lengths, counts, union branches and small numbers are all one byte)."""

_HELPERS: dict[str, Any] = {
    "_zz": _ZIGZAG,
    "_wl": _write_long,
    "_wi": _write_int,
    "_rl": _read_long,
    "_pack_d": struct.Struct("<d").pack,
    "_pack_f": struct.Struct("<f").pack,
    "_unpack_d": struct.Struct("<d").unpack_from,
    "_unpack_f": struct.Struct("<f").unpack_from,
    "_bool_err": _write_bool_error,
    "_null_err": _write_null_error,
    "_tuple_err": _union_tuple_error,
    "_name_err": _union_name_error,
    "_enc_err": _encoded_error,
    "_bad": _malformed,
    "_bad_len": _bad_length,
    "_bad_count": _bad_count,
}


@dataclass(frozen=True, slots=True)
class CompiledCodec:
    """Generated writer and reader of one record schema."""

    #: ``write(out, datum)`` appends the Avro binary body of ``datum`` to ``out``.
    write: Callable[[bytearray, Mapping[str, Any]], None]
    #: ``read(data, pos)`` returns ``(datum, position after the body)``; ``data`` is
    #: ``bytes`` (or a ``bytearray``: strings are decoded with their ``decode()``).
    read: Callable[[bytes, int], tuple[dict[str, Any], int]]
    #: The generated source, for debugging ("" for the native codec).
    source: str


class _Gen:
    def __init__(
        self, roots: Iterable[Mapping[str, Any]], headers: Mapping[str, bytes] | None = None
    ) -> None:
        self.headers = headers or {}
        self.named: dict[str, Mapping[str, Any]] = {}
        for root in roots:
            if root.get("type") not in ("record", "error"):
                raise Unsupported("only records are compiled")
            self._collect(root)
        self.consts: dict[str, Any] = {}
        self.func: dict[str, int] = {n: i for i, n in enumerate(self.named)}
        self.lines: list[str] = []
        self._n = 0

    # -- schema walking -------------------------------------------------
    def _collect(self, node: Any) -> None:
        if isinstance(node, list):
            for branch in node:
                self._collect(branch)
        elif isinstance(node, Mapping):
            kind = node.get("type")
            if kind in ("record", "error", "enum", "fixed"):
                name = node["name"]
                if name in self.named:
                    # Several roots define the types they share, identically
                    # when they come from one set of files.
                    if _shallow(self.named[name], top=True) != _shallow(node, top=True):
                        raise Unsupported(f"two different definitions of {name}")
                    return
                self.named[name] = node
                if kind == "fixed":
                    raise Unsupported("fixed types")
                if kind == "enum":
                    return
                for field in node["fields"]:
                    self._collect(field["type"])
            elif kind == "array":
                self._collect(node["items"])
            elif kind == "map":
                self._collect(node["values"])
            elif kind not in _PRIMITIVES:
                self._collect(kind)
        elif isinstance(node, str) and node not in _PRIMITIVES and node not in self.named:
            raise Unsupported(f"reference to undefined type {node!r}")

    def resolve(self, node: Any) -> Any:
        """A primitive name, a list (union) or a definition dict."""
        if isinstance(node, str):
            return node if node in _PRIMITIVES else self.named[node]
        if isinstance(node, Mapping):
            if node.get("logicalType") is not None:
                raise Unsupported("logical types")
            kind = node.get("type")
            if isinstance(kind, list) or (
                isinstance(kind, str) and kind not in ("record", "error", "enum", "array", "map")
            ):
                # {"type": "long"} or {"type": "full.Name"}: a wrapped name.
                return self.resolve(kind)
        return node

    def kind(self, node: Any) -> str:
        node = self.resolve(node)
        if isinstance(node, str):
            return node
        if isinstance(node, list):
            return "union"
        return str(node["type"])

    def const(self, value: Any) -> str:
        name = f"_k{len(self.consts)}"
        self.consts[name] = value
        return name

    def var(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def union_plan(self, node: list[Any]) -> tuple[bool, list[tuple[str, int]]]:
        """(has null, [(record full name, index)]) or Unsupported."""
        has_null = any(self.kind(branch) == "null" for branch in node)
        records: list[tuple[str, int]] = []
        for index, branch in enumerate(node):
            kind = self.kind(branch)
            if kind in ("record", "error"):
                records.append((self.resolve(branch)["name"], index))
            elif kind != "null" and not (len(node) == 2 and has_null):
                # e.g. ["string", "long"]: the writer would have to guess by type.
                raise Unsupported(f"union {node!r:.100}")
        return has_null, records

    def min_size(self, node: Any) -> int:
        """Fewest bytes a value of this type takes (0 or 1 is all we need)."""
        kind = self.kind(node)
        if kind == "null":
            return 0
        if kind in ("record", "error"):
            return min(1, sum(self.min_size(f["type"]) for f in self.resolve(node)["fields"]))
        return 1

    # -- writer ---------------------------------------------------------
    def emit_write(self, node: Any, v: str, ind: str, out: list[str]) -> None:
        node = self.resolve(node)
        kind = self.kind(node)
        if kind == "null":
            out.append(f"{ind}if {v} is not None: _null_err({v})")
        elif kind == "boolean":
            out += [
                f"{ind}if {v} is True: ap(1)",
                f"{ind}elif {v} is False: ap(0)",
                f"{ind}else: _bool_err({v})",
            ]
        elif kind in ("int", "long"):
            slow = "_wi" if kind == "int" else "_wl"
            out += [f"{ind}if 0 <= {v} < 64: ap({v} << 1)", f"{ind}else: {slow}(o, {v})"]
        elif kind in ("float", "double"):
            out.append(f"{ind}o += {'_pack_d' if kind == 'double' else '_pack_f'}({v})")
        elif kind in ("string", "bytes"):
            data = self.var("s")
            size = self.var("n")
            conv = f"{v}.encode()" if kind == "string" else v
            out += [
                f"{ind}{data} = {conv}",
                f"{ind}{size} = len({data})",
                f"{ind}if {size} < 64: ap({size} << 1)",
                f"{ind}else: _wl(o, {size})",
                f"{ind}o += {data}",
            ]
        elif kind == "enum":
            table = self.const(
                {
                    s: bytes([i << 1]) if i < 64 else _varint(i)
                    for i, s in enumerate(node["symbols"])
                }
            )
            out.append(f"{ind}o += {table}[{v}]")
        elif kind == "array":
            item = self.var("x")
            out += [f"{ind}if {v}:", f"{ind}    _wl(o, len({v}))", f"{ind}    for {item} in {v}:"]
            items = self.resolve(node["items"])
            header = self.headers.get(items["name"]) if self.kind(items) == "record" else None
            if header is None:
                self.emit_write(node["items"], item, ind + "        ", out)
            else:
                # An item already encoded (single-object bytes of the current schema)
                # is spliced in: the engine sends events it has just encoded for
                # `history` again inside a workflow task.
                hdr, name, cut = self.const(header), self.const(items["name"]), len(header)
                out += [
                    f"{ind}        if {item}.__class__ is bytes:",
                    f"{ind}            if {item}[:{cut}] != {hdr}: _enc_err({item}, {name})",
                    f"{ind}            o += {item}[{cut}:]",
                    f"{ind}        else:",
                ]
                self.emit_write(node["items"], item, ind + "            ", out)
            out.append(f"{ind}ap(0)")
        elif kind == "map":
            key, val, kb = self.var("k"), self.var("x"), self.var("s")
            out += [
                f"{ind}if {v}:",
                f"{ind}    _wl(o, len({v}))",
                f"{ind}    for {key}, {val} in {v}.items():",
                f"{ind}        {kb} = {key}.encode()",
                f"{ind}        _wl(o, len({kb}))",
                f"{ind}        o += {kb}",
            ]
            self.emit_write(node["values"], val, ind + "        ", out)
            out.append(f"{ind}ap(0)")
        elif kind in ("record", "error"):
            out.append(f"{ind}_w{self.func[node['name']]}(o, {v})")
        elif kind == "union":
            self.emit_write_union(node, v, ind, out)
        else:  # pragma: no cover - resolve() only returns the kinds above
            raise Unsupported(kind)

    def emit_write_union(self, node: list[Any], v: str, ind: str, out: list[str]) -> None:
        has_null, records = self.union_plan(node)
        null_index = (
            next(i for i, b in enumerate(node) if self.kind(b) == "null") if has_null else -1
        )
        if len(node) == 2 and has_null:
            other = 1 - null_index
            out += [
                f"{ind}if {v} is None: ap({null_index << 1})",
                f"{ind}else:",
                f"{ind}    ap({other << 1})",
            ]
            if len(records) == 1:
                # fastavro also accepts the tuple form for a single record.
                name = self.const(records[0][0])
                tup = self.var("t")
                out += [
                    f"{ind}    if {v}.__class__ is tuple:",
                    f"{ind}        {tup} = {v}",
                    f"{ind}        if {tup}[0] != {name}: _name_err({tup}[0], ({name},))",
                    f"{ind}        {v} = {tup}[1]",
                ]
            self.emit_write(node[other], v, ind + "    ", out)
            return
        names = self.const(tuple(n for n, _ in records))
        table = self.const({n: (_varint(i), self.func[n]) for n, i in records})
        entry = self.var("e")
        if has_null:
            out += [f"{ind}if {v} is None: o += {self.const(_varint(null_index))}", f"{ind}else:"]
            ind += "    "
        out += [
            f"{ind}if {v}.__class__ is not tuple: _tuple_err({v}, {names})",
            f"{ind}{entry} = {table}.get({v}[0])",
            f"{ind}if {entry} is None: _name_err({v}[0], {names})",
            f"{ind}o += {entry}[0]",
            f"{ind}_W[{entry}[1]](o, {v}[1])",
        ]

    def field_mode(self, field: Mapping[str, Any]) -> int:
        """What a writer does when the datum lacks ``field``: :data:`_REQUIRED` (a
        KeyError), :data:`_DEFAULT` (writes its default) or :data:`_NULL` (writes
        null: an optional field without a default, as fastavro does)."""
        if "default" in field:
            return _DEFAULT
        if self.kind(field["type"]) == "union" and any(
            self.kind(b) == "null" for b in self.resolve(field["type"])
        ):
            return _NULL
        return _REQUIRED

    def gen_writer(self, name: str) -> None:
        node = self.named[name]
        body: list[str] = [f"def _w{self.func[name]}(o, d):", "    ap = o.append"]
        for field in node["fields"]:
            v = self.var("v")
            fname = repr(field["name"])
            mode = self.field_mode(field)
            if mode == _DEFAULT:
                body.append(f"    {v} = d.get({fname}, {self.const(field['default'])})")
            elif mode == _NULL:
                body.append(f"    {v} = d.get({fname})")
            else:
                body.append(f"    {v} = d[{fname}]")
            self.emit_write(field["type"], v, "    ", body)
        if not node["fields"]:
            body.append("    pass")
        self.lines += body

    # -- reader ---------------------------------------------------------
    def emit_long(self, target: str, ind: str, out: list[str]) -> None:
        x = self.var("b")
        out += [
            f"{ind}{x} = b[p]",
            f"{ind}if {x} < 128: {target} = _zz[{x}]; p += 1",
            f"{ind}else: {target}, p = _rl(b, p)",
        ]

    def emit_read(self, node: Any, target: str, ind: str, out: list[str]) -> None:
        node = self.resolve(node)
        kind = self.kind(node)
        if kind == "null":
            out.append(f"{ind}{target} = None")
        elif kind == "boolean":
            x = self.var("b")
            out += [
                f"{ind}{x} = b[p]; p += 1",
                f"{ind}if {x} > 1: _bad('boolean byte %d' % {x})",
                f"{ind}{target} = {x} == 1",
            ]
        elif kind in ("int", "long"):
            self.emit_long(target, ind, out)
        elif kind in ("float", "double"):
            width = 8 if kind == "double" else 4
            fn = "_unpack_d" if kind == "double" else "_unpack_f"
            out += [f"{ind}{target} = {fn}(b, p)[0]; p += {width}"]
        elif kind in ("string", "bytes"):
            size, end = self.var("n"), self.var("e")
            self.emit_long(size, ind, out)
            out += [
                f"{ind}{end} = p + {size}",
                f"{ind}if {size} < 0 or {end} > lb: _bad_len({size})",
            ]
            if kind == "string":
                # bytes.decode() is a third faster than str(bytes, "utf-8").
                out.append(f"{ind}{target} = b[p:{end}].decode(); p = {end}")
            else:
                out.append(f"{ind}{target} = b[p:{end}]; p = {end}")
        elif kind == "enum":
            symbols = tuple(node["symbols"])
            index = self.var("i")
            self.emit_long(index, ind, out)
            out += [
                f"{ind}if not 0 <= {index} < {len(symbols)}: "
                f"_bad('enum index %d of {node['name']}' % {index})",
                f"{ind}{target} = {self.const(symbols)}[{index}]",
            ]
        elif kind in ("array", "map"):
            self.emit_read_block(node, kind, target, ind, out)
        elif kind in ("record", "error"):
            out.append(f"{ind}{target}, p = _r{self.func[node['name']]}(b, p)")
        elif kind == "union":
            self.emit_read_union(node, target, ind, out)
        else:  # pragma: no cover
            raise Unsupported(kind)

    def emit_read_block(self, node: Any, kind: str, target: str, ind: str, out: list[str]) -> None:
        count, item, key, skip = self.var("n"), self.var("x"), self.var("k"), self.var("z")
        inner = node["items"] if kind == "array" else node["values"]
        out.append(f"{ind}{target} = {'[]' if kind == 'array' else '{}'}")
        out.append(f"{ind}while True:")
        self.emit_long(count, ind + "    ", out)
        out += [
            f"{ind}    if {count} == 0: break",
            f"{ind}    if {count} < 0:",
            f"{ind}        {count} = -{count}",
        ]
        self.emit_long(skip, ind + "        ", out)  # block size in bytes: not needed
        if kind == "map" or self.min_size(inner) > 0:
            # Each item takes a byte or more, so a count past the end is garbage;
            # checking it keeps a corrupt count from looping or allocating for long.
            out.append(f"{ind}    if {count} > lb - p: _bad_count({count})")
        out.append(f"{ind}    for _ in range({count}):")
        body = ind + "        "
        if kind == "map":
            self.emit_read("string", key, body, out)
        self.emit_read(inner, item, body, out)
        if kind == "array":
            out.append(f"{body}{target}.append({item})")
        else:
            out.append(f"{body}{target}[{key}] = {item}")

    def emit_read_union(self, node: list[Any], target: str, ind: str, out: list[str]) -> None:
        has_null, _ = self.union_plan(node)  # raises Unsupported for other unions
        index = self.var("i")
        if len(node) == 2 and has_null:
            # Optional value: the index is one byte, 0x00 (branch 0) or 0x02 (branch 1).
            null_byte = 0 if self.kind(node[0]) == "null" else 2
            out += [
                f"{ind}{index} = b[p]; p += 1",
                f"{ind}if {index} == {null_byte}: {target} = None",
                f"{ind}elif {index} == {2 - null_byte}:",
            ]
            self.emit_read(node[1 if null_byte == 0 else 0], target, ind + "    ", out)
            out.append(f"{ind}else: _bad('union index byte %d' % {index})")
            return
        self.emit_long(index, ind, out)
        out.append(f"{ind}if not 0 <= {index} < {len(node)}: _bad('union index %d' % {index})")
        # Several records: (full name, datum), as fastavro's return_record_name
        # with return_record_name_override gives.
        table = self.const(
            tuple(
                None
                if self.kind(b) == "null"
                else (self.resolve(b)["name"], self.func[self.resolve(b)["name"]])
                for b in node
            )
        )
        entry = self.var("e")
        val = self.var("x")
        out += [
            f"{ind}{entry} = {table}[{index}]",
            f"{ind}if {entry} is None: {target} = None",
            f"{ind}else:",
            f"{ind}    {val}, p = _R[{entry}[1]](b, p)",
            f"{ind}    {target} = ({entry}[0], {val})",
        ]

    def gen_reader(self, name: str) -> None:
        node = self.named[name]
        body: list[str] = [f"def _r{self.func[name]}(b, p):", "    lb = len(b)"]
        targets = []
        for field in node["fields"]:
            target = self.var("f")
            targets.append((field["name"], target))
            self.emit_read(field["type"], target, "    ", body)
        items = ", ".join(f"{n!r}: {t}" for n, t in targets)
        body.append(f"    return {{{items}}}, p")
        self.lines += body

    # -- native plan (schemas/_native.c) --------------------------------
    def plan_node(self, node: Any, nodes: list[tuple[Any, ...]]) -> int:
        """Append the native plan of ``node`` (and what it contains) to ``nodes``."""
        node = self.resolve(node)
        kind = self.kind(node)
        entry: tuple[Any, ...]
        if kind in _NATIVE_KINDS:
            entry = (_NATIVE_KINDS[kind],)
        elif kind == "enum":
            symbols = tuple(node["symbols"])
            entry = (_K_ENUM, node["name"], symbols, {s: i for i, s in enumerate(symbols)})
        elif kind == "array":
            items = self.resolve(node["items"])
            header = self.headers.get(items["name"]) if self.kind(items) == "record" else None
            inner = self.plan_node(node["items"], nodes)
            entry = (_K_ARRAY, inner, header, self.min_size(node["items"]) > 0)
        elif kind == "map":
            entry = (_K_MAP, self.plan_node(node["values"], nodes))
        elif kind in ("record", "error"):
            entry = (_K_RECORD, self.func[node["name"]])
        elif kind == "union":
            has_null, records = self.union_plan(node)
            if len(node) == 2 and has_null:
                null_index = 0 if self.kind(node[0]) == "null" else 1
                single = records[0][0] if len(records) == 1 else None
                other = self.plan_node(node[1 - null_index], nodes)
                entry = (_K_OPTIONAL, null_index, other, single)
            else:
                null_index = next((i for i, b in enumerate(node) if self.kind(b) == "null"), -1)
                branches = tuple(
                    None
                    if self.kind(b) == "null"
                    else (self.resolve(b)["name"], self.func[self.resolve(b)["name"]])
                    for b in node
                )
                names = tuple(n for n, _ in records)
                entry = (_K_UNION, null_index, names, branches, dict(records))
        else:  # pragma: no cover - resolve() only returns the kinds above
            raise Unsupported(kind)
        nodes.append(entry)
        return len(nodes) - 1

    def build_native(self, native: Any) -> dict[str, CompiledCodec]:
        """The C codec's writers and readers, from a plan of these schemas."""
        nodes: list[tuple[Any, ...]] = []
        records: list[Any] = [None] * len(self.func)
        for name, node in self.named.items():
            if node["type"] not in ("record", "error"):
                continue
            fields = [
                (
                    field["name"],
                    self.plan_node(field["type"], nodes),
                    self.field_mode(field),
                    field.get("default"),
                )
                for field in node["fields"]
            ]
            records[self.func[name]] = (name, tuple(fields))
        plan = native.Plan(nodes, records, Malformed)
        codecs = {}
        for name, i in self.func.items():
            if records[i] is not None:
                codec = plan.codec(i)
                codecs[name] = CompiledCodec(codec.write, codec.read, "")
        return codecs

    def build(self) -> dict[str, CompiledCodec]:
        for name, node in self.named.items():
            if node["type"] in ("record", "error"):
                self.gen_writer(name)
                self.gen_reader(name)
        source = "\n".join(self.lines) + "\n"
        namespace: dict[str, Any] = {**_HELPERS, **self.consts}
        exec(compile(source, "<cadenza.schemas compiled>", "exec"), namespace)
        # Unions of records dispatch through these tables, by function number.
        # The generated code looks globals up at call time, so records can
        # refer to each other, and to themselves (Failure.cause), in any order.
        count = len(self.func)
        namespace["_W"] = [namespace.get(f"_w{i}") for i in range(count)]
        namespace["_R"] = [namespace.get(f"_r{i}") for i in range(count)]
        return {
            name: CompiledCodec(namespace[f"_w{i}"], namespace[f"_r{i}"], source)
            for name, i in self.func.items()
            if self.named[name]["type"] in ("record", "error")
        }


def _shallow(node: Any, top: bool = False) -> Any:
    """``node`` with every nested named definition replaced by its name.

    Two standalone schemas define a shared type at different places (at its first
    use in each), so only this form can be compared between them.
    """
    if isinstance(node, list):
        return [_shallow(branch) for branch in node]
    if isinstance(node, Mapping):
        if not top and node.get("type") in ("record", "error", "enum", "fixed"):
            return node["name"]
        return {
            k: _shallow(v) if k in ("type", "items", "values", "fields") else v
            for k, v in node.items()
        }
    return node


def _varint(n: int) -> bytes:
    out = bytearray()
    _write_long(out, n)
    return bytes(out)


def compile_codecs(
    schemas: Iterable[Mapping[str, Any]],
    headers: Mapping[str, bytes] | None = None,
    native: bool | None = None,
) -> dict[str, CompiledCodec]:
    """Compile standalone record schemas into writers and readers.

    All are compiled together, so a type they share is compiled once.

    Args:
        schemas: Self-contained record schemas whose named types carry full names
            and agree wherever they share a name.
        headers: Record full name -> its single-object header (``C3 01`` and the
            fingerprint), for the records that may come already encoded: an array
            of them also takes items as ``bytes`` with that header, and writes
            their bodies as they are.
        native: True: the C codec (``schemas/_native.c``), which must have been
            built; False: generated Python; None: the C codec when it was built.

    Returns:
        Full name -> generated functions, for every record in ``schemas``
        (nested ones included).

    Raises:
        Unsupported: A schema uses a shape the compiler does not handle.
        ImportError: ``native`` is True and the C codec was not built.
    """
    gen = _Gen(schemas, headers)
    if native is None:
        native = NATIVE is not None
    if native:
        if NATIVE is None:
            raise ImportError(
                f"the native codec (schemas/_native.c) was not built ({_NATIVE_ERROR}): "
                "install a C compiler and reinstall (make dev), or use the Python codec "
                "(CADENZA_CODEC=python)"
            )
        return gen.build_native(NATIVE)
    return gen.build()
