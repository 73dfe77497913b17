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
from urllib.parse import urlsplit

from littrack.crontab import cron_trigger
from littrack.errors import ConfigError
from littrack.vocab import CTGOV, DATABASE_FILE, EUROPEPMC, PUBMED, SOURCES

DEFAULT_CONFIG = Path("config/littrack.toml")
DEFAULT_EUTILS_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils"
DEFAULT_CTGOV_URL = "https://clinicaltrials.gov/api/v2"
DEFAULT_EUROPEPMC_URL = "https://www.ebi.ac.uk/europepmc/webservices/rest"
TOPIC_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
CTGOV_STATUSES = frozenset(
    "ACTIVE_NOT_RECRUITING COMPLETED ENROLLING_BY_INVITATION NOT_YET_RECRUITING RECRUITING "
    "SUSPENDED TERMINATED WITHDRAWN AVAILABLE NO_LONGER_AVAILABLE TEMPORARILY_NOT_AVAILABLE "
    "APPROVED_FOR_MARKETING WITHHELD UNKNOWN".split()
)
# NCBI's published ceilings: 3 requests/s per IP without a key, 10/s with one.
NCBI_MAX_RATE = {False: 3.0, True: 10.0}
PARSE_PROCESS_MODES = ("auto", "always", "never")


_TOML_NAMES: dict[type, str] = {
    str: "a string", int: "an integer", float: "a number", bool: "true or false",
    list: "an array", dict: "a table",
}


def _type_message(key: str, types: tuple[type, ...], value: object) -> str:
    """Say it in TOML's words (a string, a table), never with a Python repr of a table."""
    want = " or ".join(_TOML_NAMES.get(t, t.__name__) for t in types)
    got = _TOML_NAMES.get(type(value), type(value).__name__)
    if isinstance(value, dict | list):
        shown = ""
    else:
        shown = f" ({value!r})"
    hint = ""
    if list in types and isinstance(value, dict):
        hint = f"; write [[{key}]] (an array of tables), not [{key}]"
    return f"must be {want}, got {got}{shown}{hint}"


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
    # Parse EFetch replies in a side process while this one stores: "auto" (a fetch of
    # several batches, on a machine with two CPUs or more), "always" or "never".
    parse_process: str = "auto"

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
class EuropePmcSettings:
    base_url: str = DEFAULT_EUROPEPMC_URL
    page_size: int = 1000  # the service's maximum
    overlap_days: int = 3
    # No published limit; the service asks for reasonable use. Well under what clients
    # commonly send (1-3/s), since a day's new preprints take a few requests at most.
    requests_per_second: float = 1.0


