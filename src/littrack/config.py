"""What to track and how: the TOML config, validated in full before any request is made.

The config is found via ``--config``, then ``$LITTRACK_CONFIG``, then ``./config/littrack.toml``.
Environment variables override what a deployment must not commit to a file (the NCBI key)
or what tests and benchmarks point elsewhere (data directory, endpoints). Every mistake is
a ``ConfigError`` naming the file, the topic and the key, so a cron mail says what to fix.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from littrack.crontab import cron_trigger
from littrack.errors import ConfigError
from littrack.vocab import DATABASE_FILE

DEFAULT_CONFIG = Path("config/littrack.toml")
DEFAULT_EUTILS_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils"
DEFAULT_CTGOV_URL = "https://clinicaltrials.gov/api/v2"
TOPIC_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
CTGOV_STATUSES = frozenset(
    "ACTIVE_NOT_RECRUITING COMPLETED ENROLLING_BY_INVITATION NOT_YET_RECRUITING RECRUITING "
    "SUSPENDED TERMINATED WITHDRAWN AVAILABLE NO_LONGER_AVAILABLE TEMPORARILY_NOT_AVAILABLE "
    "APPROVED_FOR_MARKETING WITHHELD UNKNOWN".split()
)
# NCBI's published ceilings: 3 requests/s per IP without a key, 10/s with one.
NCBI_MAX_RATE = {False: 3.0, True: 10.0}


@dataclass(frozen=True)
class RetrySettings:
    """One retry policy for both services: exponential backoff with full jitter."""

    max_tries: int = 6
    backoff_base: float = 1.0  # seconds; the n-th retry waits up to base * 2**n
    backoff_cap: float = 60.0
    timeout: float = 60.0  # seconds for the connect and for each read of a request
    topic_deadline: float = 1800.0  # a stalled server cannot hold a topic longer than this


@dataclass(frozen=True)
class NcbiSettings:
    base_url: str = DEFAULT_EUTILS_URL
    email: str | None = None
    tool: str = "littrack"
    api_key: str | None = field(default=None, repr=False)  # never printed
    requests_per_second: float | None = None  # None: just under NCBI's ceiling
    batch_size: int = 500
    overlap_days: int = 3

    @property
    def rate(self) -> float:
        """Requests per second we allow ourselves: never above NCBI's ceiling for our key."""
        ceiling = NCBI_MAX_RATE[bool(self.api_key)]
        return min(self.requests_per_second or ceiling * 0.95, ceiling)


@dataclass(frozen=True)
class CtgovSettings:
    base_url: str = DEFAULT_CTGOV_URL
    page_size: int = 1000
    overlap_days: int = 3
    requests_per_minute: float = 45.0  # the service's informal limit is about 50/min


@dataclass(frozen=True)
class Schedule:
    """When ``littrack serve`` runs a source (optionally one topic)."""

    source: str
    cron: str
    timezone: str = "UTC"
    topic: str | None = None

    @property
    def key(self) -> str:
        """The config key the schedule came from, as error messages name it."""
        where = f"topic {self.topic!r}.schedule" if self.topic else "schedule"
        return f"{where}.{self.source}"


@dataclass(frozen=True)
class CtgovQuery:
    cond: str | None = None
    intr: str | None = None
    term: str | None = None
    overall_status: tuple[str, ...] = ()

    def params(self) -> dict[str, str]:
        """The query.* and filter.* parameters of /studies for this topic."""
        out = {f"query.{k}": v for k, v in (("cond", self.cond), ("intr", self.intr),
                                              ("term", self.term)) if v}
        if self.overall_status:
            out["filter.overallStatus"] = ",".join(self.overall_status)
        return out


@dataclass(frozen=True)
class Topic:
    name: str
    description: str = ""
    pubmed_query: str | None = None
    ctgov: CtgovQuery | None = None

    def has(self, source: str) -> bool:
        return (self.pubmed_query is not None) if source == "pubmed" else self.ctgov is not None


@dataclass(frozen=True)
class Settings:
    config_path: Path
    data_dir: Path
    topics: tuple[Topic, ...]
    ncbi: NcbiSettings = NcbiSettings()
    ctgov: CtgovSettings = CtgovSettings()
    retry: RetrySettings = RetrySettings()
    schedules: tuple[Schedule, ...] = ()
    log_level: str = "INFO"
    log_file: Path | None = None

    @property
    def db_path(self) -> Path:
        return self.data_dir / DATABASE_FILE

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    def topic(self, name: str) -> Topic:
        for t in self.topics:
            if t.name == name:
                return t
        known = ", ".join(t.name for t in self.topics)
        raise ConfigError(f"{self.config_path}: unknown topic {name!r} (known: {known})")


