"""Data directories as users really have them (issue 11, point 2): read-only for the reader,
a file where a folder should be, a relative path in a config file somewhere else.

Run as root (the usual container), permission bits do not stop anyone, so the data folder
is mounted read-only in a private mount namespace; as any other user, file modes do it.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from littrack.config import load_settings
from littrack.normalize.ctgov import normalize_study
from littrack.store import Store
from tests.builders.ctgov import study

MINIMAL = """
[[topics]]
name = "t1"
[topics.pubmed]
query = "MDMA[tiab]"
"""


def as_reader(data: Path, argv: list[str]) -> list[str]:
    """``argv`` run by someone who may only read ``data``: as root, inside a private mount
    namespace where ``data`` is a read-only bind mount (root ignores file modes); as anyone
    else, the file modes set by ``readonly_tree`` already do it."""
    if os.geteuid() != 0:
        return argv
    if shutil.which("unshare") is None:
        pytest.skip("running as root without unshare: cannot make a folder read-only")
    script = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0" && exec "$@"'
    return ["unshare", "--mount", "sh", "-c", script, str(data), *argv]


def littrack(args: list[str], env: dict[str, str], cwd: Path, *,
             reader_of: Path | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "littrack", *args]
    if reader_of is not None:
        argv = as_reader(reader_of, argv)
    full_env = {"PATH": os.environ.get("PATH", ""), "HOME": str(cwd),
                "MPLCONFIGDIR": str(cwd / ".mpl"), **env}
    proc = subprocess.run(argv, env=full_env, cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    if reader_of is not None and "mount:" in proc.stderr:
        pytest.skip(f"cannot make a read-only mount here: {proc.stderr.strip()}")
    return proc


@pytest.fixture
def readonly_tree() -> Iterator[Path]:
    """A world-readable folder with a config, a store in ``data/`` the reader may only
    read, and a ``work/`` folder the reader may write."""
    base = Path(tempfile.mkdtemp(prefix="littrack-ro-"))
    try:
        base.chmod(0o755)
        (base / "littrack.toml").write_text(MINIMAL, encoding="utf-8")
        data = base / "data"
        with Store(data / "littrack.sqlite") as store:
            store.start_run("20260101T000000Z-aaaaaa", "t1", "ctgov", "2026-01-01T00:00:00Z",
                            (None, "2026-01-01"))
            with store.transaction():
                rec = normalize_study(study("NCT00000111"))
                store.save_records([rec], "2026-01-01T00:00:00Z", "20260101T000000Z-aaaaaa")
                store.match("t1", "ctgov", [rec.record_id], "20260101T000000Z-aaaaaa")
            store.finish_run("20260101T000000Z-aaaaaa", "t1", "ctgov", "2026-01-01T00:00:01Z",
                             "ok", n_found=1)
        for path in data.rglob("*"):
            path.chmod(0o444 if path.is_file() else 0o555)
        data.chmod(0o555)
        work = base / "work"
        work.mkdir()
        work.chmod(0o777)
        yield base
    finally:
        for path in [base, *base.rglob("*")]:
            if path.is_dir():
                path.chmod(stat.S_IRWXU)
        shutil.rmtree(base, ignore_errors=True)


def _env(base: Path) -> dict[str, str]:
    return {"LITTRACK_CONFIG": str(base / "littrack.toml"),
            "LITTRACK_DATA_DIR": str(base / "data"),
            "LITTRACK_EUTILS_URL": "http://127.0.0.1:9/entrez/eutils",
            "LITTRACK_CTGOV_URL": "http://127.0.0.1:9/api/v2"}


def test_readers_work_on_a_store_they_may_only_read(readonly_tree: Path) -> None:
    env, work, data = _env(readonly_tree), readonly_tree / "work", readonly_tree / "data"
    status = littrack(["status"], env, work, reader_of=data)
    assert status.returncode == 0, status.stderr
    assert "t1" in status.stdout and "ok" in status.stdout
    report = littrack(["report", "--since", "2025-12-01"], env, work, reader_of=data)
    assert report.returncode == 0, report.stderr
    assert (work / "littrack-reports-since" / "2025-12-01" / "new_trials.csv").is_file()
    export = littrack(["export", "--out", str(work / "x")], env, work, reader_of=data)
    assert export.returncode == 0, export.stderr
    assert (work / "x" / "trials.csv").is_file()
    code = ("import littrack; "
            f"print(len(littrack.load('trials', data_dir={str(readonly_tree / 'data')!r})))")
    load = subprocess.run(as_reader(readonly_tree / "data", [sys.executable, "-c", code]),
                          capture_output=True, text=True, timeout=120, cwd=work,
                          env={"PATH": os.environ.get("PATH", ""), "HOME": str(work)})
    assert load.returncode == 0, load.stderr
    assert load.stdout.strip() == "1"


@pytest.mark.parametrize("command", [["run"], ["rebuild"], ["serve"]])
def test_writers_on_a_read_only_data_dir_exit_2_with_one_line(readonly_tree: Path,
                                                              command: list[str]) -> None:
    proc = littrack(command, _env(readonly_tree), readonly_tree / "work",
                    reader_of=readonly_tree / "data")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("littrack:")]
    assert len(lines) == 1 and str(readonly_tree / "data") in lines[0], proc.stderr


@pytest.mark.parametrize("command", [["run"], ["rebuild"], ["serve"], ["status"],
                                     ["report"], ["export"]])
def test_a_data_dir_that_is_a_file_exits_2_naming_it(tmp_path: Path,
                                                      command: list[str]) -> None:
    """Readers too: status said "not created yet" (exit 0), report and export "no
    database here"."""
    (tmp_path / "littrack.toml").write_text(MINIMAL, encoding="utf-8")
    (tmp_path / "data").write_text("not a folder", encoding="utf-8")
    env = {"LITTRACK_CONFIG": str(tmp_path / "littrack.toml"),
           "LITTRACK_DATA_DIR": str(tmp_path / "data")}
    proc = littrack(command, env, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"littrack: {tmp_path / 'data'}: data directory is a file" in proc.stderr


def test_relative_data_dir_in_a_config_file_is_relative_to_that_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "project" / "config"
    folder.mkdir(parents=True)
    path = folder / "littrack.toml"
    path.write_text('[littrack]\ndata_dir = "../store"\nlog_file = "logs/x.log"\n' + MINIMAL,
                    encoding="utf-8")
    settings = load_settings(path, env={})
    # shown as the folder it is, not as config/../store
    assert settings.data_dir == (tmp_path / "project" / "store").resolve()
    assert settings.log_file == (folder / "logs" / "x.log").resolve()
    # the environment's path is the shell's: relative to the current directory
    assert load_settings(path, env={"LITTRACK_DATA_DIR": "d"}).data_dir == Path("d")
    # a config given by a relative path (as the Quickstart's ./config/littrack.toml)
    monkeypatch.chdir(tmp_path / "project")
    shown = load_settings(Path("config/littrack.toml"), env={}).data_dir
    assert str(shown) == str((tmp_path / "project" / "store").resolve())


@pytest.mark.parametrize("command", [["run"], ["status"], ["report"]])
def test_a_file_above_the_data_dir_is_named(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "littrack.toml").write_text(MINIMAL, encoding="utf-8")
    (tmp_path / "file").write_text("not a folder", encoding="utf-8")
    env = {"LITTRACK_CONFIG": str(tmp_path / "littrack.toml"),
           "LITTRACK_DATA_DIR": str(tmp_path / "file" / "data")}
    proc = littrack(command, env, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert (f"littrack: {tmp_path / 'file' / 'data'}: data directory cannot be used: "
            f"{tmp_path / 'file'} is a file") in proc.stderr


def test_load_names_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    from littrack import load
    from littrack.errors import DataDirError

    (tmp_path / "data").write_text("not a folder", encoding="utf-8")
    with pytest.raises(DataDirError, match="data directory is a file"):
        load("trials", data_dir=tmp_path / "data")


@pytest.mark.parametrize("command", [["export", "--out", "x"], ["report", "--since", "2025-01-01"],
                                     ["status"]])
def test_readers_find_a_sqlite_store_named_by_its_url(tmp_path: Path,
                                                      command: list[str]) -> None:
    """``database_url = sqlite:///…`` elsewhere than the data directory: the readers looked
    for ``<data_dir>/littrack.sqlite`` and said "no littrack database here"."""
    (tmp_path / "littrack.toml").write_text(MINIMAL, encoding="utf-8")
    Store(tmp_path / "elsewhere" / "store.sqlite").close()
    env = {"LITTRACK_CONFIG": str(tmp_path / "littrack.toml"),
           "LITTRACK_DATA_DIR": str(tmp_path / "data"),
           "LITTRACK_DATABASE_URL": f"sqlite:///{tmp_path / 'elsewhere' / 'store.sqlite'}"}
    proc = littrack(command, env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "no littrack database" not in proc.stderr + proc.stdout
    assert "not created yet" not in proc.stdout


@pytest.mark.parametrize("command", [["run"], ["rebuild"], ["status"], ["export"]])
def test_a_sqlite_url_under_a_file_exits_2_naming_it(tmp_path: Path,
                                                     command: list[str]) -> None:
    """``run`` said "littrack: …: File exists" with exit 1."""
    (tmp_path / "littrack.toml").write_text(MINIMAL, encoding="utf-8")
    (tmp_path / "file").write_text("not a folder", encoding="utf-8")
    env = {"LITTRACK_CONFIG": str(tmp_path / "littrack.toml"),
           "LITTRACK_DATA_DIR": str(tmp_path / "data"),
           "LITTRACK_EUTILS_URL": "http://127.0.0.1:9/e", "LITTRACK_CTGOV_URL": "http://127.0.0.1:9/c",
           "LITTRACK_DATABASE_URL": f"sqlite:///{tmp_path / 'file' / 'store.sqlite'}"}
    proc = littrack(command, env, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"littrack: {tmp_path / 'file'}: data directory is a file" in proc.stderr
