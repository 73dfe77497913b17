"""The previous release, installed from its git tag into a virtual environment of its own.

So every figure can be printed beside the same figure of the release before: a regression
shows up in the bench that introduces it, not a release later. The tag's tree is exported
with ``git archive`` (the working tree is not touched), installed with pip into a venv
under the system's temporary folder, and kept there between bench runs, keyed by the tag's
commit (``--fresh`` rebuilds it). Benchmarks then run that venv's interpreter on the same
scenarios, against the same loopback fakes, with a config written from the *tag's* shipped
config (keys added since would be refused by the older release).

    python bench/previous.py [--tag v0.1.0] [--fresh]    # build it and print its python
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREVIOUS_TAG = "v0.1.0"
# Released commits by tag, for a clone that came without its tags (a tag is not a branch:
# `git clone` of some mirrors, or a checkout rebuilt from main alone, lacks it).
RELEASES = {"v0.1.0": "3bb6fe6119eb811b6200a6e47998ccb59bb2d89d"}


@dataclass(frozen=True)
class Release:
    """An installed release: its tag, commit, interpreter and exported source tree."""

    tag: str
    commit: str
    python: Path
    tree: Path

    @property
    def shipped_config(self) -> Path:
        return self.tree / "config" / "littrack.toml"

    def label(self) -> str:
        return f"{self.tag} ({self.commit[:7]})"


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def install(tag: str = PREVIOUS_TAG, *, fresh: bool = False, quiet: bool = True) -> Release:
    """The release ``tag`` in its own venv (built once per commit, reused after)."""
    try:
        commit = _git("rev-parse", "--verify", "--quiet", f"{tag}^{{commit}}")
    except subprocess.CalledProcessError:
        if tag not in RELEASES:
            raise SystemExit(f"no git tag {tag!r} here, and no known commit for it") from None
        commit = RELEASES[tag]
    home = Path(tempfile.gettempdir()) / f"littrack-release-{tag}-{commit[:12]}-test"
    python = home / "venv" / "bin" / "python"
    tree = home / "src"
    marker = home / "installed.json"
    if fresh and home.exists():
        shutil.rmtree(home)
    if not marker.exists():
        if home.exists():
            shutil.rmtree(home)  # a half-built one from an interrupted bench
        tree.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        subprocess.run([sys.executable, "-m", "venv", str(home / "venv")], check=True)
        # With the test extras, as a developer's venv (and so this tree's, in the bench) has
        # them: pandas behaves differently with pyarrow installed (its string storage), and
        # the two releases must differ by their code only.
        pip = [str(python), "-m", "pip", "install", *(["-q"] if quiet else []),
               f"{tree}[test]"]
        # The bench's own environment must not leak in (an editable littrack on PYTHONPATH).
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        subprocess.run(pip, check=True, env=env)
        marker.write_text(json.dumps({"tag": tag, "commit": commit}), encoding="utf-8")
    return Release(tag, commit, python, tree)


def current() -> Release:
    """This checkout, run by the bench's own interpreter (for symmetric code paths)."""
    try:
        commit = _git("rev-parse", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return Release("this tree", commit, Path(sys.executable), ROOT)


def write_config(release: Release, folder: Path, **tune: object) -> Path:
    """``tests/corpus.write_test_config``, but from ``release``'s own shipped config."""
    from tests.corpus import write_test_config

    path = write_test_config(folder, shipped=release.shipped_config)
    if tune:
        text = path.read_text(encoding="utf-8")
        for key, value in tune.items():
            text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
            if not n:
                raise KeyError(f"{key} is not in {release.label()}'s config")
        path.write_text(text, encoding="utf-8")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tag", default=PREVIOUS_TAG)
    ap.add_argument("--fresh", action="store_true", help="rebuild the venv")
    args = ap.parse_args()
    rel = install(args.tag, fresh=args.fresh, quiet=False)
    print(f"{rel.label()}: {rel.python}")


if __name__ == "__main__":
    main()
