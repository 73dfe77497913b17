"""Crontab lines as APScheduler triggers, with cron's meaning rather than APScheduler's.

Schedules are standard 5-field crontab lines. APScheduler 3's ``CronTrigger.from_crontab``
numbers weekdays from Monday = 0 and ANDs day-of-month with day-of-week; cron numbers from
Sunday = 0 (7 too) and ORs them when both are restricted. ``cron_trigger`` translates, so
``0 6 * * 1`` is Monday here as in cron. Pure translation and slot arithmetic: config
validates schedules with it, ``serve`` and ``status`` use it; it imports no other module of
littrack (APScheduler is loaded only when a trigger is built).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apscheduler.triggers.base import BaseTrigger

# The @-shortcuts of Vixie cron and cronie (@reboot has no meaning for a schedule).
_MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # cron's numbering, 0 = Sunday



def _day_number(token: str, *, upper: bool) -> int:
    """A crontab weekday (0-7 or a name) as cron's number; Sunday ends a range as 7."""
    token = token.strip().lower()
    if token.isdigit():
        n = int(token)
        if not 0 <= n <= 7:
            raise ValueError(f"day of week {token!r} is not 0-7")
        return n
    if token[:3] in _DAY_NAMES and len(token) >= 3:
        n = _DAY_NAMES.index(token[:3])
        return 7 if (upper and n == 0) else n
    raise ValueError(f"unknown day of week {token!r}")


def crontab_weekdays(text: str) -> str:
    """A crontab day-of-week field as APScheduler's: an explicit list of day names.

    Names are the only spelling both agree on; writing the days out also makes cron's
    ``*/2`` (Sun, Tue, Thu, Sat) and wrapping ranges such as ``5-0`` mean what cron means.
    """
    if text == "*":
        return "*"
    days: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"step {step_text!r} must be at least 1")
        if span == "*":
            low, high = 0, 6
        elif "-" in span:
            first, last = span.split("-", 1)
            low, high = _day_number(first, upper=False), _day_number(last, upper=True)
            if high < low:
                raise ValueError(f"range {span!r} runs backwards")
        else:
            low = _day_number(span, upper=False)
            high = 7 if step_text else low  # cron reads "1/2" as "1-7/2"
        days.update(d % 7 for d in range(low, high + 1, step))
    return ",".join(_DAY_NAMES[d] for d in sorted(days))


def cron_trigger(cron: str, timezone: str = "UTC") -> BaseTrigger:
    """The APScheduler trigger of a crontab line in a time zone, with cron's semantics.

    Raises ValueError (or zoneinfo's errors) on a bad line or zone.
    """
    from apscheduler.triggers.combining import OrTrigger
    from apscheduler.triggers.cron import CronTrigger

    expr = _MACROS.get(cron.strip().lower(), cron)
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields (minute hour day month day-of-week), "
                         f"got {len(fields)}")
    minute, hour, day, month, weekday = fields
    weekdays = crontab_weekdays(weekday)

    def make(day: str, day_of_week: str) -> CronTrigger:
        return CronTrigger(minute=minute, hour=hour, day=day, month=month,
                           day_of_week=day_of_week, timezone=timezone)

    if not day.startswith("*") and not weekday.startswith("*"):
        # cron: "0 0 13 * FRI" is every 13th *and* every Friday.
        return OrTrigger([make(day, "*"), make("*", weekdays)])
    return make(day, weekdays)


def is_due(trigger: BaseTrigger, last_ok: datetime | None, now: datetime) -> bool:
    """Whether a slot passed since the last success: the catch-up test, with an injected now.

    Comparing slots rather than a "period" keeps irregular schedules right (weekdays only,
    the 1st of the month) and makes ten missed slots one catch-up, like one missed slot.
    Timestamps have whole seconds, so a run that ended in the slot's second covered it.
    """
    if last_ok is None:
        return True
    slot = trigger.get_next_fire_time(None, last_ok + timedelta(seconds=1))
    return slot is not None and slot <= now


def next_fire(trigger: BaseTrigger, now: datetime) -> datetime | None:
    """The first slot at or after ``now``."""
    result: datetime | None = trigger.get_next_fire_time(None, now)
    return result
