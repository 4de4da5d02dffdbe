"""Typed and untyped search attributes (indexed fields of a workflow).

The visibility projection indexes these; workflows set them at start and
change them with ``workflow.upsert_search_attributes``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from itertools import pairwise
from typing import Any, ClassVar, Generic, NamedTuple, TypeAlias, TypeVar, get_origin, overload

SearchAttributeValues: TypeAlias = list[str] | list[int] | list[float] | list[bool] | list[datetime]
"""Values of one untyped search attribute (always a list)."""

SearchAttributes: TypeAlias = Mapping[str, SearchAttributeValues]
"""Untyped search attributes: name to list of values. Prefer
:class:`TypedSearchAttributes`."""

SearchAttributeValue: TypeAlias = str | int | float | bool | datetime | Sequence[str]
"""Value of one typed search attribute."""

SearchAttributeValueType = TypeVar(
    "SearchAttributeValueType", str, int, float, bool, datetime, Sequence[str]
)

_D = TypeVar("_D")


class SearchAttributeIndexedValueType(IntEnum):
    """How the visibility store indexes a search attribute."""

    TEXT = 1
    KEYWORD = 2
    INT = 3
    DOUBLE = 4
    BOOL = 5
    DATETIME = 6
    KEYWORD_LIST = 7


_METADATA_TYPES = {
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.BOOL: "Bool",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}


@dataclass(frozen=True)
class SearchAttributeKey(Generic[SearchAttributeValueType]):
    """A typed search attribute name. Create one with a ``for_*`` method.

    Example:
        >>> customer = SearchAttributeKey.for_keyword("CustomerId")
        >>> attrs = TypedSearchAttributes([SearchAttributePair(customer, "c-42")])
        >>> attrs[customer]
        'c-42'
    """

    _name: str
    _indexed_value_type: SearchAttributeIndexedValueType
    _value_type: Any

    def __repr__(self) -> str:
        return f"SearchAttributeKey.for_{self._indexed_value_type.name.lower()}({self._name!r})"

    @property
    def name(self) -> str:
        """The attribute's name."""
        return self._name

    @property
    def indexed_value_type(self) -> SearchAttributeIndexedValueType:
        """How the attribute is indexed."""
        return self._indexed_value_type

    @property
    def value_type(self) -> type[SearchAttributeValueType]:
        """Python type of the value (may be generic, e.g. ``Sequence[str]``)."""
        return self._value_type  # type: ignore[no-any-return]

    @property
    def origin_value_type(self) -> type:
        """:attr:`value_type` without generic parameters, usable in ``isinstance``."""
        origin = get_origin(self._value_type)
        return origin if origin is not None else self._value_type  # type: ignore[no-any-return]

    @property
    def _metadata_type(self) -> str:
        return _METADATA_TYPES[self._indexed_value_type]

    def value_set(
        self, value: SearchAttributeValueType
    ) -> SearchAttributeUpdate[SearchAttributeValueType]:
        """An update that sets this attribute to ``value``."""
        return SearchAttributeUpdate(self, value)

    def value_unset(self) -> SearchAttributeUpdate[SearchAttributeValueType]:
        """An update that removes this attribute."""
        return SearchAttributeUpdate(self, None)

    @staticmethod
    def for_text(name: str) -> SearchAttributeKey[str]:
        """A full-text ``Text`` attribute."""
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.TEXT, str)

    @staticmethod
    def for_keyword(name: str) -> SearchAttributeKey[str]:
        """An exact-match ``Keyword`` attribute."""
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.KEYWORD, str)

    @staticmethod
    def for_int(name: str) -> SearchAttributeKey[int]:
        """An ``Int`` attribute."""
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.INT, int)

    @staticmethod
    def for_float(name: str) -> SearchAttributeKey[float]:
        """A ``Double`` attribute."""
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.DOUBLE, float)

    @staticmethod
    def for_bool(name: str) -> SearchAttributeKey[bool]:
        """A ``Bool`` attribute."""
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.BOOL, bool)

    @staticmethod
    def for_datetime(name: str) -> SearchAttributeKey[datetime]:
        """A ``Datetime`` attribute."""
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.DATETIME, datetime)

    @staticmethod
    def for_keyword_list(name: str) -> SearchAttributeKey[Sequence[str]]:
        """A ``KeywordList`` attribute (several exact-match values)."""
        return SearchAttributeKey(name, SearchAttributeIndexedValueType.KEYWORD_LIST, Sequence[str])

    @staticmethod
    def _from_metadata_type(name: str, metadata_type: str) -> SearchAttributeKey[Any] | None:
        for indexed, label in _METADATA_TYPES.items():
            if metadata_type in (label, f"INDEXED_VALUE_TYPE_{indexed.name}"):
                return _KEY_FACTORIES[indexed](name)
        return None


