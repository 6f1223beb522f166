"""Training throughput of every registered method on this machine (samples/s and ms/step), and what
one evaluation costs (the classifier on the validation and test sets, as the trainer does each epoch).

Usage: python scripts/benchmark.py [--device auto] [--steps 50] [--threads N] [--methods a b ...] [--tsv FILE]
Builds each method on a real 100-label split (first stages on their own tasks), warms up,
then times `--steps` training steps with the device synchronised around the timed region.
Print a Markdown table to paste into the README; run it before and after a change meant
to be faster. ``--tsv scripts/benchmark_cpu.tsv`` also writes the table that
``python -m fewlabels.report.estimate`` (and scripts/reproduce.sh) reads to say how long a preset takes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from fewlabels import data as D
from fewlabels.methods import METHODS, PRETRAIN, get
from fewlabels.methods.base import resolve_hparams
from fewlabels.training.build import device_name, pick_device, seed_everything
from fewlabels.training.trainer import evaluate

REPO = Path(__file__).resolve().parents[1]


def bench(name: str, device: torch.device, steps: int, workdir: Path) -> tuple[float, float, float]:
    spec = METHODS.get(name) or PRETRAIN[name]
    labels = None if name in PRETRAIN else 100
    split = workdir / f"{spec.task}-{labels}.npz"
    if not split.exists():
        D.make_split(REPO / "resources/mnist.npz", split, spec.task, labels, seed=0)
    seed_everything(0)
    data = D.load_task(REPO / "resources/mnist.npz", split, device)
    gen = torch.Generator(device=device)
    gen.manual_seed(0)
    pretrained = None
    if getattr(spec, "pretrain", None):
        # a second stage needs a first-stage payload: export an untrained first stage
        first = get(spec.pretrain)
        fsplit = workdir / f"{PRETRAIN[spec.pretrain].task}-all.npz"
        if not fsplit.exists():
            D.make_split(REPO / "resources/mnist.npz", fsplit, PRETRAIN[spec.pretrain].task, None, seed=0)
        fdata = D.load_task(REPO / "resources/mnist.npz", fsplit, device)
        f = first(resolve_hparams(first, {}), fdata, device, gen)
        pretrained = f.payload()
    cls = get(name)
    m = cls(resolve_hparams(cls, {}), data, device, gen, pretrained)
    for _ in range(5):
        m.train_step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        m.train_step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    dt = time.perf_counter() - t0
    clf = m.classifier()
    evaluate(m, clf, data)  # warm-up
    t0 = time.perf_counter()
    evaluate(m, clf, data)  # one epoch's evaluation, as fewlabels.training.trainer.run does it
    eval_ms = 1000 * (time.perf_counter() - t0)  # evaluate() returns host numbers: synchronised
    return steps * m.samples_per_step() / dt, 1000 * dt / steps, eval_ms


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--methods", nargs="*", default=None)
    p.add_argument("--tsv", type=Path, default=None, help="also write method, ms_per_step, samples_per_s here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    names = args.methods or [*PRETRAIN, *METHODS]
    print(f"device: {device_name(device)}; torch {torch.__version__}; {args.steps} timed steps\n")
    print("| method | samples/s | ms/step | evaluation (ms) |\n|---|---:|---:|---:|")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            sps, ms, eval_ms = bench(name, device, args.steps, Path(tmp))
            rows.append(f"{name}\t{ms:.2f}\t{sps:.0f}\t{eval_ms:.0f}")
            print(f"| {name} | {sps:,.0f} | {ms:.2f} | {eval_ms:,.0f} |", flush=True)
    if args.tsv:
        header = (f"# scripts/benchmark.py on {device_name(device)}, torch {torch.__version__}, "
                  f"{args.steps} timed steps, default hyperparameters; eval_ms: one epoch's evaluation "
                  "(validation + test)\nmethod\tms_per_step\tsamples_per_s\teval_ms\n")
        D.atomic_write(args.tsv, lambda t: t.write_text(header + "\n".join(rows) + "\n"))


if __name__ == "__main__":
    main()
