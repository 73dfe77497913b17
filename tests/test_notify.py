"""Notifications against real servers on loopback: SMTP (STARTTLS, implicit TLS, AUTH), an
HTTP webhook receiver, Atom feeds read by feedparser. Exactly once per channel, also across
a crash between sending and recording; a failing channel holds back no other; no secrets
in logs, rows or files."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest

from littrack.config import load_settings
from littrack.errors import ConfigError
from littrack.notify import deliver, is_due
from littrack.pipeline import run
from littrack.scheduler import Service
from littrack.store import Store
from tests.builders.ctgov import study
from tests.builders.pubmed import article_xml
from tests.corpus import Corpus, ctgov_matches, fake_env, populate, write_test_config
from tests.dbutil import db_rows
from tests.fakes import CtgovFake, EutilsFake
from tests.fakes.smtp import Received, SmtpFake
from tests.fakes.webhook import WebhookReceiver

PASSWORD = "s3cret-smtp-pässword"
HOOK_SECRET = "hook-hmac-key-0123456789"
TOPICS = ("mdma-ptsd", "mdma-end-of-life")  # the entry leaves the third topic out
OVERDUE = "NCT09900001"


def notify_toml(smtp: SmtpFake | None, hook: WebhookReceiver | None, *,
                security: str = "starttls", max_entries: int = 500, when: str = "after-run",
                extra: str = "") -> str:
    out = f"""
[[notify]]
name = "ptsd-team"
topics = {json.dumps(list(TOPICS))}
when = "{when}"
{extra}
[notify.atom]
path = "feeds/ptsd.xml"
max_entries = {max_entries}
"""
    if smtp is not None:
        out += f"""
[notify.email]
smtp_host = "127.0.0.1"
smtp_port = {smtp.port}
security = "{security}"
from = "littrack@example.org"
to = ["team@example.org", "pi@example.org"]
ca_file = "{smtp.ca_file}"
timeout = 10
"""
        if smtp.username:
            out += 'username = "littrack"\npassword_env = "LITTRACK_SMTP_PASSWORD"\n'
    if hook is not None:
        out += f"""
[notify.webhook]
url = "{hook.url}"
secret_env = "LITTRACK_WEBHOOK_SECRET"
"""
    return out


def env_for(tmp_path: Path, eutils: EutilsFake, ctgov: CtgovFake,
            password: str = PASSWORD) -> dict[str, str]:
    return {**fake_env(tmp_path, eutils, ctgov), "LITTRACK_SMTP_PASSWORD": password,
            "LITTRACK_WEBHOOK_SECRET": HOOK_SECRET}


def add_overdue_trial(settings: Any, ctgov: CtgovFake) -> None:
    """A completed trial whose results are years overdue: an 'unreported' item."""
    ctgov.add_study(study(OVERDUE, title="Overdue MDMA trial", status="COMPLETED",
                          primary_completion=("2022-03", "ACTUAL"), references=[],
                          last_update="2024-01-10"),
                    matches=[ctgov_matches(settings, "mdma-ptsd")])


def expected_keys(corpus: Corpus) -> set[str]:
    keys = {f"new:{topic}:{source}:{rid}" for source in ("pubmed", "ctgov")
            for topic, rid in corpus.matches(source) if topic in TOPICS}
    keys |= {f"new:mdma-ptsd:ctgov:{OVERDUE}", f"unreported:{OVERDUE}"}
    return keys


def setup(tmp_path: Path, eutils: EutilsFake, ctgov: CtgovFake, smtp: SmtpFake | None,
          hook: WebhookReceiver | None, **kw: Any) -> tuple[Path, Any, Corpus]:
    config = write_test_config(tmp_path, extra=notify_toml(smtp, hook, **kw))
    settings = load_settings(config, env=env_for(tmp_path, eutils, ctgov))
    corpus = populate(settings, eutils, ctgov, articles=12, trials=6)
    add_overdue_trial(settings, ctgov)
    return config, settings, corpus


def cli(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "littrack", "-v", "--config", str(config),
                           *args], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120)


def items_in_email(msg: Received) -> set[str]:
    """The item keys an e-mail shows, read back from its text part's links and sections."""
    text = msg.part("plain")
    keys: set[str] = set()
    topic = ""
    for line in text.splitlines():
        if line.startswith("== "):
            topic = line.strip("= ")
        elif line.startswith("  PubMed https://pubmed.ncbi.nlm.nih.gov/") and topic in TOPICS:
            keys.add(f"new:{topic}:pubmed:{line.split('/')[3]}")
        elif line.startswith("  ClinicalTrials.gov https://clinicaltrials.gov/study/"):
            nct = line.rsplit("/", 1)[1]
            keys.add(f"new:{topic}:ctgov:{nct}" if topic in TOPICS else f"unreported:{nct}")
    return keys


