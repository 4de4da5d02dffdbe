"""Types shared by every part of the SDK: retry policy, id policies, search attributes,
metric meters.

The same names, fields and defaults as ``temporalio.common``::

    from cadenza.common import RetryPolicy
    policy = RetryPolicy(maximum_attempts=3)
"""

from ._enums import (
    QueryRejectCondition,
    WorkflowExecutionStatus,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from ._metric import (
    MetricAttributes,
    MetricCommon,
    MetricCounter,
    MetricGauge,
    MetricGaugeFloat,
    MetricHistogram,
    MetricHistogramFloat,
    MetricHistogramTimedelta,
    MetricMeter,
)
from ._payload import RawValue
from ._retry import RetryPolicy, RetryPolicyAvro
from ._search_attributes import (
    SearchAttributeIndexedValueType,
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributes,
    SearchAttributeUpdate,
    SearchAttributeValue,
    SearchAttributeValues,
    SearchAttributeValueType,
    TypedSearchAttributes,
)

__all__ = [
    "MetricAttributes",
    "MetricCommon",
    "MetricCounter",
    "MetricGauge",
    "MetricGaugeFloat",
    "MetricHistogram",
    "MetricHistogramFloat",
    "MetricHistogramTimedelta",
    "MetricMeter",
    "QueryRejectCondition",
    "RawValue",
    "RetryPolicy",
    "RetryPolicyAvro",
    "SearchAttributeIndexedValueType",
    "SearchAttributeKey",
    "SearchAttributePair",
    "SearchAttributeUpdate",
    "SearchAttributeValue",
    "SearchAttributeValueType",
    "SearchAttributeValues",
    "SearchAttributes",
    "TypedSearchAttributes",
    "WorkflowExecutionStatus",
    "WorkflowIDConflictPolicy",
    "WorkflowIDReusePolicy",
]
