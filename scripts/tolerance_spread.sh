#!/usr/bin/env bash
# Run the numerical comparisons (pytest -m numerical) under every CPU capability this machine has and
# under one and two threads, and print which pass: what the tolerances in tests/test_batched.py and
# tests/test_group.py were measured with. Usage: bash scripts/tolerance_spread.sh [pytest args...]
set -uo pipefail
cd "$(dirname "$0")/.."
own=$(.venv/bin/python -c "import torch; print(torch.backends.cpu.get_cpu_capability().lower())")
caps="default avx2"
[ "$own" = avx512 ] && caps="$caps avx512"
for cap in $caps; do
    for threads in 1 2; do
        out=$(ATEN_CPU_CAPABILITY=$cap OMP_NUM_THREADS=$threads .venv/bin/python -m pytest -q -m numerical \
              -p no:cacheprovider "$@" 2>&1 | tail -1)
        printf '%-8s threads=%s  %s\n' "$cap" "$threads" "$out"
    done
done
