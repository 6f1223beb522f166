#!/usr/bin/env bash
# Reproduce the paper: set up, then run the whole workflow.
# Usage: bash scripts/reproduce.sh [paper|seeds|quick|smoke] [extra snakemake arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
preset=${1:-paper}
shift || true
args=()
if [ "$preset" != paper ]; then
    [ -f "presets/$preset.yaml" ] || { echo "unknown preset '$preset': choose paper, seeds, quick or smoke" >&2; exit 2; }
    args+=(--configfile "presets/$preset.yaml")
fi
export PATH="$PWD/.venv/bin:$PATH"  # rules call `python`: the venv's
# How many training jobs and how long, on this machine (scripts/benchmark_cpu.tsv); on a machine
# without CUDA the paper preset gets a warning that points to quick, seeds and the archive mode.
cfgs=()
[ "${#args[@]}" -gt 0 ] && cfgs=(--configfile "${args[1]}")
estimate() {
    PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" python -m fewlabels.report.estimate "${cfgs[@]}" \
        || echo "(no time estimate: fewlabels.report.estimate failed)" >&2
}
# profiles/default (cores, rerun-incomplete, the gpu limit) is read by snakemake itself.
dry=false
for a in "$@"; do case "$a" in -n|--dry-run|--dryrun) dry=true ;; esac; done
if $dry; then
    # A dry run lists the job counts, not every job (printshellcmds makes that 1,500 lines for
    # quick), and ends with the estimate, where the reader looks.
    snakemake --quiet rules "${args[@]}" "$@"
    estimate
else
    estimate
    exec snakemake "${args[@]}" "$@"
fi
