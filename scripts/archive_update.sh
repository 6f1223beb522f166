#!/usr/bin/env bash
# Merge re-runs of some cells into a preset's archive, without re-running the rest: re-run the cells a
# change touches first (snakemake <their metrics.json> --configfile <preset>, with --forcerun where
# their outputs exist), then
#   bash scripts/archive_update.sh presets/seeds.yaml results/runs/<task>/<name>/n<labels>/seed<s>/metrics.json ...
# (PRESET may name several config files, merged in order as Snakemake's --configfile does, in one
# quoted argument: "presets/compare.yaml presets/overlay.yaml".)
# (first stages: results/pretrain/<stage>/seed<s>/metrics.json; a run of a group job, group_runs, takes its
# group's benchmark file, shared among the group's runs named here). Their rows replace the archived rows of
# the same runs in metrics.csv and benchmarks.csv, their files that the archive holds replace the
# archived ones, what a whole archive would hold of them joins it (rule archive_list: history.csv, and
# the checkpoints and metrics.json that figures read), the archive's config.yaml becomes the preset's,
# and MANIFEST.tsv notes the code versions.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:?usage: archive_update.sh "PRESET.yaml [OVERLAY.yaml...]" METRICS.json...}; shift
read -r -a configs <<< "$preset"
[ $# -gt 0 ] || { echo "name the re-runs' metrics.json files" >&2; exit 2; }
PY=${PYTHON:-python}
snakemake results/config.json results/archive_inputs.txt --cores 1 --configfile "${configs[@]}" \
    --forcerun config_json archive_list --quiet rules >/dev/null
read -r archive name < <($PY -c "import json; c = json.load(open('results/config.json')); print(c['archive_dir'], c['preset'])")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pairs=() files=()
for m in "$@"; do
    [ -f "$m" ] || { echo "error: $m does not exist (run that cell first)" >&2; exit 2; }
    dir=$(dirname "$m")
    case "$dir" in
        results/runs/*) bench="benchmarks/train/${dir#results/runs/}.tsv"
            group="benchmarks/train_group/$(dirname "${dir#results/runs/}").tsv" ;;
        results/pretrain/*) bench="benchmarks/pretrain/${dir#results/pretrain/}.tsv"
            group="benchmarks/pretrain_group/$(dirname "${dir#results/pretrain/}").tsv" ;;
        *) echo "error: $m is not a run's metrics.json under results/runs or results/pretrain" >&2; exit 2 ;;
    esac
    # a run trained in a group job (group_runs: every seed in one process) has its group's benchmark file,
    # which report.benchmarks shares among the runs given with it
    if [ ! -f "$bench" ] && [ -f "$group" ]; then bench=$group; fi
    [ -f "$bench" ] || { echo "error: $m has no benchmark file ($bench; nor $group for a group job)" >&2; exit 2; }
    pairs+=("$m" "$bench")
    rel=${dir#results/}
    while IFS= read -r f; do files+=("results/$f"); done < <(cut -f1 "$archive/MANIFEST.tsv" | grep "^$rel/" || true)
    # and what a whole archive would hold of this run (rule archive_list: its history.csv, and the
    # checkpoints and metrics.json that figures read), held before or not
    while IFS= read -r f; do
        printf '%s\n' "${files[@]}" | grep -qx "$f" && continue
        if [ -f "$f" ]; then files+=("$f"); else echo "warning: $f is not here, so the archive goes without it" \
            "(an archive-mode build leaves out the figures that read it)" >&2; fi
    done < <(grep "^$dir/" results/archive_inputs.txt || true)
done
$PY -m fewlabels.report.aggregate --preset "$name" --out "$tmp/metrics.csv" "$@"
$PY -m fewlabels.report.benchmarks collect --out "$tmp/benchmarks.csv" "${pairs[@]}"
$PY -m fewlabels.archive update --archive "$archive" --config results/config.json --metrics "$tmp/metrics.csv" \
    --benchmarks "$tmp/benchmarks.csv" "${files[@]}"
tail -1 "$archive/MANIFEST.tsv"
