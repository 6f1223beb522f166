"""The tables of the Snakemake report (``snakemake --report report.html``): the results
(mean ± std per task, method and budget, then every run) and the cost of the runs, as
stand-alone HTML pages. The figures enter the report directly from their rules.
"""

from __future__ import annotations

import argparse
import html
from pathlib import Path

import pandas as pd

from ..files import atomic_write
from . import benchmarks
from .tables import summary

RUN_COLUMNS = ["task", "method", "labels", "seed", "test_accuracy", "test_errors", "val_accuracy", "wall_s",
               "samples_per_s", "device_name"]


def page(title: str, sections: list[tuple[str, pd.DataFrame]]) -> str:
    body = "".join(f"<h2>{html.escape(h)}</h2>\n" + df.to_html(index=False, na_rep="–", float_format="{:.2f}".format,
                                                                 border=0, classes="table")
                   for h, df in sections)
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif} table{border-collapse:collapse} "
            "td,th{padding:2px 8px;text-align:right;border-bottom:1px solid #ddd}</style></head>\n"
            f"<body><h1>{html.escape(title)}</h1>\n{body}</body></html>\n")


def metrics_page(df: pd.DataFrame) -> str:
    s = summary(df).rename(columns={"mean": "accuracy % (mean)", "std": "std", "n": "seeds",
                                    "errors": "test errors (mean)", "wall": "wall s (mean)"})
    runs = df[[c for c in RUN_COLUMNS if c in df.columns]].copy()
    for c in ("test_accuracy", "val_accuracy"):  # percent, like the summary, so 2 decimals lose nothing
        runs[c] = 100 * runs[c]
    runs = runs.rename(columns={"test_accuracy": "test accuracy %", "val_accuracy": "val accuracy %"})
    return page("Test accuracy", [("Mean ± std over seeds", s), ("Every run", runs)])


def benchmarks_page(df: pd.DataFrame) -> str:
    s = benchmarks.summary(df).rename(columns={"wall_mean": "wall s (mean)", "wall_max": "wall s (max)",
                                               "rss_max": "peak RSS MB", "samples_per_s": "samples/s"})
    return page("Cost of the runs", [("Per method and device", s), ("Every job", df)])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m fewlabels.report.snakemake_report", description=__doc__)
    p.add_argument("--metrics", required=True, type=Path)
    p.add_argument("--benchmarks", required=True, type=Path)
    p.add_argument("--out-metrics", required=True, type=Path)
    p.add_argument("--out-benchmarks", required=True, type=Path)
    args = p.parse_args(argv)
    m = metrics_page(pd.read_csv(args.metrics, dtype={"labels": str}))
    b = benchmarks_page(pd.read_csv(args.benchmarks, dtype={"labels": str}))
    atomic_write(args.out_metrics, lambda tmp: tmp.write_text(m))
    atomic_write(args.out_benchmarks, lambda tmp: tmp.write_text(b))


if __name__ == "__main__":
    main()
