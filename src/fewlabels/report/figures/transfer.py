"""Figures of the two methods that learn a related task first (seeds 002 and 000).

- transfer: test accuracy on digits 5-9 against the label budget, transfer vs scratch;
- siamese: test accuracy on MNIST against the label budget, the pair-pretrained tower vs
  the same tower from scratch;
- which500: seed 002's transfer and scratch as published against the set of 500 images they trained
  on (the ``seeds`` preset's ``*-002-published[-from<K>k]`` variants), the notebook's own set marked;
- siamese-embedding: a 2-D PCA of the pair-trained tower's embedding of test digits,
  coloured by class, from the ``siamese-pairs`` first-stage model (nothing here trains).

``python -m fewlabels.report.figures transfer --metrics results/metrics.csv --out A.pdf`` (and
``siamese``; ``siamese-embedding --model model.pt --mnist mnist.npz --out B.pdf``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...data import load_mnist
from .common import RC, TEXT_WIDTH, accuracy_vs_labels, save, training_runs


N_TEST = 3000  # test images embedded for the projection (enough to see the clusters, few enough to read)
SEED = 0       # fixes which test images are shown


def fig_transfer(metrics: Path, out: Path) -> None:
    import seaborn as sns

    sns.set_theme(style="ticks", rc=RC)
    df = training_runs(metrics, "digits59")
    # only the methods the grid ran (a subset of the study draws what it has)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3.9, 2.6))
    accuracy_vs_labels(df, methods=[m for m in ("transfer", "scratch") if m in set(df["method"])], ax=ax,
                       title="digits 5-9: transfer from 0-4 against scratch")
    ax.legend(loc="lower right")
    save(fig, out)


def fig_siamese(metrics: Path, out: Path) -> None:
    import seaborn as sns

    sns.set_theme(style="ticks", rc=RC)
    df = training_runs(metrics, "mnist10")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3.3, 2.6))  # printed beside the embedding figure
    accuracy_vs_labels(df, methods=[m for m in ("siamese", "siamese-scratch") if m in set(df["method"])], ax=ax,
                       title="MNIST: pair-pretrained tower\nagainst scratch")
    ax.legend(loc="lower right")
    save(fig, out)


@torch.no_grad()
def embed_test(model: Path, mnist: Path, n: int = N_TEST) -> tuple[np.ndarray, np.ndarray]:
    """The tower's outputs (eval mode) for ``n`` test images drawn with a fixed seed, and their digits."""
    from ...methods.transfer import build_tower
    payload = torch.load(model, map_location="cpu", weights_only=False)
    if payload.get("method") != "siamese-pairs":
        raise ValueError(f"{model}: expected a siamese-pairs model, got {payload.get('method')!r}")
    hp = payload["hparams"]
    tower = build_tower(784, hp)
    tower.load_state_dict(payload["tower"])
    tower.eval()
    arrays = load_mnist(mnist)
    idx = np.sort(np.random.default_rng(SEED).choice(len(arrays["y_test"]), n, replace=False))
    x = torch.from_numpy(arrays["x_test"][idx].reshape(n, -1).astype(np.float32) / 255.0)
    return tower(x).numpy(), arrays["y_test"][idx]


def fig_siamese_embedding(model: Path, mnist: Path, out: Path) -> None:
    import matplotlib.pyplot as plt
    import seaborn as sns
    from sklearn.decomposition import PCA

    sns.set_theme(style="ticks", rc=RC)
    h, y = embed_test(model, mnist)
    pca = PCA(n_components=2, random_state=SEED)
    z = pca.fit_transform(h)
    fig, ax = plt.subplots(figsize=(2.7, 2.6))
    colours = plt.get_cmap("tab10")
    for c in range(10):
        m = y == c
        ax.scatter(z[m, 0], z[m, 1], s=2, alpha=0.6, color=colours(c), label=str(c), rasterized=True)
    ev = pca.explained_variance_ratio_
    ax.set_xlabel(f"PC 1 ({100 * ev[0]:.0f} % of variance)")
    ax.set_ylabel(f"PC 2 ({100 * ev[1]:.0f} % of variance)")
    ax.set_title("pair-trained tower: test digits")
    ax.legend(title="digit", markerscale=3, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False,
              handletextpad=0.1, labelspacing=0.3)
    save(fig, out)


