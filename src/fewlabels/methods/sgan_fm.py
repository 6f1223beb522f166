"""``sgan-fm``: the MNIST feature-matching GAN of Salimans et al. 2016 ("Improved Techniques
for Training GANs", Sec. 3.1 and 5), as in openai/improved-gan,
mnist_svhn_cifar10/train_mnist_feature_matching.py and nn.py.

The discriminator is a K-class classifier whose "fake" logit is fixed at 0, so
D(x) = Z(x) / (Z(x) + 1) with Z(x) = sum_k exp l_k(x). Defaults are the published ones:
Adam(lr 0.003, beta1 0.5) for both networks with a constant learning rate (the MNIST script
has no decay), batches of 100, 300 epochs, data-dependent initialisation of the
weight-normalised layers on 500 unlabeled images, unlabeled weight 1, and evaluation of an
exponential moving average of the discriminator's trainable weights (rate 1e-4 per step) that
starts at zero and is never bias-corrected (``disc_param_avg = 0.*p``, ``a + 0.0001*(p - a)``).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from ..nets import FMDiscriminator, FMGenerator
from .base import HParamError, adam, descend
from .gan import GAN_DEFAULTS, GANMethod


def labeled_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L_supervised (Salimans eq. 2): -log p(y | x, y < K+1), a softmax over the K real logits
    (the fixed fake logit cancels in the conditional)."""
    return F.cross_entropy(logits, y)


def unlabeled_loss(logits_unl: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """L_unsupervised (Salimans eq. 3) with D(x) = Z/(Z+1), Z = exp(logsumexp l(x)):
    -log D(x) = softplus(-lse(x)) on real images, -log(1 - D(G(z))) = softplus(lse(G(z))) on
    generated ones; each term halved, as in improved-gan."""
    lse_unl = torch.logsumexp(logits_unl, dim=1)
    lse_fake = torch.logsumexp(logits_fake, dim=1)
    return 0.5 * F.softplus(-lse_unl).mean() + 0.5 * F.softplus(lse_fake).mean()


def feature_matching_loss(f_fake: torch.Tensor, f_real: torch.Tensor) -> torch.Tensor:
    """Feature matching (Salimans eq. 4): ||E f(x) - E f(G(z))||^2 on the discriminator's last
    hidden layer, averaged over units as in improved-gan."""
    return (f_fake.mean(0) - f_real.mean(0)).pow(2).mean()


class SGANFM(GANMethod):
    NAME = "sgan-fm"
    Z_RANGE = (0.0, 1.0)   # theano_rng.uniform: U(0, 1)
    DEFAULTS = {
        **GAN_DEFAULTS,
        "epochs": 300,             # published
        "steps_per_epoch": None,   # one pass over the unlabeled pool (550 batches of 100)
        "batch_size": 100,
        "lr": 0.003,
        "beta1": 0.5,
        "adam_eps": 1e-4,          # improved-gan's Adam divides by sqrt(v + 1e-8), i.e. damps steps of ~1e-4 gradients
        "unlabeled_weight": 1.0,
        "init_batch": 500,         # images for the data-dependent initialisation
        "ema_decay": 0.9999,       # evaluate an EMA of D's weights (1 - 1e-4 as published); 0: evaluate D itself
        "ema_start": "zero",       # the average's start: zero as published (no bias correction); "init": D's initial weights
        "d_hidden": [1000, 500, 250, 250, 250],
        "g_hidden": [500, 500],
        "input_noise": 0.3,
        "hidden_noise": 0.5,
    }

    @classmethod
    def check_hparams(cls, hp):
        super().check_hparams(hp)
        if not 0.0 <= hp["ema_decay"] < 1.0:
            raise HParamError(f"method {cls.NAME!r}: ema_decay must be in [0, 1), got {hp['ema_decay']}")
        if hp["ema_start"] not in ("zero", "init"):
            raise HParamError(f"method {cls.NAME!r}: ema_start must be 'zero' (published) or 'init', "
                              f"got {hp['ema_start']!r}")

    @classmethod
    def build_generator(cls, hp) -> FMGenerator:
        return FMGenerator(hp["z_dim"], hp["g_hidden"])

    def __init__(self, hp, data, device, gen, pretrained=None):
        super().__init__(hp, data, device, gen, pretrained)
        self.D = FMDiscriminator(data.x_pool.shape[1], hp["d_hidden"], data.n_classes,
                                 hp["input_noise"], hp["hidden_noise"]).to(device)
        self.G = self.build_generator(hp).to(device)
        self.D.data_init(self.batch(data.x_pool, size=hp["init_batch"]))
        # The average covers D's trainable weights; the frozen ones (the hidden layers' weight-norm
        # scales) keep their initialised values, as Theano's givens replace only the trainable ones.
        # Published, it starts at zero: after 180,000 steps at rate 1e-4 the start weighs 1.5e-8,
        # after 20,000 still 0.14 (ema_start "init" starts from the initialised weights instead).
        self.D_ema = copy.deepcopy(self.D) if hp["ema_decay"] > 0 else None
        if self.D_ema is not None and hp["ema_start"] == "zero":
            with torch.no_grad():
                for pe in self.D_ema.parameters():
                    if pe.requires_grad:
                        pe.zero_()
        kw = dict(lr=hp["lr"], betas=(hp["beta1"], 0.999), eps=hp["adam_eps"])
        self.opt_D = adam([p for p in self.D.parameters() if p.requires_grad], **kw)
        self.opt_G = adam(self.G.parameters(), **kw)

    def samples_per_step(self) -> int:
        return 3 * self.hp["batch_size"]   # real images per step: labeled, unlabeled, unlabeled for G

    def train_step(self):
        hp, n = self.hp, self.hp["batch_size"]
        x_lab, y_lab = self.batch(self.data.x_lab, self.data.y_lab)
        x_unl = self.batch(self.data.x_pool)
        x_unl2 = self.batch(self.data.x_pool)

        # Discriminator step: labeled CE + unlabeled real-vs-fake.
        with torch.no_grad():
            fake = self.G(self.noise(n))
        # One pass over all three batches (no batch norm in D, noise is per element): same
        # result as three passes, fewer and larger matrix products.
        l_lab, l_unl, l_fake = self.D(torch.cat([x_lab, x_unl, fake])).split([len(x_lab), n, n])
        loss_lab = labeled_loss(l_lab, y_lab)
        loss_unl = unlabeled_loss(l_unl, l_fake)
        descend(self.opt_D, loss_lab + hp["unlabeled_weight"] * loss_unl)
        if self.D_ema is not None:
            with torch.no_grad():
                for pe, p in zip(self.D_ema.parameters(), self.D.parameters()):
                    pe.lerp_(p, 1.0 - hp["ema_decay"])
        self.track_d_unsup(loss_unl)

        # Generator step: match the mean last-hidden-layer features of real images.
        _, f_fake = self.D.features(self.G(self.noise(n)))
        with torch.no_grad():
            _, f_real = self.D.features(x_unl2)
        loss_gen = feature_matching_loss(f_fake, f_real)
        descend(self.opt_G, loss_gen, inputs=list(self.G.parameters()))  # D's gradients are not needed here
        return {"lab": loss_lab.detach(), "unl": loss_unl.detach(), "gen": loss_gen.detach()}

    def classifier(self):
        return self.D_ema if self.D_ema is not None else self.D
