#!/usr/bin/env bash
# What a session lent a GPU machine (the device tool) runs there, one step per call (each within the
# tool's 10 minutes; results/ and the installed packages stay while the machine is warm).
# Here, first: bash scripts/gpu_wheels.sh, then call the tool with carry=['.whl'] and
#   bash scripts/gpu_session.sh STEP
# STEP: tests  the CUDA tests (batched == single runs, group capture == eager, resume) and the trainer's
#       bench  scripts/benchmark.py and scripts/benchmark_batched.py on CUDA (tables into $OUT)
#       group  a short supervised group through Snakemake (group_runs, stacked and captured) into $OUT
#       compare  every stacked method's group against its runs alone on a shortened schedule (time, and the
#                paired test-accuracy difference with its interval: benchmark_group.py) into $OUT
#       probe  the CUDA tests of stacked, captured groups (sgan and sgan-fm among them), then the four
#              compare groups of issue 25 (sgan and sgan-fm at 100 and 1,000 labels, 3 seeds stacked)
#              at once for 2 short epochs: seconds a step with the GPU shared as `cells` shares it
#       cells  those four groups through Snakemake with the compare preset's schedules (group_runs),
#              their metrics, histories, benchmarks, logs and first-seed checkpoints back as
#              $OUT/compare-cells.tgz (CELLS_METHODS="sgan", CELLS_LABELS="1000": fewer)
#       paper  the paper preset through the bare command (grouped, stacked and captured by default on CUDA) up
#              to its archive, in one <= 9-minute chunk per call: call it again until $OUT/paper_done appears;
#              each chunk's wall time is added to results/paper_wall.txt (copied into $OUT); after every chunk
#              the metrics, histories and benchmark files so far come back as $OUT/paper-so-far.tgz, and the
#              archive as $OUT/archive-paper.tgz at the end
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d /tmp/site/snakemake ] || [ ! -d /tmp/site/smart_open ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site:$PWD/src PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
mkdir -p resources
[ -f resources/mnist.npz ] || python3 -c "
import numpy as np; d = np.load('.whl/mnist.npz'); np.savez('resources/mnist.npz', **d)"
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/device.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$OUT/device.txt"
case "${1:-}" in
  tests)
    python3 -m pytest -q -p no:cacheprovider tests/test_batched.py tests/test_group.py tests/test_train.py \
      tests/test_resume.py 2>&1 | tee "$OUT/tests.txt" ;;
  bench)
    python3 scripts/benchmark_batched.py --device cuda --steps 50 --runs 1 5 20 \
      --methods supervised linear conv aae sgan sgan-fm siamese-pairs | tee "$OUT/benchmark_batched.md"
    python3 scripts/benchmark.py --device cuda --steps 50 | tee "$OUT/benchmark.md" ;;
  group)
    cat > /tmp/group.yaml <<'YAML'
seeds: [0, 1, 2, 3, 4]
group_runs: true
grid:
  - {task: mnist10, labels: [100], methods: [supervised]}
methods:
  supervised: {epochs: 5, steps_per_epoch: 100}
YAML
    SLURM_CONF=/dev/null snakemake --cores 8 --resources gpu=1 --configfile /tmp/group.yaml \
      results/metrics.csv results/benchmarks.csv 2>&1 | tail -20
    cp results/metrics.csv results/benchmarks.csv "$OUT/"
    cp logs/train_group/mnist10/supervised/n100.log "$OUT/group.log" ;;
  compare)
    python3 scripts/benchmark_group.py --device cuda --stack on --seeds 5 --epochs 2 --steps 200 \
      --methods supervised aae sgan sgan-fm siamese-pairs siamese transfer linear conv ae conv-ae \
      2>&1 | tee "$OUT/compare.md" ;;
  probe)
    timeout 200 python3 -m pytest -q -p no:cacheprovider tests/test_group.py tests/test_batched.py -k cuda \
      2>&1 | tee "$OUT/probe_tests.txt" | tail -15 || true
    SLURM_CONF=/dev/null snakemake results/splits/mnist10/n{100,1000}/seed{0,1,2}.npz \
      --cores 4 --quiet rules --configfile presets/compare.yaml > /dev/null
    for m in "sgan-fm 600" "sgan 200"; do
      set -- $m
      for n in 100 1000; do
        python3 -m fewlabels.training --method "$1" --task mnist10 --labels $n --seed 0 1 2 --stack on \
          --mnist resources/mnist.npz --split results/splits/mnist10/n$n/seed{0,1,2}.npz \
          --out /tmp/probe/$1/n$n/seed{0,1,2} --hparams "{\"epochs\": 2, \"steps_per_epoch\": $2}" \
          --device cuda --threads 1 > "/tmp/probe-$1-$n.log" 2>&1 &
      done
    done
    wait
    for f in /tmp/probe-*.log; do echo "== $f"; tail -4 "$f"; done | tee "$OUT/probe_groups.txt"
    python3 - <<'PY' | tee -a "$OUT/probe_groups.txt"
