"""The ``littrack`` command: thin click commands over pipeline, store and reports.

Exit codes: 0 success, 1 some topic failed (the others committed), 2 usage, config or
data-directory error, 3 another littrack holds the data directory, 130/143 `run` stopped by
SIGINT/SIGTERM (`serve` stops with 0).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from littrack import __version__
from littrack.config import Settings, load_settings
from littrack.errors import ConfigError, DataDirError, LittrackError, LockTimeout
from littrack.memory import hand_back_large_blocks
from littrack.vocab import SOURCES

EXIT_OK, EXIT_TOPIC_FAILED, EXIT_CONFIG, EXIT_LOCKED = 0, 1, 2, 3
log = logging.getLogger("littrack")


def setup_logging(settings: Settings | None, verbose: int, quiet: bool = False) -> None:
    """One format for every command: stderr, plus a rotating file if configured."""
    level = settings.log_level if settings else "INFO"
    if verbose:
        level = "DEBUG"
    if quiet:
        level = "WARNING"
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                            "%Y-%m-%dT%H:%M:%S")
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(fmt)
    root.addHandler(stderr)
    if settings and settings.log_file:
        from logging.handlers import RotatingFileHandler

        settings.log_file.parent.mkdir(parents=True, exist_ok=True)
        fh = RotatingFileHandler(settings.log_file, maxBytes=5_000_000, backupCount=5)
        fh.setFormatter(fmt)
        root.addHandler(fh)
    root.setLevel(level)
    # Libraries' debug chatter (matplotlib font lookups, PIL) drowns littrack's own lines.
    for noisy in ("matplotlib", "PIL", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))


def _settings(ctx: click.Context) -> Settings:
    obj = ctx.ensure_object(dict)
    if "settings" not in obj:
        obj["settings"] = load_settings(obj.get("config"))
        setup_logging(obj["settings"], obj.get("verbose", 0), obj.get("quiet", False))
    return obj["settings"]  # type: ignore[no-any-return]


def _wait(settings: Settings, given: float | None, default: float) -> float:
    """``--wait``: for SQLite's data-directory lock, ``default``; for a topic another worker
    sharing a PostgreSQL store holds, 0 (skip it: that worker fetches it)."""
    if given is not None:
        return given
    return 0.0 if settings.shared_store else default


def _sqlite_file(settings: Settings) -> Path | None:
    """The SQLite store's file (None for PostgreSQL), after checking that its folder is one:
    a file there would read as "no database" or "not created yet"."""
    from littrack.database import parse
    from littrack.lock import require_folder

    path = parse(settings.store_location).path
    if path is not None:
        require_folder(path.parent)
    return path


def _require_store(settings: Settings) -> None:
    """Offline commands read an existing store; opening one would create an empty one."""
    path = _sqlite_file(settings)
    if path is not None and not path.exists():
        raise ConfigError(f"{path}: no littrack database here (run `littrack run` first)")


def _default_out(settings: Settings, name: Path) -> Path:
    """``<data_dir>/name``, or ``./littrack-…`` in the current folder when the data
    directory is read-only for this user (reading a store needs no write access)."""
    import os

    if os.access(settings.data_dir, os.W_OK):
        return settings.data_dir / name
    return Path("littrack-" + "-".join(name.parts))


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn LittrackErrors into one-line messages and the documented exit codes."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            click.echo(f"littrack: config error: {exc}", err=True)
            sys.exit(EXIT_CONFIG)
        except DataDirError as exc:
            click.echo(f"littrack: {exc}", err=True)
            sys.exit(EXIT_CONFIG)
        except LockTimeout as exc:
            click.echo(f"littrack: {exc}", err=True)
            sys.exit(EXIT_LOCKED)
        except LittrackError as exc:
            click.echo(f"littrack: {exc}", err=True)
            sys.exit(EXIT_TOPIC_FAILED)
        except OSError as exc:  # the environment (disk full, permissions), not a bug
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"littrack: {where}{exc.strerror or exc}", err=True)
            sys.exit(EXIT_TOPIC_FAILED)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="littrack")
@click.option("--config", "-c", type=click.Path(dir_okay=False), envvar="LITTRACK_CONFIG",
              help="Config file (default: $LITTRACK_CONFIG, then ./config/littrack.toml).")
@click.option("-v", "--verbose", count=True, help="Debug logging.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.pass_context
def cli(ctx: click.Context, config: str | None, verbose: int, quiet: bool) -> None:
    """Track PubMed articles and ClinicalTrials.gov studies per topic.

    Every run keeps tidy SQLite tables in the data directory, remembers what changed,
    and writes a CSV report of what is new. Run it from cron (`littrack run`) or as a
    service (`littrack serve`).
    """
    ctx.ensure_object(dict).update(config=config, verbose=verbose, quiet=quiet)


class _StopOnSignal:
    """SIGTERM/SIGINT set an event the pipeline checks between batches."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None  # the first signal received
        self._old: dict[int, Any] = {}

    def __enter__(self) -> threading.Event:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, self._handle)
        return self.event

    def _handle(self, signum: int, frame: Any) -> None:
        if self.event.is_set():  # second signal: stop now
            raise KeyboardInterrupt
        log.warning("received %s: finishing or rolling back the current topic, then "
                    "stopping", signal.Signals(signum).name)
        self.signum = signum
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


