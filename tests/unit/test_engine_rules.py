"""Pure engine rules: retry backoff (Temporal's RetryPolicy) and cron schedules."""

import datetime as dt

import pytest

from cadenza.processors.engine import retry_delay_ms
from cadenza.processors.engine._cron import CronError, next_after


def _ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp() * 1000)


def test_default_policy_doubles_from_one_second_capped_at_100x() -> None:
    delays = [retry_delay_ms(None, attempt, None)[0] for attempt in (1, 2, 3, 4, 8, 20)]
    assert delays == [1000, 2000, 4000, 8000, 100_000, 100_000]
    assert retry_delay_ms(None, 50, None)[1] == "IN_PROGRESS"  # unlimited attempts


def test_policy_limits_and_non_retryable_failures() -> None:
    policy = {
        "initial_interval_ms": 200,
        "backoff_coefficient": 3.0,
        "maximum_interval_ms": 1000,
        "maximum_attempts": 3,
        "non_retryable_error_types": ["Declined"],
    }
    assert retry_delay_ms(policy, 1, None) == (200, "IN_PROGRESS")
    assert retry_delay_ms(policy, 2, None) == (600, "IN_PROGRESS")
    assert retry_delay_ms(policy, 3, None) == (None, "MAXIMUM_ATTEMPTS_REACHED")
    declined = {"info": ("cadenza.common.ApplicationFailureInfo", {"type": "Declined"})}
    assert retry_delay_ms(policy, 1, declined) == (None, "NON_RETRYABLE_FAILURE")
    flagged = {
        "info": ("cadenza.common.ApplicationFailureInfo", {"type": "X", "non_retryable": True})
    }
    assert retry_delay_ms(policy, 1, flagged) == (None, "NON_RETRYABLE_FAILURE")
    later = {
        "info": (
            "cadenza.common.ApplicationFailureInfo",
            {"type": "X", "next_retry_delay_ms": 5000},
        )
    }
    assert retry_delay_ms(policy, 1, later) == (5000, "IN_PROGRESS")


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("*/15 * * * *", "2026-11-21T10:07:30", "2026-11-21T10:15:00"),
        ("0 2 * * *", "2026-11-21T10:07:00", "2026-11-22T02:00:00"),
        ("@daily", "2026-12-31T23:59:00", "2027-01-01T00:00:00"),
        ("30 9 * * mon-fri", "2026-11-21T10:00:00", "2026-11-23T09:30:00"),  # Sat -> Mon
        ("0 0 1 jan *", "2026-11-21T00:00:00", "2027-01-01T00:00:00"),
        ("0 12 29 2 *", "2026-03-01T00:00:00", "2028-02-29T12:00:00"),
    ],
)
def test_cron_next_time(schedule: str, after: str, expected: str) -> None:
    assert next_after(schedule, _ms(after)) == _ms(expected)


def test_every_and_bad_schedules() -> None:
    assert next_after("@every 10s", 25_000) == 30_000
    with pytest.raises(CronError, match="five fields"):
        next_after("* * *", 0)
    with pytest.raises(CronError, match="outside 0-59"):
        next_after("61 * * * *", 0)
