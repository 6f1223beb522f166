"""The package's import graph (issue 22): no import circles, no private name imported from another
module, an opening docstring in every module, a small top level. The graph is read from the sources
with ``ast`` (every import statement, lazy ones inside functions included), nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = REPO / "src" / "fewlabels"


def module_names(root: Path) -> dict[str, Path]:
    """Dotted name -> file of every module under the package folder ``root`` (a package is its __init__)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, str | None, int]]:
    """(imported module of the package, the name taken from it or None, line) for every import in ``path``.
    ``from a import b`` where ``a.b`` is a module counts as importing ``a.b`` (b is not a name of a)."""
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package else name.split(".")[:-1]  # the package a relative import starts in
    top = name.split(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == top:
                    out.append((alias.name, None, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != top:
                continue
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in modules:
                    out.append((sub, None, node.lineno))
                else:
                    out.append((source, alias.name, node.lineno))
    return out


def graph(root: Path) -> tuple[dict[str, set[str]], list[str]]:
    """The import graph of the package at ``root`` and the problems other than cycles (in words)."""
    modules = module_names(root)
    edges: dict[str, set[str]] = {m: set() for m in modules}
    problems = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        doc = ast.get_docstring(tree)
        if not doc or not doc.strip():
            problems.append(f"{name}: no opening docstring saying what it is for")
        for target, taken, line in imports(name, path, modules):
            if target not in modules:
                problems.append(f"{name}:{line}: imports {target}, which is not a module of the package")
                continue
            if target != name:
                edges[name].add(target)
            if taken and taken.startswith("_") and not (taken.startswith("__") and taken.endswith("__")):
                problems.append(f"{name}:{line}: imports the private name {taken} from {target}")
    return edges, problems


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a path that comes back to its start) per strongly connected group of modules."""
    index, low, stack, on, groups = {}, {}, [], set(), []

    def visit(v):  # Tarjan's algorithm (the graph is small: recursion is fine)
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in edges[v]:
                groups.append(set(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    out = []
    for group in groups:  # a concrete cycle inside the group, for the message
        start = min(group)
        path, seen = [start], {start}
        while True:
            nxt = sorted(w for w in edges[path[-1]] if w in group)
            back = [w for w in nxt if w == start]
            if back and len(path) > 1:
                out.append(path + [start])
                break
            step = next((w for w in nxt if w not in seen), None)
            if step is None:  # fall back on the group itself
                out.append(sorted(group))
                break
            path.append(step)
            seen.add(step)
    return out


def test_the_package_has_no_import_circles():
    edges, _ = graph(PACKAGE)
    found = cycles(edges)
    assert not found, "import circles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_no_module_imports_a_private_name_and_every_module_says_what_it_is_for():
    _, problems = graph(PACKAGE)
    assert not problems, "\n".join(problems)


def test_the_top_level_holds_the_foundation_and_a_few_tools():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 12, top
    for sub in ("methods", "methods/stacked", "training", "report", "report/figures"):
        assert (PACKAGE / sub / "__init__.py").is_file(), sub


def test_the_checks_find_a_circle_a_private_import_and_a_missing_docstring(tmp_path):
    """The checker on a made-up package: it must see what it is there to see."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""A package."""\n')
    (pkg / "a.py").write_text('"""A."""\nfrom .sub import helper\n\n\ndef f():\n    from .b import _hidden\n')
    (pkg / "b.py").write_text('"""B."""\nimport pkg.a\n_hidden = 1\n')
    (pkg / "sub" / "__init__.py").write_text('"""Sub."""\nfrom .c import helper\n')
    (pkg / "sub" / "c.py").write_text("from .. import a\nhelper = 1\n")  # no docstring; a circle via sub
    edges, problems = graph(pkg)
    assert edges["pkg.a"] == {"pkg.sub", "pkg.b"} and edges["pkg.sub"] == {"pkg.sub.c"}
    assert edges["pkg.sub.c"] == {"pkg.a"}  # `from .. import a`: the module a, not a name of pkg
    [c] = cycles(edges)  # one circle reported per knot of modules, as a path that comes back
    assert c[0] == c[-1] and all(b in edges[a] for a, b in zip(c, c[1:]))
    (pkg / "b.py").write_text('"""B."""\n_hidden = 1\n')
    (pkg / "sub" / "c.py").write_text('"""C."""\nhelper = 1\n')
    assert cycles(graph(pkg)[0]) == []
    assert any("private name _hidden" in p for p in problems)
    assert any(p.startswith("pkg.sub.c: no opening docstring") for p in problems)


@pytest.mark.parametrize("src,expect", [
    ("from . import x\n", "top.pkg.x"),  # a package's own submodule
    ("from .x import y\n", "top.pkg.x"),
    ("from ..z import w\n", "top.z"),
    ("from .. import pkg\n", "top.pkg"),
])
def test_relative_imports_resolve_from_the_right_package(tmp_path, src, expect):
    root = tmp_path / "top"
    (root / "pkg").mkdir(parents=True)
    for f in ("__init__.py", "z.py", "pkg/__init__.py", "pkg/x.py"):
        (root / f).write_text('"""M."""\n')
    (root / "pkg" / "m.py").write_text('"""M."""\n' + src)
    got = {t for t, _, _ in imports("top.pkg.m", root / "pkg" / "m.py", module_names(root))}
    assert got == {expect}
