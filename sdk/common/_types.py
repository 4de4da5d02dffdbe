"""Type variables shared by the SDK's decorators and API functions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

AnyType = TypeVar("AnyType")
ClassType = TypeVar("ClassType", bound=type)
CallableType = TypeVar("CallableType", bound=Callable[..., Any])
CallableAsyncType = TypeVar("CallableAsyncType", bound=Callable[..., Awaitable[Any]])
ReturnType = TypeVar("ReturnType")
SelfType = TypeVar("SelfType")
ParamType = TypeVar("ParamType")
