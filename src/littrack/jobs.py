"""The jobs ``serve`` runs, planned from the config, and when each last succeeded.

Shared by the APScheduler service (``littrack.scheduler``) and ``littrack status``: one job
per schedule, a ``[topics.schedule.<source>]`` taking its topic out of the source-wide job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from littrack.config import Schedule, Settings
from littrack.errors import ConfigError
from littrack.store import Store
from littrack.vocab import parse_stamp

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """What one schedule runs: a source for some topics (one, for a topic's own schedule)."""

    schedule: Schedule
    topics: tuple[str, ...]

    @property
    def source(self) -> str:
        return self.schedule.source

    @property
    def id(self) -> str:
        return f"{self.source}:{self.schedule.topic}" if self.schedule.topic else self.source

    def describe(self) -> str:
        who = self.schedule.topic or f"{len(self.topics)} topic(s)"
        return f"{self.source} {who} at '{self.schedule.cron}' ({self.schedule.timezone})"


def plan_jobs(settings: Settings) -> list[Job]:
    """One job per schedule; a topic's own schedule overrides the source-wide one for it."""
    own = {(s.topic, s.source) for s in settings.schedules if s.topic}
    jobs: list[Job] = []
    for sched in settings.schedules:
        if sched.topic:
            topic = settings.topic(sched.topic)
            if not topic.has(sched.source):
                raise ConfigError(f"{settings.config_path}: {sched.key}: topic "
                                  f"{topic.name!r} has no [topics.{sched.source}] query")
            jobs.append(Job(sched, (topic.name,)))
            continue
        names = tuple(t.name for t in settings.topics
                      if t.has(sched.source) and (t.name, sched.source) not in own)
        if names:
            jobs.append(Job(sched, names))
        else:
            log.debug("%s: no topic left for this schedule", sched.key)
    return jobs


def last_success(store: Store, job: Job) -> datetime | None:
    """When the job last succeeded for *all* its topics (None if one never did)."""
    stamps = [parse_stamp(store.last_success_at(job.source, t)) for t in job.topics]
    if not stamps or any(s is None for s in stamps):
        return None
    return min(s for s in stamps if s is not None)