# The --wait of the commands that need the data directory to themselves for a moment.
wait_for_data_dir = click.option(
    "--wait", type=float, default=60.0, show_default=True, metavar="SECONDS",
    help="How long to wait for another running littrack to release the data directory.")


@cli.command()
@click.option("--topic", "-t", "topics", multiple=True, metavar="NAME",
              help="Only this topic (repeatable). Default: every topic in the config.")
@click.option("--source", "-s", type=click.Choice(SOURCES),
              help="Only this source. Default: both.")
@click.option("--full", is_flag=True, help="Ignore watermarks: ask for everything again.")
@click.option("--wait", "wait", type=float, default=None, metavar="SECONDS",
              help="How long to wait for another running littrack: for the data directory "
                   "(SQLite; default 60), or for a topic another worker is fetching "
                   "(PostgreSQL; default 0: skip it, that worker does it).")
@click.pass_context
@handle_errors
def run(ctx: click.Context, topics: tuple[str, ...], source: str | None, full: bool,
        wait: float | None) -> None:
    """Fetch what is new for each topic, store it, and write the run's report.

    Exit code 0 when every topic succeeded, 1 when some failed (the others are committed),
    2 for a config or usage error or a data directory it cannot write, 3 when another
    littrack holds the data directory, 130 or 143 when SIGINT or SIGTERM stopped it (the
    current topic rolls back).
    """
    settings = _settings(ctx)
    for name in topics:
        settings.topic(name)  # unknown topic → ConfigError before any request
    from littrack.pipeline import run as run_pipeline

    quiet = ctx.ensure_object(dict).get("quiet", False)
    signals = _StopOnSignal()
    with signals as stop:
        result = run_pipeline(settings, topics=topics or None,
                              sources=[source] if source else None, full=full, stop=stop,
                              lock_timeout=_wait(settings, wait, 60.0),
                              progress=sys.stderr.isatty() and not quiet)
    if not (quiet and result.exit_code == 0 and not result.stopped):
        # -q: a run with nothing wrong prints nothing, so cron mails only when it matters
        _print_results(result)
    if result.stopped:
        click.echo("stopped on request; the next run resumes from the last committed state")
        # the shell's convention for "ended by signal N": 130 after SIGINT, 143 after SIGTERM
        sys.exit(128 + (signals.signum or signal.SIGINT))
    if settings.notify:
        from littrack.notify import after_run

        for n in after_run(settings, lock_timeout=_wait(settings, wait, 60.0)):
            if n.error or not quiet:
                _echo_delivery(n)
    sys.exit(result.exit_code)


def _print_results(result: Any) -> None:
    """One line per topic and source, the linked-records line, the run's distinct totals."""
    for r in result.results:
        mark = {"ok": "ok ", "stopped": "STOPPED"}.get(r.status, "FAILED")
        counts = "  ".join(f"{label} {value:>{width}}" for label, value, width in r.counts())
        line = (f"{mark} {r.source:<{max(map(len, SOURCES))}} {r.topic:<30} {counts}  "
                f"requests {r.n_requests:>4}")
        extra = r.error or r.note
        click.echo(line + (f"  ({extra})" if extra else ""))
    t = result.totals
    click.echo(f"total (each record once): found {t.found}, new {t.new}, updated "
               f"{t.updated}, {t.requests} requests ({t.retries} retries)")
    if result.report_dir:
        click.echo(f"report: {result.report_dir}")


def _echo_delivery(n: Any) -> None:
    if n.error:
        click.echo(f"FAILED notify {n.entry} {n.channel}: {n.error}")
    elif n.sent:
        click.echo(f"ok  notify {n.entry} {n.channel}: {n.summary if n.n_items else ''}"
                   + (f" ({n.resent} resent)" if n.resent else ""))


@cli.command()
@click.argument("directory", required=False, default=".",
                type=click.Path(file_okay=False, path_type=Path))
