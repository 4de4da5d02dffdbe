"""Temporal's list-filter syntax, over the fields the visibility projection keeps.

A query is a boolean expression, optionally followed by ``ORDER BY``::

    WorkflowType = 'Order' AND ExecutionStatus IN ('Running', 'Failed')
        AND StartTime >= '2026-01-01T00:00:00Z' ORDER BY StartTime ASC

- fields: ``WorkflowId``, ``RunId``, ``WorkflowType``, ``TaskQueue``,
  ``ExecutionStatus`` (``'Running'``, ``'Completed'``, ``'Failed'``, ``'Canceled'``,
  ``'Terminated'``, ``'ContinuedAsNew'``, ``'TimedOut'``), ``StartTime``,
  ``CloseTime``, ``ExecutionTime`` (RFC 3339 strings), and any other name is a
  search attribute compared with its value (Keyword: a string; KeywordList: any
  element);
- operators: ``=``, ``!=`` (``<>``), ``>``, ``>=``, ``<``, ``<=``, ``[NOT] IN (...)``,
  ``[NOT] BETWEEN x AND y``, ``STARTS_WITH``, ``IS [NOT] NULL``; ``AND``, ``OR``,
  ``NOT``, parentheses; keywords are case-insensitive;
- ``ORDER BY StartTime|CloseTime|ExecutionTime [ASC|DESC]`` (default ``StartTime DESC``).

A comparison with a missing value (``CloseTime`` of a running run, a search
attribute the run does not have) is false, so its ``NOT`` is true; ``IS NULL``
asks for missing values directly.

:func:`parse` raises :class:`QueryError` whose message names what is wrong and
where; the processor sends it back as ``CommandRejected INVALID_ARGUMENT``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "STATUSES",
    "And",
    "Compare",
    "Expr",
    "Not",
    "Or",
    "Query",
    "QueryError",
    "parse",
]

STATUSES: Mapping[str, str] = {
    "running": "RUNNING",
    "completed": "COMPLETED",
    "failed": "FAILED",
    "canceled": "CANCELED",
    "terminated": "TERMINATED",
    "continuedasnew": "CONTINUED_AS_NEW",
    "timedout": "TIMED_OUT",
}
"""Temporal's status names (lower case, no underscores) -> the schema's symbols."""

_STRING_FIELDS = {
    "workflowid": ("WorkflowId", "workflow_id"),
    "runid": ("RunId", "run_id"),
    "workflowtype": ("WorkflowType", "workflow_type"),
    "taskqueue": ("TaskQueue", "task_queue"),
    "executionstatus": ("ExecutionStatus", "status"),
}
_TIME_FIELDS = {
    "starttime": ("StartTime", "start_time_ms"),
    "closetime": ("CloseTime", "close_time_ms"),
    "executiontime": ("ExecutionTime", "execution_time_ms"),
}
_ORDERABLE = ("StartTime", "CloseTime", "ExecutionTime")


class QueryError(ValueError):
    """The query does not parse, or names a value the projection cannot compare."""


# -- the tree --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Compare:
    """``field op values``: one comparison.

    ``attr`` is the record field (``status``, ``start_time_ms``...) or, for a search
    attribute, None and ``name`` is the attribute's name.
    """

    name: str
    attr: str | None
    op: str
    values: tuple[Any, ...]

    def __call__(self, info: Mapping[str, Any], attrs: Mapping[str, Any]) -> bool:
        if self.attr is not None:
            present = [info.get(self.attr)]
        else:
            value = attrs.get(self.name)
            present = value if isinstance(value, list) else [value]
        present = [v for v in present if v is not None]
        if self.op == "IS NULL":
            return not present
        if self.op == "IS NOT NULL":
            return bool(present)
        test = _TESTS[self.op]
        return any(test(v, self.values) for v in present if _comparable(v, self.values))


@dataclasses.dataclass(frozen=True)
class And:
    """All of ``parts``."""

    parts: tuple[Expr, ...]

    def __call__(self, info: Mapping[str, Any], attrs: Mapping[str, Any]) -> bool:
        return all(p(info, attrs) for p in self.parts)


@dataclasses.dataclass(frozen=True)
class Or:
    """Any of ``parts``."""

    parts: tuple[Expr, ...]

    def __call__(self, info: Mapping[str, Any], attrs: Mapping[str, Any]) -> bool:
        return any(p(info, attrs) for p in self.parts)


@dataclasses.dataclass(frozen=True)
class Not:
    """Not ``part``."""

    part: Expr

    def __call__(self, info: Mapping[str, Any], attrs: Mapping[str, Any]) -> bool:
        return not self.part(info, attrs)


Expr = Compare | And | Or | Not


@dataclasses.dataclass(frozen=True)
class Query:
    """A parsed query: a filter (None matches everything) and an order."""

    where: Expr | None
    order_by: str = "StartTime"
    """``StartTime``, ``CloseTime`` or ``ExecutionTime``."""
    descending: bool = True

    @property
    def order_attr(self) -> str:
        """The record field the order is on."""
        return _TIME_FIELDS[self.order_by.lower()][1]

    def matches(self, info: Mapping[str, Any], attrs: Mapping[str, Any]) -> bool:
        """Whether a run (its info record and decoded search attributes) matches."""
        return self.where is None or self.where(info, attrs)

    def equalities(self, attr: str) -> frozenset[Any] | None:
        """The values ``attr`` must have for any run to match, if the query pins them.

        ``ExecutionStatus = 'Running' AND ...`` pins ``status`` to {RUNNING}; an ``OR``
        at the top pins nothing. The processor scans an index by these values instead
        of every run.
        """
        parts = self.where.parts if isinstance(self.where, And) else (self.where,)
        pinned: frozenset[Any] | None = None
        for part in parts:
            if isinstance(part, Compare) and part.attr == attr and part.op in ("=", "IN"):
                values = frozenset(part.values)
                pinned = values if pinned is None else pinned & values
        return pinned


def _comparable(value: Any, values: tuple[Any, ...]) -> bool:
    # A Keyword compared with a number (or the reverse) never matches, rather than raise.
    return all(isinstance(value, str) == isinstance(v, str) for v in values)


_TESTS: dict[str, Callable[[Any, tuple[Any, ...]], bool]] = {
    "=": lambda v, xs: v == xs[0],
    "!=": lambda v, xs: v != xs[0],
    ">": lambda v, xs: v > xs[0],
    ">=": lambda v, xs: v >= xs[0],
    "<": lambda v, xs: v < xs[0],
    "<=": lambda v, xs: v <= xs[0],
    "IN": lambda v, xs: v in xs,
    "NOT IN": lambda v, xs: v not in xs,
    "BETWEEN": lambda v, xs: xs[0] <= v <= xs[1],
    "NOT BETWEEN": lambda v, xs: not xs[0] <= v <= xs[1],
    "STARTS_WITH": lambda v, xs: isinstance(v, str) and v.startswith(xs[0]),
}

# -- tokens ----------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
  | (?P<number>-?\d+(?:\.\d+)?(?![A-Za-z_]))
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)
  | (?P<op><=|>=|!=|<>|=|<|>|\(|\)|,)
    """,
    re.VERBOSE,
)

