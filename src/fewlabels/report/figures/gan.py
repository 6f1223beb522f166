"""Figures of the semi-supervised GANs (``sgan``, ``sgan-fm``).

- samples: a grid of digits drawn from each GAN's final generator (from its run's ``model.pt``);
- curves: test accuracy per epoch of GAN runs against the supervised baseline on the same
  splits, from the runs' ``history.csv`` (mean over seeds, band = min..max).

Nothing here trains. ``python -m fewlabels.report.figures gan-samples --model A/model.pt B/model.pt --out X.pdf``
and ``python -m fewlabels.report.figures gan-curves --history R1/history.csv ... --out Y.pdf``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .common import METHOD_ORDER, RC, TEXT_WIDTH, save

GRID = 10   # the sample grid is GRID x GRID digits
SEED = 0    # fixes the generator's noise, so the figure is the same on every rebuild


@torch.no_grad()
def generate(payload: dict, n: int, seed: int = SEED) -> np.ndarray:
    """n images (n x 28 x 28, [0, 1]) from the generator a GAN run exported."""
    from ...methods import get
    from ...methods.gan import GANMethod

    cls = get(payload["method"])
    if not issubclass(cls, GANMethod):
        raise ValueError(f"model.pt of method {payload['method']!r} has no generator; expected sgan or sgan-fm")
    hp = payload["hparams"]
    g = cls.build_generator(hp)
    g.load_state_dict(payload["modules"]["G"])
    # Batch statistics, as during training (improved-gan never uses running averages).
    g.train()
    lo, hi = cls.Z_RANGE
    z = lo + (hi - lo) * torch.rand(n, hp["z_dim"], generator=torch.Generator().manual_seed(seed))
    x = g(z).reshape(n, 28, 28)
    a, b = cls.IMAGE_RANGE
    return ((x - a) / (b - a)).clamp(0, 1).numpy()


def fig_samples(models: list[Path], out: Path) -> None:
    import matplotlib.pyplot as plt

    plt.rcParams.update(RC)
    w = min(TEXT_WIDTH, 2.6 * len(models))
    fig, axes = plt.subplots(1, len(models), figsize=(w, w / len(models) + 0.3), squeeze=False)
    for ax, model in zip(axes[0], models):
        payload = torch.load(model, map_location="cpu", weights_only=False)
        imgs = generate(payload, GRID * GRID)
        mosaic = imgs.reshape(GRID, GRID, 28, 28).transpose(0, 2, 1, 3).reshape(GRID * 28, GRID * 28)
        ax.imshow(mosaic, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{payload['method']}: generated digits")
    save(fig, out)


def load_histories(histories: list[Path]) -> pd.DataFrame:
    """One row per (run, epoch); the run's identity comes from the metrics.json beside its history."""
    frames = []
    for h in histories:
        h = Path(h)
        meta = json.loads((h.parent / "metrics.json").read_text())["run"]
        df = pd.read_csv(h)
        missing = {"epoch", "step", "test_accuracy"} - set(df.columns)
        if missing:
            raise ValueError(f"{h}: history lacks column(s) {sorted(missing)}")
        frames.append(df.assign(method=meta["method"], labels=meta["labels"], seed=meta["seed"]))
    if not frames:
        raise ValueError("no history.csv given")
    return pd.concat(frames, ignore_index=True)


def fig_curves(histories: list[Path], out: Path) -> None:
    import matplotlib.pyplot as plt

    df = load_histories(histories)
    plt.rcParams.update(RC)
    fig, ax = plt.subplots(figsize=(4.2, 2.8))
    methods = [m for m in METHOD_ORDER if m in set(df["method"])]
    for method in methods:
        g = df[df["method"] == method].groupby("step")["test_accuracy"]
        mean, lo, hi = (100 * s for s in (g.mean(), g.min(), g.max()))
        n = df.loc[df["method"] == method, "seed"].nunique()
        (line,) = ax.plot(mean.index, mean.values, marker=".", label=f"{method} ({n} seed{'s' * (n > 1)})")
        ax.fill_between(mean.index, lo.values, hi.values, color=line.get_color(), alpha=0.2, linewidth=0)
    budgets = sorted(df["labels"].unique())
    ax.set_title(f"MNIST, {', '.join(map(str, budgets))} labels: test accuracy during training")
    ax.set_xlabel("training step (end of each epoch)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    save(fig, out)


def add_parser(sub) -> None:
    """Register ``gan-samples`` and ``gan-curves`` on the figures CLI."""
    a = sub.add_parser("gan-samples", help="digits from the generators of GAN runs (model.pt)")
    a.add_argument("--model", required=True, type=Path, nargs="+")
    a.add_argument("--out", required=True, type=Path)
    a.set_defaults(run=lambda args: fig_samples(args.model, args.out))
    c = sub.add_parser("gan-curves", help="test accuracy per epoch of GAN runs vs the baseline (history.csv)")
    c.add_argument("--history", required=True, type=Path, nargs="+")
    c.add_argument("--out", required=True, type=Path)
    c.set_defaults(run=lambda args: fig_curves(args.history, args.out))