# ---- schema: section -> key -> (type(s), required) ---------------------------------------
_STR, _INT, _NUM, _LIST = (str,), (int,), (int, float), (list,)
_SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "littrack": {"data_dir": (_STR, False), "log_level": (_STR, False), "log_file": (_STR, False)},
    "ncbi": {
        "base_url": (_STR, False), "email": (_STR, False), "tool": (_STR, False),
        "api_key": (_STR, False), "requests_per_second": (_NUM, False),
        "batch_size": (_INT, False), "overlap_days": (_INT, False),
    },
    "ctgov": {
        "base_url": (_STR, False), "page_size": (_INT, False), "overlap_days": (_INT, False),
        "requests_per_minute": (_NUM, False),
    },
    "retry": {
        "max_tries": (_INT, False), "backoff_base": (_NUM, False), "backoff_cap": (_NUM, False),
        "timeout": (_NUM, False),
        "topic_deadline": (_NUM, False),
    },
}
_TOPIC_KEYS = {"name": (_STR, True), "description": (_STR, False), "pubmed": ((dict,), False),
               "ctgov": ((dict,), False), "schedule": ((dict,), False)}
_PUBMED_KEYS = {"query": (_STR, True)}
_CTGOV_KEYS = {"cond": (_STR, False), "intr": (_STR, False), "term": (_STR, False),
               "overall_status": (_LIST, False)}
_SCHEDULE_KEYS = {"cron": (_STR, True), "timezone": (_STR, False)}


class _Checker:
    """Type/unknown-key checks that name the file and the dotted key at fault."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {where}: {message}")

    def table(self, data: Any, spec: Mapping[str, tuple[tuple[type, ...], bool]],
              where: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(where, f"must be a table, got {type(data).__name__}")
        for key in data:
            if key not in spec:
                allowed = ", ".join(sorted(spec))
                raise self.fail(f"{where}.{key}" if where else key,
                                f"unknown key (allowed: {allowed})")
        for key, (types, required) in spec.items():
            dotted = f"{where}.{key}" if where else key
            if key not in data:
                if required:
                    raise self.fail(dotted, "is required")
                continue
            value = data[key]
            # bool is an int subclass in Python; a TOML `true` is never a valid number here.
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                names = " or ".join(t.__name__ for t in types)
                raise self.fail(dotted, f"must be {names}, got {type(value).__name__} {value!r}")
            if isinstance(value, str) and required and not value.strip():
                raise self.fail(dotted, "must not be empty")
        return data


def find_config(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path:
    """--config, then $LITTRACK_CONFIG, then ./config/littrack.toml."""
    if explicit:
        return Path(explicit)
    if env.get("LITTRACK_CONFIG"):
        return Path(env["LITTRACK_CONFIG"])
    return DEFAULT_CONFIG


def load_settings(
    explicit: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Read, validate and resolve the whole config; raise ConfigError before any request."""
    env = os.environ if env is None else env
    path = find_config(explicit, env)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: config file not found (use --config or $LITTRACK_CONFIG)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return parse_settings(data, path, env)


def parse_settings(data: dict[str, Any], path: Path, env: Mapping[str, str]) -> Settings:
    """Validate an already-parsed TOML document (separate for tests)."""
    check = _Checker(path)
    top_spec = {k: ((dict,), False) for k in _SCHEMA} | {
        "topics": (_LIST, True), "schedule": ((dict,), False)}
    check.table(data, top_spec, "")
    sections = {name: check.table(data.get(name, {}), spec, name)
                for name, spec in _SCHEMA.items()}

    lt = sections["littrack"]
    data_dir = Path(env.get("LITTRACK_DATA_DIR") or lt.get("data_dir") or "./data")
    log_level = str(lt.get("log_level", "INFO")).upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise check.fail("littrack.log_level", f"must be DEBUG, INFO, WARNING or ERROR, "
                                               f"got {lt['log_level']!r}")

    nc = sections["ncbi"]
    api_key = env.get("NCBI_API_KEY") or nc.get("api_key") or None
    email = env.get("NCBI_EMAIL") or nc.get("email") or None
    tool = nc.get("tool", "littrack")
    for key, value in (("email", email), ("tool", tool)):
        if value is not None and (not value.strip() or re.search(r"\s", value)):
            raise check.fail(f"ncbi.{key}", f"must be one word with no spaces, got {value!r}")
    ncbi = NcbiSettings(
        base_url=_url(check, "ncbi.base_url",
                      env.get("LITTRACK_EUTILS_URL") or nc.get("base_url", DEFAULT_EUTILS_URL)),
        email=email, tool=tool, api_key=api_key,
        requests_per_second=_positive(check, "ncbi.requests_per_second",
                                      nc.get("requests_per_second")),
        batch_size=_bounded(check, "ncbi.batch_size", nc.get("batch_size", 500), 1, 10000),
        overlap_days=_bounded(check, "ncbi.overlap_days", nc.get("overlap_days", 3), 0, 365),
    )
    rps = ncbi.requests_per_second
    if rps is not None and rps > NCBI_MAX_RATE[bool(api_key)]:
        raise check.fail("ncbi.requests_per_second",
                         f"{rps} exceeds NCBI's limit of {NCBI_MAX_RATE[bool(api_key)]:g}/s "
                         f"{'with' if api_key else 'without'} an API key")

    ct = sections["ctgov"]
    ctgov = CtgovSettings(
        base_url=_url(check, "ctgov.base_url",
                      env.get("LITTRACK_CTGOV_URL") or ct.get("base_url", DEFAULT_CTGOV_URL)),
        page_size=_bounded(check, "ctgov.page_size", ct.get("page_size", 1000), 1, 1000),
        overlap_days=_bounded(check, "ctgov.overlap_days", ct.get("overlap_days", 3), 0, 365),
        requests_per_minute=float(_bounded(check, "ctgov.requests_per_minute",
                                           ct.get("requests_per_minute", 45.0), 1, 600)),
    )

    rt = sections["retry"]
    retry = RetrySettings(**{k: _positive(check, f"retry.{k}", v) for k, v in rt.items()})
    if retry.max_tries < 1:
        raise check.fail("retry.max_tries", "must be at least 1")

    topics = _parse_topics(check, data["topics"])
    schedules = _parse_schedules(check, data.get("schedule", {}), None)
    for item, topic in zip(data["topics"], topics, strict=True):
        own = _parse_schedules(check, item.get("schedule", {}), item["name"])
        for sched in own:
            if not topic.has(sched.source):  # would silently never run
                raise check.fail(f"topic {topic.name!r}.schedule.{sched.source}",
                                 f"the topic has no [topics.{sched.source}] query to schedule")
        schedules += own
    log_file = lt.get("log_file")
    return Settings(
        config_path=path, data_dir=data_dir, topics=topics, ncbi=ncbi, ctgov=ctgov,
        retry=retry, schedules=schedules, log_level=log_level,
        log_file=Path(log_file) if log_file else None,
    )


