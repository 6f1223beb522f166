#!/usr/bin/env bash
# Set up everything fewlabels needs on a fresh machine: a virtual environment in .venv with
# the pinned packages, and LaTeX from Debian when it is missing and we are root.
# Idempotent: a second call only checks. Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $($PY --version)"
    "$PY" -m venv .venv
fi
stamp=.venv/.fewlabels-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "[setup] installing the package and its pinned dependencies (torch==2.13.0 CPU wheel where offered)"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".[test]"
    touch "$stamp"
fi

if ! command -v latexmk >/dev/null || ! command -v pdflatex >/dev/null || ! command -v pdftotext >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "[setup] installing LaTeX (and pdftotext, which the tests use) from Debian (about a minute)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends texlive-latex-base texlive-latex-extra \
            texlive-fonts-recommended latexmk poppler-utils >/dev/null
    else
        echo "[setup] LaTeX (pdflatex + latexmk) is missing and I cannot install it here." >&2
        echo "        Install it with: sudo apt-get install texlive-latex-base texlive-latex-extra texlive-fonts-recommended latexmk" >&2
        echo "        (or your TeX distribution); everything but the PDF works without it." >&2
    fi
fi
echo "[setup] ready: $(.venv/bin/python -c 'import torch, snakemake; print("torch", torch.__version__, "/ snakemake", snakemake.__version__)')"
