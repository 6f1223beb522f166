"""``dae-pretrain`` / ``dae``: the denoising autoencoder of seed 003.

Seed 003 (003_e52dbb3e96ae8bc0.txt:519-523): the input is corrupted "for instance by masked
noise", and the reconstruction loss is measured on the original, uncorrupted image. The chapter
gives no code or noise level; its course library offers it on either autoencoder (003:523). Here:
each pixel is set to 0 with probability ``noise`` (0.5, ours, as the course library's corruption,
which zeroes about half the pixels), fresh for every batch; ``arch`` picks the fully connected
(default) or convolutional net, with ``ae``'s or ``conv-ae``'s defaults. Its scratch twin is
``ae-scratch`` (``arch: fc``) or ``conv-ae-scratch`` (``arch: conv``): the same encoder and head.
"""

from __future__ import annotations

import torch

from .autoencoders import ARCH_DEFAULTS, AutoencoderPretrain, Pretrained
from .base import HParamError


def keep_mask(shape: tuple, p: float, gen: torch.Generator, device) -> torch.Tensor:
    """Masking noise (Vincent et al. 2010, 003:1443): True where a pixel is kept, each zeroed
    independently with probability ``p``; the input is ``x * mask``."""
    return torch.rand(shape, generator=gen, device=device) >= p


class DAEPretrain(AutoencoderPretrain):
    NAME = "dae-pretrain"
    DEFAULTS = {**AutoencoderPretrain.DEFAULTS, **ARCH_DEFAULTS["conv"], **ARCH_DEFAULTS["fc"],
                "arch": "fc", "noise": 0.5}

    @classmethod
    def check_hparams(cls, hp):
        super().check_hparams(hp)
        if hp["arch"] not in ("fc", "conv"):
            raise HParamError(f"method {cls.NAME!r}: arch must be fc or conv, got {hp['arch']!r}")
        if not 0 <= hp["noise"] < 1:
            raise HParamError(f"method {cls.NAME!r}: noise must be in [0, 1), got {hp['noise']}")

    def arch(self):
        return self.hp["arch"]

    def noise(self, x):
        return {"keep": keep_mask(x.shape, self.hp["noise"], self.gen, x.device)}

    def corrupt(self, x, noise):
        return x * noise["keep"]


class DAE(Pretrained):
    NAME = "dae"
    PRETRAIN_STAGE = "dae-pretrain"
