"""Re-run archived runs on this machine and compare them with the archive.

``python -m fewlabels.rerun --archive results/archive --n 2 [--runs mnist10/supervised/100/0 ...]``

Each chosen run (by default the ``--n`` cheapest training runs of the archive) is trained again
from the archive's configuration (``config.yaml``: the same hyperparameters, pool limit, split
seed) into a temporary folder, on the CPU with one thread; a run that needs a first stage trains
that stage first (the archived first-stage models are half precision, not the originals). Per run
it prints the archived and the new test accuracy, whether they agree bit for bit, and whether
the new accuracy lies within the archive's mean +- 2 sd over seeds for that (task, method, labels)
cell. Same machine, same build, same torch, one thread: expect identical numbers. Another CPU
capability (e.g. AVX512 vs AVX2) makes MKL/oneDNN pick other kernels: expect other numbers, and
judge them against the spread over seeds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from .config import resolve
from .provenance import build_info

REPO = Path(__file__).resolve().parents[2]


def choose(df: pd.DataFrame, n: int, runs: list[str] | None) -> pd.DataFrame:
    train = df[df["stage"] == "train"].copy()
    if runs:
        keys = [tuple(r.split("/")) for r in runs]
        wanted = train[[(t, m, str(b), str(s)) in keys for t, m, b, s in
                        zip(train["task"], train["method"], train["labels"], train["seed"])]]
        missing = set(keys) - {(t, m, str(b), str(s)) for t, m, b, s in
                               zip(wanted["task"], wanted["method"], wanted["labels"], wanted["seed"])}
        if missing:
            raise SystemExit(f"error: not in the archive: {sorted('/'.join(k) for k in missing)} "
                             "(write runs as task/method/labels/seed)")
        return wanted
    return train.sort_values(["wall_s", "task", "method", "labels", "seed"]).head(n)


def spread(df: pd.DataFrame, task: str, method: str, labels) -> tuple[float, float, int]:
    cell = df[(df["stage"] == "train") & (df["task"] == task) & (df["method"] == method)
              & (df["labels"].astype(str) == str(labels))]["test_accuracy"]
    return float(cell.mean()), float(cell.std()) if len(cell) > 1 else float("nan"), len(cell)


def rerun_one(cfg: dict, task: str, method: str, labels: int | None, seed: int, mnist: Path, work: Path,
              stages: dict, log) -> dict:
    from . import data as D
    from .training.trainer import run

    pool_limit = (cfg.get("data") or {}).get("pool_limit")
    r = resolve(cfg, method)
    pretrained = None
    if r.pretrain:
        key = (r.pretrain, seed)
        if key not in stages:
            s = resolve(cfg, r.pretrain)
            split = work / f"splits/{s.task}/nall/seed{seed}.npz"
            D.make_split(mnist, split, s.task, None, seed)
            out = work / f"pretrain/{r.pretrain}/seed{seed}"
            log(f"  first stage {r.pretrain} seed {seed} ...")
            run(method=s.method, name=r.pretrain, task=s.task, labels=None, seed=seed, mnist=mnist, split=split,
                out=out, hparams=s.overrides, device="cpu", pool_limit=pool_limit, log=lambda _: None)
            stages[key] = out / "model.pt"
        pretrained = stages[key]
    split = work / f"splits/{task}/n{labels or 'all'}/seed{seed}.npz"
    if not split.exists():
        D.make_split(mnist, split, task, labels, seed)
    return run(method=r.method, name=method, task=task, labels=labels, seed=seed, mnist=mnist, split=split,
               out=work / f"runs/{task}/{method}/n{labels or 'all'}/seed{seed}", hparams=r.overrides, device="cpu",
               pool_limit=pool_limit, pretrained=pretrained, log=lambda _: None)


def compare(archive: Path, n: int, runs: list[str] | None, mnist: Path, workdir: Path | None = None,
            log=print) -> pd.DataFrame:
    """Re-run the chosen runs; one row per run with the archived and new numbers."""
    import torch

    torch.set_num_threads(1)
    archive = Path(archive)
    df = pd.read_csv(archive / "metrics.csv", dtype={"labels": str})
    cfg = yaml.safe_load((archive / "config.yaml").read_text())
    chosen = choose(df, n, runs)
    here = build_info()
    then = sorted(set(df.get("cpu_capability", pd.Series(dtype=object)).dropna().astype(str))) or ["not recorded"]
    log(f"archive: {len(df)} rows, CPU capability {', '.join(then)}, torch "
        f"{', '.join(sorted(set(df['torch'].astype(str))))}; this machine: {here['cpu_capability']}, "
        f"torch {torch.__version__}, BLAS {here['blas']} {here['mkl'] or ''}, oneDNN {here['onednn']}")
    rows, stages = [], {}
    with tempfile.TemporaryDirectory(prefix="rerun-", dir=workdir) as tmp:
        for _, a in chosen.iterrows():
            # "all": every pool label (a full-label reference run such as seed 003's classifiers)
            task, method, seed = a["task"], a["method"], int(a["seed"])
            labels = None if str(a["labels"]) == "all" else int(a["labels"])
            log(f"re-running {task}/{method}/n{a['labels']}/seed{seed} (archived wall time {a['wall_s']:.0f} s) ...")
            m = rerun_one(cfg, task, method, labels, seed, Path(mnist), Path(tmp), stages, log)
            mean, sd, k = spread(df, task, method, a["labels"])
            new = m["results"]["test_accuracy"]
            within = None if k < 2 else abs(new - mean) <= 2 * sd
            rows.append({"run": f"{task}/{method}/{a['labels']}/{seed}", "archived": a["test_accuracy"], "new": new,
                         "diff_points": round(100 * (new - a["test_accuracy"]), 2),
                         "identical": new == a["test_accuracy"] and m["results"]["val_accuracy"] == a["val_accuracy"],
                         "split_same": m["data"]["split_sha256"] == a["split_sha256"],
                         "seeds_mean": mean, "seeds_sd": sd, "n_seeds": k, "within_2sd": within})
    return pd.DataFrame(rows)


def summary(res: pd.DataFrame) -> str:
    lines = [res.to_string(index=False, float_format=lambda v: f"{v:.4f}")]
    same = int(res["identical"].sum())
    lines.append(f"{same} of {len(res)} run(s) identical to the archive (bit for bit in accuracy).")
    judged = res.dropna(subset=["within_2sd"])
    if len(judged):
        inside = int(judged["within_2sd"].astype(bool).sum())
        lines.append(f"{inside} of {len(judged)} within the archive's mean +- 2 sd over seeds for their cell"
                     + ("" if len(judged) == len(res) else f" ({len(res) - len(judged)} cell(s) have one seed: not judged)"))
    if not res["split_same"].all():
        lines.append("WARNING: some splits differ from the archive's (another MNIST file or split code).")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m fewlabels.rerun", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archive", type=Path, default=REPO / "results" / "archive")
    p.add_argument("--n", type=int, default=2, help="how many runs (the cheapest by archived wall time)")
    p.add_argument("--runs", nargs="*", default=None, help="task/method/labels/seed of the runs to re-run")
    p.add_argument("--mnist", type=Path, default=REPO / "resources" / "mnist.npz")
    p.add_argument("--csv", type=Path, default=None, help="also write the comparison here")
    args = p.parse_args(argv)
    res = compare(args.archive, args.n, args.runs, args.mnist, log=lambda s: print(s, file=sys.stderr, flush=True))
    print(summary(res))
    if args.csv:
        res.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