def which500_runs(df: "pd.DataFrame") -> "pd.DataFrame":
    """Seed 002's as-published transfer and scratch runs by the set of 500 images they trained on: the
    start index K (thousands) of "the first 500 digits >= 5 from training index K"; the variants
    without a ``-from<K>k`` suffix train on the notebook's own set, K = 5 (data_split tf1)."""
    import re
    rows = []
    for _, r in df[df["task"] == "digits59"].iterrows():
        m = re.fullmatch(r"(transfer|scratch)-002-published(?:-from(\d+)k)?", str(r["method"]))
        if m and str(r["labels"]) == "500":
            rows.append({"method": m.group(1), "start": int(m.group(2) or 5), "seed": r["seed"],
                         "accuracy": 100 * r["test_accuracy"]})
    return pd.DataFrame(rows, columns=["method", "start", "seed", "accuracy"])


# What the notebook printed after its last epoch (002:289-292, 318): test accuracy of transfer and scratch
NOTEBOOK_002 = {"transfer": 85.1, "scratch": 72.3}


def fig_which500(metrics: Path, out: Path) -> None:
    """Accuracy of seed 002's transfer and scratch against the set of 500 images, the notebook's own set
    marked, its printed numbers as stars: the 13-point gap is a property of its set."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="ticks", rc=RC)
    df = which500_runs(pd.read_csv(metrics, dtype={"labels": str}))
    fig, ax = plt.subplots(figsize=(TEXT_WIDTH, 3.0))
    colors, shift = {"transfer": "C0", "scratch": "C3"}, {"transfer": -0.5, "scratch": 0.5}
    for method, g in df.groupby("method"):
        x = g["start"] + shift[method]
        ax.scatter(x, g["accuracy"], color=colors[method], alpha=0.4, s=9, lw=0)
        m = g.groupby("start")["accuracy"].agg(["mean", "std"]).reset_index()
        ax.errorbar(m["start"] + shift[method], m["mean"], yerr=m["std"].fillna(0), fmt="o-", color=colors[method],
                    capsize=2, lw=1, ms=4, label=f"{method} as published (mean $\\pm$ sd, seeds as dots)")
        ax.plot([5 + shift[method]], [NOTEBOOK_002[method]], marker="*", ms=12, color=colors[method], mec="k",
                ls="none", label=f"{method}: the notebook's print (002)")
    ax.axvspan(3, 7, color="0.88", zorder=0, label="the notebook's own 500 images")
    ax.set_xticks(sorted(df["start"].unique()))
    ax.set_xlabel("the 500 images: the first digits 5-9 from training image K (K in thousands)")
    ax.set_ylabel("test accuracy on 5-9 (%)")
    ax.legend(ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    save(fig, out)


def add_parser(sub) -> None:
    """Register the ``transfer``, ``siamese``, ``which500`` and ``siamese-embedding`` figure subcommands."""
    for name, fn, help_ in (("transfer", fig_transfer, "transfer vs scratch on digits 5-9"),
                            ("siamese", fig_siamese, "siamese vs siamese-scratch on mnist10"),
                            ("which500", fig_which500, "seed 002 as published on other sets of 500 images")):
        a = sub.add_parser(name, help=help_)
        a.add_argument("--metrics", required=True, type=Path)
        a.add_argument("--out", required=True, type=Path)
        a.set_defaults(run=lambda args, fn=fn: fn(args.metrics, args.out))
    e = sub.add_parser("siamese-embedding", help="2-D PCA of the pair-trained tower's embedding of test digits")
    e.add_argument("--model", required=True, type=Path)
    e.add_argument("--mnist", required=True, type=Path)
    e.add_argument("--out", required=True, type=Path)
    e.set_defaults(run=lambda args: fig_siamese_embedding(args.model, args.mnist, args.out))
