"""What the two semi-supervised GANs (``sgan``, ``sgan-fm``) share: noise, an epoch over the
unlabeled pool, running-statistics hygiene for batch norm, and the collapse check.

A GAN can fail without a NaN: the generator collapses to (nearly) one image, or the
discriminator wins outright and its real-vs-fake loss goes to zero, so the unlabeled data
stop teaching it anything. Either, for ``collapse_patience`` epochs in a row, ends the run
with ``GANCollapseError`` (a ``DivergedError``: the CLI exits non-zero, no metrics file is
written, Snakemake marks the job failed).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from .base import DivergedError, HParamError, Method

GAN_DEFAULTS = {
    "z_dim": 100,
    "collapse_patience": 5,   # consecutive epochs a collapse sign must last; 0 switches the check off
    "collapse_std": 1e-3,     # generator collapsed: per-pixel std over 500 samples (pixels in [0, 1]) below this
    "collapse_d_loss": 1e-3,  # discriminator won: epoch mean of its real-vs-fake loss below this (0: not checked)
}


class GANCollapseError(DivergedError):
    """The generator collapsed or the discriminator won outright (see ``collapse_*`` keys)."""


@contextlib.contextmanager
def frozen_bn_stats(module: nn.Module):
    """Batch norm still normalises with batch statistics but leaves its running averages alone
    (momentum 0), so that evaluation-mode statistics come from real images only."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, mom in zip(bns, saved):
            m.momentum = mom


class GANMethod(Method):
    """Base of the GAN methods: subclasses set ``self.G`` and call ``track_d_unsup`` per step."""

    Z_RANGE = (-1.0, 1.0)   # uniform noise range of the generator's input
    IMAGE_RANGE = (0.0, 1.0)  # range of the generator's output pixels

    @classmethod
    def check_hparams(cls, hp):
        super().check_hparams(hp)
        for k in ("collapse_patience", "z_dim"):
            if hp[k] < 0 or (k == "z_dim" and hp[k] < 1):
                raise HParamError(f"method {cls.NAME!r}: {k} must be positive, got {hp[k]}")

    def __init__(self, hp, data, device, gen, pretrained=None):
        super().__init__(hp, data, device, gen, pretrained)
        self._d_unsup_sum = torch.zeros((), device=device)
        self._steps = 0
        self.bad_epochs = 0

    def steps_per_epoch(self) -> int:
        """One pass over the unlabeled pool, as in improved-gan (the labeled set is cycled)."""
        if self.hp["steps_per_epoch"]:
            return int(self.hp["steps_per_epoch"])
        return max(1, len(self.data.x_pool) // self.hp["batch_size"])

    def noise(self, n: int) -> torch.Tensor:
        lo, hi = self.Z_RANGE
        return lo + (hi - lo) * torch.rand(n, self.hp["z_dim"], generator=self.gen, device=self.device)

    def track_d_unsup(self, loss: torch.Tensor) -> None:
        self._d_unsup_sum += loss.detach()
        self._steps += 1

    @torch.no_grad()
    def samples(self, n: int) -> torch.Tensor:
        """n generated images as N x 784 in [0, 1], with batch-norm batch statistics: the
        generator as the discriminator saw it (improved-gan never uses running averages)."""
        x = self.G(self.noise(n)).reshape(n, -1)
        lo, hi = self.IMAGE_RANGE
        return (x - lo) / (hi - lo)

    def on_epoch_end(self, epoch: int) -> None:
        d_unsup = float(self._d_unsup_sum) / max(self._steps, 1)  # one sync per epoch
        self._d_unsup_sum.zero_()
        self._steps = 0
        std = float(self.samples(500).std(0).mean())
        hp = self.hp
        signs = []
        if std < hp["collapse_std"]:
            signs.append(f"generator output std {std:.2e} < collapse_std {hp['collapse_std']}")
        if d_unsup < hp["collapse_d_loss"]:
            signs.append(f"discriminator real-vs-fake loss {d_unsup:.2e} < collapse_d_loss {hp['collapse_d_loss']}")
        self.bad_epochs = self.bad_epochs + 1 if signs else 0
        if hp["collapse_patience"] and self.bad_epochs >= hp["collapse_patience"]:
            raise GANCollapseError(
                f"{self.NAME}: the GAN collapsed in epoch {epoch}: {'; '.join(signs)} for "
                f"{self.bad_epochs} epochs in a row (collapse_patience {hp['collapse_patience']}); "
                "no metrics were written. Change the learning rates or the collapse_* thresholds.")

    def state_dict(self) -> dict:
        return {**super().state_dict(), "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.bad_epochs = state["bad_epochs"]
