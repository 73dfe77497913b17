"""``littrack serve``: APScheduler cron jobs that call the pipeline.

The scheduler only schedules: each job calls ``pipeline.run`` for its source (and topic),
under the same data-directory lock as ``littrack run`` from system cron.
"""

from __future__ import annotations

from pathlib import Path

from littrack.config import Schedule
from littrack.errors import ConfigError


def cron_trigger(schedule: Schedule):  # noqa: ANN201 - apscheduler is untyped
    """The APScheduler trigger of a schedule (standard 5-field crontab syntax)."""
    from apscheduler.triggers.cron import CronTrigger

    return CronTrigger.from_crontab(schedule.cron, timezone=schedule.timezone)


def validate_schedule(schedule: Schedule, path: Path) -> None:
    """Fail at start, naming the key and the expression, not at the first missed run."""
    where = f"topic {schedule.topic!r}.schedule" if schedule.topic else "schedule"
    try:
        cron_trigger(schedule)
    except Exception as exc:  # apscheduler raises ValueError, zoneinfo its own errors
        raise ConfigError(f"{path}: {where}.{schedule.source}: invalid cron "
                          f"{schedule.cron!r} / timezone {schedule.timezone!r}: {exc}") from None
