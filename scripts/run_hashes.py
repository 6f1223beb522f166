"""Fingerprints of short one-run trainings of every registered method and first stage, to show that a
change to the code leaves the one-run path bit for bit where it was (so the committed archives stay
valid). Prints one line per run: name, sha256 of its weights (tensor bytes in key order), of its history
(every column but the timings) and of its results. Compare two commits' outputs with ``diff``.

    python scripts/run_hashes.py > before.txt; ...change...; python scripts/run_hashes.py > after.txt

Each run: 2 epochs of 3 steps on a 1,000-image pool, 100 labels (digits 5-9: 50), seed 0, CPU, fp32;
a second stage starts from its first stage's run made here.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from fewlabels import data as D  # noqa: E402
from fewlabels.methods import METHODS, PRETRAIN, spec  # noqa: E402
from fewlabels.training.trainer import run  # noqa: E402

MNIST = REPO / "resources" / "mnist.npz"
SHORT = {"epochs": 2, "steps_per_epoch": 3}
POOL = 1000


def tensors_sha(obj, h=None):
    h = h or hashlib.sha256()
    if isinstance(obj, torch.Tensor):
        h.update(obj.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if obj.numel() else b"")
    elif isinstance(obj, dict):
        for k in sorted(obj, key=str):
            h.update(str(k).encode())
            tensors_sha(obj[k], h)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            tensors_sha(v, h)
    else:
        h.update(repr(obj).encode())
    return h


def one(name: str, task: str, labels: int | None, tmp: Path, pretrained: Path | None) -> Path:
    split = tmp / f"{task}-{labels}.npz"
    if not split.exists():
        D.make_split(MNIST, split, task, labels, seed=0)
    out = tmp / name
    run(method=name, task=task, labels=labels, seed=0, mnist=MNIST, split=split, out=out, hparams=dict(SHORT),
        device="cpu", pool_limit=POOL, pretrained=pretrained, log=lambda s: None)
    payload = torch.load(out / "model.pt", map_location="cpu", weights_only=False)
    weights = tensors_sha(payload["modules"]).hexdigest()[:16]  # the weights (hparams gain keys as code grows)
    hist = pd.read_csv(out / "history.csv").drop(columns=["train_s"], errors="ignore")
    history = hashlib.sha256(hist.to_csv(index=False).encode()).hexdigest()[:16]
    results = json.loads((out / "metrics.json").read_text())["results"]
    res = hashlib.sha256(json.dumps(results, sort_keys=True).encode()).hexdigest()[:16]
    print(f"{name:18s} weights {weights} history {history} results {res}", flush=True)
    return out / "model.pt"


def main() -> int:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="run-hashes-") as t:
        tmp = Path(t)
        first = {}
        for name, s in PRETRAIN.items():
            first[name] = one(name, s.task, None, tmp, None)
        for name, s in METHODS.items():
            labels = 50 if s.task == "digits59" else 100
            one(name, s.task, labels, tmp, first.get(spec(name).pretrain))
    return 0


if __name__ == "__main__":
    sys.exit(main())
