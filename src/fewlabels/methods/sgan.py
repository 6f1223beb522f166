"""``sgan``: the seed's semi-supervised GAN with K+1 outputs (seed 001; Odena 2016,
"Semi-Supervised Learning with Generative Adversarial Networks").

The discriminator is a (K+1)-way classifier: K digit classes and one "fake" class. Its
loss is the supervised cross-entropy on labeled images plus the real-vs-fake game on
unlabeled and generated images, with p(fake | x) read from the (K+1)-th softmax output
(Salimans et al. 2016, eqs. 1-3, with an explicit fake logit). The generator uses the
non-saturating loss -log(1 - p(fake | G(z))) plus, optionally, the feature-matching term
of Salimans et al. (eq. 4) on the discriminator's last conv features.

We could not pin down seed 001's code, so the architecture is DCGAN-style (Radford et al.
2016) as Odena describes it: uniform noise -> dense -> transposed convolutions with batch
norm and ReLU -> tanh; strided convolutions with leaky ReLU, dropout and batch norm -> 11
logits; Adam(lr 2e-4, beta1 0.5), batches of 100. Images are scaled to [-1, 1] here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..nets import ConvDiscriminator, ConvGenerator, KPlusOneClassifier
from .gan import GAN_DEFAULTS, GANMethod, frozen_bn_stats


def log_p_fake(logits: torch.Tensor) -> torch.Tensor:
    """log p(y = K+1 | x) from K+1 logits (the fake class is the last)."""
    return logits[:, -1] - torch.logsumexp(logits, dim=1)


def log_p_real(logits: torch.Tensor) -> torch.Tensor:
    """log(1 - p(y = K+1 | x)) = logsumexp of the K real logits - logsumexp of all K+1."""
    return torch.logsumexp(logits[:, :-1], dim=1) - torch.logsumexp(logits, dim=1)


def supervised_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L_supervised of Salimans et al. 2016 (eq. 2): -log p(y | x, y < K+1), the cross-entropy
    over the K real classes. (Odena 2016 writes it over all K+1 outputs; for a labeled real
    image the two differ by the real-vs-fake term, which real_fake_loss already applies to
    the unlabeled images.)"""
    return F.cross_entropy(logits[:, :-1], y)


def real_fake_loss(logits_unl: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """L_unsupervised (Salimans eq. 3): -E log(1 - p(fake | x)) on unlabeled real images
    - E log p(fake | G(z)) on generated ones."""
    return -log_p_real(logits_unl).mean() - log_p_fake(logits_fake).mean()


def generator_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss (Goodfellow et al. 2014): -E log(1 - p(fake | G(z)))."""
    return -log_p_real(logits_fake).mean()


def feature_matching_loss(f_fake: torch.Tensor, f_real: torch.Tensor) -> torch.Tensor:
    """Feature matching (Salimans eq. 4): ||E f(x) - E f(G(z))||^2, averaged over features."""
    return (f_fake.mean(0) - f_real.mean(0)).pow(2).mean()


class SGAN(GANMethod):
    NAME = "sgan"
    IMAGE_RANGE = (-1.0, 1.0)  # tanh output
    DEFAULTS = {
        **GAN_DEFAULTS,
        "epochs": 50,              # 27,500 steps of 100 (seed schedule unknown; DCGAN-scale)
        "steps_per_epoch": None,   # one pass over the unlabeled pool
        "batch_size": 100,
        "lr": 2e-4,                # DCGAN / Odena
        "beta1": 0.5,
        "g_channels": 64,          # generator: (2c, 7, 7) -> (c, 14, 14) -> (1, 28, 28)
        "d_channels": 32,          # discriminator: c, 2c, 4c feature maps
        "dropout": 0.3,
        "feature_matching": True,  # add the feature-matching term to the generator loss
        "fm_weight": 1.0,
    }

    @classmethod
    def build_generator(cls, hp) -> ConvGenerator:
        return ConvGenerator(hp["z_dim"], hp["g_channels"])

    def __init__(self, hp, data, device, gen, pretrained=None):
        super().__init__(hp, data, device, gen, pretrained)
        self.D = ConvDiscriminator(data.n_classes, hp["d_channels"], hp["dropout"]).to(device)
        self.G = self.build_generator(hp).to(device)
        for net in (self.D, self.G):  # DCGAN initialisation: N(0, 0.02) weights
            for m in net.modules():
                if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
                    torch.nn.init.normal_(m.weight, 0.0, 0.02)
        betas = (hp["beta1"], 0.999)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=hp["lr"], betas=betas)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=hp["lr"], betas=betas)

    def samples_per_step(self) -> int:
        return 2 * self.hp["batch_size"]   # real images per step: labeled and unlabeled

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """Flat [0, 1] images -> N x 1 x 28 x 28 in [-1, 1]."""
        return x.view(-1, 1, 28, 28) * 2 - 1

    def train_step(self):
        hp, n = self.hp, self.hp["batch_size"]
        x_lab, y_lab = self.batch(self.data.x_lab, self.data.y_lab)
        x_unl = self.images(self.batch(self.data.x_pool))

        with torch.no_grad():
            fake = self.G(self.noise(n))
        loss_sup = supervised_loss(self.D(self.images(x_lab)), y_lab)
        logits_unl = self.D(x_unl)
        with frozen_bn_stats(self.D):  # running statistics from real images only
            loss_rf = real_fake_loss(logits_unl, self.D(fake))
        self.opt_D.zero_grad(set_to_none=True)
        (loss_sup + loss_rf).backward()
        self.opt_D.step()
        self.track_d_unsup(loss_rf)

        with frozen_bn_stats(self.D):
            logits_fake, f_fake = self.D.features(self.G(self.noise(n)))
            loss_g = generator_loss(logits_fake)
            if hp["feature_matching"]:
                # real features through the same, updated discriminator as the fake ones
                with torch.no_grad():
                    f_real = self.D.features(x_unl)[1]
                loss_g = loss_g + hp["fm_weight"] * feature_matching_loss(f_fake, f_real)
        self.opt_G.zero_grad(set_to_none=True)
        loss_g.backward(inputs=list(self.G.parameters()))
        self.opt_G.step()
        return {"sup": loss_sup.detach(), "d_unsup": loss_rf.detach(), "gen": loss_g.detach()}

    def classifier(self):
        return KPlusOneClassifier(self.D)
