"""What code and what machine made a run: the code fingerprint and the numerical build.

``code_fingerprint()`` hashes the package's sources (``src/fewlabels/**/*.py``) and the
workflow (``workflow/**``, ``Snakefile``) and adds the git commit when the checkout is a git
repository ("-dirty" when those paths have uncommitted changes). The trainer computes it once
per run and writes it into ``metrics.json`` and, through it, ``metrics.csv`` and the archive
manifest: what code made a result, all of it.

``run_code_sha256()`` hashes only the code that makes a run's numbers (``RUN_CODE``: data, nets,
config, precision, methods and their stacked forms, training). A checkpoint must match it to be resumed, so an
edit to a figure or a table does not restart a half-finished run, and an edit to a method does.

``build_info()`` records what decides the bits of a CPU result besides the code: the CPU
capability torch dispatches to (AVX2, AVX512 ...: MKL and oneDNN pick other kernels on
another CPU, so the same seed gives other numbers there), the BLAS, MKL and oneDNN versions
torch was built with, and the GPU model.

``python -m fewlabels.provenance tex --metrics results/metrics.csv --out paper/generated/provenance.tex``
writes the paper appendix's paragraph: one code version, or a warning that the runs mix several.
Importing this module does not import torch.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent.parent  # the checkout (src/fewlabels -> .), when the package runs from one


# The package's paths (files and folders) whose code decides a run's numbers; the rest (report/,
# provenance, archive, rerun) only reads results.
RUN_CODE = ("data.py", "nets.py", "config.py", "precision.py", "methods", "training")


def _source_files(root: Path, package: Path) -> list[tuple[str, Path]]:
    files = [(f"src/{package.name}/{p.relative_to(package).as_posix()}", p) for p in package.rglob("*.py")]
    workflow = root / "workflow"
    if workflow.is_dir():
        files += [(p.relative_to(root).as_posix(), p) for p in workflow.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts]
    if (root / "Snakefile").is_file():
        files.append(("Snakefile", root / "Snakefile"))
    return sorted(files)


def run_code_sha256(package: Path = PACKAGE, parts: tuple[str, ...] = RUN_CODE) -> str:
    """The hash of the paths and contents of the package's ``parts`` (``*.py`` under a folder)."""
    package = Path(package)
    files = []
    for part in parts:
        p = package / part
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    h = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.relative_to(package).as_posix()):
        h.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _git(root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def code_fingerprint(root: Path = ROOT, package: Path = PACKAGE) -> dict:
    """{"sha256": hash of the sources' paths and contents, "git": commit ("-dirty" if src/,
    workflow/ or the Snakefile have uncommitted changes) or None outside a git checkout}."""
    h = hashlib.sha256()
    for rel, path in _source_files(Path(root), Path(package)):
        h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    git = None
    top = _git(root, "rev-parse", "--show-toplevel")
    # only the checkout the package lives in: an installed package inside some other repository is not it
    if top and Path(top).resolve() == Path(root).resolve():
        commit = _git(root, "rev-parse", "HEAD")
        if commit:
            dirty = _git(root, "status", "--porcelain", "--", "src", "workflow", "Snakefile")
            git = commit + ("-dirty" if dirty else "")
    return {"sha256": h.hexdigest(), "git": git}


def _grab(pattern: str, text: str) -> str | None:
    m = re.search(pattern, text)
    return m.group(1).strip() if m else None


def cpu_model() -> str | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        import platform
        return platform.processor() or None
    return _grab(r"(?m)^model name\s*:\s*(.+)$", text)


def build_info(config_text: str | None = None) -> dict:
    """CPU capability, BLAS / MKL / oneDNN versions and GPU model, as this torch reports them.
    ``config_text`` (torch.__config__.show()) may be passed to test the parsing; missing items are None."""
    import torch

    text = torch.__config__.show() if config_text is None else config_text
    get_cap = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
    cap = get_cap() if get_cap else _grab(r"CPU capability usage:\s*(\S+)", text)
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {
        "cpu_capability": cap,
        "cpu_model": cpu_model(),
        "blas": _grab(r"BLAS_INFO=([^,\s]+)", text),
        "mkl": _grab(r"Math Kernel Library Version\s+([\w.]+)", text),
        "onednn": _grab(r"(?:MKL-DNN|oneDNN)\s+v?([\d.]+)", text),
        "gpu": gpu,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if gpu else None,
    }


def describe(code: dict) -> str:
    """A short name of a code fingerprint: 16 hex digits of the hash, and the commit if known."""
    git = code.get("git")
    return code["sha256"][:16] + (f" (git {git[:12]}{'-dirty' if git.endswith('-dirty') else ''})" if git else "")


def _tt(s) -> str:
    return r"\texttt{" + str(s).replace("_", r"\_").replace("%", r"\%").replace("#", r"\#") + "}"


def provenance_tex(df) -> str:
    """The appendix paragraph on code and machines, from metrics.csv (a pandas DataFrame)."""
    import pandas as pd

    n = len(df)
    out = [r"% Generated by fewlabels.provenance from results/metrics.csv; do not edit."]
    if "code_sha256" not in df.columns:  # a metrics.csv from before provenance was recorded
        df = df.assign(code_sha256=pd.Series([None] * n, dtype=object, index=df.index))
    known = df[df["code_sha256"].notna()]
    missing = n - len(known)
    groups = known.groupby("code_sha256", sort=True)
    if len(groups) == 0:
        out.append(r"\paragraph{Code.} The runs' metrics files do not record a code fingerprint "
                   r"(they were made before the trainer recorded one), so this report cannot say "
                   r"whether they all come from the same code.")
    elif len(groups) == 1 and missing == 0:
        sha, g = next(iter(groups))
        git = g["code_git"].dropna().unique() if "code_git" in g.columns else []
        out.append(r"\paragraph{Code.} All " + str(n) + r" runs were made with the same code: fingerprint "
                   + _tt(sha) + (" (git " + ", ".join(_tt(c[:12] + ("-dirty" if c.endswith("-dirty") else ""))
                                                   for c in git) + ")" if len(git) else "") + ".")
    else:
        out.append(r"\paragraph{Code.} \textbf{These runs mix " + str(len(groups) + (missing > 0))
                   + r" versions of the code}" + (f" ({missing} run(s) record no fingerprint)" if missing else "")
                   + r": numbers from different versions may not be comparable. Runs per code fingerprint:")
        out.append(r"\begin{itemize}\raggedright")
        for sha, g in groups:
            # one \texttt per name, so that a line can break between names (a long list overran the page)
            methods = ", ".join(_tt(m) for m in sorted(set(g["method"].astype(str))))
            out.append(r"\item " + _tt(sha) + f": {len(g)} run(s) of " + methods)
        out.append(r"\end{itemize}")
    for col, what in (("cpu_capability", "CPU capability"), ("blas", "BLAS"), ("onednn", "oneDNN"),
                      ("gpu", "GPU")):
        if col in df.columns and df[col].notna().any():
            vals = sorted(set(df[col].dropna().astype(str)))
            out.append(f"{what}: " + ", ".join(_tt(v) for v in vals) + ".")
    return "\n".join(out) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m fewlabels.provenance", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tex", help="the appendix paragraph on code versions and machines")
    t.add_argument("--metrics", required=True, type=Path)
    t.add_argument("--out", required=True, type=Path)
    sub.add_parser("show", help="print this checkout's code fingerprint")
    args = p.parse_args(argv)
    if args.cmd == "show":
        print(describe(code_fingerprint()))
        return
    import pandas as pd

    from .files import atomic_write

    text = provenance_tex(pd.read_csv(args.metrics, dtype={"labels": str}))
    atomic_write(args.out, lambda tmp: tmp.write_text(text))


if __name__ == "__main__":
    main()