_KEYWORDS = frozenset(
    {"and", "or", "not", "in", "between", "starts_with", "is", "null", "order", "by", "asc", "desc"}
)


@dataclasses.dataclass(frozen=True)
class _Token:
    kind: str  # "string", "number", "name", "keyword", "op", "end"
    text: str
    value: Any
    pos: int

    def describe(self) -> str:
        return "the end of the query" if self.kind == "end" else f"{self.text!r} at {self.pos}"


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise QueryError(f"unexpected character {text[pos]!r} at position {pos}")
        kind = m.lastgroup
        raw = m.group()
        assert kind is not None
        if kind == "string":
            quote = raw[0]
            body = raw[1:-1].replace(quote * 2, quote)
            value: Any = re.sub(r"\\(.)", r"\1", body)
            out.append(_Token("string", raw, value, pos))
        elif kind == "number":
            out.append(_Token("number", raw, float(raw) if "." in raw else int(raw), pos))
        elif kind == "name":
            if raw.startswith("`"):
                out.append(_Token("name", raw, raw[1:-1], pos))
            elif raw.lower() in _KEYWORDS:
                out.append(_Token("keyword", raw, raw.upper(), pos))
            else:
                out.append(_Token("name", raw, raw, pos))
        elif kind == "op":
            out.append(_Token("op", raw, "!=" if raw == "<>" else raw, pos))
        pos = m.end()
    out.append(_Token("end", "", None, len(text)))
    return out


