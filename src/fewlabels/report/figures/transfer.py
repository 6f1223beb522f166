"""Figures of the two methods that learn a related task first (seeds 002 and 000).

- transfer: test accuracy on digits 5-9 against the label budget, transfer vs scratch;
- siamese: test accuracy on MNIST against the label budget, the pair-pretrained tower vs
  the same tower from scratch;
- siamese-embedding: a 2-D PCA of the pair-trained tower's embedding of test digits,
  coloured by class, from the ``siamese-pairs`` first-stage model (nothing here trains).

``python -m fewlabels.report.figures transfer --metrics results/metrics.csv --out A.pdf`` (and
``siamese``; ``siamese-embedding --model model.pt --mnist mnist.npz --out B.pdf``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...data import load_mnist
from .common import accuracy_vs_labels, save, training_runs


N_TEST = 3000  # test images embedded for the projection (enough to see the clusters, few enough to read)
SEED = 0       # fixes which test images are shown


def fig_transfer(metrics: Path, out: Path) -> None:
    import seaborn as sns

    sns.set_theme(style="ticks", context="paper")
    df = training_runs(metrics, "digits59")
    # only the methods the grid ran (a subset of the study draws what it has)
    save(accuracy_vs_labels(df, methods=[m for m in ("transfer", "scratch") if m in set(df["method"])],
                            title="digits 5-9: transfer from 0-4 vs scratch"), out)


def fig_siamese(metrics: Path, out: Path) -> None:
    import seaborn as sns

    sns.set_theme(style="ticks", context="paper")
    df = training_runs(metrics, "mnist10")
    save(accuracy_vs_labels(df, methods=[m for m in ("siamese", "siamese-scratch") if m in set(df["method"])],
                            title="MNIST: pair-pretrained tower vs scratch"), out)


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

    sns.set_theme(style="ticks", context="paper")
    h, y = embed_test(model, mnist)
    pca = PCA(n_components=2, random_state=SEED)
    z = pca.fit_transform(h)
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    colours = plt.get_cmap("tab10")
    for c in range(10):
        m = y == c
        ax.scatter(z[m, 0], z[m, 1], s=4, alpha=0.6, color=colours(c), label=str(c), rasterized=True)
    ev = pca.explained_variance_ratio_
    ax.set_xlabel(f"PC 1 ({100 * ev[0]:.0f} % of variance)")
    ax.set_ylabel(f"PC 2 ({100 * ev[1]:.0f} % of variance)")
    ax.set_title("Siamese tower (pair stage): test digits")
    ax.legend(title="digit", markerscale=3, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    save(fig, out)


def add_parser(sub) -> None:
    """Register the ``transfer``, ``siamese`` and ``siamese-embedding`` figure subcommands."""
    for name, fn, help_ in (("transfer", fig_transfer, "transfer vs scratch on digits 5-9"),
                            ("siamese", fig_siamese, "siamese vs siamese-scratch on mnist10")):
        a = sub.add_parser(name, help=help_)
        a.add_argument("--metrics", required=True, type=Path)
        a.add_argument("--out", required=True, type=Path)
        a.set_defaults(run=lambda args, fn=fn: fn(args.metrics, args.out))
    e = sub.add_parser("siamese-embedding", help="2-D PCA of the pair-trained tower's embedding of test digits")
    e.add_argument("--model", required=True, type=Path)
    e.add_argument("--mnist", required=True, type=Path)
    e.add_argument("--out", required=True, type=Path)
    e.set_defaults(run=lambda args: fig_siamese_embedding(args.model, args.mnist, args.out))
