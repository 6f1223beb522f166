"""Collect every run's ``metrics.json`` into one tidy ``results/metrics.csv`` (one row per run).

Rows come from the files' own contents (the run's resolved configuration), never
from their paths.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from .data import atomic_write

COLUMNS = ["task", "method", "base_method", "labels", "seed", "stage", "test_accuracy", "test_errors", "n_test",
           "val_accuracy", "wall_s", "train_s", "samples_per_s", "device", "device_name", "torch",
           # provenance (fewlabels.provenance): what decides the bits besides the seed, and the code
           "cpu_capability", "cpu_model", "blas", "mkl", "onednn", "gpu", "code_sha256", "code_git",
           "split_sha256", "path"]
PROVENANCE = ("cpu_capability", "cpu_model", "blas", "mkl", "onednn", "gpu", "code_sha256", "code_git")


def row(path: Path) -> dict:
    m = json.loads(Path(path).read_text())
    results = dict(m["results"])
    # the final model re-evaluated with each evaluation-only quirk flipped (train.eval_variants)
    for name, entry in (results.pop("eval_variants", None) or {}).items():
        for k, v in entry.items():
            if k.endswith("_accuracy"):
                results[f"eval_{name}_{k}"] = v
    r = {**m["run"], **results, **m["timing"], "n_test": m["data"]["n_test"],
         "split_sha256": m["data"]["split_sha256"], "device": m["env"]["device"],
         "device_name": m["env"]["device_name"], "torch": m["env"]["torch"], "path": str(path),
         # metrics files written before provenance was recorded leave these empty
         **{k: m["env"].get(k) for k in PROVENANCE}}
    r["labels"] = "all" if r["labels"] is None else int(r["labels"])
    return r


def collect(paths) -> pd.DataFrame:
    rows = [row(p) for p in paths]
    if not rows:
        raise SystemExit("error: no metrics.json given; the grid in the config is empty")
    df = pd.DataFrame(rows)
    extra = [c for c in df.columns if c not in COLUMNS]
    return df[[c for c in COLUMNS if c in df.columns] + sorted(extra)]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m fewlabels.aggregate", description=__doc__)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("metrics", nargs="*", type=Path)
    args = p.parse_args(argv)
    df = collect(args.metrics)
    atomic_write(args.out, lambda tmp: df.to_csv(tmp, index=False))
    print(f"wrote {args.out}: {len(df)} runs", file=sys.stderr)


if __name__ == "__main__":
    main()
