"""Reading the ``.avsc`` files and turning a named type into a standalone schema.

Each named type lives in its own file and refers to others by full name, as a
Java or Rust user would keep them. Avro's writers, readers and Parsing Canonical
Form all need one self-contained schema instead: the first use of each named
type carries its definition, later uses its full name. :func:`standalone` builds
exactly that, so the fingerprint we compute is the one any other Avro library
computes after parsing the same files.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from ._errors import SchemaError

__all__ = [
    "NAMED_KINDS",
    "PRIMITIVES",
    "Definitions",
    "default_root",
    "read_definitions",
    "read_previous",
    "standalone",
]

#: Avro's primitive type names: never resolved as references.
PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
#: Schema kinds that carry a name.
NAMED_KINDS = frozenset({"record", "error", "enum", "fixed"})

#: Folder (under the root) whose files are older versions kept for decoding only.
PREVIOUS_DIR = "previous"
#: Every namespace folder ``x`` holds the types of namespace ``cadenza.x``.
NAMESPACE_PREFIX = "cadenza."

#: Full name -> the definition exactly as written in its file (references by name).
Definitions = dict[str, dict[str, Any]]


def default_root() -> Traversable:
    """The ``avro`` folder shipped inside the package.

    ``importlib.resources`` rather than ``__file__`` so it also works when the
    package is imported from a zip or an installed wheel.
    """
    return resources.files(__package__ or "cadenza.schemas").joinpath("avro")


def _full_name(name: str, namespace: str) -> str:
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def _definition_full_name(definition: Mapping[str, Any], namespace: str) -> str:
    name = definition.get("name")
    if not isinstance(name, str) or not name:
        raise SchemaError(f"named type without a name: {definition!r:.200}")
    ns = definition.get("namespace", namespace)
    return _full_name(name, ns if isinstance(ns, str) else namespace)


def _load_json(file: Traversable, where: str) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemaError(f"{where}: not a readable JSON schema: {exc}") from exc
    if not isinstance(data, dict):
        raise SchemaError(f"{where}: top level must be a JSON object (a named type)")
    return data


def read_definitions(root: Traversable | None = None) -> Definitions:
    """Read every current named type under ``root`` (default: the packaged ``avro``).

    Layout: ``root/<x>/<Name>.avsc`` holds exactly the type ``cadenza.<x>.<Name>``.
    The ``previous`` folder is skipped (see :func:`read_previous`).

    Args:
        root: The folder to read; the packaged schemas when ``None``.

    Returns:
        Full name -> definition as written in its file.

    Raises:
        SchemaError: A file is not JSON, not a named type, or its name or
            namespace does not match where it lives, or two files define one name.
    """
    root = root if root is not None else default_root()
    definitions: Definitions = {}
    for folder in sorted(root.iterdir(), key=lambda t: t.name):
        if not folder.is_dir() or folder.name == PREVIOUS_DIR or folder.name[0] in "._":
            continue
        namespace = NAMESPACE_PREFIX + folder.name
        for file in sorted(folder.iterdir(), key=lambda t: t.name):
            if not file.name.endswith(".avsc"):
                continue
            where = f"{folder.name}/{file.name}"
            definition = _load_json(file, where)
            if definition.get("type") not in NAMED_KINDS:
                raise SchemaError(f"{where}: must define a record, enum or fixed type")
            full = _definition_full_name(definition, namespace)
            # One file per type, named after it: other-language users find a
            # type's file from its name alone.
            expected = f"{namespace}.{file.name.removesuffix('.avsc')}"
            if full != expected:
                raise SchemaError(f"{where}: defines {full}, expected {expected}")
            if full in definitions:
                raise SchemaError(f"{where}: {full} is defined twice")
            definitions[full] = definition
    if not definitions:
        raise SchemaError(f"no .avsc files found under {root}")
    return definitions


def read_previous(root: Traversable | None = None) -> list[dict[str, Any]]:
    """Read the older writer schemas kept under ``root/previous`` (any depth).

    Each file there is a *standalone* schema (every named type defined inline),
    frozen as it was when records were written with it. The folder may be absent.

    Args:
        root: The folder whose ``previous`` sub-folder to read; the packaged one
            when ``None``.

    Returns:
        The schemas, in file-name order.
    """
    root = root if root is not None else default_root()
    previous = root.joinpath(PREVIOUS_DIR)
    if not previous.is_dir():
        return []
    found: list[dict[str, Any]] = []
    pending = [previous]
    while pending:
        folder = pending.pop()
        for item in sorted(folder.iterdir(), key=lambda t: t.name):
            if item.is_dir():
                pending.append(item)
            elif item.name.endswith(".avsc"):
                found.append(_load_json(item, f"{PREVIOUS_DIR}/.../{item.name}"))
    return found


def standalone(name: str, definitions: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Build the self-contained schema of the named type ``name``.

    Every named type is written with its full name (no ``namespace`` key), defined
    at its first use in depth-first field order and referred to by name after that,
    which is also how a parser of the separate files sees it. Docs and defaults
    are kept: they do not change the fingerprint but readers need the defaults.

    Args:
        name: Full name of the type, e.g. ``"cadenza.command.Command"``.
        definitions: What :func:`read_definitions` returned.

    Returns:
        A new JSON-like dict the caller may keep or change.

    Raises:
        SchemaError: ``name`` or a type it refers to is not defined.
    """
    defined: set[str] = set()

    def named(full: str, via: str) -> Any:
        if full in defined:
            return full
        definition = definitions.get(full)
        if definition is None:
            raise SchemaError(f"unknown type {full!r} (referenced from {via})")
        return expand(definition, full.rpartition(".")[0], via)

    def expand(node: Any, namespace: str, via: str) -> Any:
        if isinstance(node, str):
            if node in PRIMITIVES:
                return node
            return named(_full_name(node, namespace), via)
        if isinstance(node, list):
            return [expand(branch, namespace, via) for branch in node]
        if not isinstance(node, Mapping):
            raise SchemaError(f"not a schema: {node!r:.200} (in {via})")
        kind = node.get("type")
        if kind in NAMED_KINDS:
            full = _definition_full_name(node, namespace)
            if full in defined:
                raise SchemaError(f"{full} is defined twice (in {via})")
            # Mark before descending: a recursive type (Failure.cause) then
            # refers to itself by name, as Avro requires.
            defined.add(full)
            out = {k: copy.deepcopy(v) for k, v in node.items() if k not in ("namespace", "fields")}
            out["name"] = full
            if "fields" in node:
                inner_ns = full.rpartition(".")[0]
                out["fields"] = [
                    {
                        **copy.deepcopy(dict(field)),
                        "type": expand(field["type"], inner_ns, f"{full}.{field['name']}"),
                    }
                    for field in node["fields"]
                ]
            return out
        if kind == "array":
            return {**node, "items": expand(node["items"], namespace, via)}
        if kind == "map":
            return {**node, "values": expand(node["values"], namespace, via)}
        if isinstance(kind, str) and kind in PRIMITIVES:
            return dict(node)
        # {"type": "cadenza.x.Y"} or {"type": [...]}: a wrapped reference/union.
        return expand(kind, namespace, via)

    result = named(name, "the caller")
    if not isinstance(result, dict):  # pragma: no cover - named() defines on first use
        raise SchemaError(f"{name} did not expand to a definition")
    return result
