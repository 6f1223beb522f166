"""Cost of the runs: Snakemake's ``benchmark:`` files of the training jobs, joined with
each run's ``metrics.json`` (which says the device), summarised per method and device.

``python -m fewlabels.report.benchmarks collect --out results/benchmarks.csv RUN_DIR_METRICS BENCH_TSV ...``
takes pairs (metrics.json, benchmark .tsv); ``table`` turns the CSV into the appendix
table ``tab_benchmarks.tex``. Wall time is the job's (``s``: process start to end, data
loading and evaluation included); peak memory is the job's maximum resident set size
(``max_rss``, MB) as Snakemake measured it.

A group job (``group_runs``: several seeds in one process) has one benchmark file for all its runs:
each run is given the group's wall and CPU time divided by the number of runs that share the file
(``runs_per_job``), and the group's peak memory.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from ..files import atomic_write
from .common import METHOD_ORDER
from .latex import fit, styled

COLUMNS = ["stage", "task", "method", "labels", "seed", "device", "device_name", "wall_s", "max_rss_mb",
           "cpu_time_s", "train_s", "samples_per_s", "runs_per_job"]


def read_benchmark(path: Path) -> dict:
    """The last row of a Snakemake benchmark TSV (one row per repeat; we run each job once)."""
    df = pd.read_csv(path, sep="\t")
    missing = {"s", "max_rss"} - set(df.columns)
    if df.empty or missing:
        raise ValueError(f"{path}: not a Snakemake benchmark file (missing columns {sorted(missing)} or no rows)")
    r = df.iloc[-1]
    # Snakemake writes "-" when it could not measure a value (e.g. a job shorter than its sampling step).
    num = lambda k: pd.to_numeric(r.get(k), errors="coerce")  # noqa: E731
    return {"wall_s": num("s"), "max_rss_mb": num("max_rss"), "cpu_time_s": num("cpu_time")}


def row(metrics: Path, benchmark: Path, share: int = 1) -> dict:
    """One run's cost; ``share``: how many runs the benchmark's job trained (its time is split evenly)."""
    m = json.loads(Path(metrics).read_text())
    run = m["run"]
    cost = read_benchmark(benchmark)
    cost["wall_s"], cost["cpu_time_s"] = cost["wall_s"] / share, cost["cpu_time_s"] / share
    return {"stage": run["stage"], "task": run["task"], "method": run["method"],
            "labels": "all" if run["labels"] is None else int(run["labels"]), "seed": run["seed"],
            "device": m["env"]["device"], "device_name": m["env"]["device_name"],
            **cost, "train_s": m["timing"]["train_s"],
            "samples_per_s": m["timing"]["samples_per_s"], "runs_per_job": share}


def collect(pairs) -> pd.DataFrame:
    if not pairs:
        raise ValueError("no (metrics.json, benchmark.tsv) pairs given")
    shares = pd.Series([str(b) for _, b in pairs]).value_counts()
    return pd.DataFrame([row(m, b, int(shares[str(b)])) for m, b in pairs], columns=COLUMNS)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per (stage, method, device): runs, mean and max wall time, peak memory, mean throughput."""
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    g = df.groupby(["stage", "method", "device"], sort=False)
    s = g.agg(runs=("wall_s", "size"), wall_mean=("wall_s", "mean"), wall_max=("wall_s", "max"),
              rss_max=("max_rss_mb", "max"), samples_per_s=("samples_per_s", "mean")).reset_index()
    s["_o"] = s["method"].map(lambda m: order.get(m, len(order)))
    s["_s"] = s["stage"].map({"pretrain": 0, "train": 1})
    return s.sort_values(["_s", "_o", "method", "device"]).drop(columns=["_o", "_s"]).reset_index(drop=True)


def _num(v, fmt: str) -> str:
    return "--" if pd.isna(v) else format(v, fmt)


def table(df: pd.DataFrame) -> str:
    """Booktabs table (pandas Styler): one row per (stage, method, device); CPU and GPU rows side by
    side when both exist; shrunk to the text width when wider."""
    s = summary(df)
    rows = pd.DataFrame({
        "stage": s["stage"].astype(str), "method": s["method"].astype(str),
        "device": s["device"].astype(str).str.upper(), "runs": s["runs"].astype(str),
        "wall (s)": [_num(v, ".1f") for v in s["wall_mean"]], "max wall (s)": [_num(v, ".1f") for v in s["wall_max"]],
        "peak RSS (MB)": [_num(v, ".0f") for v in s["rss_max"]],
        "samples/s": [_num(v, ".0f") for v in s["samples_per_s"]]})
    return fit(styled(rows, "lllrrrrr", escape=["stage", "method", "device"])) + "\\par\n" + total(df) + "\n"


def total(df: pd.DataFrame) -> str:
    """The whole preset's cost in one sentence: hours of jobs' wall time per device, and how many jobs."""
    parts = []
    for dev, g in df.groupby(df["device"].astype(str).map(lambda d: "GPU" if d == "cuda" else d.upper()), sort=True):
        hours = g["wall_s"].sum() / 3600  # a group job's wall time is shared out among its runs (runs_per_job)
        parts.append(f"{hours:.1f} {dev}-hours over {len(g)} runs")
    return r"{\footnotesize In all: " + "; ".join(parts) + r" (the jobs' wall time summed; a job on the CPU " \
        r"used one thread).\par}"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m fewlabels.report.benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect", help="join benchmark TSVs with metrics.json into one CSV")
    c.add_argument("--out", required=True, type=Path)
    c.add_argument("files", nargs="*", type=Path, help="metrics.json and benchmark .tsv, alternating")
    t = sub.add_parser("table", help="the appendix table from the CSV")
    t.add_argument("--benchmarks", required=True, type=Path)
    t.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    try:
        if args.cmd == "collect":
            if len(args.files) % 2:
                raise ValueError("files must come in (metrics.json, benchmark.tsv) pairs")
            df = collect(list(zip(args.files[::2], args.files[1::2])))
            atomic_write(args.out, lambda tmp: df.to_csv(tmp, index=False))
            print(f"wrote {args.out}: {len(df)} jobs", file=sys.stderr)
        else:
            text = table(pd.read_csv(args.benchmarks, dtype={"labels": str}))
            atomic_write(args.out, lambda tmp: tmp.write_text(text))
    except (ValueError, FileNotFoundError, KeyError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