@handle_errors
def init(directory: Path) -> None:
    """Write a commented starter config to DIRECTORY/config/littrack.toml (default: here).

    The shipped config (three example topics, schedules, polite defaults). littrack finds
    it when started in DIRECTORY, and keeps its data in DIRECTORY/data.
    """
    from importlib.resources import files

    target = directory / "config" / "littrack.toml"
    if target.exists():
        raise ConfigError(f"{target}: a config is already there; edit it, or remove it "
                          "first to start over")
    text = files("littrack").joinpath("starter/littrack.toml").read_text(encoding="utf-8")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise DataDirError(f"{target.parent}: cannot write the config here: "
                           f"{exc.strerror or exc}") from None
    click.echo(f"wrote {target}")
    click.echo(f"next: edit its [[topics]], then `cd {directory}` and run `littrack check` "
               "and `littrack run`")


@cli.command()
@click.option("--online", is_flag=True,
              help="Also ask each service for every topic's hit count (one small request "
                   "per topic and source, no records); a query a service rejects is a "
                   "config error.")
@click.pass_context
@handle_errors
def check(ctx: click.Context, online: bool) -> None:
    """Validate the config and list its topics (without any request, unless --online)."""
    settings = _settings(ctx)
    click.echo(f"config {settings.config_path}: ok; data in {settings.data_dir}")
    hits: dict[tuple[str, str], int] = {}
    if online:
        from littrack.probe import count_hits

        hits = {(h.topic, h.source): h.count for h in count_hits(settings)}
    for t in settings.topics:
        sources = [s for s in SOURCES if t.has(s)]
        if online:
            counts = "  ".join(f"{s} {hits[(t.name, s)]:>7,} hits" for s in sources)
            click.echo(f"  {t.name:<30} {counts}")
        else:
            click.echo(f"  {t.name:<30} {', '.join(sources)}")
    for s in settings.schedules:
        click.echo(f"  schedule {s.source}{' ' + s.topic if s.topic else ''}: "
                   f"'{s.cron}' ({s.timezone})")
    for n in settings.notify:
        when = n.when if n.when == "after-run" else (
            f"{n.when} at {n.at}{' on ' + n.day if n.when == 'weekly' else ''} ({n.timezone})")
        click.echo(f"  notify {n.name}: {', '.join(n.channels)}; {when}; "
                   f"topics {', '.join(n.topics)}")


@cli.command()
@click.option("--source", "-s", type=click.Choice(SOURCES),
              help="Only this source. Default: both.")
@wait_for_data_dir
@click.pass_context
@handle_errors
def rebuild(ctx: click.Context, source: str | None, wait: float) -> None:
    """Re-derive the tidy tables from the stored raw records, offline.

    Use after upgrading littrack's parser: no request is made, history is kept.
    """
    import importlib

    from littrack.lock import DataDirLock
    from littrack.store import Store
    from littrack.vocab import utc_now

    settings = _settings(ctx)
    # Each source's normalizer is littrack.normalize.<source>, with normalize_raw.
    parsers = {s: importlib.import_module(f"littrack.normalize.{s}").normalize_raw
               for s in SOURCES}
    now = utc_now()
    # On PostgreSQL the rebuild is one transaction; runs of other workers wait for its rows.
    lock = nullcontext() if settings.shared_store else DataDirLock(settings.data_dir, wait)
    with lock, Store(settings.store_location) as store:
        for src in [source] if source else SOURCES:
            parse = parsers[src]
            n = store.rebuild((parse(raw) for _, raw in store.iter_raw(src)), now)
            click.echo(f"{src}: rebuilt {n} records")


@cli.command()
@click.option("--once-now", is_flag=True,
              help="Run every schedule once at start, then keep the schedule.")
@click.option("--wait", type=float, default=None, metavar="SECONDS",
              help="How long a job waits for another littrack (e.g. a cron run) before it "
                   "skips to its next slot (SQLite; default 300); with PostgreSQL, how long "
                   "it waits for a topic another worker is fetching (default 0: skip it).")
@click.option("--stop-timeout", type=float, default=60.0, show_default=True, metavar="SECONDS",
              help="On SIGTERM/SIGINT, how long the current topic may take to finish or roll "
                   "back before littrack exits anyway (its uncommitted work is discarded).")