# -- the parser ------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.i = 0

    @property
    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def at_keyword(self, *words: str) -> bool:
        return self.peek.kind == "keyword" and self.peek.value in words

    def expect_keyword(self, word: str, after: str) -> None:
        if not self.at_keyword(word):
            raise QueryError(f"expected {word} after {after}, found {self.peek.describe()}")
        self.take()

    def expect_op(self, op: str, after: str) -> None:
        if not (self.peek.kind == "op" and self.peek.value == op):
            raise QueryError(f"expected {op!r} after {after}, found {self.peek.describe()}")
        self.take()

    # query := [expr] [ORDER BY name [ASC|DESC]] end
    def query(self) -> Query:
        where = None if self.at_keyword("ORDER") or self.peek.kind == "end" else self.or_expr()
        order_by, descending = "StartTime", True
        if self.at_keyword("ORDER"):
            self.take()
            self.expect_keyword("BY", "ORDER")
            token = self.take()
            match = [
                f for f in _ORDERABLE if token.kind == "name" and f.lower() == token.value.lower()
            ]
            if not match:
                raise QueryError(
                    f"cannot ORDER BY {token.describe()}: order by one of {', '.join(_ORDERABLE)}"
                )
            order_by = match[0]
            if self.at_keyword("ASC", "DESC"):
                descending = self.take().value == "DESC"
        if self.peek.kind != "end":
            raise QueryError(f"unexpected {self.peek.describe()}: expected AND, OR or ORDER BY")
        return Query(where, order_by, descending)

    def or_expr(self) -> Expr:
        parts = [self.and_expr()]
        while self.at_keyword("OR"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def and_expr(self) -> Expr:
        parts = [self.unary()]
        while self.at_keyword("AND"):
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def unary(self) -> Expr:
        if self.at_keyword("NOT"):
            self.take()
            return Not(self.unary())
        if self.peek.kind == "op" and self.peek.value == "(":
            self.take()
            inner = self.or_expr()
            self.expect_op(")", "the parenthesised condition")
            return inner
        return self.comparison()

    def comparison(self) -> Compare:
        token = self.take()
        if token.kind != "name":
            raise QueryError(f"expected a field name, found {token.describe()}")
        field = _Field.of(token.value)
        if self.at_keyword("IS"):
            self.take()
            negate = self.at_keyword("NOT")
            if negate:
                self.take()
            self.expect_keyword("NULL", f"{field.name} IS")
            return Compare(field.name, field.attr, "IS NOT NULL" if negate else "IS NULL", ())
        negate = False
        if self.at_keyword("NOT"):
            self.take()
            negate = True
            if not self.at_keyword("IN", "BETWEEN"):
                raise QueryError(
                    f"expected IN or BETWEEN after {field.name} NOT, found {self.peek.describe()}"
                )
        op_token = self.take()
        if op_token.kind == "op" and op_token.value in ("=", "!=", ">", ">=", "<", "<="):
            op = op_token.value
            values: tuple[Any, ...] = (field.literal(self.take(), op),)
        elif op_token.kind == "keyword" and op_token.value == "STARTS_WITH":
            op = "STARTS_WITH"
            if field.is_time or field.attr == "status":
                raise QueryError(f"STARTS_WITH needs a text field, not {field.name}")
            values = (field.literal(self.take(), op),)
            if not isinstance(values[0], str):
                raise QueryError(f"STARTS_WITH needs a string, not {values[0]!r}")
        elif op_token.kind == "keyword" and op_token.value == "IN":
            op = "NOT IN" if negate else "IN"
            self.expect_op("(", f"{field.name} {op}")
            items = [field.literal(self.take(), op)]
            while self.peek.kind == "op" and self.peek.value == ",":
                self.take()
                items.append(field.literal(self.take(), op))
            self.expect_op(")", f"the values of {field.name} {op}")
            values = tuple(items)
        elif op_token.kind == "keyword" and op_token.value == "BETWEEN":
            op = "NOT BETWEEN" if negate else "BETWEEN"
            low = field.literal(self.take(), op)
            self.expect_keyword("AND", f"{field.name} {op} {low!r}")
            values = (low, field.literal(self.take(), op))
        else:
            raise QueryError(
                f"expected an operator after {field.name} (=, !=, >, >=, <, <=, IN, BETWEEN, "
                f"STARTS_WITH, IS NULL), found {op_token.describe()}"
            )
        if field.attr == "status" and op not in ("=", "!=", "IN", "NOT IN"):
            raise QueryError(f"ExecutionStatus supports =, !=, IN and NOT IN, not {op}")
        return Compare(field.name, field.attr, op, values)


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str
    attr: str | None
    is_time: bool = False

    @staticmethod
    def of(name: str) -> _Field:
        key = name.lower()
        if key in _STRING_FIELDS:
            return _Field(*_STRING_FIELDS[key])
        if key in _TIME_FIELDS:
            return _Field(*_TIME_FIELDS[key], is_time=True)
        return _Field(name, None)

    def literal(self, token: _Token, op: str) -> Any:
        if token.kind not in ("string", "number"):
            raise QueryError(
                f"expected a value for {self.name} {op}, found {token.describe()}"
                + (" (quote strings: 'text')" if token.kind == "name" else "")
            )
        if self.is_time:
            return _time_ms(self.name, token)
        if self.attr == "status":
            status = STATUSES.get(str(token.value).lower().replace("_", ""))
            if status is None:
                raise QueryError(
                    f"{token.text} is not an ExecutionStatus: use one of "
                    "'Running', 'Completed', 'Failed', 'Canceled', 'Terminated', "
                    "'ContinuedAsNew', 'TimedOut'"
                )
            return status
        if self.attr is not None and token.kind != "string":
            raise QueryError(f"{self.name} is text: quote the value ('{token.text}')")
        return token.value


def _time_ms(name: str, token: _Token) -> int:
    if token.kind == "number":
        raise QueryError(
            f"{name} takes an RFC 3339 time such as '2026-01-31T12:00:00Z', not {token.text}"
        )
    try:
        moment = datetime.fromisoformat(str(token.value))
    except ValueError:
        raise QueryError(
            f"{token.text} is not an RFC 3339 time (for {name}): write e.g. '2026-01-31T12:00:00Z'"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def parse(text: str | None) -> Query:
    """Parse a visibility query (None or blank: every run, newest first).

    Raises:
        QueryError: The query does not parse; the message says what is wrong and where.
    """
    if text is None or not text.strip():
        return Query(None)
    return _Parser(text).query()
