"""Importing and running littrack leaves other libraries' module state as it found it.

A library that shares a process with littrack (a notebook, a scheduler, another tool using
Bio.Entrez) must not find Entrez's sender, retry count or delay clock replaced, nor a
warnings filter added. Checked in a fresh interpreter, since this test session has long
imported littrack: snapshot, import every module, run a full run (with and without an NCBI
email, the path where Entrez would warn), snapshot again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.corpus import fake_env, populate, settings_for, write_test_config
from tests.fakes import CtgovFake, EutilsFake

SCRIPT = r"""
import importlib, json, pkgutil, sys, warnings
from Bio import Entrez
# The dependencies first: what they do on import (numpy adds warnings filters) is theirs.
import numpy, pandas, matplotlib.figure, matplotlib.backends.backend_agg, matplotlib.ticker
import tqdm, tqdm.contrib.logging, apscheduler.schedulers.background, defusedxml.ElementTree

def snapshot():
    state = {k: f"{id(v)} {v!r}" for k, v in vars(Entrez).items()}
    state["_open.previous"] = repr(Entrez._open.previous)
    state["warnings.filters"] = repr(warnings.filters)
    return state

before = snapshot()
import littrack
for info in pkgutil.walk_packages(littrack.__path__, "littrack."):
    if info.name != "littrack.__main__":
        importlib.import_module(info.name)
after_import = snapshot()
from littrack.config import load_settings
from littrack.pipeline import run
result = run(load_settings(sys.argv[1]))
after_run = snapshot()
print(json.dumps({"before": before, "after_import": after_import, "after_run": after_run,
                  "statuses": [r.status for r in result.results],
                  "sources": sorted({r.source for r in result.results})}))
"""


@pytest.mark.parametrize("email", [True, False])
def test_a_full_run_leaves_entrez_and_warnings_untouched(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake, email: bool) -> None:
    populate(settings_for(tmp_path, eutils_fake, ctgov_fake), eutils_fake, ctgov_fake,
             articles=20, trials=6)
    config = write_test_config(tmp_path)
    if not email:
        config.write_text(config.read_text(encoding="utf-8").replace(
            'email = "tests@example.org"\n', ""), encoding="utf-8")
    env = {**os.environ, **fake_env(tmp_path, eutils_fake, ctgov_fake)}
    env.pop("NCBI_EMAIL", None)
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(config)], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["sources"] == ["ctgov", "pubmed"] and set(out["statuses"]) == {"ok"}
    for stage in ("after_import", "after_run"):
        changed = {k for k in out["before"].keys() | out[stage].keys()
                   if out["before"].get(k) != out[stage].get(k)}
        assert not changed, f"{stage}: changed {sorted(changed)}"
    assert ("Email address is not specified" in done.stderr) is False
    if not email:  # the run's own, single notice instead
        assert done.stderr.count("no NCBI email configured") == 1
    # the E-utilities requests were built by Entrez (its tool/email conventions), sent by us
    sent = eutils_fake.requests()
    assert sent and all(r.params["tool"] == "littrack" for r in sent)
    assert all(("email" in r.params) is email for r in sent)