@dataclass(frozen=True)
class ReportSettings:
    """Which run report folders to write and keep."""

    write_empty: bool = False  # a folder also for a run that found nothing new
    keep: int = 0  # the newest N run report folders; 0 keeps all


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
    europepmc_query: str | None = None  # Europe PMC search syntax

    def has(self, source: str) -> bool:
        if source == PUBMED:
            return self.pubmed_query is not None
        if source == CTGOV:
            return self.ctgov is not None
        return source == EUROPEPMC and self.europepmc_query is not None

    def fingerprint(self, source: str) -> str:
        """A short hash of what this topic asks ``source``: kept with the watermark, so a
        changed query is noticed and searched from the beginning, not only since the last
        run (an added ``OR`` clause would otherwise never reach its older records)."""
        import hashlib
        import json

        what: object = (self.pubmed_query if source == PUBMED
                        else self.europepmc_query if source == EUROPEPMC
                        else sorted(self.ctgov.params().items()) if self.ctgov else None)
        text = json.dumps([source, what], separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


NOTIFY_INCLUDE = ("new_articles", "new_trials", "trial_changes", "corrections", "unreported",
                  "new_preprints", "preprints_published")
NOTIFY_WHEN = ("after-run", "daily", "weekly")
EMAIL_SECURITY = ("starttls", "ssl", "none")
_DEFAULT_SMTP_PORT = {"starttls": 587, "ssl": 465, "none": 25}


@dataclass(frozen=True)
class EmailChannel:
    """SMTP delivery of a digest; the password comes only from the named variable."""

    smtp_host: str
    smtp_port: int
    security: str
    sender: str
    to: tuple[str, ...]
    username: str | None = None
    password_env: str | None = None
    password: str | None = field(default=None, repr=False)  # never printed or stored
    timeout: float = 60.0
    ca_file: Path | None = None  # extra CA bundle (a private or self-signed server)


@dataclass(frozen=True)
class WebhookChannel:
    url: str = field(repr=False)  # Slack-style URLs carry a token in the path
    secret_env: str | None = None
    secret: str | None = field(default=None, repr=False)  # HMAC key; never printed or stored
    url_env: str | None = None

    @property
    def safe_url(self) -> str:
        """The URL as logs and messages show it: scheme and host only."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}/…" if parts.path.strip("/") else self.url


@dataclass(frozen=True)
class AtomChannel:
    path: Path  # resolved against the data directory
    max_entries: int = 100
    title: str | None = None


@dataclass(frozen=True)
class NotifyEntry:
    """One ``[[notify]]`` entry: what to deliver, when, and on which channels."""

    name: str
    topics: tuple[str, ...]
    include: tuple[str, ...] = NOTIFY_INCLUDE
    when: str = "after-run"
    at: str = "08:00"  # daily/weekly digests: local time of ``timezone``
    day: str = "mon"  # weekly digests
    timezone: str = "UTC"
    email: EmailChannel | None = None
    webhook: WebhookChannel | None = None
    atom: AtomChannel | None = None

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(c for c in ("email", "webhook", "atom") if getattr(self, c) is not None)

    def schedule(self) -> Schedule:
        """The crontab line of a daily or weekly digest (``littrack serve`` and catch-up)."""
        hour, minute = self.at.split(":")
        day = self.day if self.when == "weekly" else "*"
        return Schedule(source="notify", cron=f"{int(minute)} {int(hour)} * * {day}",
                        timezone=self.timezone, topic=None)


@dataclass(frozen=True)
class Settings:
    config_path: Path
    data_dir: Path
    topics: tuple[Topic, ...]
    ncbi: NcbiSettings = NcbiSettings()
    ctgov: CtgovSettings = CtgovSettings()
    retry: RetrySettings = RetrySettings()
    europepmc: EuropePmcSettings = EuropePmcSettings()
    reports: ReportSettings = ReportSettings()
    schedules: tuple[Schedule, ...] = ()
    log_level: str = "INFO"
    log_file: Path | None = None
    database_url: str | None = None  # None: the SQLite file in the data directory
    notify: tuple[NotifyEntry, ...] = ()

    def notify_entry(self, name: str) -> NotifyEntry:
        for n in self.notify:
            if n.name == name:
                return n
        known = ", ".join(n.name for n in self.notify) or "none configured"
        raise ConfigError(f"{self.config_path}: unknown notify entry {name!r} (known: {known})")

    @property
    def db_path(self) -> Path:
        return self.data_dir / DATABASE_FILE

    @property
    def store_location(self) -> str:
        """What ``Store`` opens: the database URL, or the data directory's SQLite file."""
        return self.database_url or str(self.db_path)

    @property
    def shared_store(self) -> bool:
        """A PostgreSQL store: workers coordinate per topic in the database, not by the
        data-directory lock."""
        return bool(self.database_url and not self.database_url.startswith("sqlite:"))

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
    "littrack": {"data_dir": (_STR, False), "log_level": (_STR, False), "log_file": (_STR, False),
                 "database_url": (_STR, False)},
    "ncbi": {
        "base_url": (_STR, False), "email": (_STR, False), "tool": (_STR, False),
        "api_key": (_STR, False), "requests_per_second": (_NUM, False),
        "batch_size": (_INT, False), "overlap_days": (_INT, False),
        "parse_process": (_STR, False),
    },
    "ctgov": {
        "base_url": (_STR, False), "page_size": (_INT, False), "overlap_days": (_INT, False),
        "requests_per_minute": (_NUM, False),
    },
    "europepmc": {
        "base_url": (_STR, False), "page_size": (_INT, False), "overlap_days": (_INT, False),
        "requests_per_second": (_NUM, False),
    },
    "reports": {"write_empty": ((bool,), False), "keep": (_INT, False)},
    "retry": {
        "max_tries": (_INT, False), "backoff_base": (_NUM, False), "backoff_cap": (_NUM, False),
        "timeout": (_NUM, False),
        "topic_deadline": (_NUM, False),
    },
}
_TOPIC_KEYS = {"name": (_STR, True), "description": (_STR, False), "pubmed": ((dict,), False),
               "ctgov": ((dict,), False), "europepmc": ((dict,), False),
               "schedule": ((dict,), False)}
