"""Cron schedules as Temporal accepts them: five fields (UTC), ``@hourly``-style names, ``@every``.

Only ``next_after`` is needed: the engine asks when the next run of a cron
workflow starts, once per run.
"""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["CronError", "next_after"]

_NAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
_DAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
_EVERY = re.compile(r"^@every\s+(\d+)(ms|s|m|h|d)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class CronError(ValueError):
    """A cron schedule that cannot be read; the message says which part."""


def _field(text: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    out: set[int] = set()
    for part in text.lower().split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part in ("*", "?"):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = names.get(a, None) or int(a), names.get(b, None) or int(b)
        else:
            start = names[part] if part in names else int(part)
            end = high if step > 1 else start
        if not (low <= start <= high and low <= end <= high) or step < 1:
            raise CronError(f"{text!r} is outside {low}-{high}")
        out.update(range(start, end + 1, step))
    return out


def next_after(schedule: str, after_ms: int) -> int:
    """The first time (epoch ms, UTC) strictly after ``after_ms`` that ``schedule`` names."""
    schedule = schedule.strip()
    every = _EVERY.match(schedule)
    if every:
        period = int(every.group(1)) * _UNIT_MS[every.group(2)]
        if period <= 0:
            raise CronError(f"{schedule!r}: the period must be positive")
        return (after_ms // period + 1) * period
    fields = _NAMES.get(schedule.lower(), schedule).split()
    if len(fields) != 5:
        raise CronError(
            f"{schedule!r}: a cron schedule has five fields (minute hour day month weekday), "
            "a name such as @daily, or @every <n>(ms|s|m|h|d)"
        )
    try:
        minutes, hours, days, months = (
            _field(fields[i], *_RANGES[i], _MONTHS if i == 3 else {}) for i in range(4)
        )
        weekdays = {d % 7 for d in _field(fields[4].replace("7", "0"), 0, 6, _DAYS)}
    except (ValueError, KeyError) as exc:
        raise CronError(f"{schedule!r}: {exc}") from None
    any_day, any_weekday = fields[2] in ("*", "?"), fields[4] in ("*", "?")
    t = dt.datetime.fromtimestamp(after_ms / 1000, tz=dt.UTC).replace(second=0, microsecond=0)
    t += dt.timedelta(minutes=1)
    limit = t + dt.timedelta(days=366 * 5)
    while t < limit:
        if t.month not in months:
            t = (t.replace(day=1, hour=0, minute=0) + dt.timedelta(days=32)).replace(day=1)
            continue
        weekday = (t.weekday() + 1) % 7  # cron counts from Sunday
        if any_day and any_weekday:
            day_ok = True
        elif any_day:
            day_ok = weekday in weekdays
        elif any_weekday:
            day_ok = t.day in days
        else:  # both given: either matches, as in Vixie cron
            day_ok = t.day in days or weekday in weekdays
        if not day_ok:
            t = t.replace(hour=0, minute=0) + dt.timedelta(days=1)
            continue
        if t.hour not in hours:
            t = t.replace(minute=0) + dt.timedelta(hours=1)
            continue
        if t.minute not in minutes:
            t += dt.timedelta(minutes=1)
            continue
        return int(t.timestamp() * 1000)
    raise CronError(f"{schedule!r} never fires")
