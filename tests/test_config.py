"""Config: every mistake is caught before any request and names file, topic and key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from littrack.config import DEFAULT_EUTILS_URL, find_config, load_settings
from littrack.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "config" / "littrack.toml"

MINIMAL = """
[[topics]]
name = "t1"
[topics.pubmed]
query = "MDMA[tiab]"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "littrack.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_shipped_config_has_the_three_mission_topics() -> None:
    s = load_settings(SHIPPED, env={})
    assert [t.name for t in s.topics] == [
        "mdma-ptsd", "mdma-end-of-life", "mdma-autism-social-anxiety"]
    for t in s.topics:
        assert t.pubmed_query and "N-Methyl-3,4-methylenedioxyamphetamine" in t.pubmed_query
        assert "midomafetamine" in t.pubmed_query
        assert t.ctgov is not None and "MDMA" in (t.ctgov.intr or "")
    assert s.ncbi.base_url == DEFAULT_EUTILS_URL
    assert {sc.source for sc in s.schedules} == {"pubmed", "ctgov"}


def test_env_overrides(tmp_path: Path) -> None:
    env = {"LITTRACK_DATA_DIR": str(tmp_path / "d"), "LITTRACK_EUTILS_URL": "http://127.0.0.1:9/e",
           "LITTRACK_CTGOV_URL": "http://127.0.0.1:9/api/v2/", "NCBI_API_KEY": "sekrit",
           "NCBI_EMAIL": "a@b.org"}
    s = load_settings(write(tmp_path, MINIMAL), env=env)
    assert s.data_dir == tmp_path / "d"
    assert s.ncbi.base_url == "http://127.0.0.1:9/e"
    assert s.ctgov.base_url == "http://127.0.0.1:9/api/v2"
    assert s.ncbi.api_key == "sekrit" and s.ncbi.email == "a@b.org"
    assert s.ncbi.rate == pytest.approx(9.5)
    assert "sekrit" not in repr(s)


def test_search_order(tmp_path: Path) -> None:
    assert find_config("x.toml", {"LITTRACK_CONFIG": "y.toml"}) == Path("x.toml")
    assert find_config(None, {"LITTRACK_CONFIG": "y.toml"}) == Path("y.toml")
    assert find_config(None, {}) == Path("config/littrack.toml")


@pytest.mark.parametrize("text, expected", [
    ("colour = 1\n" + MINIMAL, "colour: unknown key"),
    (MINIMAL.replace('query = "MDMA[tiab]"', 'query = "  "'),
     "topic 't1'.pubmed.query: must not be empty"),
    (MINIMAL.replace('query = "MDMA[tiab]"', "query = 3"),
     "topic 't1'.pubmed.query: must be a string, got an integer"),
    (MINIMAL + MINIMAL, "topic 't1'.name: duplicate topic name"),
    (MINIMAL.replace("[topics.pubmed]", "[topics.pubmed]\nqeury = 'x'"),
     "topic 't1'.pubmed.qeury: unknown key"),
    ("[ncbi]\nbatch_size = 'big'\n" + MINIMAL, "ncbi.batch_size: must be an integer"),
    ("[ncbi]\nparse_process = 'yes'\n" + MINIMAL,
     "ncbi.parse_process: must be one of 'auto', 'always', 'never', got 'yes'"),
    ('[topics]\nname = "t1"\n', "topics: must be an array, got a table; write [[topics]]"),
    ("[ncbi]\nrequests_per_second = 5\n" + MINIMAL, "exceeds NCBI's limit of 3/s"),
    ("[ctgov]\npage_size = 5000\n" + MINIMAL, "ctgov.page_size: must be a number from 1 to 1000"),
    (MINIMAL.replace('name = "t1"', 'name = "../etc"'), "name: must be lower-case"),
    (MINIMAL + '[topics.ctgov]\noverall_status = ["OPEN"]\n', "unknown status 'OPEN'"),
    (MINIMAL + "[topics.ctgov]\n", "needs a non-empty cond, intr or term"),
    ("[schedule.pubmed]\ncron = '61 * * * *'\n" + MINIMAL, "schedule.pubmed: invalid cron '61"),
    ("[schedule.pubmed]\ncron = '0 6 * * *'\ntimezone = 'Mars/Olympus'\n" + MINIMAL,
     "timezone 'Mars/Olympus'"),
    ("topics = []\n", "at least one [[topics]]"),
    ("[[topics]]\nname = 'x'\n",
     "needs a [topics.pubmed], [topics.ctgov] or [topics.europepmc] query"),
    ("[ncbi]\nemail = 'a b@c'\n" + MINIMAL, "ncbi.email: must be one word"),
    ("not toml = = =", "not valid TOML"),
])
def test_invalid_config_names_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_settings(path, env={})
    assert str(path) in str(exc.value)
    assert expected in str(exc.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml", env={})


def test_cli_exits_2_on_bad_config(tmp_path: Path) -> None:
    path = write(tmp_path, "colour = 1\n" + MINIMAL)
    proc = subprocess.run([sys.executable, "-m", "littrack", "--config", str(path), "run"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "colour: unknown key" in proc.stderr and str(path) in proc.stderr


def test_one_status_as_a_string_is_a_one_element_list(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + '[topics.ctgov]\ncond = "PTSD"\n'
                 'overall_status = "RECRUITING"\n')
    ctgov = load_settings(path, env={}).topics[0].ctgov
    assert ctgov is not None and ctgov.overall_status == ("RECRUITING",)
    assert ctgov.params()["filter.overallStatus"] == "RECRUITING"
    bad = write(tmp_path, MINIMAL + '[topics.ctgov]\ncond = "PTSD"\noverall_status = "OPEN"\n')
    with pytest.raises(ConfigError, match="unknown status 'OPEN'"):
        load_settings(bad, env={})


def test_the_database_url_comes_from_the_environment_or_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[littrack]\ndatabase_url = "postgresql://ann@db.example/lit"\n'
                           + MINIMAL)
    assert load_settings(path, env={}).store_location == "postgresql://ann@db.example/lit"
    assert load_settings(path, env={}).shared_store
    url = "postgresql://ann:hunter2@db.example:5433/lit?sslmode=require"
    settings = load_settings(path, env={"LITTRACK_DATABASE_URL": url})
    assert settings.store_location == url  # the environment wins; options pass through
    plain = load_settings(write(tmp_path, MINIMAL), env={})
    assert plain.store_location == str(plain.data_dir / "littrack.sqlite")
    assert not plain.shared_store


@pytest.mark.parametrize("url, expected", [
    ("postgresql://ann:hunter2@db.example/lit", "holds a password"),
    ("postgresql://ann@db.example/lit?password=hunter2", "holds a password"),
    ("mysql://ann@db.example/lit", "unknown database URL scheme 'mysql'"),
])
def test_a_password_in_the_config_file_or_an_unknown_database_is_refused(
        tmp_path: Path, url: str, expected: str) -> None:
    path = write(tmp_path, f'[littrack]\ndatabase_url = "{url}"\n' + MINIMAL)
    with pytest.raises(ConfigError) as exc:
        load_settings(path, env={})
    assert expected in str(exc.value) and "littrack.database_url" in str(exc.value)
    assert "hunter2" not in str(exc.value)
