"""Rebuild typed Python values from what ``json.loads`` returned.

Driven by type hints: dataclasses (nested), pydantic v1/v2 models (without
importing pydantic), enums, datetimes, UUIDs, ``Optional``/unions, literals,
``NewType``, ``TypedDict``, and lists, tuples, sets and dicts of all of these.
"""

from __future__ import annotations

import collections
import collections.abc
import dataclasses
import functools
import inspect
import types
import typing
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from enum import Enum
from typing import Any, ClassVar, NewType, TypeVar, get_args, get_origin, get_type_hints

JSONTypeConverterUnhandled = NewType("JSONTypeConverterUnhandled", object)
"""Type of :attr:`JSONTypeConverter.Unhandled`."""


class JSONTypeConverter(ABC):
    """Extension point: convert a ``json.loads`` value to a type the default rules miss."""

    Unhandled: ClassVar[JSONTypeConverterUnhandled] = JSONTypeConverterUnhandled(object())
    """Return this from :meth:`to_typed_value` to leave the value to the next rule."""

    @abstractmethod
    def to_typed_value(self, hint: Any, value: Any) -> Any:
        """Convert ``value`` to ``hint``, or return :attr:`Unhandled`."""
        raise NotImplementedError


def _is_pydantic_v2_model_class(hint: Any) -> bool:
    return inspect.isclass(hint) and callable(getattr(hint, "model_validate", None))


def _is_pydantic_v1_model_class(hint: Any) -> bool:
    return isinstance(hint, type) and _has_parse_obj(hint)


@functools.lru_cache(maxsize=1024)
def _has_parse_obj(cls: Any) -> bool:
    """Whether ``cls`` has a ``parse_obj`` class or static method (cached:
    ``getattr_static`` walks the MRO, a third of converting a ``TypedDict``)."""
    parse_obj = inspect.getattr_static(cls, "parse_obj", None)
    return isinstance(parse_obj, classmethod | staticmethod)


def _convert_key(key_type: Any, key: Any, converters: Sequence[JSONTypeConverter]) -> Any:
    # JSON object keys are always strings; give back the key type the hint names.
    if isinstance(key, str):
        if key_type is int:
            return int(key)
        if key_type is float:
            return float(key)
        if key_type is bool:
            if key not in ("true", "false"):
                raise TypeError(f"Expected 'true' or 'false' for a bool key, got {key!r}")
            return key == "true"
        if inspect.isclass(key_type) and issubclass(key_type, Enum):
            try:
                return key_type(key)
            except ValueError:
                return key_type(int(key))
    return value_to_type(key_type, key, converters)


def _to_dataclass(hint: Any, value: Any, converters: Sequence[JSONTypeConverter]) -> Any:
    if not isinstance(value, dict):
        raise TypeError(f"Cannot convert {type(value).__name__} to dataclass {hint.__qualname__}")
    kwargs: dict[str, Any] = {}
    for name, field_hint in _init_fields(hint):
        if name not in value:
            continue  # a missing required field fails in the constructor, which names it
        try:
            kwargs[name] = value_to_type(field_hint, value[name], converters)
        except Exception as err:
            raise TypeError(
                f"Failed converting field {name!r} of dataclass {hint.__qualname__}: {err}"
            ) from err
    return hint(**kwargs)


@functools.lru_cache(maxsize=1024)
def _init_fields(cls: type) -> tuple[tuple[str, Any], ...]:
    """A dataclass's ``__init__`` fields and their type hints. Cached: ``get_type_hints``
    evaluates every annotation again, 40% of converting a small dataclass. A hint that
    does not resolve yet raises, and is not cached."""
    hints = get_type_hints(cls)
    return tuple((f.name, hints.get(f.name, Any)) for f in dataclasses.fields(cls) if f.init)


@functools.lru_cache(maxsize=1024)
def _typed_dict_hints(cls: type) -> dict[str, Any]:
    """A TypedDict's key hints (cached, as ``_init_fields``; callers only read it)."""
    return get_type_hints(cls)


def _to_mapping(
    hint: Any, origin: Any, args: tuple[Any, ...], value: Any, cv: Sequence[JSONTypeConverter]
) -> Any:
    if not isinstance(value, collections.abc.Mapping):
        raise TypeError(f"Expected an object for {hint}, got {type(value).__name__}")
    if typing.is_typeddict(origin):
        key_hints = _typed_dict_hints(origin)
        return {
            k: value_to_type(key_hints[k], v, cv) if k in key_hints else v for k, v in value.items()
        }
    key_type = args[0] if args else Any
    value_type = args[1] if len(args) > 1 else Any
    result = {}
    for k, v in value.items():
        try:
            result[_convert_key(key_type, k, cv)] = value_to_type(value_type, v, cv)
        except Exception as err:
            raise TypeError(f"Failed converting key {k!r} of {hint}: {err}") from err
    if origin is collections.OrderedDict:
        return collections.OrderedDict(result)
    return result


