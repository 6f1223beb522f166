"""Figures of seed 003's autoencoders, drawn from files the workflow made (nothing here trains).

- recon: MNIST test images and each autoencoder's reconstruction (the chapter's montages,
  003_e52dbb3e96ae8bc0.txt:319-323), from the first stages' ``model.pt``;
- vae-latent: the VAE's posterior means of test images in its 2-D latent plane, coloured by
  digit (the chapter's "encode the majority of MNIST into 2 values", 003:535);
- ae-accuracy: test accuracy against label budget of each pretrained encoder + head against its
  scratch twin (same encoder and head from a random start), from ``metrics.csv``.

``python -m fewlabels.report.figures ae-recon --model A.pt B.pt ... --mnist mnist.npz --out F.pdf``
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .common import RC, TEXT_WIDTH, accuracy_vs_labels, mnist_test_images, save, tiles, training_runs


N_LATENT = 5000  # test images drawn in the latent plane
# (pretrained, scratch twin) per family; dae's twin is ae-scratch (same fully connected encoder).
PAIRS = [("ae", "ae-scratch"), ("dae", "ae-scratch"), ("conv-ae", "conv-ae-scratch"), ("vae", "vae-scratch")]


def load_autoencoder(model: Path):
    """The autoencoder of a first stage's ``model.pt`` (eval mode) and its stage name."""
    from ...methods.autoencoders import build_autoencoder
    p = torch.load(model, map_location="cpu", weights_only=False)
    net = build_autoencoder(p["arch"], p["hparams"])
    net.load_state_dict(p["autoencoder"])
    return net.eval(), p["method"]


@torch.no_grad()
def fig_recon(models: list[Path], mnist: Path, out: Path, per_class: int = 1) -> None:
    import matplotlib.pyplot as plt

    x, y = mnist_test_images(mnist)
    idx = np.concatenate([np.flatnonzero(y == c)[:per_class] for c in range(10)])
    rows, names = [x[idx]], ["input"]
    for m in models:
        net, name = load_autoencoder(m)
        rows.append(net(x[idx]).clamp(0, 1))  # the seed clips its reconstructions too (003:320)
        names.append(name.removesuffix("-pretrain"))
    images = torch.stack(rows).reshape(len(rows), len(idx), 28, 28).numpy()
    plt.rcParams.update(RC)
    fig, ax = plt.subplots(figsize=(0.7 * TEXT_WIDTH, 0.7 * TEXT_WIDTH * len(rows) / len(idx) + 0.1))
    tiles(ax, images)
    ax.set_yticks([14 + 28 * i for i in range(len(rows))], names)
    save(fig, out)


@torch.no_grad()
def fig_vae_latent(model: Path, mnist: Path, out: Path) -> None:
    import matplotlib.pyplot as plt

    net, _ = load_autoencoder(model)
    x, y = mnist_test_images(mnist)
    z = net.encode(x[:N_LATENT]).numpy()
    plt.rcParams.update(RC)
    fig, ax = plt.subplots(figsize=(3.2, 2.7))
    pts = ax.scatter(z[:, 0], z[:, 1], c=y[:N_LATENT], cmap="tab10", s=1, vmin=-0.5, vmax=9.5)
    fig.colorbar(pts, ax=ax, ticks=range(10), label="digit")
    extra = "" if z.shape[1] == 2 else f" (first 2 of {z.shape[1]} dimensions)"
    # words, not $z_1$: a mathtext subscript prints at 70 % of the label's size (under 7 pt)
    ax.set_xlabel("z, dimension 1")
    ax.set_ylabel("z, dimension 2")
    ax.set_title(f"VAE posterior means, {N_LATENT} test images{extra}")
    save(fig, out)


def fig_ae_accuracy(metrics: Path, out: Path) -> None:
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="ticks", rc=RC)
    df = training_runs(metrics, "mnist10")
    pairs = [(a, b) for a, b in PAIRS if a in set(df["method"])]
    if not pairs:
        raise SystemExit("error: metrics.csv has no mnist10 run of ae, dae, conv-ae or vae")
    # two panels a row at the printed width, so the fonts stay at their printed size
    ncol = min(2, len(pairs))
    nrow = -(-len(pairs) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(TEXT_WIDTH, 2.3 * nrow), sharey=True, squeeze=False)
    for ax in axes.flat[len(pairs):]:
        ax.axis("off")
    for ax, pair in zip(axes.flat, pairs):
        methods = [m for m in pair if m in set(df["method"])]
        accuracy_vs_labels(df, methods=methods, ax=ax, title=f"{pair[0]} against its scratch twin")
        ax.legend(loc="lower right")
    fig.tight_layout()
    save(fig, out)


def add_parser(sub) -> None:
    """Register the seed-003 figures on the figures CLI."""
    a = sub.add_parser("ae-recon", help="test images and each autoencoder's reconstruction")
    a.add_argument("--model", required=True, type=Path, nargs="+", help="first stages' model.pt")
    a.add_argument("--mnist", required=True, type=Path)
    a.add_argument("--out", required=True, type=Path)
    a.set_defaults(run=lambda args: fig_recon(args.model, args.mnist, args.out))
    v = sub.add_parser("vae-latent", help="the VAE's latent plane coloured by digit")
    v.add_argument("--model", required=True, type=Path)
    v.add_argument("--mnist", required=True, type=Path)
    v.add_argument("--out", required=True, type=Path)
    v.set_defaults(run=lambda args: fig_vae_latent(args.model, args.mnist, args.out))
    c = sub.add_parser("ae-accuracy", help="pretrained encoders vs their scratch twins")
    c.add_argument("--metrics", required=True, type=Path)
    c.add_argument("--out", required=True, type=Path)
    c.set_defaults(run=lambda args: fig_ae_accuracy(args.metrics, args.out))
