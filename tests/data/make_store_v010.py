"""Regenerate ``tests/data/store-v0.1.0.sqlite``: a small store written by release 0.1.0.

Why a committed file: the upgrade test must start from what 0.1.0 really wrote, not from what
today's code believes 0.1.0 wrote. This script runs the *released* code (``git worktree add``
of the tag ``v0.1.0``, imported through PYTHONPATH) as a subprocess, ``littrack run`` against
the loopback fakes filled by ``tests.corpus.populate`` (our own builders), then copies the
database page for page (backup API, so ``user_version`` is kept) into one rollback-journal
file. Usage, from the repository root::

    .venv/bin/python -m tests.data.make_store_v010
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.corpus import fake_env, populate, settings_for, write_test_config
from tests.fakes import CtgovFake, EutilsFake

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(__file__).resolve().parent / "store-v0.1.0.sqlite"
# The commit tagged v0.1.0, named by its hash: a clone may come without its tags.
TAG_COMMIT = "3bb6fe6119eb811b6200a6e47998ccb59bb2d89d"
ARTICLES, TRIALS, SEED = 8, 4, 10  # the upgrade test fills its fakes with the same corpus


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="littrack-v010-") as tmp_name:
        tmp = Path(tmp_name)
        release = tmp / "release"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(release),
                        TAG_COMMIT], check=True, capture_output=True)
        try:
            with EutilsFake() as eutils, CtgovFake(rate_limit_per_minute=None) as ctgov:
                settings = settings_for(tmp, eutils, ctgov)
                populate(settings, eutils, ctgov, articles=ARTICLES, trials=TRIALS, seed=SEED)
                env = {**os.environ, **fake_env(tmp, eutils, ctgov),
                       "PYTHONPATH": str(release / "src")}
                config = write_test_config(tmp)
                where = subprocess.run([sys.executable, "-c", "import littrack; "
                                        "print(littrack.__file__)"], env=env, check=True,
                                       capture_output=True, text=True).stdout
                assert where.startswith(str(release)), f"not the release's code: {where}"
                subprocess.run([sys.executable, "-m", "littrack", "--config", str(config), "-q",
                                "run"], env=env, check=True, cwd=tmp)
            source = sqlite3.connect(tmp / "data" / "littrack.sqlite")
            TARGET.unlink(missing_ok=True)
            copy = sqlite3.connect(TARGET)
            source.backup(copy)
            source.close()
            copy.execute("PRAGMA journal_mode=DELETE")
            copy.execute("PRAGMA page_size=512")  # small pages: dozens of near-empty tables
            copy.execute("VACUUM")
            copy.close()
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(release)], check=False, capture_output=True)
            shutil.rmtree(release, ignore_errors=True)
    print(f"wrote {TARGET.relative_to(ROOT)} ({TARGET.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
