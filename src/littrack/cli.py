"""The ``littrack`` command: thin click commands over pipeline, store and reports.

Exit codes: 0 success (or stopped on request), 1 some topic failed (the others committed),
2 usage or config error, 3 another littrack holds the data directory.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from littrack import __version__
from littrack.config import Settings, load_settings
from littrack.errors import ConfigError, LittrackError, LockTimeout

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


def _require_store(settings: Settings) -> None:
    """Offline commands read an existing store; opening one would create an empty one."""
    if not settings.db_path.exists():
        raise ConfigError(f"{settings.db_path}: no littrack database here (run `littrack run` "
                          "first)")


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
        except LockTimeout as exc:
            click.echo(f"littrack: {exc}", err=True)
            sys.exit(EXIT_LOCKED)
        except LittrackError as exc:
            click.echo(f"littrack: {exc}", err=True)
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
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


@cli.command()
@click.option("--topic", "-t", "topics", multiple=True, metavar="NAME",
              help="Only this topic (repeatable). Default: every topic in the config.")
@click.option("--source", "-s", type=click.Choice(["pubmed", "ctgov"]),
              help="Only this source. Default: both.")
@click.option("--full", is_flag=True, help="Ignore watermarks: ask for everything again.")
@click.option("--wait", "wait", type=float, default=60.0, show_default=True, metavar="SECONDS",
              help="How long to wait for another running littrack to finish.")
@click.pass_context
@handle_errors
def run(ctx: click.Context, topics: tuple[str, ...], source: str | None, full: bool,
        wait: float) -> None:
    """Fetch what is new for each topic, store it, and write the run's report.

    Exit code 0 when every topic succeeded, 1 when some failed (the others are committed),
    2 for a config or usage error, 3 when another littrack holds the data directory.
    """
    settings = _settings(ctx)
    for name in topics:
        settings.topic(name)  # unknown topic → ConfigError before any request
    from littrack.pipeline import run as run_pipeline

    with _StopOnSignal() as stop:
        result = run_pipeline(settings, topics=topics or None,
                              sources=[source] if source else None, full=full, stop=stop,
                              lock_timeout=wait, progress=sys.stderr.isatty())
    for r in result.results:
        mark = "ok " if r.status == "ok" else "FAILED"
        line = (f"{mark} {r.source:<6} {r.topic:<30} found {r.n_found:>5}  new {r.n_new:>5}  "
                f"updated {r.n_updated:>4}  requests {r.n_requests:>4}")
        click.echo(line + (f"  ({r.error})" if r.error else ""))
    if result.report_dir:
        click.echo(f"report: {result.report_dir}")
    if result.stopped:
        click.echo("stopped on request; the next run resumes from the last committed state")
    sys.exit(result.exit_code)


@cli.command()
@click.pass_context
@handle_errors
def check(ctx: click.Context) -> None:
    """Validate the config and list its topics, without any request."""
    settings = _settings(ctx)
    click.echo(f"config {settings.config_path}: ok; data in {settings.data_dir}")
    for t in settings.topics:
        sources = ", ".join(s for s in ("pubmed", "ctgov") if t.has(s))
        click.echo(f"  {t.name:<30} {sources}")
    for s in settings.schedules:
        click.echo(f"  schedule {s.source}{' ' + s.topic if s.topic else ''}: "
                   f"'{s.cron}' ({s.timezone})")


@cli.command()
@click.option("--source", "-s", type=click.Choice(["pubmed", "ctgov"]),
              help="Only this source. Default: both.")
@click.option("--wait", type=float, default=60.0, show_default=True, metavar="SECONDS",
              help="How long to wait for another running littrack to finish.")
@click.pass_context
@handle_errors
def rebuild(ctx: click.Context, source: str | None, wait: float) -> None:
    """Re-derive the tidy tables from the stored raw records, offline.

    Use after upgrading littrack's parser: no request is made, history is kept.
    """
    from littrack.lock import DataDirLock
    from littrack.normalize import ctgov, pubmed
    from littrack.store import Store
    from littrack.vocab import utc_now

    settings = _settings(ctx)
    parsers = {"pubmed": pubmed.normalize_raw, "ctgov": ctgov.normalize_raw}
    now = utc_now()
    with DataDirLock(settings.data_dir, wait), Store(settings.db_path) as store:
        for src in [source] if source else ["pubmed", "ctgov"]:
            parse = parsers[src]
            n = store.rebuild((parse(raw) for _, raw in store.iter_raw(src)), now)
            click.echo(f"{src}: rebuilt {n} records")


@cli.command()
@click.option("--once-now", is_flag=True,
              help="Run every schedule once at start, then keep the schedule.")
@click.option("--wait", type=float, default=300.0, show_default=True, metavar="SECONDS",
              help="How long a job waits for another littrack (e.g. a cron run) before it "
                   "skips to its next slot.")
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

    settings = _settings(ctx)
    with _StopOnSignal() as stop:
        try:
            clean = scheduler.serve(settings, stop=stop, once_now=once_now, lock_wait=wait,
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
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@handle_errors
def status(ctx: click.Context, as_json: bool) -> None:
    """Show each topic's last run, watermark and next scheduled time, and table sizes.

    Reads without the data-directory lock, so it answers while a run is in progress.
    """
    import json

    from littrack.status import format_status, status

    report = status(_settings(ctx))
    click.echo(json.dumps(report, indent=2) if as_json else format_status(report))


@cli.command()
@click.option("--since", required=True, type=click.DateTime(formats=["%Y-%m-%d"]),
              metavar="DATE", help="Report on the runs started on or after this day "
                                   "(YYYY-MM-DD, UTC).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Folder to write; replaced if it holds an earlier report. "
                   "Default: <data_dir>/reports-since/DATE.")
@click.pass_context
@handle_errors
def report(ctx: click.Context, since: datetime, out: Path | None) -> None:
    """Build the report of every run since DATE from the store alone, without network.

    The same files a run writes (new_articles.csv, new_trials.csv, trial_changes.csv,
    article_changes.csv, links.csv, unreported_trials.csv, summary.md, summary.html and
    charts/), over a window of runs. Reads one consistent snapshot without the
    data-directory lock, so it works while a run is in progress.
    """
    from littrack.folders import ensure_replaceable
    from littrack.reports import write_report
    from littrack.store import Store

    settings = _settings(ctx)
    day = since.date().isoformat()
    out = out or settings.data_dir / "reports-since" / day
    ensure_replaceable(out, "summary.md")
    _require_store(settings)
    with Store(settings.db_path) as store, store.snapshot():
        run_ids = store.run_ids_since(day)
        path = write_report(store, out, run_ids, f"littrack report since {day}")
    click.echo(f"report: {path} ({len(run_ids)} run(s) since {day})")


@cli.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv",
              show_default=True, help="File format; parquet needs the extra "
                                      "`pip install 'littrack[parquet]'`.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Folder to write; replaced if it holds an earlier export. "
                   "Default: <data_dir>/export.")
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
    out = out or settings.data_dir / "export"
    with Store(settings.db_path) as store:
        files = export(store, out, fmt)
    click.echo(f"exported {len(files) - 1} tables to {out} (data dictionary: "
               f"{out / 'schema.md'})")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="littrack")



