"""cadenza.workflow: decoration-time checks and the definition they build."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from cadenza import workflow
from cadenza.common import RawValue
from cadenza.workflow._definition import _Definition
from cadenza.workflow._handlers import _QueryDefinition, _SignalDefinition, _UpdateDefinition


@workflow.defn
class OrderWorkflow:
    @workflow.init
    def __init__(self, order_id: str) -> None:
        self.status_text = "new"

    @workflow.run
    async def run(self, order_id: str) -> str:
        return order_id

    @workflow.signal
    def approve(self, by: str) -> None:
        self.status_text = f"approved by {by}"

    @workflow.signal(
        name="cancel-order", unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON
    )
    async def cancel(self) -> None:
        pass

    @workflow.signal(dynamic=True)
    def other_signal(self, name: str, args: Sequence[RawValue]) -> None:
        pass

    @workflow.query
    def status(self) -> str:
        return self.status_text

    @workflow.update
    async def set_quantity(self, quantity: int) -> int:
        return quantity

    @set_quantity.validator
    def check_quantity(self, quantity: int) -> None:
        if quantity < 1:
            raise ValueError("quantity must be positive")


@workflow.defn(name="renamed", failure_exception_types=[ValueError])
class Renamed:
    @workflow.run
    async def run(self) -> None:
        pass


@workflow.defn(dynamic=True)
class AnyWorkflow:
    @workflow.run
    async def run(self, args: Sequence[RawValue]) -> Any:
        return None


@workflow.defn
class BaseWorkflow:
    @workflow.run
    async def run(self) -> None:
        pass

    @workflow.signal
    def ping(self) -> None:
        pass


@workflow.defn
class SubWorkflow(BaseWorkflow):
    @workflow.run
    async def run(self) -> None:
        pass


def test_definition_of_a_full_workflow() -> None:
    d = _Definition.must_from_class(OrderWorkflow)
    assert d.name == "OrderWorkflow"
    assert d.cls is OrderWorkflow
    assert d.run_fn is OrderWorkflow.run
    assert d.arg_types == [str] and d.ret_type is str
    assert d.init_fn is OrderWorkflow.__init__
    assert d.sandboxed is True
    assert set(d.signals) == {"approve", "cancel-order", None}
    assert d.signals["cancel-order"].unfinished_policy is workflow.HandlerUnfinishedPolicy.ABANDON
    assert d.signals["approve"].arg_types == [str]
    assert set(d.queries) == {"status"} and d.queries["status"].ret_type is str
    update = d.updates["set_quantity"]
    assert update.validator is OrderWorkflow.check_quantity
    assert (update.arg_types, update.ret_type) == ([int], int)
    assert _Definition.must_from_run_fn(OrderWorkflow.run) is d
    assert _Definition.get_name_and_result_type(OrderWorkflow.run) == ("OrderWorkflow", str)
    assert _Definition.get_name_and_result_type("ByName") == ("ByName", None)
    assert _SignalDefinition.must_name_from_fn_or_str(OrderWorkflow.cancel) == "cancel-order"
    assert _QueryDefinition.get_name_and_result_type(OrderWorkflow.status) == ("status", str)
    assert _UpdateDefinition.get_name_and_result_type(OrderWorkflow.set_quantity) == (
        "set_quantity",
        int,
    )
    with pytest.raises(TypeError):
        d.signals["x"] = d.signals["approve"]  # type: ignore[index]


def test_bound_handlers_call_the_instance() -> None:
    d = _Definition.must_from_class(OrderWorkflow)
    instance = OrderWorkflow("o-1")
    d.signals["approve"].bind_fn(instance)("ann")
    assert d.queries["status"].bind_fn(instance)() == "approved by ann"
    validator = d.updates["set_quantity"].bind_validator(instance)
    assert validator is not None
    with pytest.raises(ValueError, match="positive"):
        validator(0)
    import inspect

    assert inspect.iscoroutinefunction(d.updates["set_quantity"].bind_fn(instance))


def test_options_and_dynamic_workflows() -> None:
    renamed = _Definition.must_from_class(Renamed)
    assert renamed.name == "renamed"
    assert renamed.failure_exception_types == (ValueError,)
    dynamic = _Definition.must_from_class(AnyWorkflow)
    assert dynamic.name is None
    with pytest.raises(ValueError, match="dynamic workflow cannot be started by reference"):
        _Definition.get_name_and_result_type(AnyWorkflow.run)


def test_subclasses_inherit_handlers_and_own_their_definition() -> None:
    sub = _Definition.must_from_class(SubWorkflow)
    assert sub.name == "SubWorkflow"
    assert set(sub.signals) == {"ping"}
    assert _Definition.must_from_class(BaseWorkflow).cls is BaseWorkflow


# Classes decorated inside the tests below (the run decorator refuses local classes).


class NoRun:
    @workflow.signal
    def s(self) -> None:
        pass


class TwoRuns:
    @workflow.run
    async def one(self) -> None:
        pass

    @workflow.run
    async def two(self) -> None:
        pass


class DuplicateSignals:
    @workflow.run
    async def run(self) -> None:
        pass

    @workflow.signal(name="go")
    def a(self) -> None:
        pass

    @workflow.signal(name="go")
    def b(self) -> None:
        pass


class InitMismatch:
    @workflow.init
    def __init__(self, a: int) -> None:
        pass

    @workflow.run
    async def run(self, a: str) -> None:
        pass


class InheritsRun(BaseWorkflow):
    pass


class OverridesSignalUndecorated(BaseWorkflow):
    @workflow.run
    async def run(self) -> None:
        pass

    def ping(self) -> None:
        pass


class WrongDynamic:
    @workflow.run
    async def run(self, x: int) -> None:
        pass


class ManyProblems:
    @workflow.signal(name="x")
    def a(self) -> None:
        pass

    @workflow.signal(name="x")
    def b(self) -> None:
        pass


async def module_level_run(self: Any) -> None:
    pass


def sync_run(self: Any) -> None:
    pass


def test_workflow_class_errors_at_decoration() -> None:
    with pytest.raises(ValueError, match="NoRun: missing @workflow.run method"):
        workflow.defn(NoRun)
    with pytest.raises(ValueError, match=r"more than one @workflow.run method \(one, two\)"):
        workflow.defn(TwoRuns)
    with pytest.raises(ValueError, match="two @workflow.signal handlers for 'go' \\(a and b\\)"):
        workflow.defn(DuplicateSignals)
    with pytest.raises(ValueError, match="__init__ must take the same parameters as @workflow.run"):
        workflow.defn(InitMismatch)
    with pytest.raises(ValueError, match="BaseWorkflow.run is inherited; override it"):
        workflow.defn(InheritsRun)
    with pytest.raises(ValueError, match="BaseWorkflow.ping is a @workflow.signal method but"):
        workflow.defn(OverridesSignalUndecorated)
    with pytest.raises(ValueError, match="exactly one Sequence\\[RawValue\\] parameter"):
        workflow.defn(dynamic=True)(WrongDynamic)
    with pytest.raises(ValueError, match="2 problems: \\(1\\) two @workflow.signal .* \\(2\\)"):
        workflow.defn(ManyProblems)
    with pytest.raises(ValueError, match="already a workflow"):
        workflow.defn(OrderWorkflow)
    with pytest.raises(ValueError, match="cannot set both name and dynamic"):
        workflow.defn(name="x", dynamic=True)
    with pytest.raises(TypeError, match="failure_exception_types must hold exception classes"):
        workflow.defn(failure_exception_types=[int])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="must decorate a class"):
        workflow.defn(module_level_run)
    for cls in (NoRun, TwoRuns, DuplicateSignals, InitMismatch):
        assert _Definition.from_class(cls) is None


def test_run_init_and_handler_errors_at_decoration() -> None:
    with pytest.raises(TypeError, match="must be async def"):
        workflow.run(sync_run)  # type: ignore[type-var]

    with pytest.raises(ValueError, match="class defined inside a function"):

        class Local:
            @workflow.run
            async def run(self) -> None:
                pass

    with pytest.raises(ValueError, match="only decorate __init__"):
        workflow.init(sync_run)

    async def async_query(self: Any) -> int:
        return 1

    with pytest.raises(TypeError, match="must not be async: queries only read state"):
        workflow.query(async_query)

    def kw_only(self: Any, *, x: int) -> None: ...

    with pytest.raises(TypeError, match="keyword-only parameter 'x'"):
        workflow.signal(kw_only)

    def no_self() -> None: ...

    with pytest.raises(TypeError, match="must be a method taking self"):
        workflow.signal(no_self)

    def wrong_dynamic(self: Any, name: str, x: int) -> None: ...

    with pytest.raises(TypeError, match="must take exactly \\(self, name: str, args"):
        workflow.signal(dynamic=True)(wrong_dynamic)
    with pytest.raises(ValueError, match="cannot set both name and dynamic"):
        workflow.update(name="x", dynamic=True)

    def handler(self: Any, x: int) -> int:
        return x

    update_fn = workflow.update(handler)

    def wrong_validator(self: Any, x: str) -> None: ...

    async def async_validator(self: Any, x: int) -> None: ...

    with pytest.raises(TypeError, match="must take the same parameters as update"):
        update_fn.validator(wrong_validator)
    with pytest.raises(TypeError, match="validator .* must not be async"):
        update_fn.validator(async_validator)

    def good_validator(self: Any, y: int) -> None: ...

    update_fn.validator(good_validator)
    with pytest.raises(ValueError, match="already has a validator"):
        update_fn.validator(good_validator)


def test_lookups_of_undecorated_things_fail_clearly() -> None:
    with pytest.raises(TypeError, match="is not decorated with @workflow.defn"):
        _Definition.must_from_class(NoRun)
    with pytest.raises(TypeError, match="is not the @workflow.run method"):
        _Definition.must_from_run_fn(module_level_run)
    with pytest.raises(TypeError, match="not decorated with @workflow.signal"):
        _SignalDefinition.must_name_from_fn_or_str(sync_run)
