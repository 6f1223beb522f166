"""Hyperparameter tables generated from the code, so that the paper cannot drift from it.

For every registered method (and first stage) the table lists its resolved defaults
(``methods.base.COMMON_DEFAULTS`` updated with the class's ``DEFAULTS``), the citation each default
carries, and the preset's override (``config["methods"][name]`` / ``config["pretrain"][name]``).

The citations are the comments beside each key in the ``DEFAULTS`` dict literals (for example
``"lr": 0.01,  # 002:37, 120``), read with ``ast`` + ``tokenize`` from the method's source file:

- a key takes the trailing comments of the lines its key and value span; failing that, the block of
  whole-line comments just above it; failing that, when the key sits on the ``DEFAULTS = ...`` line
  itself, the comment block above that statement (``# 25 passes ... (002:38, 172)``);
- ``**X`` spreads resolve through module-level dicts (``**TOWER_DEFAULTS``), other classes
  (``**Scratch.DEFAULTS``), subscripts (``**ARCH_DEFAULTS["fc"]``) and imports (``from .gan import
  GAN_DEFAULTS``), and a dict comprehension over one of those resolves through its source, so an
  inherited key takes its parent's comment; a class without its own ``DEFAULTS`` takes its parent's;
- the values shown are always the runtime values (``cls.DEFAULTS``), never re-evaluated from the AST.

Policy for defaults without a citation: a comment that says "ours" is shown as it is (the study's
own choice, stated); a key with no comment at all is shown as **uncited** (``UNCITED``), never as
"ours": only the comment may claim that. ``tests/test_hparams.py`` lists today's uncited keys and
fails when a new one appears.

CLI::

    python -m fewlabels.report.hparams --methods supervised aae --overrides '{"methods": {...}}' --out tab.tex
    python -m fewlabels.report.hparams --markdown [--methods ...]   # the same tables as Markdown (docs)
"""

from __future__ import annotations

import argparse
import ast
import functools
import importlib
import inspect
import io
import json
import re
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

from ..methods import METHODS, PRETRAIN

UNCITED = "uncited"
COMMON_MODULE = "fewlabels.methods.base"


# ---------------------------------------------------------------- reading the comments of the source

@functools.lru_cache(maxsize=None)
def _module(modname: str) -> tuple[ast.Module, dict[int, tuple[str, bool]]]:
    """The parsed module and its comments: line -> (text without '#', whole-line comment?)."""
    path = Path(importlib.import_module(modname).__file__)
    src = path.read_text()
    lines = src.splitlines()
    comments: dict[int, tuple[str, bool, int]] = {}
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.COMMENT:
            row, col = tok.start
            whole = not lines[row - 1][:col].strip()
            comments[row] = (tok.string.lstrip("#").strip(), whole, col)
    return ast.parse(src), comments


def _block_above(comments: dict, line: int) -> str:
    """The contiguous whole-line comments just above ``line``, joined."""
    out = []
    row = line - 1
    while row in comments and comments[row][1]:
        out.append(comments[row][0])
        row -= 1
    return " ".join(reversed(out))


def _comment_for(comments: dict, key: ast.AST, value: ast.AST, stmt: ast.stmt) -> str:
    rows = [r for r in range(key.lineno, value.end_lineno + 1) if r in comments and not comments[r][1]]
    trailing = [comments[r][0] for r in rows]
    if trailing:
        # a trailing comment continues on the whole-line comments below it that start in its column
        row, col = value.end_lineno + 1, comments[rows[-1]][2]
        while row in comments and comments[row][1] and comments[row][2] == col:
            trailing[-1] += " " + comments[row][0]
            row += 1
        return "; ".join(trailing)
    above = _block_above(comments, key.lineno)
    if above:
        return above
    if key.lineno == stmt.lineno:
        return _block_above(comments, stmt.lineno)
    return ""


