"""``ae-pretrain`` / ``ae`` / ``ae-scratch``: the fully connected tied autoencoder of seed 003.

Seed 003 (003_e52dbb3e96ae8bc0.txt:156-331): 784-512-256-128-64 with ReLU and no biases,
weights N(0, 0.02^2), decoded by the transposed matrices; the mean image is subtracted from
every input; loss the mean squared error; Adam 1e-3, batches of 100, 5 epochs. ``ae`` puts a
classifier head on its encoder and trains it on the labels; ``ae-scratch`` is the same encoder
and head from a random start, the twin of both ``ae`` and ``dae`` (same architecture).

Quirk: ``output_relu`` (default false). The seed's decoder ends in a ReLU (003:264) although its
target, the mean-subtracted image, is negative where a pixel is darker than the mean image;
true reproduces it.
"""

from __future__ import annotations

from .autoencoders import ARCH_DEFAULTS, AutoencoderPretrain, EncoderHead, Pretrained


class AEPretrain(AutoencoderPretrain):
    NAME = "ae-pretrain"
    ARCH = "fc"
    DEFAULTS = {**AutoencoderPretrain.DEFAULTS, **ARCH_DEFAULTS["fc"]}


class AEScratch(EncoderHead):
    NAME = "ae-scratch"
    ARCH = "fc"
    DEFAULTS = EncoderHead.DEFAULTS


class AE(Pretrained):
    NAME = "ae"
    PRETRAIN_STAGE = "ae-pretrain"
