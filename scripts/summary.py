"""Markdown tables of a metrics.csv, for the README and issue notes (numbers are read, never typed):

    python scripts/summary.py results/archive/metrics.csv            # per (task, method, labels)
    python scripts/summary.py results/archive-seeds/metrics.csv --scorecard --preset seeds
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from fewlabels.report.claims import Stats, scorecard  # noqa: E402


def runs_table(df: pd.DataFrame) -> str:
    rows = ["| task | method | labels | seeds | test accuracy (%) | validation (%) | wall per run (s) |",
            "|---|---|---:|---:|---:|---:|---:|"]
    for (task, method, labels), g in df.groupby(["task", "method", "labels"], sort=False):
        t, v = Stats.of((100 * g["test_accuracy"]).tolist()), Stats.of((100 * g["val_accuracy"]).tolist())
        fmt = lambda s: f"{s.mean:.2f}" + (f" ± {s.sd:.2f}" if s.n > 1 else "")  # noqa: E731
        rows.append(f"| {task} | {method} | {labels} | {t.n} | {fmt(t)} | {fmt(v)} | {g['wall_s'].mean():.0f} |")
    return "\n".join(rows)


def scorecard_table(df: pd.DataFrame, claims: Path, preset: str) -> str:
    rows = ["| claim | labels | protocol | runs | expected | ours | verdict |", "|---|---|---|---|---|---|---|"]
    for v in scorecard(yaml.safe_load(claims.read_text())["claims"], df, preset):
        ours = v.ours.replace("$\\pm$", "±").replace("\\,", " ").replace("$", "")
        exp = v.expected.replace("$\\approx$", "≈").replace("$\\pm$", "±").replace("$\\geq$", "≥").replace("$", "")
        exp = re.sub(r"\\hspace\{0pt\}\{\\scriptsize (.*)\}", r"\1", exp)  # a `beats` claim names the other method
        rows.append(f"| {v.id} | {v.labels} | {v.protocol} | {v.runs} | {exp} | {ours} | {v.verdict} |")
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("metrics", type=Path)
    p.add_argument("--scorecard", action="store_true")
    p.add_argument("--claims", type=Path, default=Path(__file__).resolve().parents[1] / "paper/claims.yaml")
    p.add_argument("--preset", default="quick")
    a = p.parse_args()
    df = pd.read_csv(a.metrics, dtype={"labels": str})
    print(scorecard_table(df, a.claims, a.preset) if a.scorecard else runs_table(df))


if __name__ == "__main__":
    main()
