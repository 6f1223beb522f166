#!/usr/bin/env bash
# Wheels for the GPU machines (the device tool): their image has Python 3.12 with torch 2.11, numpy,
# pandas, matplotlib, seaborn, scikit-learn and PyYAML, but no Snakemake, and nothing can be fetched
# there. This downloads, here, the packages this project's venv has and that image lacks (Snakemake
# and its dependencies, at the venv's versions) as Python 3.12 x86-64 wheels into .whl/ (ignored by
# git), to carry to the GPU machine and install there with
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
#   export PYTHONPATH=/tmp/site:$PWD/src PATH=/tmp/site/bin:$PATH
# and MNIST as .whl/mnist.npz; scripts/gpu_session.sh does both there.
# Usage: bash scripts/gpu_wheels.sh   (after scripts/setup.sh made .venv and fetched MNIST)
set -euo pipefail
cd "$(dirname "$0")/.."
# What the GPU image holds that the venv also needs (its package list: .library/device/KINDS.md; smart-open,
# which Snakemake imports, is not there: seen on the H200 lent on 2026-12-04).
ON_GPU="torch numpy pandas matplotlib seaborn scikit-learn scipy pyyaml jinja2 markupsafe packaging psutil
 requests urllib3 idna certifi charset-normalizer wrapt tabulate typing-extensions attrs pillow contourpy
 cycler fonttools kiwisolver pyparsing python-dateutil six pytz joblib threadpoolctl filelock fsspec
 networkx sympy mpmath triton pytest pluggy iniconfig pygments setuptools nvidia-.* cuda-.* narwhals
 pip cloudpickle
 pulp"  # pulp (16 MB): only Snakemake's ILP scheduler imports it, and without it Snakemake schedules greedily
skip=$(echo $ON_GPU fewlabels | tr ' ' '\n' | sed 's/.*/^&$/' | paste -sd'|')
mkdir -p .whl
.venv/bin/python -m pip list --format=freeze --exclude-editable 2>/dev/null \
  | awk -F== '{print tolower($1) "==" $2}' | tr '_' '-' | grep -Ev "$(echo "$skip" | sed 's/\^\([^$]*\)\$/^\1==/g')" \
  > .whl/requirements.txt
for req in $(cat .whl/requirements.txt); do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "$req" 2>/dev/null \
  || .venv/bin/python -m pip wheel -q --no-deps -w .whl "$req"  # only a source release: a pure-Python wheel here
done
# MNIST, compressed (11 MB instead of 53; its arrays' hash is what the workflow checks, not the file's)
.venv/bin/python -c "import numpy as np; d = np.load('resources/mnist.npz'); np.savez_compressed('.whl/mnist.npz', **d)"
echo "$(ls .whl/*.whl | wc -l) wheels, $(du -sh .whl | cut -f1), in .whl/ (carry it: run(carry=['.whl']))"