def _toplevel(modname: str, name: str):
    """(module, node) that defines ``name`` at the top level of ``modname``: an Assign's value, a
    ClassDef, or the definition an ``from .x import name`` points to."""
    tree, _ = _module(modname)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return modname, node
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            return modname, node
        if isinstance(node, ast.ClassDef) and node.name == name:
            return modname, node
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
            orig = next(a.name for a in node.names if (a.asname or a.name) == name)
            base = modname.rsplit(".", node.level)[0] if node.level else ""
            target = f"{base}.{node.module}" if node.module and base else (node.module or base)
            return _toplevel(target, orig)
    raise LookupError(f"{name!r} is not defined at the top level of {modname}")


def _resolve(modname: str, node: ast.AST, stmt: ast.stmt) -> dict[str, str]:
    """key -> comment for a DEFAULTS-like expression (later keys win, as in the dict itself)."""
    _, comments = _module(modname)
    if isinstance(node, ast.Dict):
        out: dict[str, str] = {}
        for k, v in zip(node.keys, node.values):
            if k is None:
                spread = _resolve(modname, v, stmt)
                # a comment on the spread's own line cites the keys it names (`**GAN_DEFAULTS,  # z_dim 100 (001:247)`)
                line = "; ".join(comments[r][0] for r in range(v.lineno, v.end_lineno + 1)
                                 if r in comments and not comments[r][1])
                for key in list(spread):
                    out.pop(key, None)
                    out[key] = spread[key] or (line if line and key in line else "")
            elif isinstance(k, ast.Constant) and isinstance(k.value, str):
                out.pop(k.value, None)
                out[k.value] = _comment_for(comments, k, v, stmt)
        return out
    if isinstance(node, ast.DictComp):  # {k: v for k, v in X.items() if ...}: X's comments
        it = node.generators[0].iter
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) and it.func.attr == "items":
            it = it.func.value
        return _resolve(modname, it, stmt)
    if isinstance(node, ast.Name):
        mod, d = _toplevel(modname, node.id)
        if isinstance(d, ast.ClassDef):
            raise TypeError(f"{node.id} is a class, not a dict")
        return _resolve(mod, d.value, d)
    if isinstance(node, ast.Attribute) and node.attr == "DEFAULTS" and isinstance(node.value, ast.Name):
        mod, d = _toplevel(modname, node.value.id)
        return _class_comments(mod, d.name)
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        mod, d, base_stmt = _dict_node(modname, node.value)
        for k, v in zip(d.keys, d.values):
            if isinstance(k, ast.Constant) and k.value == node.slice.value:
                return _resolve(mod, v, base_stmt)
        raise LookupError(f"key {node.slice.value!r} not found in {ast.unparse(node.value)}")
    raise TypeError(f"cannot read the comments of {ast.unparse(node)!r} in {modname}")


def _dict_node(modname: str, node: ast.AST):
    if isinstance(node, ast.Name):
        mod, d = _toplevel(modname, node.id)
        if isinstance(d.value, ast.Dict):
            return mod, d.value, d
    raise TypeError(f"{ast.unparse(node)!r} in {modname} is not a dict literal")


@functools.lru_cache(maxsize=None)
def _class_comments(modname: str, clsname: str) -> dict[str, str]:
    """key -> comment of class ``clsname``'s DEFAULTS (its parent's when it sets none)."""
    mod, cdef = _toplevel(modname, clsname)
    for node in cdef.body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else [])
        if any(isinstance(t, ast.Name) and t.id == "DEFAULTS" for t in targets):
            return _resolve(mod, node.value, node)
    for base in cdef.bases:
        if isinstance(base, ast.Name):
            try:
                bmod, bdef = _toplevel(mod, base.id)
            except LookupError:
                continue
            if isinstance(bdef, ast.ClassDef):
                return _class_comments(bmod, bdef.name)
    return {}


def citations(cls: type) -> dict[str, str]:
    """key -> citation comment of ``cls.DEFAULTS`` (the runtime class; "" where none)."""
    owner = next(c for c in inspect.getmro(cls) if "DEFAULTS" in vars(c))
    return _class_comments(owner.__module__, owner.__name__)