import pandas as pd, glob
for f in sorted(glob.glob("/tmp/probe/*/*/seed0/history.csv")):
    h = pd.read_csv(f)
    steps = h.step.iloc[-1] - h.step.iloc[0]
    print(f, "ms/step (3 runs stacked, 4 groups at once, epoch 2):",
          round(1000 * (h.train_s.iloc[-1] - h.train_s.iloc[0]) / steps * 3, 2), "val", h.val_accuracy.tolist())
PY
    python3 -m fewlabels.training --method sgan-fm --task mnist10 --labels 100 --seed 0 --stack off \
      --mnist resources/mnist.npz --split results/splits/mnist10/n100/seed0.npz --out /tmp/probe/alone \
      --hparams '{"epochs": 2, "steps_per_epoch": 300}' --device cuda --threads 1 > /tmp/probe-alone.log 2>&1
    python3 -c "import pandas as pd; h = pd.read_csv('/tmp/probe/alone/history.csv'); print('sgan-fm alone, eager, ms/step:', round(1000 * (h.train_s.iloc[-1] - h.train_s.iloc[0]) / 300, 2))" \
      | tee -a "$OUT/probe_groups.txt" ;;
  cells)
    t0=$(date +%s)
    set +e
    SLURM_CONF=/dev/null timeout --signal=TERM --kill-after=20 ${CELLS_LIMIT:-500} snakemake \
      $(for m in ${CELLS_METHODS:-sgan sgan-fm}; do for n in ${CELLS_LABELS:-100 1000}; do echo results/runs/mnist10/$m/n$n/seed{0,1,2}/metrics.json; done; done) \
      --cores 8 --resources gpu=8 \
      --keep-going --configfile presets/compare.yaml --config group_runs=true > "$OUT/cells.log" 2>&1
    rc=$?
    set -e
    echo "cells: rc=$rc after $(( $(date +%s) - t0 )) s" | tee -a "$OUT/cells.log"
    tail -25 "$OUT/cells.log"
    for f in logs/train_group/mnist10/*/*.log; do echo "== $f"; tail -3 "$f"; done
    # (with the first seed's checkpoints at 1,000 labels, which the GAN samples figure reads: the
    # 2026-12-04 run came back without them)
    tar czf "$OUT/compare-cells.tgz" results/runs/mnist10/sgan*/n*/seed*/{metrics.json,history.csv} \
      results/runs/mnist10/sgan*/n1000/seed0/model.pt \
      benchmarks/train_group logs/train_group 2>/dev/null || true
    ls -la "$OUT" ;;
  paper)
    t0=$(date +%s)
    set +e
    SLURM_CONF=/dev/null timeout --signal=TERM --kill-after=20 520 snakemake --cores all \
      archive --config archive_dir=results/archive-paper > "$OUT/paper_chunk.log" 2>&1
    rc=$?
    set -e
    echo "$(( $(date +%s) - t0 )) s rc=$rc $(date -u +%FT%TZ)" >> results/paper_wall.txt
    cp results/paper_wall.txt "$OUT/"
    tail -30 "$OUT/paper_chunk.log"
    awk '{s += $1} END {print "paper preset so far:", s, "s of chunks"}' results/paper_wall.txt
    tar czf "$OUT/paper-so-far.tgz" --exclude='*.pt' results/runs results/pretrain benchmarks 2>/dev/null || true
    if [ "$rc" = 0 ] && [ -d results/archive-paper ]; then
      tar czf "$OUT/archive-paper.tgz" -C results archive-paper && touch "$OUT/paper_done"
    fi ;;
  *) echo "usage: bash scripts/gpu_session.sh tests|bench|group|compare|probe|cells|paper" >&2; exit 2 ;;
esac
