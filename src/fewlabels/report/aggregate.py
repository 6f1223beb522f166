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

from ..files import atomic_write

COLUMNS = ["preset", "task", "method", "base_method", "labels", "seed", "stage", "labels_used", "test_accuracy",
           "test_errors", "n_test",
           "val_accuracy", "wall_s", "train_s", "samples_per_s", "device", "precision", "device_name", "torch",
           # provenance (fewlabels.provenance): what decides the bits besides the seed, and the code
           "cpu_capability", "cpu_model", "blas", "mkl", "onednn", "gpu", "code_sha256", "code_git",
           "split_sha256", "path"]
PROVENANCE = ("cpu_capability", "cpu_model", "blas", "mkl", "onednn", "gpu", "code_sha256", "code_git")


def row(path: Path, preset: str | None = None) -> dict:
    m = json.loads(Path(path).read_text())
    results = dict(m["results"])
    # the final model re-evaluated with each evaluation-only quirk flipped (training.trainer.eval_variants)
    for name, entry in (results.pop("eval_variants", None) or {}).items():
        for k, v in entry.items():
            if k.endswith("_accuracy"):
                results[f"eval_{name}_{k}"] = v
    r = {**m["run"], **results, **m["timing"], "n_test": m["data"]["n_test"],
         "split_sha256": m["data"]["split_sha256"], "device": m["env"]["device"],
         "device_name": m["env"]["device_name"], "torch": m["env"]["torch"], "path": str(path),
         # the arithmetic it trained in (fewlabels.precision); runs made before the setting were fp32
         "precision": m["env"].get("precision", "fp32"),
         # metrics files written before provenance was recorded leave these empty
         **{k: m["env"].get(k) for k in PROVENANCE}}
    r["labels"] = "all" if r["labels"] is None else int(r["labels"])
    if preset is not None:
        r["preset"] = preset
    # Labels of every kind the run used (class labels, pair targets; a second stage includes its
    # first stage's); runs made before the trainer counted them have none.
    if "labels_used_total" in m["data"]:
        r["labels_used"] = int(m["data"]["labels_used_total"])
        r.update({f"labels_used_{k}": int(v) for k, v in m["data"].get("labels_used", {}).items()})
    r.update(selection(Path(path).with_name("history.csv")))
    return r


def selection(history: Path) -> dict:
    """What picking an epoch by looking would have reported (the seeds printed test or validation
    accuracy while training and quote a good epoch): the best test epoch, the test accuracy at the best
    validation epoch, and the best validation epoch, beside the final epoch this study reports."""
    if not history.exists():
        return {}
    h = pd.read_csv(history)
    if h.empty or "test_accuracy" not in h or "val_accuracy" not in h:
        return {}
    best_val = h["val_accuracy"].idxmax()  # first of ties: the earliest such epoch
    return {"best_test_accuracy": float(h["test_accuracy"].max()),
            "best_test_epoch": int(h.loc[h["test_accuracy"].idxmax(), "epoch"]),
            "test_at_best_val": float(h.loc[best_val, "test_accuracy"]),
            "best_val_accuracy": float(h["val_accuracy"].max()),
            "best_val_epoch": int(h.loc[best_val, "epoch"])}


def collect(paths, preset: str | None = None) -> pd.DataFrame:
    rows = [row(p, preset) for p in paths]
    if not rows:
        raise SystemExit("error: no metrics.json given; the grid in the config is empty")
    df = pd.DataFrame(rows)
    extra = [c for c in df.columns if c not in COLUMNS]
    return df[[c for c in COLUMNS if c in df.columns] + sorted(extra)]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m fewlabels.report.aggregate", description=__doc__)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--preset", default=None, help="the preset these runs belong to (a column of the table)")
    p.add_argument("metrics", nargs="*", type=Path)
    args = p.parse_args(argv)
    df = collect(args.metrics, args.preset)
    atomic_write(args.out, lambda tmp: df.to_csv(tmp, index=False))
    print(f"wrote {args.out}: {len(df)} runs", file=sys.stderr)


if __name__ == "__main__":
    main()
