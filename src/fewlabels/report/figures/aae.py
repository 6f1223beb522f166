"""Figures of the adversarial autoencoder, all drawn from one trained run's ``model.pt``.

- latent: where the encoder puts MNIST's test images in z, against the prior N(0, sigma^2 I),
  and how one-hot its q(y | x) is;
- style: decoder outputs with y fixed per row and z fixed per column (content vs style,
  Makhzani et al. 2015, Fig. 9);
- recon: test images and their reconstructions.

Nothing here trains: the networks come from the checkpoint of the workflow's figure run.
``python -m fewlabels.report.figures aae --model model.pt --mnist mnist.npz --latent A.pdf --style B.pdf --recon C.pdf``
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .common import RC, TEXT_WIDTH, mnist_test_images, save, tiles


N_TEST = 2000   # test images encoded for the latent figure (enough for the histograms, cheap to draw)
N_STYLES = 10   # columns of the style grid
SEED = 0        # fixes the prior samples drawn for the figures


def _load(model: Path):
    from ...methods.aae import nets_from_export
    payload = torch.load(model, map_location="cpu", weights_only=False)
    enc, dec = nets_from_export(payload)
    return payload["hparams"], payload["n_classes"], enc, dec


@torch.no_grad()
def fig_latent(model: Path, mnist: Path, out: Path) -> None:
    import matplotlib.pyplot as plt

    hp, k, enc, _ = _load(model)
    x, y = mnist_test_images(mnist)
    logits, z = enc.encode(x[:N_TEST])
    y, z, probs = y[:N_TEST], z.numpy(), F.softmax(logits, 1).numpy()
    std = hp["z_std"]
    prior = np.random.default_rng(SEED).normal(0.0, std, size=(N_TEST, z.shape[1]))

    plt.rcParams.update(RC)
    fig, axes = plt.subplots(1, 3, figsize=(TEXT_WIDTH, 2.3))
    ax = axes[0]
    if z.shape[1] >= 2:
        ax.scatter(prior[:, 0], prior[:, 1], s=1, c="0.8", label="prior samples", rasterized=True)
        sc = ax.scatter(z[:, 0], z[:, 1], s=1, c=y, cmap="tab10", vmin=-0.5, vmax=9.5, rasterized=True)
        fig.colorbar(sc, ax=ax, ticks=range(10), label="true digit")
        ax.set_xlabel("$z_1$")
        ax.set_ylabel("$z_2$")
        ax.legend(loc="upper right", markerscale=4, handletextpad=0.2, borderpad=0.2)
    ax.set_title("style code of test images\n(first two dimensions)")
    ax = axes[1]
    lim = max(4 * std, float(np.percentile(np.abs(z), 99.5)))  # wide enough for codes off the prior
    ax.hist(z.ravel(), bins=np.linspace(-lim, lim, 61), density=True, alpha=0.6, label="q(z), all dims")
    grid = np.linspace(-lim, lim, 200)
    ax.plot(grid, np.exp(-grid ** 2 / (2 * std ** 2)) / (std * np.sqrt(2 * np.pi)), "k", label=f"N(0, {std:g}$^2$)")
    ax.set_xlabel("z")
    ax.set_ylabel("density")
    ax.legend(loc="upper right", handlelength=1.2)
    ax.set_title("style code against its prior\n(all dimensions)")
    ax = axes[2]
    ax.hist(probs.max(1), bins=np.linspace(1 / k, 1, 41), color="C2")
    ax.set_xlabel("max$_y$ q(y|x)")
    ax.set_ylabel("test images")
    ax.set_title("largest class probability\n(prior: one-hot, 1)")
    fig.tight_layout()
    save(fig, out)


@torch.no_grad()
def fig_style(model: Path, out: Path) -> None:
    import matplotlib.pyplot as plt

    hp, k, _, dec = _load(model)
    gen = torch.Generator().manual_seed(SEED)
    z = torch.randn(N_STYLES, hp["z_dim"], generator=gen) * hp["z_std"]  # one style per column
    rows = [dec(F.one_hot(torch.full((N_STYLES,), c), k).float(), z) for c in range(k)]
    images = torch.stack(rows).reshape(k, N_STYLES, 28, 28).numpy()
    plt.rcParams.update(RC)
    fig, ax = plt.subplots(figsize=(0.21 * N_STYLES + 0.5, 0.21 * k + 0.4))
    tiles(ax, images)
    ax.set_yticks([14 + 28 * c for c in range(k)], [str(c) for c in range(k)])
    # how much the class code moves the image (down a column) against how much the style does (along a row)
    by_y = float(np.abs(images - images.mean(0, keepdims=True)).mean())
    by_z = float(np.abs(images - images.mean(1, keepdims=True)).mean())
    if by_y < 0.1 * by_z:
        ax.set_title("the rows (almost) repeat: the class code y\nhas (almost) no effect on this decoder")
    ax.set_ylabel("class code y (a row each)")
    ax.set_xlabel("style z from the prior (a column each)")
    save(fig, out)


@torch.no_grad()
def fig_recon(model: Path, mnist: Path, out: Path, per_class: int = 2) -> None:
    import matplotlib.pyplot as plt

    _, k, enc, dec = _load(model)
    x, y = mnist_test_images(mnist)
    idx = np.concatenate([np.flatnonzero(y == c)[:per_class] for c in range(k)])
    xs = x[idx]
    logits, z = enc.encode(xs)
    x_hat = dec(F.softmax(logits, 1), z)
    n = len(idx)
    images = torch.stack([xs, x_hat]).reshape(2, n, 28, 28).numpy()
    plt.rcParams.update(RC)
    fig, ax = plt.subplots(figsize=(0.6 * TEXT_WIDTH, 0.6 * TEXT_WIDTH * 2 / n + 0.1))
    tiles(ax, images)
    ax.set_yticks([14, 42], ["input", "output"])
    save(fig, out)


def add_parser(sub) -> None:
    """Register ``python -m fewlabels.report.figures aae`` on the figures CLI."""
    a = sub.add_parser("aae", help="AAE latent distribution, style grid and reconstructions from a model.pt")
    a.add_argument("--model", required=True, type=Path)
    a.add_argument("--mnist", required=True, type=Path)
    a.add_argument("--latent", required=True, type=Path)
    a.add_argument("--style", required=True, type=Path)
    a.add_argument("--recon", required=True, type=Path)
    a.set_defaults(run=lambda args: (fig_latent(args.model, args.mnist, args.latent),
                                     fig_style(args.model, args.style),
                                     fig_recon(args.model, args.mnist, args.recon)))