_PUBMED_KEYS = {"query": (_STR, True)}
_EUROPEPMC_KEYS = {"query": (_STR, True)}
_CTGOV_KEYS = {"cond": (_STR, False), "intr": (_STR, False), "term": (_STR, False),
               # one status as a plain string is unambiguous: taken as a one-element list
               "overall_status": ((list, str), False)}
_SCHEDULE_KEYS = {"cron": (_STR, True), "timezone": (_STR, False)}
_NOTIFY_KEYS = {"name": (_STR, True), "topics": (_LIST, False), "include": (_LIST, False),
                "when": (_STR, False), "at": (_STR, False), "day": (_STR, False),
                "timezone": (_STR, False), "email": ((dict,), False),
                "webhook": ((dict,), False), "atom": ((dict,), False)}
_EMAIL_KEYS = {"smtp_host": (_STR, True), "smtp_port": (_INT, False),
               "security": (_STR, False), "from": (_STR, True), "to": (_LIST, True),
               "username": (_STR, False), "password_env": (_STR, False),
               "timeout": (_NUM, False), "ca_file": (_STR, False)}
_WEBHOOK_KEYS = {"url": (_STR, False), "url_env": (_STR, False), "secret_env": (_STR, False)}
_ATOM_KEYS = {"path": (_STR, True), "max_entries": (_INT, False), "title": (_STR, False)}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_AT = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


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
                raise self.fail(dotted, _type_message(key, types, value))
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
        "topics": (_LIST, True), "schedule": ((dict,), False), "notify": (_LIST, False)}
    check.table(data, top_spec, "")
    sections = {name: check.table(data.get(name, {}), spec, name)
                for name, spec in _SCHEMA.items()}

    lt = sections["littrack"]
    # A path written in the file means the same whatever folder littrack starts in: it is
    # relative to the file's folder. The environment's is the shell's, so relative to the cwd.
    if env.get("LITTRACK_DATA_DIR"):
        data_dir = Path(env["LITTRACK_DATA_DIR"])
    elif lt.get("data_dir"):
        data_dir = _beside(path, lt["data_dir"])
    else:
        data_dir = Path("./data")
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
        parse_process=_choice(check, "ncbi.parse_process", nc.get("parse_process", "auto"),
                              PARSE_PROCESS_MODES),
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

    ep = sections["europepmc"]
    europepmc = EuropePmcSettings(
        base_url=_url(check, "europepmc.base_url", env.get("LITTRACK_EUROPEPMC_URL")
                      or ep.get("base_url", DEFAULT_EUROPEPMC_URL)),
        page_size=_bounded(check, "europepmc.page_size", ep.get("page_size", 1000), 1, 1000),
        overlap_days=_bounded(check, "europepmc.overlap_days", ep.get("overlap_days", 3),
                              0, 365),
        requests_per_second=float(_bounded(check, "europepmc.requests_per_second",
                                           ep.get("requests_per_second", 1.0), 0.01, 10)),
    )

    rt = sections["retry"]
    retry = RetrySettings(**{k: _positive(check, f"retry.{k}", v) for k, v in rt.items()})
    if retry.max_tries < 1:
        raise check.fail("retry.max_tries", "must be at least 1")

    rp = sections["reports"]
    reports = ReportSettings(write_empty=rp.get("write_empty", False),
                             keep=_bounded(check, "reports.keep", rp.get("keep", 0), 0, 100000))

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
    notify = _parse_notify(check, data.get("notify", []), topics, data_dir, env)
    return Settings(
        config_path=path, data_dir=data_dir, topics=topics, ncbi=ncbi, ctgov=ctgov,
        retry=retry, europepmc=europepmc, reports=reports, schedules=schedules,
        log_level=log_level, log_file=_beside(path, log_file) if log_file else None,
        notify=notify, database_url=_database_url(check, env.get("LITTRACK_DATABASE_URL"),
                                                  lt.get("database_url")),
    )


