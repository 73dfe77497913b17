"""Imports point one way: each module imports only from its own layer or the layers below.

The layers, bottom first, follow the data: settings, then the services' records fetched and
reshaped, then the store, the reports, the run, and the commands on top. Every import
statement counts, including those inside functions and ``if TYPE_CHECKING:`` blocks (a
lazy import hides a cycle from Python, not from a reader). A module missing from ``LAYERS``
fails the test too: a new module has to be placed, on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import littrack

PACKAGE = Path(littrack.__file__).parent

# Bottom first. A name ending in ".*" covers a package's modules (its __init__ included).
LAYERS: list[tuple[str, ...]] = [
    ("littrack.errors", "littrack.vocab"),           # words and exceptions everyone shares
    ("littrack.crontab", "littrack.folders", "littrack.lock",   # self-contained helpers
     "littrack.memory", "littrack.progress", "littrack.sideprocess"),
    ("littrack.config",),                            # what to track (validates cron lines)
    ("littrack.windows",),                           # since when
    ("littrack.http",),                              # pacing, timeouts, retries
    ("littrack.tables", "littrack.migrations", "littrack.database"),  # the declared schema,
                                                     # its history, the database connection
    ("littrack.normalize.*",),                       # pure: records -> rows
    ("littrack.sources.*",),                         # services -> normalized records
    ("littrack.changes",),                           # what counts as a change or a link
    ("littrack.store", "littrack.claims"),           # the only SQL; who works on what
    ("littrack.schema_doc", "littrack.reports.*"),   # documents and reports from the store
    ("littrack.export",),                            # tables out, with their dictionary
    ("littrack.pipeline", "littrack.probe"),         # one run; hit counts for `check`
    ("littrack.notify.*",),                          # digests of what is new, delivered
    ("littrack.jobs",),                              # what `serve` runs, and when
    ("littrack.scheduler", "littrack.status"),       # the service, and `status`
    ("littrack.cli", "littrack.__main__"),           # commands
    ("littrack",),  # the package: ``littrack.load`` reaches down lazily; anyone may read
                    # its ``__version__``
]


def _module_name(path: Path) -> str:
    parts = ["littrack", *path.relative_to(PACKAGE).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    for level, names in enumerate(LAYERS):
        for name in names:
            if module == name or (name.endswith(".*") and (
                    module == name[:-2] or module.startswith(name[:-1]))):
                return level
    raise AssertionError(f"{module} is in no layer of tests/test_layers.py: place it there")


def imports_of(module: str) -> set[str]:
    """The littrack modules ``module`` imports, anywhere in its body."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:  # `from littrack import vocab` imports a module
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in MODULES else base)
    return {m for m in out if m == "littrack" or m.startswith("littrack.")}


GRAPH = {m: imports_of(m) for m in MODULES}


def test_every_module_is_placed_in_a_layer() -> None:
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_upward_import(module: str) -> None:
    level = layer_of(module)
    upward = sorted(i for i in GRAPH[module]
                    if i != "littrack" and i in MODULES and layer_of(i) > level)
    assert not upward, (f"{module} (layer {level}) imports from higher layers: "
                        + ", ".join(f"{i} (layer {layer_of(i)})" for i in upward))


def test_no_import_cycle() -> None:
    """Also within a layer: depth-first search for a back edge."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for nxt in sorted(GRAPH.get(module, ())):
            if nxt == "littrack" or nxt not in MODULES:
                continue  # the package root is only read for __version__ (see LAYERS)
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[module] = 2

    for module in sorted(MODULES):
        if module not in state:
            visit(module)


def test_the_checker_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    """The graph must hold imports made inside functions, or the test proves nothing."""
    assert "littrack.pipeline" in GRAPH["littrack.cli"]  # imported inside a command
    assert "littrack.vocab" in GRAPH["littrack.tables"]  # `from littrack import vocab`
    assert layer_of("littrack.sources.pubmed") > layer_of("littrack.normalize.pubmed")


def test_no_two_classes_share_a_name() -> None:
    seen: dict[str, str] = {}
    clashes = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                if node.name in seen:
                    clashes.append(f"{node.name} in {seen[node.name]} and {module}")
                seen.setdefault(node.name, module)
    assert not clashes, "; ".join(clashes)