@click.pass_context
@handle_errors
def serve(ctx: click.Context, once_now: bool, wait: float, stop_timeout: float) -> None:
    """Run the config's schedules in the foreground (for systemd or a terminal).

    One job per [schedule.<source>] (or per topic's own schedule). A schedule that missed a
    slot while littrack was down runs once at start. SIGTERM or SIGINT stops cleanly with
    exit code 0; the next start resumes from the last committed state.
    """
    import os

    from littrack import scheduler
    from littrack.lock import check_writable

    settings = _settings(ctx)
    check_writable(settings.data_dir)
    with _StopOnSignal() as stop:
        try:
            clean = scheduler.serve(settings, stop=stop, once_now=once_now,
                                    lock_wait=_wait(settings, wait, 300.0),
                                    stop_timeout=stop_timeout)
        except KeyboardInterrupt:  # a second signal: do not wait for the running topic
            clean = False
    if not clean:
        # The worker thread is still inside a topic; its transaction was never committed,
        # so SQLite discards it and the kernel drops the lock with the process.
        log.warning("exiting without waiting for the running topic; it is rolled back and "
                    "the next start resumes from the last committed state")
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_OK)
    log.info("stopped; the next start resumes from the last committed state")
    sys.exit(EXIT_OK)


@cli.command()
@click.option("--name", "-n", "names", multiple=True, metavar="NAME",
              help="Only this [[notify]] entry (repeatable). Default: every entry.")
@click.option("--dry-run", is_flag=True,
              help="Print what would be sent (the digest text per channel); send and record "
                   "nothing.")
@wait_for_data_dir
@click.pass_context
@handle_errors
def notify(ctx: click.Context, names: tuple[str, ...], dry_run: bool, wait: float) -> None:
    """Send what is pending now on every [[notify]] channel (e-mail, webhook, Atom feed).

    Each item goes out once per channel: unconfirmed earlier deliveries are resent with
    the same Message-ID / idempotency key, then what is new since each channel's last
    delivery is sent, whatever the entry's `when`. Exit code 1 if a channel failed (it is
    retried at the next delivery; the others were delivered).
    """
    from littrack.notify import deliver

    settings = _settings(ctx)
    if not settings.notify:
        raise ConfigError(f"{settings.config_path}: no [[notify]] entry configured")
    for name in names:
        settings.notify_entry(name)  # unknown entry → exit 2
    _require_store(settings)
    results = deliver(settings, names=names or None, dry_run=dry_run, lock_timeout=wait)
    for n in results:
        if dry_run:
            click.echo(n.preview)
        elif n.error:
            click.echo(f"FAILED {n.entry} {n.channel}: {n.error}")
        else:
            what = (n.summary if n.n_items else "nothing new") + (
                f"; {n.resent} earlier delivery(ies) resent" if n.resent else "")
            click.echo(f"ok     {n.entry} {n.channel}: {what}")
    sys.exit(EXIT_TOPIC_FAILED if any(n.error for n in results) else EXIT_OK)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@handle_errors
def status(ctx: click.Context, as_json: bool) -> None:
    """Show each topic's last run, watermark and next scheduled time, and table sizes.

    Reads without the data-directory lock, so it answers while a run is in progress.
    """
    import json

    from littrack.status import format_status, status

    settings = _settings(ctx)
    _sqlite_file(settings)
    report = status(settings)
    click.echo(json.dumps(report, indent=2) if as_json else format_status(report))


def _duration(value: str) -> timedelta:
    """``7d``, ``2w``, ``12h`` → a timedelta; anything else is a usage error."""
    import re

    m = re.fullmatch(r"\s*(\d+)\s*([hdw])\s*", value or "")
    if not m:
        raise click.BadParameter(f"{value!r} is not a duration like 12h, 7d or 2w")
    n, unit = int(m.group(1)), m.group(2)
    return timedelta(hours=n) if unit == "h" else timedelta(days=n * (7 if unit == "w" else 1))


@cli.command()
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), metavar="DATE",
              help="Report on the runs started on or after this day (YYYY-MM-DD, UTC).")
@click.option("--last", "last", metavar="DURATION",
              help="Report on the runs of the last DURATION: 12h, 7d, 2w.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Folder to write; replaced if it holds an earlier report. "
                   "Default: <data_dir>/reports-since/START (./littrack-reports-since/START "
                   "when the data directory is read-only).")