def common_citations() -> dict[str, str]:
    mod, d = _toplevel(COMMON_MODULE, "COMMON_DEFAULTS")
    return _resolve(mod, d.value, d)


# ---------------------------------------------------------------------------------------- the tables

@dataclass(frozen=True)
class Row:
    key: str
    value: object       # the resolved default
    citation: str       # the comment beside it ("" when none: rendered as UNCITED)
    shared: bool        # from COMMON_DEFAULTS and not overridden by the class
    override: object = None  # the preset's value, when it sets one
    overridden: bool = False


def fmt(value) -> str:
    """A default as the tables print it (Python's own spelling: 0.001, [200, 50], None, True)."""
    return json.dumps(value) if isinstance(value, str) else repr(value)


def rows(name: str, overrides: dict | None = None) -> list[Row]:
    """The resolved defaults of method (or first stage) ``name``, one Row per key, with the
    preset's ``overrides`` (keys the method does not know are an error, as in the trainer)."""
    from ..methods import get
    from ..methods.base import COMMON_DEFAULTS

    cls = get(name)
    own = citations(cls)
    common = common_citations()
    overrides = overrides or {}
    resolved = {**COMMON_DEFAULTS, **cls.DEFAULTS}
    unknown = sorted(set(overrides) - set(resolved))
    if unknown:
        raise KeyError(f"method {name!r}: overrides of unknown keys {unknown}")
    out = []
    for key, value in resolved.items():
        shared = key not in cls.DEFAULTS
        cite = common.get(key, "") if shared else own.get(key, "")
        out.append(Row(key, value, cite, shared, overrides.get(key), key in overrides))
    return out


def grid_methods(config: dict) -> list[str]:
    """Registered methods and first stages the preset's grid trains (variants resolved), in
    registry order."""
    from ..config import resolve, runs

    used = set()
    for r in runs(config):
        res = resolve(config, r["method"])
        used.add(res.method)
        if res.pretrain:
            used.add(resolve(config, res.pretrain).method)
    return [n for n in [*METHODS, *PRETRAIN] if n in used]


def preset_overrides(config: dict, names: list[str]) -> dict[str, dict]:
    """name -> the preset's overrides of it (``methods:`` or ``pretrain:``), only names that have some."""
    out = {}
    for n in names:
        section = "pretrain" if n in PRETRAIN else "methods"
        o = (config.get(section) or {}).get(n)
        if o:
            out[n] = dict(o)
    return out


def frame(name: str, overrides: dict | None = None, latex: bool = False):
    """The table of one method as a DataFrame (key, default, preset, source)."""
    import pandas as pd

    recs = []
    for r in rows(name, overrides):
        cite = r.citation or (r"\textbf{uncited}" if latex else f"**{UNCITED}**")
        if r.shared and latex:
            cite = r"shared default (Table~\ref{tab:hparams-common})"
        elif r.shared:
            cite = "shared default (see *common*)"
        recs.append({"key": r.key, "default": fmt(r.value),
                     "preset": fmt(r.override) if r.overridden else "", "source": cite})
    return pd.DataFrame.from_records(recs, columns=["key", "default", "preset", "source"])


def common_frame(latex: bool = False):
    import pandas as pd

    from ..methods.base import COMMON_DEFAULTS

    cites = common_citations()
    return pd.DataFrame.from_records(
        [{"key": k, "default": fmt(v), "preset": "",
          "source": cites.get(k) or (r"\textbf{uncited}" if latex else f"**{UNCITED}**")}
         for k, v in COMMON_DEFAULTS.items()], columns=["key", "default", "preset", "source"])


