"""``conv-ae-pretrain`` / ``conv-ae`` / ``conv-ae-scratch``: seed 003's convolutional autoencoder.

Seed 003 (003_e52dbb3e96ae8bc0.txt:339-512): three 4x4 convolutions of 16 filters, stride 2,
'SAME' padding, ReLU, no biases, weights N(0, 0.02^2); the decoder applies the transposes of the
same filters (``conv2d_transpose`` with the encoder's ``W``, 003:456-461); mean image subtracted,
mean squared error, Adam 1e-3, batches of 100, 5 epochs (003:475-487). The code the classifier
reads is the 4x4x16 map (256 numbers). Quirk ``output_relu`` as in ``ae`` (003:464).
"""

from __future__ import annotations

from .autoencoders import ARCH_DEFAULTS, HEAD_DEFAULTS, AutoencoderPretrain, EncoderHead, Pretrained


class ConvAEPretrain(AutoencoderPretrain):
    NAME = "conv-ae-pretrain"
    ARCH = "conv"
    DEFAULTS = {**AutoencoderPretrain.DEFAULTS, **ARCH_DEFAULTS["conv"]}


class ConvAEScratch(EncoderHead):
    NAME = "conv-ae-scratch"
    ARCH = "conv"
    DEFAULTS = {**HEAD_DEFAULTS, **ARCH_DEFAULTS["conv"]}


class ConvAE(Pretrained):
    NAME = "conv-ae"
    PRETRAIN_STAGE = "conv-ae-pretrain"
