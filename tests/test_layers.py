"""The package's floors (issue 27): the foundation imports no method, the methods (their stacked forms
included) import neither the trainer, the configuration layer nor the report, ``config`` sits on the
methods, and the report imports no training. Read from the sources with ``ast`` (the graph of
tests/test_imports.py, lazy imports inside functions included), nothing is imported."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import REPO
from test_imports import PACKAGE, graph

# Each floor and the floors it may import (its own included). Top-level tools (archive, rerun) and
# the package's own __init__ stand above every floor and are not checked.
FOUNDATION = ("fewlabels.data", "fewlabels.nets", "fewlabels.files", "fewlabels.precision", "fewlabels.runlock",
              "fewlabels.provenance", "fewlabels.plan", "fewlabels.presets")
FLOORS = {
    "foundation": {"foundation"},
    "methods": {"foundation", "methods"},
    "config": {"foundation", "methods", "config"},
    "training": {"foundation", "methods", "config", "training"},
    "report": {"foundation", "methods", "config", "report"},
}


def floor(module: str) -> str | None:
    """The floor of a module of the package (None: a tool above them all, or the package itself)."""
    if module in FOUNDATION:
        return "foundation"
    if module == "fewlabels.config":
        return "config"
    for name in ("methods", "training", "report"):
        if module == f"fewlabels.{name}" or module.startswith(f"fewlabels.{name}."):
            return name
    return None


def crossings(edges: dict[str, set[str]]) -> list[str]:
    """Every import that goes to a floor its module may not import, in words."""
    out = []
    for src, targets in sorted(edges.items()):
        here = floor(src)
        if here is None:
            continue
        for dst in sorted(targets):
            there = floor(dst)
            if there is not None and there not in FLOORS[here]:
                out.append(f"{src} ({here}) imports {dst} ({there})")
    return out


def test_every_module_of_the_package_has_a_floor_or_is_a_tool():
    edges, _ = graph(PACKAGE)
    tools = sorted(m for m in edges if floor(m) is None)
    assert tools == ["fewlabels", "fewlabels.archive", "fewlabels.rerun"], tools


def test_no_import_goes_down_the_wrong_way():
    edges, _ = graph(PACKAGE)
    bad = crossings(edges)
    assert not bad, "imports across the floors:\n" + "\n".join(bad)


def test_the_stacked_forms_live_beside_their_methods():
    """Every stacked form the registry names is a class of methods/stacked/, on the methods' floor."""
    from fewlabels.methods import stackers

    for name, where in stackers().items():
        module, cls = where.split(".")
        path = PACKAGE / "methods" / "stacked" / f"{module}.py"
        assert path.is_file(), f"{name}: {where} has no module {path}"
        assert re.search(rf"^class {cls}\b", path.read_text(), re.M), f"{name}: {cls} not defined in {path}"
    assert not (PACKAGE / "training" / "stacked").exists()


def test_the_check_finds_a_method_that_imports_the_trainer():
    """The checker on made-up edges: a method importing training, the foundation importing a method
    and the report importing training are each caught; config on methods is allowed."""
    edges = {"fewlabels.methods.x": {"fewlabels.training.trainer", "fewlabels.data"},
             "fewlabels.data": {"fewlabels.methods"},
             "fewlabels.report.tables": {"fewlabels.training.build", "fewlabels.methods"},
             "fewlabels.config": {"fewlabels.methods"},
             "fewlabels.methods.stacked.aae": {"fewlabels.config"}}
    bad = crossings(edges)
    assert len(bad) == 4, bad
    assert any(b.startswith("fewlabels.methods.x ") for b in bad)
    assert any(b.startswith("fewlabels.data ") for b in bad)
    assert any(b.startswith("fewlabels.report.tables ") for b in bad)
    assert any(b.startswith("fewlabels.methods.stacked.aae ") for b in bad)


@pytest.mark.parametrize("module,absent", [
    ("fewlabels.report.tables", "matplotlib"),
    ("fewlabels.report.summary", "matplotlib"),
    ("fewlabels.report.benchmarks", "matplotlib"),
    ("fewlabels.config", "torch"),
    ("fewlabels.methods", "torch"),
    ("fewlabels.files", "numpy"),
])
def test_modules_leave_out_the_heavy_libraries_they_do_not_need(module, absent):
    """The tables and summaries do not set matplotlib's backend on import (their shared names live in
    report.common); the registry and the configuration stay torch-free for the Snakefile."""
    code = f"import sys, {module}; print({absent!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={"PYTHONPATH": str(REPO / "src"), "PATH": ""}, check=True).stdout
    assert out.strip() == "False", f"importing {module} imports {absent}"