def _escape_cell(s: str) -> str:
    """LaTeX-escape a cell, keeping the few commands this module writes itself."""
    from pandas.io.formats.style_render import _escape_latex

    keep = ("\\textbf{uncited}", "Table~\\ref{tab:hparams-common}")
    for i, k in enumerate(keep):
        s = s.replace(k, f"\x00{i}\x00")
    s = _escape_latex(s)
    # in LaTeX's default text font "<" and ">" print as inverted marks ("->" as "-¿")
    s = s.replace("->", "\x01").replace("<", r"\textless{}").replace(">", r"\textgreater{}")
    s = s.replace("\x01", r"$\to$")
    for i, k in enumerate(keep):
        s = s.replace(f"\x00{i}\x00", k)
    return s


def _tex_table(df, caption: str, label: str, show_preset: bool) -> str:
    """One table: \\scriptsize, p{} columns that add up to the text width, booktabs rules."""
    cols = ["key", "default", "preset", "source"] if show_preset else ["key", "default", "source"]
    df = df[cols].copy()
    # keys break after an underscore (a long key in a narrow column would overflow it)
    df["key"] = [rf"\texttt{{{_escape_cell(k)}}}".replace(r"\_", r"\_\allowbreak{}") for k in df["key"]]
    for c in cols[1:]:
        df[c] = [_escape_cell(str(v)) for v in df[c]]
    if "source" in df:  # prose quotes "x" as LaTeX's ``x'' (a bare " prints as a closing ”)
        df["source"] = [re.sub(r'"([^"]*)"', r"``\1''", v) for v in df["source"]]
    for c in ("default", "preset"):  # values in typewriter type, whose " is straight (not a closing ”)
        if c in df:
            df[c] = [rf"\texttt{{{v}}}" if v else v for v in df[c]]
    # widths plus the columns' padding (2 \tabcolsep each) stay inside \linewidth
    widths = ({"key": 0.19, "default": 0.16, "preset": 0.12, "source": 0.38} if show_preset
              else {"key": 0.2, "default": 0.18, "source": 0.5})
    spec = "".join(rf"p{{{widths[c]}\linewidth}}" for c in cols)
    styler = df.style.hide(axis="index")
    tex = styler.to_latex(column_format=spec, hrules=True, caption=caption, label=label,
                          position="htbp", environment="table")
    return tex.replace("\\begin{tabular}", "\\scriptsize\n\\begin{tabular}", 1)


def variant_rows(config: dict) -> list[dict]:
    """The preset's variants the grid trains (first stages included), each with its method and the
    keys it sets: what this preset runs beyond the methods' defaults."""
    from ..config import resolve, runs

    names = []
    for r in runs(config):
        res = resolve(config, r["method"])
        for n in (r["method"], res.pretrain):
            if n and n in (config.get("variants") or {}) and n not in names:
                names.append(n)
    return [{"variant": n, "method": resolve(config, n).method,
             "hparams": resolve(config, n).overrides} for n in names]


def variants_table(variants: list[dict]) -> str:
    """A longtable: each variant, its method and the values it runs that differ from the defaults."""
    lines = [r"{\scriptsize\setlength{\tabcolsep}{3pt}",
             r"\begin{longtable}{>{\raggedright\arraybackslash}p{0.27\linewidth}>{\raggedright\arraybackslash}p{0.13\linewidth}"
             r">{\raggedright\arraybackslash}p{0.54\linewidth}}",
             r"\caption{The variants this preset runs: each variant's method and the hyperparameters it sets; every "
             r"other key is the method's default, in the method's own table.}\label{tab:hparams-variants}\\",
             r"\toprule variant & method & values it runs \\ \midrule \endfirsthead",
             r"\toprule variant & method & values it runs \\ \midrule \endhead"]
    for v in variants:
        sets = "; ".join(rf"\texttt{{{_escape_cell(k)}}} = \texttt{{{_escape_cell(fmt(x))}}}"
                         for k, x in v["hparams"].items()) or "(the defaults)"
        lines.append(rf"\texttt{{{_escape_cell(v['variant'])}}} & \texttt{{{_escape_cell(v['method'])}}} & {sets} \\")
    lines += [r"\bottomrule", r"\end{longtable}}"]
    return "\n".join(lines)