def _parse_topics(check: _Checker, raw: list[Any]) -> tuple[Topic, ...]:
    if not raw:
        raise check.fail("topics", "at least one [[topics]] entry is required")
    topics: list[Topic] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"topics[{i}]"
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            where = f"topic {item['name']!r}"
        t = check.table(item, _TOPIC_KEYS, where)
        name = t["name"]
        if not TOPIC_NAME.match(name):
            raise check.fail(f"{where}.name", "must be lower-case letters, digits and '-' "
                             "(it names report files), up to 63 characters")
        if name in seen:
            raise check.fail(f"{where}.name", "duplicate topic name")
        seen.add(name)
        pubmed_query = None
        if "pubmed" in t:
            pubmed_query = check.table(t["pubmed"], _PUBMED_KEYS, f"{where}.pubmed")["query"]
            pubmed_query = " ".join(pubmed_query.split())
        ctgov = None
        if "ctgov" in t:
            c = check.table(t["ctgov"], _CTGOV_KEYS, f"{where}.ctgov")
            statuses = tuple(c.get("overall_status", ()))
            for s in statuses:
                if s not in CTGOV_STATUSES:
                    raise check.fail(f"{where}.ctgov.overall_status",
                                     f"unknown status {s!r} (use the API's enum, e.g. RECRUITING)")
            ctgov = CtgovQuery(
                cond=_clean(c.get("cond")), intr=_clean(c.get("intr")),
                term=_clean(c.get("term")), overall_status=statuses,
            )
            if not (ctgov.cond or ctgov.intr or ctgov.term):
                raise check.fail(f"{where}.ctgov",
                                 "needs a non-empty cond, intr or term query")
        if pubmed_query is None and ctgov is None:
            raise check.fail(where, "needs a [topics.pubmed] query or a [topics.ctgov] query")
        topics.append(Topic(name=name, description=t.get("description", ""),
                            pubmed_query=pubmed_query, ctgov=ctgov))
    return tuple(topics)


def _parse_schedules(check: _Checker, raw: dict[str, Any],
                     topic: str | None) -> tuple[Schedule, ...]:
    """[schedule.<source>] at top level, or [topics.schedule.<source>] for one topic."""
    prefix = f"topic {topic!r}.schedule" if topic else "schedule"
    out: list[Schedule] = []
    for source, spec in raw.items():
        if source not in ("pubmed", "ctgov"):
            raise check.fail(f"{prefix}.{source}", "unknown source (use pubmed or ctgov)")
        s = check.table(spec, _SCHEDULE_KEYS, f"{prefix}.{source}")
        out.append(Schedule(source=source, cron=s["cron"], timezone=s.get("timezone", "UTC"),
                            topic=topic))
    for sched in out:
        # Fail at start, naming the key and the expression, not at the first missed run.
        try:
            cron_trigger(sched.cron, sched.timezone)
        except Exception as exc:  # apscheduler raises ValueError, zoneinfo its own errors
            raise check.fail(sched.key, f"invalid cron {sched.cron!r} / timezone "
                                        f"{sched.timezone!r}: {exc}") from None
    return tuple(out)


def _clean(value: str | None) -> str | None:
    return " ".join(value.split()) if value and value.strip() else None


def _url(check: _Checker, key: str, value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise check.fail(key, f"must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def _positive(check: _Checker, key: str, value: Any) -> Any:
    if value is not None and value <= 0:
        raise check.fail(key, f"must be positive, got {value!r}")
    return value


def _bounded(check: _Checker, key: str, value: Any, low: float, high: float) -> Any:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
        raise check.fail(key, f"must be a number from {low:g} to {high:g}, got {value!r}")
    return value
