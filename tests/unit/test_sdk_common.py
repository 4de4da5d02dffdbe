"""cadenza.common: retry policy, id policies, search attributes."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from cadenza.common import (
    QueryRejectCondition,
    RetryPolicy,
    SearchAttributeIndexedValueType,
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowExecutionStatus,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)


def test_retry_policy_defaults_are_temporals() -> None:
    policy = RetryPolicy()
    assert policy.initial_interval == timedelta(seconds=1)
    assert policy.backoff_coefficient == 2.0
    assert policy.maximum_interval is None
    assert policy.effective_maximum_interval == timedelta(seconds=100)
    assert policy.maximum_attempts == 0
    assert policy.non_retryable_error_types is None


def test_retry_policy_is_frozen_and_replaceable() -> None:
    policy = RetryPolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.maximum_attempts = 3  # type: ignore[misc]
    changed = dataclasses.replace(policy, maximum_attempts=3)
    assert changed.maximum_attempts == 3
    assert policy.maximum_attempts == 0


def test_retry_policy_wire_round_trip() -> None:
    policy = RetryPolicy(
        initial_interval=timedelta(milliseconds=250),
        backoff_coefficient=1.5,
        maximum_interval=timedelta(minutes=2),
        maximum_attempts=7,
        non_retryable_error_types=["BadInput", "Forbidden"],
    )
    wire = policy.to_avro()
    assert wire == {
        "initial_interval_ms": 250,
        "backoff_coefficient": 1.5,
        "maximum_interval_ms": 120_000,
        "maximum_attempts": 7,
        "non_retryable_error_types": ["BadInput", "Forbidden"],
    }
    assert RetryPolicy.from_avro(wire) == policy
    assert RetryPolicy.from_avro(RetryPolicy().to_avro()) == RetryPolicy()
    assert RetryPolicy().to_avro()["maximum_interval_ms"] is None


def test_retry_policy_rejects_bad_values_with_clear_messages() -> None:
    with pytest.raises(ValueError, match="backoff_coefficient cannot be less than 1"):
        RetryPolicy(backoff_coefficient=0.5)
    with pytest.raises(ValueError, match="initial_interval cannot be negative"):
        RetryPolicy(initial_interval=timedelta(seconds=-1))
    with pytest.raises(ValueError, match="maximum_interval .* cannot be less than initial"):
        RetryPolicy(initial_interval=timedelta(seconds=10), maximum_interval=timedelta(seconds=1))
    with pytest.raises(ValueError, match="maximum_attempts cannot be negative"):
        RetryPolicy(maximum_attempts=-1)
    with pytest.raises(TypeError, match="initial_interval must be a timedelta"):
        RetryPolicy(initial_interval=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not the single string 'ValueError'"):
        RetryPolicy(non_retryable_error_types="ValueError")


def test_retry_policy_with_retries_disabled_skips_interval_checks() -> None:
    # As Temporal: with one attempt the intervals are never used.
    RetryPolicy(maximum_attempts=1, backoff_coefficient=0.1)


def test_retry_policy_from_avro_names_the_bad_field() -> None:
    wire = dict(RetryPolicy().to_avro())
    del wire["maximum_attempts"]
    with pytest.raises(ValueError, match="missing 'maximum_attempts'"):
        RetryPolicy.from_avro(wire)
    with pytest.raises(ValueError, match="'initial_interval_ms' must be int, got str"):
        RetryPolicy.from_avro({**RetryPolicy().to_avro(), "initial_interval_ms": "1s"})
    with pytest.raises(ValueError, match="backoff_coefficient cannot be less than 1"):
        RetryPolicy.from_avro({**RetryPolicy().to_avro(), "backoff_coefficient": 0.0})


def test_retry_delay_grows_then_caps() -> None:
    policy = RetryPolicy(maximum_interval=timedelta(seconds=5))
    delays = [policy.retry_delay(n) for n in range(1, 6)]
    assert delays == [timedelta(seconds=s) for s in (1, 2, 4, 5, 5)]
    with pytest.raises(ValueError, match="start at 1"):
        policy.retry_delay(0)


def test_enum_names_are_the_wire_symbols() -> None:
    assert [m.name for m in WorkflowIDReusePolicy] == [
        "ALLOW_DUPLICATE",
        "ALLOW_DUPLICATE_FAILED_ONLY",
        "REJECT_DUPLICATE",
        "TERMINATE_IF_RUNNING",
    ]
    assert [m.name for m in WorkflowIDConflictPolicy] == [
        "UNSPECIFIED",
        "FAIL",
        "USE_EXISTING",
        "TERMINATE_EXISTING",
    ]
    assert WorkflowIDReusePolicy["REJECT_DUPLICATE"] is WorkflowIDReusePolicy.REJECT_DUPLICATE
    assert [m.name for m in QueryRejectCondition] == ["NONE", "NOT_OPEN", "NOT_COMPLETED_CLEANLY"]
    assert WorkflowExecutionStatus.RUNNING == 1
    assert WorkflowExecutionStatus.TIMED_OUT.name == "TIMED_OUT"


def test_search_attribute_keys() -> None:
    keyword = SearchAttributeKey.for_keyword("CustomerId")
    assert keyword.name == "CustomerId"
    assert keyword.indexed_value_type is SearchAttributeIndexedValueType.KEYWORD
    assert keyword.value_type is str
    assert SearchAttributeKey.for_keyword_list("Tags").value_type == Sequence[str]
    assert SearchAttributeKey.for_keyword_list("Tags").origin_value_type is Sequence
    assert SearchAttributeKey.for_text("t") != SearchAttributeKey.for_keyword("t")
    assert SearchAttributeKey.for_float("x").value_type is float
    assert SearchAttributeKey.for_datetime("x").value_type is datetime
    assert repr(keyword) == "SearchAttributeKey.for_keyword('CustomerId')"
    update = keyword.value_set("c-1")
    assert (update.key, update.value) == (keyword, "c-1")
    assert keyword.value_unset().value is None
    assert SearchAttributeKey._from_metadata_type("n", "KeywordList") == (
        SearchAttributeKey.for_keyword_list("n")
    )


def test_typed_search_attributes_collection() -> None:
    customer = SearchAttributeKey.for_keyword("CustomerId")
    amount = SearchAttributeKey.for_int("Amount")
    when = SearchAttributeKey.for_datetime("When")
    now = datetime(2024, 1, 2, tzinfo=UTC)
    attrs = TypedSearchAttributes(
        [SearchAttributePair(when, now), SearchAttributePair(customer, "c-1")]
    )
    assert [p.key.name for p in attrs] == ["CustomerId", "When"]
    assert attrs[customer] == "c-1"
    assert attrs.get(amount) is None
    assert attrs.get(amount, 0) == 0
    assert customer in attrs
    assert SearchAttributeKey.for_text("CustomerId") not in attrs
    with pytest.raises(KeyError):
        attrs[amount]
    updated = attrs.updated(SearchAttributePair(customer, "c-2"), SearchAttributePair(amount, 5))
    assert updated[customer] == "c-2"
    assert updated[amount] == 5
    assert attrs[customer] == "c-1", "updated() must copy"
    assert len(TypedSearchAttributes.empty) == 0
    with pytest.raises(ValueError, match="Duplicate search attribute entries for key 'CustomerId'"):
        TypedSearchAttributes(
            [SearchAttributePair(customer, "a"), SearchAttributePair(customer, "b")]
        )