def latex(names: list[str], overrides: dict[str, dict] | None = None, variants: list[dict] | None = None) -> str:
    """The whole generated file: the shared defaults, one small table per method, then the preset's
    variants with the values each runs (``variants``: variant_rows of the configuration)."""
    overrides = overrides or {}
    parts = ["% generated by python -m fewlabels.report.hparams: do not edit (the methods' DEFAULTS and the",
             "% preset's overrides; citations are the comments beside each key in the source)",
             _tex_table(common_frame(latex=True), "Defaults every method shares (\\texttt{methods/base.py}).",
                        "tab:hparams-common", show_preset=False)]
    for n in names:
        o = overrides.get(n) or {}
        kind = "first stage" if n in PRETRAIN else "method"
        cap = (f"Hyperparameters of the {kind} \\texttt{{{n}}}: defaults with their source"
               + ("; the preset's overrides in the third column." if o else "; the preset overrides none."))
        if variants and any(v["method"] == n for v in variants):
            cap += r" This preset runs it through its variants (Table~\ref{tab:hparams-variants})."
        parts.append(_tex_table(frame(n, o, latex=True), cap, f"tab:hparams-{n}", show_preset=bool(o)))
    if variants:
        parts.append(variants_table(variants))
    return "\n".join(parts) + "\n"


def markdown(names: list[str], overrides: dict[str, dict] | None = None) -> str:
    overrides = overrides or {}
    parts = ["## common (every method)\n", _md(common_frame()[["key", "default", "source"]])]
    for n in names:
        o = overrides.get(n) or {}
        df = frame(n, o)
        if not o:
            df = df.drop(columns="preset")
        parts.append(f"\n## {n}{' (first stage)' if n in PRETRAIN else ''}\n")
        parts.append(_md(df))
    return "\n".join(parts) + "\n"


def _md(df) -> str:
    """A pipe table (pandas' to_markdown needs tabulate, which is not a dependency)."""
    def cell(s):
        return str(s).replace("|", "\\|").replace("\n", " ")
    head = "| " + " | ".join(df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(cell(v) if c != "key" else f"`{v}`" for c, v in zip(df.columns, r)) + " |"
            for r in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", nargs="*", help="registered methods / first stages (default: all)")
    ap.add_argument("--overrides", default="{}",
                    help='JSON {"methods": {name: {...}}, "pretrain": {name: {...}}} of the preset')
    ap.add_argument("--config", help="a whole resolved configuration (results/config.json, an archive's "
                                     "config.yaml): its grid's methods and its overrides")
    ap.add_argument("--variants", default="[]",
                    help="JSON list of {variant, method, hparams}: the preset's variants that its grid runs")
    ap.add_argument("--out", help="the LaTeX file to write")
    ap.add_argument("--markdown", action="store_true", help="print the tables as Markdown instead")
    a = ap.parse_args(argv)
    names = a.methods or [*METHODS, *PRETRAIN]
    ov = json.loads(a.overrides)
    overrides = {**(ov.get("methods") or {}), **(ov.get("pretrain") or {})}
    if a.config:
        import yaml

        cfg = yaml.safe_load(Path(a.config).read_text())
        names = a.methods or grid_methods(cfg)
        overrides = preset_overrides(cfg, names)
        variants = variant_rows(cfg)
    else:
        variants = json.loads(a.variants)
    if a.markdown:
        sys.stdout.write(markdown(names, overrides))
        return 0
    if not a.out:
        ap.error("--out is required without --markdown")
    from ..files import atomic_write

    text = latex(names, overrides, variants)
    atomic_write(Path(a.out), lambda tmp: tmp.write_text(text))
    print(f"wrote {a.out}: {len(names)} tables")
    return 0


if __name__ == "__main__":
    sys.exit(main())