_DB_SCHEMES = ("sqlite:///", "postgresql://", "postgres://")


def _database_url(check: _Checker, from_env: str | None, from_file: str | None) -> str | None:
    """The store's URL. A password belongs in the environment or a libpq password file
    (``passfile=``, ``~/.pgpass``), never in a config file others may read."""
    for key, url in (("LITTRACK_DATABASE_URL", from_env), ("littrack.database_url", from_file)):
        if url is None:
            continue
        if not url.startswith(_DB_SCHEMES):
            scheme = url.split("://", 1)[0] if "://" in url else url[:20]
            raise check.fail(key, f"unknown database URL scheme {scheme!r} (use sqlite:///path "
                                  f"or postgresql://user@host:port/dbname)")
        if key.startswith("littrack.") and re.search(r"://[^/@]*:[^/@]*@|[?&]password=", url):
            raise check.fail(key, "holds a password; give it through LITTRACK_DATABASE_URL or "
                                  "a password file (~/.pgpass, or passfile= in the URL)")
    return from_env or from_file or None


def _named_entry(check: _Checker, item: Any, keys: Mapping[str, Any], index: str, kind: str,
                 seen: set[str], use: str) -> tuple[dict[str, Any], str]:
    """One ``[[topics]]`` or ``[[notify]]`` entry, checked, and how messages name it (by its
    name once it has one): the name goes into file names and ids, so it is restricted, and
    two entries of a kind may not share it."""
    where = index
    if isinstance(item, dict) and isinstance(item.get("name"), str):
        where = f"{kind} {item['name']!r}"
    entry = check.table(item, keys, where)
    name = entry["name"]
    if not TOPIC_NAME.match(name):
        raise check.fail(f"{where}.name", "must be lower-case letters, digits and '-' "
                         f"({use}), up to 63 characters")
    if name in seen:
        raise check.fail(f"{where}.name", f"duplicate {kind} name")
    seen.add(name)
    return entry, where


def _parse_topics(check: _Checker, raw: list[Any]) -> tuple[Topic, ...]:
    if not raw:
        raise check.fail("topics", "at least one [[topics]] entry is required")
    topics: list[Topic] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        t, where = _named_entry(check, item, _TOPIC_KEYS, f"topics[{i}]", "topic", seen,
                                "it names report files")
        name = t["name"]
        pubmed_query = None
        if "pubmed" in t:
            pubmed_query = check.table(t["pubmed"], _PUBMED_KEYS, f"{where}.pubmed")["query"]
            pubmed_query = " ".join(pubmed_query.split())
        ctgov = None
        if "ctgov" in t:
            c = check.table(t["ctgov"], _CTGOV_KEYS, f"{where}.ctgov")
            raw_status = c.get("overall_status", ())
            statuses = (raw_status,) if isinstance(raw_status, str) else tuple(raw_status)
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
        europepmc_query = None
        if "europepmc" in t:
            europepmc_query = " ".join(check.table(t["europepmc"], _EUROPEPMC_KEYS,
                                                   f"{where}.europepmc")["query"].split())
            if len(europepmc_query) > 1000:  # the service refuses 1,500 with the date clause
                raise check.fail(f"{where}.europepmc.query",
                                 "is longer than 1,000 characters")
        if pubmed_query is None and ctgov is None and europepmc_query is None:
            raise check.fail(where, "needs a [topics.pubmed], [topics.ctgov] or "
                                    "[topics.europepmc] query")
        topics.append(Topic(name=name, description=t.get("description", ""),
                            pubmed_query=pubmed_query, ctgov=ctgov,
                            europepmc_query=europepmc_query))
    return tuple(topics)