def _to_iterable(
    hint: Any, origin: Any, args: tuple[Any, ...], value: Any, cv: Sequence[JSONTypeConverter]
) -> Any:
    if isinstance(value, str | bytes | dict) or not isinstance(value, collections.abc.Iterable):
        raise TypeError(f"Expected an array for {hint}, got {type(value).__name__}")
    items = list(value)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item_types: list[Any] = [args[0]] * len(items)
        elif args:
            if len(args) != len(items):
                raise TypeError(f"Expected {len(args)} items for {hint}, got {len(items)}")
            item_types = list(args)
        else:
            item_types = [Any] * len(items)
    else:
        item_types = [args[0] if args else Any] * len(items)
    converted = []
    for index, (item_type, item) in enumerate(zip(item_types, items, strict=True)):
        try:
            converted.append(value_to_type(item_type, item, cv))
        except Exception as err:
            raise TypeError(f"Failed converting item {index} of {hint}: {err}") from err
    if origin in (tuple, set, frozenset, collections.deque):
        return origin(converted)
    if inspect.isclass(origin) and issubclass(origin, collections.abc.Set):
        return set(converted)
    return converted


_JSON_SCALARS = frozenset((str, int, float, bool))
"""Types ``json.loads`` returns that a hint of the same type takes as they are."""


def _to_scalar(hint: Any, value: Any) -> Any:
    """Convert to a scalar type; returns ``_NOT_SCALAR`` if ``hint`` is not one."""
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError(f"Expected bool, got {type(value).__name__}")
        return value
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"Expected int, got {type(value).__name__} {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"Expected float, got {type(value).__name__}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(f"Expected str, got {type(value).__name__}")
        return value
    if hint is bytes or hint is bytearray:
        # Bytes inside JSON are encoded as a list of ints.
        if isinstance(value, str):
            return hint(value.encode())
        if not isinstance(value, list | bytes):
            raise TypeError(f"Expected a list of ints for bytes, got {type(value).__name__}")
        return hint(value)
    for kind in (datetime, date, dt_time):
        if hint is kind:
            if isinstance(value, kind):
                return value
            if not isinstance(value, str):
                raise TypeError(f"Expected an ISO 8601 string for {kind.__name__}, got {value!r}")
            try:
                return kind.fromisoformat(value)
            except ValueError as err:
                raise TypeError(f"Invalid ISO 8601 {kind.__name__}: {value!r}") from err
    if hint is timedelta:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"Expected seconds (a number) for timedelta, got {value!r}")
        return timedelta(seconds=value)
    if inspect.isclass(hint) and issubclass(hint, uuid.UUID):
        if not isinstance(value, str):
            raise TypeError(f"Expected a string for UUID, got {type(value).__name__}")
        return hint(value)
    if inspect.isclass(hint) and issubclass(hint, Enum):
        try:
            return hint(value)
        except ValueError as err:
            raise TypeError(f"{value!r} is not a valid {hint.__qualname__}") from err
    return _NOT_SCALAR


_NOT_SCALAR: Any = object()


def value_to_type(
    hint: Any,
    value: Any,
    custom_converters: Sequence[JSONTypeConverter] = (),
) -> Any:
    """Convert a ``json.loads`` result to the type ``hint`` names.

    Args:
        hint: The target type (a class or a typing construct).
        value: A JSON-decoded value (dict, list, str, number, bool, None).
        custom_converters: Tried first, in order.

    Returns:
        The converted value.

    Raises:
        TypeError: The value does not fit the hint, or the hint is not supported.

    Example:
        >>> import dataclasses
        >>> @dataclasses.dataclass
        ... class Point:
        ...     x: int
        ...     y: int
        >>> value_to_type(list[Point], [{"x": 1, "y": 2}])
        [Point(x=1, y=2)]
    """
    for converter in custom_converters:
        result = converter.to_typed_value(hint, value)
        if result is not JSONTypeConverter.Unhandled:
            return result

    if type(value) is hint and hint in _JSON_SCALARS:
        return value  # a str for a str: most arguments and results, before the general checks
    if hint is Any or hint is object or isinstance(hint, TypeVar):
        return value
    if hint is None or hint is type(None):
        if value is not None:
            raise TypeError(f"Expected None, got {type(value).__name__}")
        return None
    supertype = getattr(hint, "__supertype__", None)
    if supertype is not None:  # NewType
        return value_to_type(supertype, value, custom_converters)
    alias_value = getattr(hint, "__value__", None)
    if alias_value is not None and type(hint).__name__ == "TypeAliasType":
        return value_to_type(alias_value, value, custom_converters)

    origin = get_origin(hint)
    args = get_args(hint)
    if origin is typing.Annotated:
        return value_to_type(args[0], value, custom_converters)
    if origin is typing.Literal:
        if value not in args:
            raise TypeError(f"{value!r} is not one of {args}")
        return value
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        failures = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return value_to_type(arg, value, custom_converters)
            except Exception as err:
                failures.append(f"{arg}: {err}")
        raise TypeError(f"{value!r} fits none of {hint} ({'; '.join(failures)})")

    scalar = _to_scalar(hint, value)
    if scalar is not _NOT_SCALAR:
        return scalar
    if inspect.isclass(hint) and dataclasses.is_dataclass(hint):
        return _to_dataclass(hint, value, custom_converters)
    if _is_pydantic_v2_model_class(hint):
        return hint.model_validate(value)
    if _is_pydantic_v1_model_class(hint):
        return hint.parse_obj(value)

    container = origin if origin is not None else hint
    if not inspect.isclass(container):
        raise TypeError(f"Unsupported type hint {hint!r}")
    if typing.is_typeddict(container) or issubclass(container, collections.abc.Mapping):
        return _to_mapping(hint, container, args, value, custom_converters)
    if issubclass(container, collections.abc.Iterable) and not issubclass(container, str | bytes):
        return _to_iterable(hint, container, args, value, custom_converters)
    if isinstance(value, container):
        return value
    raise TypeError(f"Cannot convert {type(value).__name__} to {hint!r}: unsupported type hint")