def feed(path: Path) -> Any:
    parsed = feedparser.parse(path.read_bytes())
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    return parsed


def test_three_runs_each_channel_delivers_each_item_once(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> None:
    """The issue's done-when: run 1 delivers its items once per channel, run 2 (nothing
    new) sends nothing, a trial change in run 3 arrives as one change on each channel."""
    with SmtpFake(tmp_path) as smtp, WebhookReceiver() as hook:
        smtp.password = PASSWORD
        config, settings, corpus = setup(tmp_path, eutils_fake, ctgov_fake, smtp, hook)
        env = env_for(tmp_path, eutils_fake, ctgov_fake)
        want = expected_keys(corpus)

        first = cli(config, env, "run")
        assert first.returncode == 0, first.stderr
        (mail,) = smtp.messages()
        assert mail.tls and mail.auth_user == "littrack"
        assert sorted(mail.recipients) == ["pi@example.org", "team@example.org"]
        msg = mail.message
        assert msg.get_content_type() == "multipart/alternative"
        n_articles = sum(":pubmed:" in k for k in want)
        n_trials = sum(k.startswith("new:") for k in want) - n_articles
        assert msg["Subject"] == (f"littrack ptsd-team: {n_articles} new articles, "
                                  f"{n_trials} new trials, 1 unreported trial")
        assert items_in_email(mail) == want
        text = mail.part("plain")
        assert "Doe J, Roe R — " in text and "BACKGROUND: Background" in text
        assert "DOI https://doi.org/10.5555/synthetic." in text
        assert "== Unreported trials ==" in text and "days overdue" in text
        assert '<a href="https://pubmed.ncbi.nlm.nih.gov/' in mail.part("html")

        (post,) = hook.accepted.values()
        body = post.body
        assert post.headers["X-Littrack-Signature"] == "sha256=" + hmac.new(
            HOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert post.headers["Idempotency-Key"] == post.json["delivery_id"]
        assert post.json["text"] == text.replace("\r\n", "\n")
        assert {i["key"] for i in post.json["items"]} == want
        assert len(post.json["items"]) == len(want)

        atom = feed(tmp_path / "data" / "feeds" / "ptsd.xml")
        ids = [e.id for e in atom.entries]
        assert len(ids) == len(want) == len(set(ids))
        assert {i.rsplit("/", 1)[1] for i in ids} == want

        second = cli(config, env, "run")
        assert second.returncode == 0, second.stderr
        assert len(smtp.messages()) == 1 and len(hook.posts) == 1
        assert [e.id for e in feed(tmp_path / "data" / "feeds" / "ptsd.xml").entries] == ids

        nct = next(k.split(":")[3] for k in sorted(want)
                   if k.startswith("new:mdma-ptsd:ctgov:") and OVERDUE not in k)
        today = datetime.now(UTC).date().isoformat()
        ctgov_fake.update_study(study(nct, title="Changed trial", status="TERMINATED",
                                      why_stopped="Sponsor decision", last_update=today,
                                      references=[]))
        ctgov_fake.bump()
        third = cli(config, env, "run")
        assert third.returncode == 0, third.stderr
        assert len(smtp.messages()) == 2
        change_mail = smtp.messages()[1]
        assert change_mail.message["Subject"] == "littrack ptsd-team: 1 trial change"
        change_text = change_mail.part("plain")
        assert "Trial changes (1)" in change_text and "why stopped: (none) → Sponsor " \
            "decision" in change_text
        assert "status: " in change_text and "→ TERMINATED" in change_text
        assert len(hook.accepted) == 2
        (item,) = list(hook.accepted.values())[1].json["items"]
        assert item["kind"] == "trial_changes" and item["id"] == nct
        assert {c["field"] for c in item["changes"]} >= {"overall_status", "why_stopped"}
        entries = feed(tmp_path / "data" / "feeds" / "ptsd.xml").entries
        assert len(entries) == len(want) + 1
        assert entries[0].id.rsplit("/", 1)[1] == item["key"]  # newest first
        assert entries[0].title == "Trial changed: Changed trial"

        # every channel, over three runs: no item twice
        assert len(hook.accepted_items()) == len({i["key"] for i in hook.accepted_items()})
        assert change_text.count("  ClinicalTrials.gov https://") == 1
        # secrets: not in any output, log line, stored row or file
        db = (tmp_path / "data" / "littrack.sqlite").read_bytes()
        for proc in (first, second, third):
            for secret in (PASSWORD, HOOK_SECRET):
                assert secret not in proc.stdout + proc.stderr
        for secret in (PASSWORD, HOOK_SECRET):
            assert secret.encode() not in db
            assert secret.encode() not in (tmp_path / "data" / "feeds" / "ptsd.xml").read_bytes()
        assert "notify ptsd-team email: sent" in first.stderr


def test_a_crash_between_sending_and_recording_never_duplicates(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> None:
    """The process dies right after each channel's send: the next delivery resends the same
    message (same Message-ID / idempotency key, same bytes) and nothing else twice."""
    with SmtpFake(tmp_path) as smtp, WebhookReceiver() as hook:
        smtp.password = PASSWORD
        config, settings, corpus = setup(tmp_path, eutils_fake, ctgov_fake, smtp, hook)
        env = env_for(tmp_path, eutils_fake, ctgov_fake)
        assert run(settings, write_report=False).exit_code == 0
        want = expected_keys(corpus)

        for channel in ("email", "webhook", "atom"):
            crashed = cli(config, {**env, "LITTRACK_TEST_CRASH_AFTER_SEND": channel}, "notify")
            assert crashed.returncode == 70, crashed.stderr
        # each crashed run first resent the delivery the run before it left unconfirmed
        db = tmp_path / "data" / "littrack.sqlite"
        assert db_rows(db, "SELECT channel, status FROM deliveries ORDER BY channel") == [
            ("atom", "pending"), ("email", "sent"), ("webhook", "sent")]
        again = cli(config, env, "notify")
        assert again.returncode == 0, again.stderr
        assert "1 earlier delivery(ies) resent" in again.stdout

        first, second = smtp.messages()
        assert first.data == second.data  # the very same message, Message-ID included
        assert items_in_email(first) == want
        assert len(hook.posts) == 2 and len(hook.accepted) == 1
        assert hook.posts[0].headers["Idempotency-Key"] == hook.posts[1].headers[
            "Idempotency-Key"]
        assert {i["key"] for i in hook.accepted_items()} == want
        ids = [e.id for e in feed(tmp_path / "data" / "feeds" / "ptsd.xml").entries]
        assert len(ids) == len(set(ids)) == len(want)
        assert db_rows(db, "SELECT channel, status, attempts FROM deliveries ORDER BY "
                           "channel") == [("atom", "sent", 2), ("email", "sent", 2),
                                          ("webhook", "sent", 2)]
        # a later delivery has nothing left to send anywhere
        assert "nothing new" in cli(config, env, "notify").stdout
        assert len(smtp.messages()) == 2 and len(hook.posts) == 2


def test_a_failing_channel_is_retried_later_and_holds_back_no_other(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> None:
    with SmtpFake(tmp_path) as smtp, WebhookReceiver() as hook:
        smtp.password = "the-real-one"  # the environment has another: AUTH fails
        config, settings, corpus = setup(tmp_path, eutils_fake, ctgov_fake, smtp, hook)
        env = env_for(tmp_path, eutils_fake, ctgov_fake)
        assert run(settings, write_report=False).exit_code == 0
        want = expected_keys(corpus)

        failed = cli(config, env, "notify")
        assert failed.returncode == 1
        assert "FAILED ptsd-team email" in failed.stdout and "refused" in failed.stdout
        assert "$LITTRACK_SMTP_PASSWORD" in failed.stdout
        assert smtp.failed_logins == 1 and smtp.messages() == []
        assert {i["key"] for i in hook.accepted_items()} == want
        assert len(feed(tmp_path / "data" / "feeds" / "ptsd.xml").entries) == len(want)
        status = cli(config, env, "status")
        assert "notify ptsd-team email   FAILING (1 unconfirmed)" in status.stdout
        assert "login as 'littrack' refused" in status.stdout
        assert "notify ptsd-team webhook ok; 1 sent" in status.stdout
        as_json = json.loads(cli(config, env, "status", "--json").stdout)
        email_row = next(n for n in as_json["notify"] if n["channel"] == "email")
        assert email_row["failing"] and email_row["pending"] == 1
        for proc in (failed, status):
            assert PASSWORD not in proc.stdout + proc.stderr
            assert "the-real-one" not in proc.stdout + proc.stderr

        # the webhook receiver fails too now: 503 twice (retried), then a 400 (not retried)
        hook.fail_next(503, times=2)
        hook.fail_next(400)
        with Store(settings.db_path) as store:  # something new for the webhook to carry
            store.db.execute("UPDATE topic_matches SET first_seen_run = '99999999T000000Z-x' "
                             "WHERE record_id = ?", (OVERDUE,))
            store.db.execute("INSERT INTO runs (run_id, topic, source, started_at, status) "
                             "VALUES ('99999999T000000Z-x', 'mdma-ptsd', 'ctgov', "
                             "'2026-11-30T00:00:00Z', 'ok')")
            store.db.execute("DELETE FROM delivery_items WHERE channel = 'webhook' AND "
                             "item_key = ?",
                             (f"new:mdma-ptsd:ctgov:{OVERDUE}",))
        fixed = cli(config, {**env, "LITTRACK_SMTP_PASSWORD": "the-real-one"}, "notify")
        assert fixed.returncode == 1  # the webhook's 400
        (mail,) = smtp.messages()
        assert items_in_email(mail) == want  # the first digest, late but once
        assert "FAILED ptsd-team webhook" in fixed.stdout and "HTTP 400" in fixed.stdout
        assert len(hook.posts) == 1 + 3 and len(hook.accepted) == 1
        healed = cli(config, env, "notify")
        assert healed.returncode == 0, healed.stdout
        assert len(hook.accepted) == 2
        assert [i["key"] for i in list(hook.accepted.values())[1].json["items"]] == [
            f"new:mdma-ptsd:ctgov:{OVERDUE}"]


def test_webhook_answer_lost_after_delivery_is_resent_with_the_same_key(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> None:
    """The receiver takes the POST, then drops the connection: the retry policy resends
    it under the same Idempotency-Key, and the receiver keeps one copy."""
    with WebhookReceiver() as hook:
        config, settings, corpus = setup(tmp_path, eutils_fake, ctgov_fake, None, hook)
        assert run(settings, write_report=False).exit_code == 0
        hook.drop_next()
        (result, _) = deliver(settings)  # webhook, atom
        assert result.ok and result.channel == "webhook"
        assert len(hook.posts) == 2 and len(hook.accepted) == 1
        assert {i["key"] for i in hook.accepted_items()} == expected_keys(corpus)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
@pytest.mark.parametrize("security", ["ssl", "none"])
def test_smtp_over_implicit_tls_and_in_clear(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake, security: str) -> None:
    with SmtpFake(tmp_path, security=security,
                  username="littrack" if security == "ssl" else None) as smtp:
        smtp.password = PASSWORD
        config, settings, corpus = setup(tmp_path, eutils_fake, ctgov_fake, smtp, None,
                                         security=security)
        assert run(settings, write_report=False).exit_code == 0
        assert all(r.ok for r in deliver(settings))
        (mail,) = smtp.messages()
        assert not mail.tls  # STARTTLS was not used (aiosmtpd cannot see implicit TLS)
        assert mail.auth_user == ("littrack" if security == "ssl" else None)
        assert items_in_email(mail) == expected_keys(corpus)


def test_dry_run_prints_the_digest_and_records_nothing(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> None:
    with SmtpFake(tmp_path) as smtp, WebhookReceiver() as hook:
        smtp.password = PASSWORD
        config, settings, corpus = setup(tmp_path, eutils_fake, ctgov_fake, smtp, hook,
                                         max_entries=3)
        env = env_for(tmp_path, eutils_fake, ctgov_fake)
        assert run(settings, write_report=False).exit_code == 0
        dry = cli(config, env, "notify", "--dry-run", "--name", "ptsd-team")
        assert dry.returncode == 0, dry.stderr
        assert dry.stdout.count("littrack digest 'ptsd-team'") == 3  # email, webhook, atom
        assert "--- ptsd-team email → team@example.org, pi@example.org" in dry.stdout
        assert smtp.messages() == [] and hook.posts == []
        assert db_rows(settings.db_path, "SELECT COUNT(*) FROM deliveries") == [(0,)]
        assert not (tmp_path / "data" / "feeds").exists()
        assert cli(config, env, "notify").returncode == 0
        entries = feed(tmp_path / "data" / "feeds" / "ptsd.xml").entries
        assert len(entries) == 3  # bounded
        stamps = [e.updated for e in entries]
        assert stamps == sorted(stamps, reverse=True)
        unknown = cli(config, env, "notify", "--name", "nobody")
        assert unknown.returncode == 2 and "unknown notify entry 'nobody'" in unknown.stderr


def test_a_daily_digest_is_due_once_its_slot_passed(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> None:
    with WebhookReceiver() as hook:
        config, settings, _ = setup(tmp_path, eutils_fake, ctgov_fake, None, hook,
                                    when="daily", extra='at = "08:00"\ntimezone = "UTC"')
        assert run(settings, write_report=False).exit_code == 0
        (entry,) = settings.notify
        day1 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
        with Store(settings.db_path) as store:
            assert is_due(store, entry, day1)  # never delivered
        deliver(settings, now=day1)
        assert len(hook.accepted) == 1
        with Store(settings.db_path) as store:
            assert not is_due(store, entry, datetime(2026, 12, 1, 7, 59, tzinfo=UTC))
            assert is_due(store, entry, datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
        deliver(settings, after_run=True, now=datetime(2026, 12, 1, 7, 0, tzinfo=UTC))
        with Store(settings.db_path) as store:  # not due: the cursor did not move
            assert store.notify_cursor("ptsd-team", "webhook")[1] == "2026-11-30T09:00:00Z"


@pytest.mark.parametrize(("snippet", "message"), [
    ('[[notify]]\nname = "x"\ncolour = "red"\n[notify.atom]\npath = "f.xml"\n',
     "notify 'x'.colour: unknown key"),
    ('[[notify]]\nname = "x"\ntopics = ["nope"]\n[notify.atom]\npath = "f.xml"\n',
     "notify 'x'.topics: unknown topic 'nope'"),
    ('[[notify]]\nname = "x"\n[notify.atom]\npath = 5\n',
     "notify 'x'.atom.path: must be a string, got an integer (5)"),
    ('[[notify]]\nname = "x"\nwhen = "hourly"\n[notify.atom]\npath = "f.xml"\n',
     "notify 'x'.when: must be after-run, daily, weekly"),
    ('[[notify]]\nname = "x"\n', "notify 'x': needs at least one channel"),
    ('[[notify]]\nname = "Team A"\n[notify.atom]\npath = "f.xml"\n',
     "notify 'Team A'.name: must be lower-case letters, digits and '-' (it names feeds"),
    ('[[notify]]\nname = "x"\n[notify.atom]\npath = "f.xml"\n'
     '[[notify]]\nname = "x"\n[notify.atom]\npath = "g.xml"\n',
     "notify 'x'.name: duplicate notify name"),
    ('[[notify]]\nname = "x"\n[notify.webhook]\nurl = "https://h.example/x"\n'
     'secret_env = "LITTRACK_NOT_SET_ANYWHERE"\n',
     "notify 'x'.webhook.secret_env: environment variable LITTRACK_NOT_SET_ANYWHERE is not "
     "set"),
    ('[[notify]]\nname = "x"\n[notify.email]\nsmtp_host = "h"\nfrom = "a@b.org"\n'
     'to = ["c@d.org"]\nusername = "u"\n', "notify 'x'.email.password_env: is required"),
    ('[[notify]]\nname = "x"\n[notify.email]\nsmtp_host = "h"\nfrom = "a@b.org"\n'
     'to = ["c@d.org"]\nsmtp_port = "25"\n', "notify 'x'.email.smtp_port: must be an integer"),
    ('[[notify]]\nname = "x"\n[notify.atom]\npath = "../../etc/feed.xml"\n',
     "notify 'x'.atom.path: must be a file path inside the data directory"),
    ('[[notify]]\nname = "x"\n[notify.webhook]\nurl = "https://h.example/x"\n'
     'url_env = "U"\n', "notify 'x'.webhook: needs url or url_env"),
    ('[[notify]]\nname = "x"\nwhen = "daily"\nday = "fri"\n[notify.atom]\npath = "f.xml"\n',
     "notify 'x'.day: only weekly digests have a day"),
    ('[[notify]]\nname = "x"\nwhen = "weekly"\nday = "someday"\n[notify.atom]\n'
     'path = "f.xml"\n', "notify 'x'.day: must be a weekday"),
    ('[[notify]]\nname = "x"\nwhen = "daily"\nat = "25:00"\n[notify.atom]\npath = "f.xml"\n',
     "notify 'x'.at: must be a time HH:MM"),
    ('[[notify]]\nname = "x"\nwhen = "daily"\ntimezone = "Mars/Base"\n[notify.atom]\n'
     'path = "f.xml"\n', "notify 'x'.timezone: invalid time zone 'Mars/Base'"),
])
def test_bad_notify_config_exits_2_naming_entry_and_key(tmp_path: Path, snippet: str,
                                                        message: str) -> None:
    config = write_test_config(tmp_path, extra="\n" + snippet)
    with pytest.raises(ConfigError) as err:
        load_settings(config, env={})
    assert str(config) in str(err.value) and message in str(err.value)
    proc = subprocess.run([sys.executable, "-m", "littrack", "--config", str(config), "check"],
                          capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if k != "LITTRACK_CONFIG"})
    assert proc.returncode == 2 and message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_secrets_stay_out_of_settings_repr(tmp_path: Path) -> None:
    config = write_test_config(tmp_path, extra="""
[[notify]]
name = "x"
[notify.email]
smtp_host = "h"
from = "a@b.org"
to = ["c@d.org"]
username = "u"
password_env = "P"
[notify.webhook]
url = "https://hooks.example.org/x"
secret_env = "S"
""")
    settings = load_settings(config, env={"P": PASSWORD, "S": HOOK_SECRET})
    (entry,) = settings.notify
    assert entry.email is not None and entry.email.password == PASSWORD
    assert PASSWORD not in repr(settings) and HOOK_SECRET not in repr(settings)


def test_serve_delivers_after_each_run_and_fires_digests_at_their_slot(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> None:
    with WebhookReceiver() as hook:
        config, settings, corpus = setup(tmp_path, eutils_fake, ctgov_fake, None, hook)
        want = expected_keys(corpus)
        service = Service(settings, lock_wait=30)
        service.start(once_now=True)  # the PubMed and the CT.gov job, each with its hook
        try:
            assert len(service.wait_for(2, timeout=120)) == 2
        finally:
            assert service.shutdown(30)
        keys = [i["key"] for i in hook.accepted_items()]
        assert len(keys) == len(set(keys)) and set(keys) == want
        assert len(hook.accepted) == 2  # one delivery after each run

        # a daily digest that never went out is due: serve fires it at start
        daily = notify_toml(None, hook, when="daily", extra='at = "06:30"')
        config.write_text(config.read_text() + daily.replace(
            'name = "ptsd-team"', 'name = "daily-team"').replace("ptsd.xml", "daily.xml"))
        settings = load_settings(config, env=env_for(tmp_path, eutils_fake, ctgov_fake))
        service = Service(settings, lock_wait=30)
        assert service.due_now() == []  # the runs are not due again
        service.start()
        try:
            assert hook.wait_for(3, timeout=60) == 3
        finally:
            assert service.shutdown(30)
        digest = list(hook.accepted.values())[2].json
        assert digest["entry"] == "daily-team"
        assert {i["key"] for i in digest["items"]} == want


def test_a_retraction_arrives_as_a_correction_and_include_filters_kinds(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> None:
    """An entry that asks only for corrections and trial changes: the first run's new
    records send nothing (an empty digest is not sent); a retraction is one correction,
    in its own section, with the record's text escaped in the HTML part."""
    with SmtpFake(tmp_path, security="none", username=None) as smtp, \
            WebhookReceiver() as hook:
        config, settings, corpus = setup(
            tmp_path, eutils_fake, ctgov_fake, smtp, hook, security="none",
            extra='include = ["corrections", "trial_changes"]')
        assert run(settings, write_report=False).exit_code == 0
        assert all(r.ok and not r.sent for r in deliver(settings))
        assert smtp.messages() == [] and hook.posts == []

        pmid = min(p for p, topics in corpus.articles.items() if "mdma-ptsd" in topics)
        today = datetime.now(UTC).date()
        eutils_fake.update_article(pmid, article_xml(
            pmid, title="<script>alert(1)</script> A retracted finding",
            comments=[("RetractionIn", "39999990")], entrez_date=today), mdat=today)
        assert run(settings, write_report=False).exit_code == 0
        assert all(r.ok for r in deliver(settings))

        (mail,) = smtp.messages()
        assert mail.message["Subject"] == "littrack ptsd-team: 1 correction"
        text = mail.part("plain")
        assert "== Corrections ==" in text and "retracted: no → yes" in text
        assert f"PubMed https://pubmed.ncbi.nlm.nih.gov/{pmid}/" in text
        html_part = mail.part("html")
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_part
        assert "<script>" not in html_part
        (post,) = hook.accepted.values()
        (item,) = post.json["items"]
        assert item["kind"] == "corrections" and item["id"] == pmid
        assert item["changes"] == [{"field": "is_retracted", "was": "0", "now": "1"}]
        assert "mdma-ptsd" in item["topics"]
        (entry,) = feed(tmp_path / "data" / "feeds" / "ptsd.xml").entries
        assert entry.title.startswith("Correction: <script>")  # text, parsed back intact


def test_a_webhook_url_token_stays_out_of_messages_and_logs(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake,
        caplog: pytest.LogCaptureFixture) -> None:
    """Slack-style URLs carry their token in the path: it can come from url_env, and no
    message, log line or preview repeats the path."""
    token = "T0001/B0002/sekrit-token-xyz"
    with WebhookReceiver() as hook:
        config = write_test_config(tmp_path, extra="""
[[notify]]
name = "slack"
[notify.webhook]
url_env = "LITTRACK_SLACK_URL"
""")
        env = {**env_for(tmp_path, eutils_fake, ctgov_fake),
               "LITTRACK_SLACK_URL": f"{hook.url}/services/{token}"}
        settings = load_settings(config, env=env)
        populate(settings, eutils_fake, ctgov_fake, articles=3, trials=2)
        assert run(settings, write_report=False).exit_code == 0
        hook.fail_next(404)
        caplog.set_level("DEBUG")
        (failed,) = deliver(settings)
        assert failed.error and "HTTP 404" in failed.error
        dry = cli(config, env, "notify", "--dry-run")
        status = cli(config, env, "status")
        assert "--- slack webhook → http://127.0.0.1:" in dry.stdout
        for text in (failed.error, caplog.text, dry.stdout + dry.stderr,
                     status.stdout + status.stderr, repr(settings)):
            assert "sekrit" not in text
        (ok,) = deliver(settings)
        assert ok.ok and hook.posts[-1].path == f"/hook/services/{token}"
    bad = cli(config, {**env, "LITTRACK_SLACK_URL": "ftp://x/sekrit"}, "check")
    assert bad.returncode == 2 and "$LITTRACK_SLACK_URL is not an http(s) URL" in bad.stderr
    assert "sekrit" not in bad.stderr