def _parse_schedules(check: _Checker, raw: dict[str, Any],
                     topic: str | None) -> tuple[Schedule, ...]:
    """[schedule.<source>] at top level, or [topics.schedule.<source>] for one topic."""
    prefix = f"topic {topic!r}.schedule" if topic else "schedule"
    out: list[Schedule] = []
    for source, spec in raw.items():
        if source not in SOURCES:
            raise check.fail(f"{prefix}.{source}",
                             f"unknown source (use {', '.join(SOURCES)})")
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


def _beside(config_path: Path, value: str) -> Path:
    """A path from the config file, resolved against the file's folder when relative.

    Made absolute and without ``..`` (the folder's symlinks resolved first, so ``..``
    keeps the meaning it had), so messages show ``/srv/x/data``, not ``config/../data``.
    """
    p = Path(value).expanduser()
    if p.is_absolute():
        return p
    return Path(os.path.normpath(config_path.parent.resolve() / p))


def _parse_notify(check: _Checker, raw: list[Any], topics: tuple[Topic, ...], data_dir: Path,
                  env: Mapping[str, str]) -> tuple[NotifyEntry, ...]:
    """``[[notify]]`` entries; secrets are read from the variables they name, never the file."""
    known = [t.name for t in topics]
    out: list[NotifyEntry] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        n, where = _named_entry(check, item, _NOTIFY_KEYS, f"notify[{i}]", "notify", seen,
                                "it names feeds and message ids")
        name = n["name"]
        chosen = tuple(_strings(check, n, "topics", where)) or tuple(known)
        for t in chosen:
            if t not in known:
                raise check.fail(f"{where}.topics",
                                 f"unknown topic {t!r} (known: {', '.join(known)})")
        include = tuple(_strings(check, n, "include", where)) or NOTIFY_INCLUDE
        for inc in include:
            if inc not in NOTIFY_INCLUDE:
                raise check.fail(f"{where}.include",
                                 f"unknown item kind {inc!r} (use {', '.join(NOTIFY_INCLUDE)})")
        when = n.get("when", "after-run")
        if when not in NOTIFY_WHEN:
            raise check.fail(f"{where}.when", f"must be {', '.join(NOTIFY_WHEN)}, got {when!r}")
        at = n.get("at", "08:00")
        if not _AT.match(at):
            raise check.fail(f"{where}.at", f"must be a time HH:MM, got {at!r}")
        day = n.get("day", "mon").strip().lower()[:3]
        if day not in _DAYS:
            raise check.fail(f"{where}.day", f"must be a weekday (mon … sun), got {n['day']!r}")
        for key in ("at", "day"):
            if key in n and when == "after-run":
                raise check.fail(f"{where}.{key}", "only daily or weekly digests have a time")
        if "day" in n and when != "weekly":
            raise check.fail(f"{where}.day", "only weekly digests have a day")
        entry = NotifyEntry(
            name=name, topics=chosen, include=include, when=when, at=at, day=day,
            timezone=n.get("timezone", "UTC"),
            email=_email(check, n["email"], f"{where}.email", env) if "email" in n else None,
            webhook=(_webhook(check, n["webhook"], f"{where}.webhook", env)
                     if "webhook" in n else None),
            atom=_atom(check, n["atom"], f"{where}.atom", data_dir) if "atom" in n else None,
        )
        if not entry.channels:
            raise check.fail(where, "needs at least one channel: [notify.email], "
                             "[notify.webhook] or [notify.atom]")
        if when != "after-run":
            schedule = entry.schedule()
            try:
                cron_trigger(schedule.cron, schedule.timezone)
            except Exception as exc:  # zoneinfo raises its own errors for a bad zone
                raise check.fail(f"{where}.timezone",
                                 f"invalid time zone {entry.timezone!r}: {exc}") from None
        out.append(entry)
    return tuple(out)


def _strings(check: _Checker, table: dict[str, Any], key: str, where: str) -> list[str]:
    values = table.get(key, [])
    for v in values:
        if not isinstance(v, str) or not v.strip():
            raise check.fail(f"{where}.{key}", f"must be a list of non-empty strings, "
                             f"got {v!r}")
    return list(values)


