"""Everyday commands (issue 11): `init`, `report` without --since, `status` after a kill,
report folders only when something happened, and their retention.

Real SQLite stores, the real CLI (click's runner in-process, or a subprocess), no network.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from littrack.cli import cli
from littrack.config import load_settings
from littrack.lock import DataDirLock
from littrack.normalize import Normalized
from littrack.normalize.ctgov import normalize_study
from littrack.reports import prune_reports, write_run_report
from littrack.store import Store
from tests.builders.ctgov import study

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = """
[[topics]]
name = "t1"
[topics.ctgov]
cond = "PTSD"
"""


def stamp(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def run_id(dt: datetime, suffix: str) -> str:
    return f"{dt.strftime('%Y%m%dT%H%M%SZ')}-{suffix}"


def record(store: Store, rid: str, when: str, records: Sequence[Normalized],
           status: str | None = "ok") -> None:
    store.start_run(rid, "t1", "ctgov", when, (None, when[:10]))
    if status is None:  # left 'running', as a killed process leaves it
        return
    with store.transaction():
        store.save_records(records, when, rid)
        n_new = store.match("t1", "ctgov", [r.record_id for r in records], rid)
        store.finish_run(rid, "t1", "ctgov", when, status, n_found=len(records), n_new=n_new)


def invoke(tmp_path: Path, *args: str) -> object:
    config = tmp_path / "littrack.toml"
    if not config.exists():
        config.write_text(MINIMAL, encoding="utf-8")
    env = {"LITTRACK_DATA_DIR": str(tmp_path / "data")}
    return CliRunner().invoke(cli, ["--config", str(config), *args], env=env)


# ---- point 12: littrack init ----------------------------------------------------------------
def test_init_writes_the_shipped_config_into_an_empty_folder(tmp_path: Path) -> None:
    target = tmp_path / "project"
    result = CliRunner().invoke(cli, ["init", str(target)])
    assert result.exit_code == 0, result.output
    written = target / "config" / "littrack.toml"
    assert written.read_text(encoding="utf-8") == (ROOT / "config" / "littrack.toml").read_text(
        encoding="utf-8")
    settings = load_settings(written, env={})
    assert settings.data_dir.resolve() == (target / "data").resolve()
    assert "# " in written.read_text(encoding="utf-8")  # commented for a new user
    again = CliRunner().invoke(cli, ["init", str(target)])
    assert again.exit_code == 2 and "already there" in again.output


# ---- point 13: report without --since, --last, an empty range ------------------------------
def test_report_follows_on_from_the_previous_report(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    old, recent = now - timedelta(days=20), now - timedelta(days=2)
    with Store(tmp_path / "data" / "littrack.sqlite") as store:
        record(store, run_id(old, "aaaaaa"), stamp(old),
               [normalize_study(study("NCT00000201", references=()))])
        record(store, run_id(recent, "bbbbbb"), stamp(recent),
               [normalize_study(study("NCT00000202", references=()))])
    first = invoke(tmp_path, "report")  # no report yet: the last 7 days
    assert first.exit_code == 0, first.output
    assert "(1 run(s) since" in first.output
    folder = Path(first.output.split("report: ")[1].split(" (")[0])
    assert json.loads((folder / "report.json").read_text())["run_ids"] == [
        run_id(recent, "bbbbbb")]
    second = invoke(tmp_path, "report")  # nothing since the previous report
    assert second.exit_code == 0, second.output
    assert "nothing in range" in second.output
    wide = invoke(tmp_path, "report", "--last", "30d")
    assert wide.exit_code == 0 and "(2 run(s) since" in wide.output, wide.output
    with Store(tmp_path / "data" / "littrack.sqlite") as store:
        later = now + timedelta(seconds=1)
        record(store, run_id(later, "cccccc"), stamp(later),
               [normalize_study(study("NCT00000203", references=()))])
    third = invoke(tmp_path, "report")
    assert third.exit_code == 0 and "(1 run(s) since" in third.output, third.output
    bad = invoke(tmp_path, "report", "--last", "soon")
    assert bad.exit_code == 2 and "duration" in bad.output


# ---- point 5: status after a kill ------------------------------------------------------------
def test_status_shows_a_run_whose_process_is_gone_as_interrupted(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with Store(tmp_path / "data" / "littrack.sqlite") as store:
        record(store, run_id(now, "dddddd"), stamp(now), [], status=None)
    with DataDirLock(tmp_path / "data"):  # a live run holds the lock: really running
        live = invoke(tmp_path, "status", "--json")
    assert json.loads(live.output)["topics"][0]["last_run"]["status"] == "running"
    gone = invoke(tmp_path, "status", "--json")  # lock free: nobody is running it
    row = json.loads(gone.output)["topics"][0]["last_run"]
    assert row["status"] == "interrupted" and "process ended" in row["error"]
    text = invoke(tmp_path, "status")
    assert "interrupted" in text.output and " running " not in text.output


# ---- point 14: report folders only when something happened; retention -----------------------
def test_run_reports_only_when_something_happened_and_keep_the_newest(tmp_path: Path) -> None:
    base = datetime(2026, 1, 1, 6, tzinfo=UTC)
    config = tmp_path / "littrack.toml"
    config.write_text("[reports]\nkeep = 2\n" + MINIMAL, encoding="utf-8")
    settings = load_settings(config, env={"LITTRACK_DATA_DIR": str(tmp_path / "data")})
    written = []
    with Store(settings.db_path) as store:
        for day in range(4):
            when = base + timedelta(days=day)
            rid = run_id(when, f"{day:06d}")
            record(store, rid, stamp(when),
                   [normalize_study(study(f"NCT0000030{day}", references=()))])
            written.append(write_run_report(store, settings, [rid], rid))
        quiet = run_id(base + timedelta(days=5), "eeeeee")
        record(store, quiet, stamp(base + timedelta(days=5)), [])
        assert write_run_report(store, settings, [quiet], quiet) is None
        failed = run_id(base + timedelta(days=6), "ffffff")
        record(store, failed, stamp(base + timedelta(days=6)), [], status="failed")
        assert write_run_report(store, settings, [failed], failed) is not None
    assert all(p is not None for p in written)
    names = sorted(p.name for p in settings.reports_dir.iterdir())
    newest = written[3]
    assert newest is not None and names == [newest.name, failed]
    (settings.reports_dir / "my-notes").mkdir()  # not a run folder: never pruned
    assert prune_reports(settings.reports_dir, 1) == [newest]
    assert (settings.reports_dir / "my-notes").is_dir()


def test_write_empty_keeps_a_folder_per_run(tmp_path: Path) -> None:
    config = tmp_path / "littrack.toml"
    config.write_text("[reports]\nwrite_empty = true\n" + MINIMAL, encoding="utf-8")
    settings = load_settings(config, env={"LITTRACK_DATA_DIR": str(tmp_path / "data")})
    when = datetime(2026, 1, 1, 6, tzinfo=UTC)
    with Store(settings.db_path) as store:
        record(store, run_id(when, "aaaaaa"), stamp(when), [])
        path = write_run_report(store, settings, [run_id(when, "aaaaaa")],
                                run_id(when, "aaaaaa"))
    assert path is not None and (path / "summary.md").is_file()


def test_status_columns_line_up_for_every_source(tmp_path: Path) -> None:
    """``europepmc`` is wider than the 6 characters the source column had: its rows
    were shifted against pubmed's and ctgov's (seen in a Quickstart run)."""
    from littrack.status import format_status, status
    from tests.corpus import write_test_config

    config = write_test_config(tmp_path, europepmc=True)
    settings = load_settings(config, env={"LITTRACK_DATA_DIR": str(tmp_path / "data")})
    lines = format_status(status(settings)).splitlines()[1:]
    rows = [line for line in lines if line.split()[1:2] in (["pubmed"], ["ctgov"],
                                                           ["europepmc"])]
    assert {line.split()[1] for line in rows} == {"pubmed", "ctgov", "europepmc"}
    # the column after the source starts at the same place on every row and the header
    assert len({line.index(" - ") + 1 for line in rows} | {lines[0].index("last run")}) == 1
