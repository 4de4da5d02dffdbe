"""Retry policy for activities and workflows, and its Avro wire form."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypedDict

_MS = timedelta(milliseconds=1)


class RetryPolicyAvro(TypedDict):
    """The wire form of :class:`RetryPolicy` (a record in the Avro schemas)."""

    initial_interval_ms: int
    backoff_coefficient: float
    maximum_interval_ms: int | None
    maximum_attempts: int
    non_retryable_error_types: list[str]


@dataclass(frozen=True)
class RetryPolicy:
    """How a failed activity or workflow is retried.

    Same fields and defaults as Temporal's. The policy is validated when it is
    created, so a bad policy fails where it is written rather than when the
    engine first needs it. Change it with :func:`dataclasses.replace`.

    Example:
        >>> from datetime import timedelta
        >>> policy = RetryPolicy(maximum_attempts=5, non_retryable_error_types=["BadInput"])
        >>> policy.retry_delay(3)
        datetime.timedelta(seconds=4)
        >>> RetryPolicy.from_avro(policy.to_avro()) == policy
        True
    """

    initial_interval: timedelta = timedelta(seconds=1)
    """Backoff before the first retry. Default 1s."""

    backoff_coefficient: float = 2.0
    """Each backoff is the previous one times this. Default 2.0."""

    maximum_interval: timedelta | None = None
    """Longest backoff between retries. ``None`` (default) means 100x
    :attr:`initial_interval`."""

    maximum_attempts: int = 0
    """Most attempts in all, the first included. 0 (default) is unlimited;
    1 disables retries."""

    non_retryable_error_types: Sequence[str] | None = None
    """``ApplicationError.type`` values (or exception class names) that are
    never retried. Stored as a tuple."""

    def __post_init__(self) -> None:
        if self.non_retryable_error_types is not None:
            if isinstance(self.non_retryable_error_types, str | bytes):
                raise TypeError(
                    "RetryPolicy.non_retryable_error_types must be a sequence of error type "
                    f"names, not the single string {self.non_retryable_error_types!r}"
                )
            types = tuple(self.non_retryable_error_types)
            for t in types:
                if not isinstance(t, str):
                    raise TypeError(
                        "RetryPolicy.non_retryable_error_types must hold strings, "
                        f"got {type(t).__name__} {t!r}"
                    )
            object.__setattr__(self, "non_retryable_error_types", types)
        self._validate()

    def _validate(self) -> None:
        if not isinstance(self.initial_interval, timedelta):
            raise TypeError(
                "RetryPolicy.initial_interval must be a timedelta, "
                f"got {type(self.initial_interval).__name__}"
            )
        if self.maximum_interval is not None and not isinstance(self.maximum_interval, timedelta):
            raise TypeError(
                "RetryPolicy.maximum_interval must be a timedelta or None, "
                f"got {type(self.maximum_interval).__name__}"
            )
        if isinstance(self.maximum_attempts, bool) or not isinstance(self.maximum_attempts, int):
            raise TypeError(
                "RetryPolicy.maximum_attempts must be an int, "
                f"got {type(self.maximum_attempts).__name__}"
            )
        if self.maximum_attempts < 0:
            raise ValueError(
                f"RetryPolicy.maximum_attempts cannot be negative (got {self.maximum_attempts}); "
                "use 0 for unlimited"
            )
        if self.maximum_attempts == 1:
            # Retries are disabled: the intervals are never used, as in Temporal.
            return
        if self.initial_interval < timedelta(0):
            raise ValueError(
                f"RetryPolicy.initial_interval cannot be negative (got {self.initial_interval})"
            )
        if self.backoff_coefficient < 1:
            raise ValueError(
                "RetryPolicy.backoff_coefficient cannot be less than 1 "
                f"(got {self.backoff_coefficient})"
            )
        if self.maximum_interval is not None:
            if self.maximum_interval < timedelta(0):
                raise ValueError(
                    f"RetryPolicy.maximum_interval cannot be negative (got {self.maximum_interval})"
                )
            if self.maximum_interval < self.initial_interval:
                raise ValueError(
                    f"RetryPolicy.maximum_interval ({self.maximum_interval}) cannot be less than "
                    f"initial_interval ({self.initial_interval})"
                )

    @property
    def effective_maximum_interval(self) -> timedelta:
        """:attr:`maximum_interval`, or its default of 100x the initial interval."""
        if self.maximum_interval is not None:
            return self.maximum_interval
        return self.initial_interval * 100

    def retry_delay(self, attempt: int) -> timedelta:
        """Backoff to wait after failed attempt number ``attempt`` (1-based).

        ``initial_interval * backoff_coefficient ** (attempt - 1)``, capped by
        :attr:`effective_maximum_interval`. Whether a retry happens at all
        (:attr:`maximum_attempts`, non-retryable errors) is decided elsewhere.
        """
        if attempt < 1:
            raise ValueError(f"attempt numbers start at 1, got {attempt}")
        cap = self.effective_maximum_interval
        delay = self.initial_interval.total_seconds() * self.backoff_coefficient ** (attempt - 1)
        if delay >= cap.total_seconds():
            return cap
        return timedelta(seconds=delay)

    def to_avro(self) -> RetryPolicyAvro:
        """The policy as the Avro wire dict (intervals in whole milliseconds).

        A ``None`` :attr:`maximum_interval` stays ``None`` on the wire; readers
        apply the 100x default, as :attr:`effective_maximum_interval` does.
        """
        self._validate()
        return {
            "initial_interval_ms": self.initial_interval // _MS,
            "backoff_coefficient": float(self.backoff_coefficient),
            "maximum_interval_ms": (
                None if self.maximum_interval is None else self.maximum_interval // _MS
            ),
            "maximum_attempts": self.maximum_attempts,
            "non_retryable_error_types": list(self.non_retryable_error_types or ()),
        }

    @staticmethod
    def from_avro(wire: Mapping[str, Any]) -> RetryPolicy:
        """Build a policy from its Avro wire dict.

        Raises:
            ValueError: A field is missing or has the wrong type, or the policy
                it describes is invalid.
        """

        def field(name: str, kinds: tuple[type, ...], *, nullable: bool = False) -> Any:
            if name not in wire:
                raise ValueError(f"RetryPolicy wire record is missing {name!r}")
            value = wire[name]
            if value is None and nullable:
                return None
            if isinstance(value, bool) or not isinstance(value, kinds):
                raise ValueError(
                    f"RetryPolicy wire field {name!r} must be "
                    f"{' or '.join(k.__name__ for k in kinds)}, got {type(value).__name__}"
                )
            return value

        initial_ms = field("initial_interval_ms", (int,))
        coefficient = field("backoff_coefficient", (int, float))
        maximum_ms = field("maximum_interval_ms", (int,), nullable=True)
        attempts = field("maximum_attempts", (int,))
        types = field("non_retryable_error_types", (list, tuple), nullable=True)
        try:
            return RetryPolicy(
                initial_interval=timedelta(milliseconds=initial_ms),
                backoff_coefficient=float(coefficient),
                maximum_interval=None if maximum_ms is None else timedelta(milliseconds=maximum_ms),
                maximum_attempts=attempts,
                non_retryable_error_types=list(types) if types else None,
            )
        except TypeError as err:
            raise ValueError(str(err)) from err