_KEY_FACTORIES: dict[SearchAttributeIndexedValueType, Callable[[str], SearchAttributeKey[Any]]] = {
    SearchAttributeIndexedValueType.TEXT: SearchAttributeKey.for_text,
    SearchAttributeIndexedValueType.KEYWORD: SearchAttributeKey.for_keyword,
    SearchAttributeIndexedValueType.INT: SearchAttributeKey.for_int,
    SearchAttributeIndexedValueType.DOUBLE: SearchAttributeKey.for_float,
    SearchAttributeIndexedValueType.BOOL: SearchAttributeKey.for_bool,
    SearchAttributeIndexedValueType.DATETIME: SearchAttributeKey.for_datetime,
    SearchAttributeIndexedValueType.KEYWORD_LIST: SearchAttributeKey.for_keyword_list,
}


class SearchAttributePair(NamedTuple, Generic[SearchAttributeValueType]):
    """A typed key and its value."""

    key: SearchAttributeKey[SearchAttributeValueType]
    value: SearchAttributeValueType


@dataclass(frozen=True)
class SearchAttributeUpdate(Generic[SearchAttributeValueType]):
    """Set (``value`` given) or unset (``value`` is ``None``) one attribute.

    Create it with :meth:`SearchAttributeKey.value_set` or
    :meth:`SearchAttributeKey.value_unset`.
    """

    _key: SearchAttributeKey[SearchAttributeValueType]
    _value: SearchAttributeValueType | None

    @property
    def key(self) -> SearchAttributeKey[SearchAttributeValueType]:
        """The key being changed."""
        return self._key

    @property
    def value(self) -> SearchAttributeValueType | None:
        """The new value, or ``None`` to unset."""
        return self._value


@dataclass(frozen=True)
class TypedSearchAttributes(Collection[SearchAttributePair[Any]]):
    """An immutable collection of typed search attributes.

    Pairs are kept sorted by key name; two pairs with the same name are an
    error. Make changed copies with :meth:`updated`.
    """

    search_attributes: Sequence[SearchAttributePair[Any]]
    """The pairs, sorted by key name. Do not mutate."""

    empty: ClassVar[TypedSearchAttributes]
    """An empty collection."""

    def __post_init__(self) -> None:
        pairs = tuple(sorted(self.search_attributes, key=lambda p: p.key.name))
        for before, after in pairwise(pairs):
            if before.key.name == after.key.name:
                raise ValueError(f"Duplicate search attribute entries for key {after.key.name!r}")
        object.__setattr__(self, "search_attributes", pairs)

    def __len__(self) -> int:
        """Number of attributes."""
        return len(self.search_attributes)

    def __iter__(self) -> Iterator[SearchAttributePair[Any]]:
        """Iterate over the pairs in key name order."""
        return iter(self.search_attributes)

    def __contains__(self, key: object) -> bool:
        """Whether a pair with this exact key (name and type) is present."""
        return any(pair.key == key for pair in self.search_attributes)

    def __getitem__(
        self, key: SearchAttributeKey[SearchAttributeValueType]
    ) -> SearchAttributeValueType:
        """The value for ``key``.

        Raises:
            KeyError: No pair with this exact key.
        """
        for pair in self.search_attributes:
            if pair.key == key:
                return pair.value  # type: ignore[no-any-return]
        raise KeyError(key.name)

    @overload
    def get(
        self, key: SearchAttributeKey[SearchAttributeValueType]
    ) -> SearchAttributeValueType | None: ...

    @overload
    def get(
        self, key: SearchAttributeKey[SearchAttributeValueType], default: _D
    ) -> SearchAttributeValueType | _D: ...

    def get(self, key: SearchAttributeKey[Any], default: Any = None) -> Any:
        """The value for ``key``, or ``default``."""
        try:
            return self[key]
        except KeyError:
            return default

    def updated(self, *search_attributes: SearchAttributePair[Any]) -> TypedSearchAttributes:
        """A copy with these pairs replacing those of the same name, or added."""
        by_name = {pair.key.name: pair for pair in self.search_attributes}
        for pair in search_attributes:
            by_name[pair.key.name] = pair
        return TypedSearchAttributes(list(by_name.values()))


TypedSearchAttributes.empty = TypedSearchAttributes([])