@click.pass_context
@handle_errors
def report(ctx: click.Context, since: datetime | None, last: str | None,
           out: Path | None) -> None:
    """Build the report of a window of runs from the store alone, without network.

    Without --since or --last: every run since the previous `littrack report` written to
    the default folder (or of the last 7 days when there is none). The same files a run
    writes (new_articles.csv, new_trials.csv, updated_articles.csv, trial_changes.csv,
    article_changes.csv, links.csv, preprint_links.csv, unreported_trials.csv,
    status_not_updated.csv, summary.md, summary.html and charts/). Reads one consistent
    snapshot without the data-directory lock, so it works while a run is in progress.
    """
    from littrack.folders import ensure_replaceable
    from littrack.reports import previous_report, write_report
    from littrack.store import Store

    if since is not None and last is not None:
        raise click.UsageError("give --since or --last, not both")
    settings = _settings(ctx)
    parent = _default_out(settings, Path("reports-since"))
    now = datetime.now(UTC).replace(microsecond=0)
    prev = previous_report(parent) if since is None and last is None else None
    covered: set[str] = set(prev["run_ids"]) if prev else set()
    if since is not None:
        start = query_from = since.date().isoformat()
    else:
        stamp = "%Y-%m-%dT%H:%M:%SZ"
        begin = now - (_duration(last) if last is not None else timedelta(days=7))
        start = query_from = begin.strftime(stamp)
        if prev:  # runs after those the previous report covered (one may have been running)
            start, query_from = str(prev["until"]), str(prev["since"])
    _require_store(settings)
    with Store.for_reading(settings.store_location) as store, store.snapshot():
        run_ids = [r for r in store.run_ids_since(query_from) if r not in covered]
        if not run_ids:
            click.echo(f"nothing in range: no run since {start}")
            return
        out = out or parent / start.replace(":", "")
        ensure_replaceable(out, "summary.md")
        path = write_report(store, out, run_ids, f"littrack report since {start}",
                            meta={"since": start, "until": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                  "run_ids": run_ids})
    click.echo(f"report: {path} ({len(run_ids)} run(s) since {start})")


@cli.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv",
              show_default=True, help="File format; parquet needs the extra "
                                      "`pip install 'littrack[parquet]'`.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Folder to write; replaced if it holds an earlier export. "
                   "Default: <data_dir>/export (./littrack-export when the data "
                   "directory is read-only).")
@click.pass_context
@handle_errors
def export_tables(ctx: click.Context, fmt: str, out: Path | None) -> None:
    """Write every tidy table to its own file, with the data dictionary (schema.md).

    One consistent snapshot of the store, offline. In Python, `littrack.load("trials",
    data_dir=...)` gives one table as a pandas DataFrame without exporting.
    """
    from littrack.export import export, require_pyarrow
    from littrack.store import Store

    settings = _settings(ctx)
    if fmt == "parquet":
        require_pyarrow()
    _require_store(settings)
    out = out or _default_out(settings, Path("export"))
    with Store.for_reading(settings.store_location) as store:
        files = export(store, out, fmt)
    click.echo(f"exported {len(files) - 1} tables to {out} (data dictionary: "
               f"{out / 'schema.md'})")


@cli.command("copy-store")
@click.option("--to", "to", metavar="URL", envvar="LITTRACK_COPY_TO",
              help="The empty PostgreSQL database to fill: postgresql://user@host:port/dbname "
                   "(or $LITTRACK_COPY_TO, which keeps a password off the command line).")
@wait_for_data_dir
@click.pass_context
@handle_errors
def copy_store_command(ctx: click.Context, to: str | None, wait: float) -> None:
    """Copy the data directory's SQLite store into an empty PostgreSQL database.

    Every table is copied, raw records included, in one transaction; row counts are checked
    table by table; a target that holds any row is refused. Then set database_url (or
    LITTRACK_DATABASE_URL) to the new database.
    """
    from littrack.database import POSTGRESQL, parse
    from littrack.lock import DataDirLock
    from littrack.store import Store, copy_store

    settings = _settings(ctx)
    if not to:
        raise ConfigError("copy-store: give the target with --to postgresql://… "
                          "(or LITTRACK_COPY_TO)")
    target = parse(to, key="--to")
    if target.dialect != POSTGRESQL:
        raise ConfigError(f"copy-store: --to must be a postgresql:// URL, not {target}")
    if not settings.db_path.exists():
        raise ConfigError(f"{settings.db_path}: no littrack database here to copy")
    with DataDirLock(settings.data_dir, wait), Store(settings.db_path) as source, \
            Store(target) as dest:
        counts = copy_store(source, dest)
    for table, n in counts.items():
        click.echo(f"{table:<30} {n:>9}")
    click.echo(f"copied {sum(counts.values())} rows in {len(counts)} tables to {target}; "
               "row counts match")


def main() -> None:
    """Console-script entry point: the process is littrack's own, so its allocator may be
    set for littrack's large buffers (``memory.hand_back_large_blocks``)."""
    hand_back_large_blocks()
    cli(prog_name="littrack")



