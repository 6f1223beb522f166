"""One process per run against one process per group of runs (``group_runs``): the cost of whole jobs.

Usage: python scripts/benchmark_group.py [--methods linear ae transfer siamese] [--seeds 5]
                                         [--threads 1] [--device cpu] [--stack off on] [--epochs N] [--steps N]

For each method, the paper preset's schedule (config.yaml's ``methods:`` overrides on the method's
defaults) at its smallest budget there, ``--seeds`` seeds, three ways: one
``python -m fewlabels.training`` process per seed, one after another (rule ``train``); one process for
all seeds (``--seed 0 1 ...``, rule ``train_group``) with each ``--stack`` setting the method allows.
Times whole processes, as Snakemake's benchmark files do (start-up, reading MNIST, training,
evaluation, writing files): wall clock and the children's CPU time (the one to read on a machine
whose cores other work also wants). First stages are trained once, untimed, on a few steps
(a second stage's cost does not depend on its first stage's weights). A first stage in ``--methods``
(e.g. ``siamese-pairs``) is timed itself, on every pool label.

Each grouped path is also compared with the one-run path on the same seeds (the issue's "statistically
indistinguishable"): the paired difference of test accuracy, group - alone, in points, its mean and 95 %
t-interval over the seeds. On the CPU a group equals its runs alone up to float sums; on CUDA the
stacked runs draw their dropout and noise from per-run generators (other numbers of the same
distribution), so there the interval is the test. ``--epochs N`` (``--steps M``) shortens every
schedule to N epochs (of M steps). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from fewlabels import data as D  # noqa: E402
from fewlabels.methods import METHODS, PRETRAIN  # noqa: E402
from fewlabels.report.claims import Stats  # noqa: E402
from fewlabels.methods.stacked import STACKABLE  # noqa: E402

MNIST = REPO / "resources" / "mnist.npz"


def cli(method: str, task: str, labels, seeds, splits, outs, hparams: dict, args, pretrained=None,
        stack: str | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "fewlabels.training", "--method", method, "--task", task,
           "--labels", "all" if labels is None else str(labels),
           "--mnist", str(MNIST), "--hparams", json.dumps(hparams), "--device", args.device,
           "--threads", str(args.threads), "--seed", *map(str, seeds), "--split", *map(str, splits),
           "--out", *map(str, outs)]
    if pretrained:
        cmd += ["--pretrained", *map(str, pretrained)]
    if stack:
        cmd += ["--stack", stack]
    return cmd


def timed(cmds: list[list[str]]) -> tuple[float, float]:
    """Wall seconds and children's CPU seconds of running ``cmds`` one after another."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    for cmd in cmds:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if p.returncode:
            sys.exit(f"failed: {' '.join(cmd)}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - t0, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", nargs="+", default=["linear", "ae", "transfer", "siamese"])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--stack", nargs="+", default=["off", "on"], choices=["off", "on"])
    p.add_argument("--epochs", type=int, default=None, help="shorten every schedule to this many epochs")
    p.add_argument("--steps", type=int, default=None, help="and each epoch to this many steps")
    args = p.parse_args(argv)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    seeds = list(range(args.seeds))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for method in args.methods:
            spec = METHODS.get(method) or PRETRAIN[method]
            if method in PRETRAIN:
                labels, hp = None, dict(config.get("pretrain", {}).get(method) or {})
            else:
                budgets = [b for block in config["grid"] if method in block["methods"] for b in block["labels"]]
                labels = min(b for b in budgets if b != "all")
                hp = dict(config.get("methods", {}).get(method) or {})
            if args.epochs:
                hp["epochs"] = args.epochs
                hp.pop("lr_decay_epochs", None)  # a schedule's milestones past the shortened end
            if args.steps:
                hp["steps_per_epoch"] = args.steps
                hp.pop("min_steps_per_epoch", None)
            splits = []
            for s in seeds:
                splits.append(tmp / f"{spec.task}-{labels or 'all'}-{s}.npz")
                if not splits[-1].exists():
                    D.make_split(MNIST, splits[-1], spec.task, labels, seed=s)
            pretrained = None
            if spec.pretrain:
                stage = PRETRAIN[spec.pretrain]
                fsplits = [tmp / f"{stage.task}-all-{s}.npz" for s in seeds]
                for s, f in zip(seeds, fsplits):
                    D.make_split(MNIST, f, stage.task, None, seed=s)
                pdirs = [tmp / "pre" / spec.pretrain / str(s) for s in seeds]
                timed([cli(spec.pretrain, stage.task, "all", seeds, fsplits, pdirs,
                           {"epochs": 1, "steps_per_epoch": 5}, args)])
                pretrained = [d / "model.pt" for d in pdirs]
            outs = lambda way: [tmp / way / method / str(s) for s in seeds]  # noqa: E731
            alone = timed([cli(method, spec.task, labels, [s], [sp], [o], hp, args, pre and [pre])
                           for s, sp, o, pre in zip(seeds, splits, outs("alone"), pretrained or [None] * len(seeds))])
            rows.append((method, labels or "all", "one process per run", alone, alone, None))
            print(f"{method}: alone {alone[0]:.1f} s wall, {alone[1]:.1f} CPU s", flush=True)
            for stack in args.stack:
                if stack == "on" and method not in STACKABLE:
                    continue
                got = timed([cli(method, spec.task, labels, seeds, splits, outs(f"group-{stack}"), hp, args,
                                 pretrained, stack)])
                rows.append((method, labels or "all", f"one process, stack {stack}", got, alone,
                             agreement(outs(f"group-{stack}"), outs("alone"))))
                print(f"{method}: group stack {stack} {got[0]:.1f} s wall, {got[1]:.1f} CPU s", flush=True)
    print(f"\n{args.seeds} seeds, {args.threads} thread(s), device {args.device}; whole processes\n")
    print("| method | labels | path | wall s | CPU s | CPU s per run | vs one process per run (CPU) | "
          "vs one per run (wall) | test acc. group - alone, points (95 % CI) |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---|")
    for method, labels, path, (wall, cpu), (wall_alone, cpu_alone), agree in rows:
        print(f"| {method} | {labels} | {path} | {wall:.1f} | {cpu:.1f} | {cpu / args.seeds:.2f} | "
              f"{cpu_alone / cpu:.2f}x | {wall_alone / wall:.2f}x | {agree or ''} |")


def agreement(group: list[Path], alone: list[Path]) -> str:
    """Paired test-accuracy difference (points), group - alone, over the seeds: mean [95 % t-interval]."""
    acc = [[json.loads((d / "metrics.json").read_text())["results"]["test_accuracy"] for d in ds]
           for ds in (group, alone)]
    s = Stats.of([100 * (a - b) for a, b in zip(*acc)])
    if s.lo is None:
        return f"{s.mean:+.2f}"
    return f"{s.mean:+.2f} [{s.lo:+.2f}, {s.hi:+.2f}]"


if __name__ == "__main__":
    main()
