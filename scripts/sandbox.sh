#!/usr/bin/env bash
# Make a scratch working directory that runs this checkout's workflow without touching
# its results/ (links to the sources, its own results, logs and paper/generated).
# Usage: bash scripts/sandbox.sh DIR ; cd DIR && ../path/.venv/bin/snakemake --cores 2 ...
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:?usage: sandbox.sh DIR}
mkdir -p "$dir/paper" "$dir/resources"
for f in Snakefile config.yaml presets workflow src tests; do ln -sfn "$repo/$f" "$dir/$f"; done
for f in ms.tex refs.bib claims.yaml original_code.yaml original_code published.yaml; do ln -sfn "$repo/paper/$f" "$dir/paper/$f"; done
[ -f "$repo/resources/mnist.npz" ] && ln -sfn "$repo/resources/mnist.npz" "$dir/resources/mnist.npz"
echo "$dir"
