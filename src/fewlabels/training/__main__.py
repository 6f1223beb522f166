"""The training CLI, ``python -m fewlabels.training``: one run (one ``--seed``) or a group of runs in one
process (several seeds: one after another, or stacked), each writing metrics.json, history.csv, model.pt.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from ..data import DataError
from ..methods.base import DivergedError, HParamError
from .group import run_group
from .trainer import run


def _per_run(values: list | None, n: int, flag: str) -> list:
    """A per-run CLI list: one value per --seed (or none at all)."""
    if not values:
        return [None] * n
    if len(values) != n:
        raise HParamError(f"{flag} takes one value per --seed: {n} seed(s), {len(values)} value(s)")
    return values


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m fewlabels.training", description=__doc__)
    p.add_argument("--method", required=True, help="a registered method or first stage")
    p.add_argument("--name", default=None, help="the run's name when it is a named variant of --method")
    p.add_argument("--task", required=True)
    p.add_argument("--labels", required=True, help="label budget, or 'all' (every pool image: a first stage, or a full-label run)")
    p.add_argument("--seed", required=True, type=int, nargs="+",
                   help="one seed, or several: a group of runs in one process (--split, --out, --checkpoint "
                        "and --pretrained then take one value per seed)")
    p.add_argument("--mnist", required=True, type=Path)
    p.add_argument("--split", required=True, type=Path, nargs="+")
    p.add_argument("--out", required=True, type=Path, nargs="+", help="folder for metrics.json, history.csv, model.pt")
    p.add_argument("--hparams", default="{}", help="JSON object of hyperparameter overrides")
    p.add_argument("--device", default="auto")
    p.add_argument("--pool-limit", type=int, default=None)
    p.add_argument("--pretrained", type=Path, default=None, nargs="+", help="model.pt of the first stage")
    p.add_argument("--checkpoint", type=Path, default=None, nargs="+")
    p.add_argument("--stack", choices=["auto", "on", "off"], default="auto",
                   help="several seeds: stacked (fewlabels.methods.stacked) or one after another; auto: stacked on a "
                        "GPU when the method allows, one after another on the CPU")
    p.add_argument("--capture", choices=["auto", "off"], default="auto",
                   help="stacked runs on CUDA: record the training step in a CUDA graph (auto) or not")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--dry-run", action="store_true", help="build everything, take one step, write nothing")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    log = lambda s: print(s, flush=True)  # noqa: E731
    try:
        hparams = json.loads(args.hparams)
        if not isinstance(hparams, dict):
            raise HParamError("--hparams must be a JSON object")
        n = len(args.seed)
        specs = [dict(method=args.method, task=args.task, labels=None if args.labels == "all" else int(args.labels),
                      seed=seed, mnist=args.mnist, split=split, out=out, hparams=hparams, device=args.device,
                      pool_limit=args.pool_limit, pretrained=pre, checkpoint=ck, name=args.name)
                 for seed, split, out, pre, ck in zip(args.seed, _per_run(args.split, n, "--split"),
                                                      _per_run(args.out, n, "--out"),
                                                      _per_run(args.pretrained, n, "--pretrained"),
                                                      _per_run(args.checkpoint, n, "--checkpoint"))]
        if args.dry_run:
            for spec in specs:
                run(**spec, dry_run=True, log=log)
        elif n == 1:
            run(**specs[0], log=log)
        else:
            run_group(specs, stack=args.stack, log=log, capture=args.capture)
    except (DataError, HParamError, DivergedError, KeyError, ValueError) as e:  # JSONDecodeError is a ValueError
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
