"""Build ``paper/ms.pdf`` with latexmk in a scratch folder, then move the PDF into place."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .data import atomic_write

INSTALL_HINT = ("latexmk/pdflatex not found. Install LaTeX: as root on Debian/Ubuntu run "
                "`apt-get install -y --no-install-recommends texlive-latex-base texlive-latex-extra "
                "texlive-fonts-recommended latexmk` (scripts/setup.sh does this), or use your TeX distribution.")


def build(tex: Path, out: Path) -> None:
    if not (shutil.which("latexmk") and shutil.which("pdflatex")):
        raise SystemExit(f"error: {INSTALL_HINT}")
    # absolute(), not resolve(): in a sandbox ms.tex is a link, and generated/ must be the sandbox's own
    tex = Path(tex).absolute()
    with tempfile.TemporaryDirectory(prefix="latex-") as build_dir:
        cmd = ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error",
               f"-outdir={build_dir}", tex.name]
        proc = subprocess.run(cmd, cwd=tex.parent, capture_output=True, text=True)
        print(proc.stdout[-20000:])
        if proc.returncode != 0:
            print(proc.stderr[-5000:], file=sys.stderr)
            raise SystemExit(f"error: latexmk failed on {tex} (exit {proc.returncode}); see the log above")
        pdf = Path(build_dir) / (tex.stem + ".pdf")
        atomic_write(Path(out), lambda tmp: shutil.copyfile(pdf, tmp))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m fewlabels.paper", description=__doc__)
    p.add_argument("--tex", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    build(args.tex, args.out)


if __name__ == "__main__":
    main()
