"""``vae-pretrain`` / ``vae`` / ``vae-scratch``: a fully connected variational autoencoder.

Seed 003 (003_e52dbb3e96ae8bc0.txt:525-535) describes the VAE without code: an encoder to the
parameters of Gaussians, the reparameterisation trick, the model "in the resources section", and
a latent space of 2 values that holds most of MNIST (003:535; Kingma & Welling 2013, 003:1445).
Here: encoder 784-512-256-64 (ReLU) to the mean and log-variance of a ``latent``-dimensional
Gaussian, decoder 2-64-256-512-784 with a sigmoid output; loss the Bernoulli negative
log-likelihood summed over pixels plus the KL divergence to N(0, I) (Kingma & Welling eq. 10),
averaged over the batch; Adam 1e-3, batches of 100, 5 epochs like the chapter's autoencoders.

``latent`` defaults to 2 so that the chapter's figure (the latent plane coloured by digit)
is the model the classifier uses; a larger code is a key away. The classifier reads the
posterior mean. ``vae-scratch`` is the same encoder (to the mean) and head, from scratch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .autoencoders import ARCH_DEFAULTS, HEAD_DEFAULTS, AutoencoderPretrain, EncoderHead, Pretrained


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per image, summed over the latent (Kingma & Welling,
    appendix B: -1/2 sum(1 + log sigma^2 - mu^2 - sigma^2)), averaged over the batch."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) of a Bernoulli decoder, summed over pixels, averaged over the batch (K&W app. C.1)."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)


class VAEPretrain(AutoencoderPretrain):
    NAME = "vae-pretrain"
    ARCH = "vae"
    DEFAULTS = {**AutoencoderPretrain.DEFAULTS, **ARCH_DEFAULTS["vae"]}

    def noise(self, x):
        return {"eps": torch.randn((len(x), self.net.code_dim), generator=self.gen, device=x.device)}

    def loss(self, net, x, noise):
        mu, logvar = net.posterior(x)
        z = mu + noise["eps"] * (0.5 * logvar).exp()  # the reparameterisation trick (003:527)
        return {"recon": bernoulli_nll(net.decode_logits(z), x), "kl": kl_to_standard_normal(mu, logvar)}


class VAEScratch(EncoderHead):
    NAME = "vae-scratch"
    ARCH = "vae"
    DEFAULTS = {**HEAD_DEFAULTS, **ARCH_DEFAULTS["vae"]}


class VAEClassifier(Pretrained):
    NAME = "vae"
    PRETRAIN_STAGE = "vae-pretrain"