def _secret(check: _Checker, table: dict[str, Any], key: str, where: str,
            env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(variable name, its value): the config names a variable; the value stays in env."""
    var = table.get(key)
    if var is None:
        return None, None
    if not _ENV_NAME.match(var):
        raise check.fail(f"{where}.{key}", f"must name an environment variable, got {var!r}")
    value = env.get(var)
    if not value:
        raise check.fail(f"{where}.{key}", f"environment variable {var} is not set")
    return var, value


def _email(check: _Checker, raw: Any, where: str, env: Mapping[str, str]) -> EmailChannel:
    e = check.table(raw, _EMAIL_KEYS, where)
    security = e.get("security", "starttls")
    if security not in EMAIL_SECURITY:
        raise check.fail(f"{where}.security",
                         f"must be {', '.join(EMAIL_SECURITY)}, got {security!r}")
    port = _bounded(check, f"{where}.smtp_port",
                    e.get("smtp_port", _DEFAULT_SMTP_PORT[security]), 1, 65535)
    to = _strings(check, e, "to", where)
    if not to:
        raise check.fail(f"{where}.to", "needs at least one address")
    for addr in [e["from"], *to]:
        if not re.match(r"^[^@\s<>]+@[^@\s<>]+$", addr):
            raise check.fail(f"{where}.{'from' if addr == e['from'] else 'to'}",
                             f"not an e-mail address: {addr!r}")
    var, password = _secret(check, e, "password_env", where, env)
    username = e.get("username")
    if username and not var:
        raise check.fail(f"{where}.password_env",
                         "is required with username (the password comes from the environment)")
    if var and not username:
        raise check.fail(f"{where}.username", "is required with password_env")
    if security == "none" and username:
        raise check.fail(f"{where}.security",
                         "'none' would send the password in clear text; use starttls or ssl")
    ca_file = Path(e["ca_file"]) if e.get("ca_file") else None
    if ca_file is not None and not ca_file.is_file():
        raise check.fail(f"{where}.ca_file", f"no such file: {ca_file}")
    return EmailChannel(
        smtp_host=e["smtp_host"], smtp_port=int(port), security=security, sender=e["from"],
        to=tuple(to), username=username, password_env=var, password=password,
        timeout=float(_positive(check, f"{where}.timeout", e.get("timeout", 60.0))),
        ca_file=ca_file)


def _webhook(check: _Checker, raw: Any, where: str, env: Mapping[str, str]) -> WebhookChannel:
    w = check.table(raw, _WEBHOOK_KEYS, where)
    if ("url" in w) == ("url_env" in w):
        raise check.fail(where, "needs url or url_env (a variable holding a URL that "
                                "carries a token), not both")
    var, secret = _secret(check, w, "secret_env", where, env)
    url_var, url = _secret(check, w, "url_env", where, env)
    if url_var is None:
        url = w["url"]
    assert url is not None
    try:
        url = _url(check, f"{where}.{'url_env' if url_var else 'url'}", url)
    except ConfigError:
        if url_var:  # the value is secret: name the variable, not its content
            raise check.fail(f"{where}.url_env", f"${url_var} is not an http(s) URL") from None
        raise
    return WebhookChannel(url=url, secret_env=var, secret=secret, url_env=url_var)


def _atom(check: _Checker, raw: Any, where: str, data_dir: Path) -> AtomChannel:
    a = check.table(raw, _ATOM_KEYS, where)
    rel = Path(a["path"])
    if rel.is_absolute() or ".." in rel.parts or not rel.name:
        raise check.fail(f"{where}.path", f"must be a file path inside the data directory, "
                         f"got {a['path']!r}")
    return AtomChannel(
        path=data_dir / rel,
        max_entries=int(_bounded(check, f"{where}.max_entries", a.get("max_entries", 100),
                                 1, 10000)),
        title=a.get("title"))


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


def _choice(check: _Checker, key: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise check.fail(key, f"must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _bounded(check: _Checker, key: str, value: Any, low: float, high: float) -> Any:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
        raise check.fail(key, f"must be a number from {low:g} to {high:g}, got {value!r}")
    return value
