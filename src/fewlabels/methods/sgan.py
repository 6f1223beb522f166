"""``sgan``: seed 001's semi-supervised GAN with K+1 outputs (001_c1f65a8d6218390a.txt; Odena 2016,
"Semi-Supervised Learning with Generative Adversarial Networks").

The networks are seed 001's own (``nets.Seed001Generator``, ``nets.Seed001Discriminator``; 001:70-134).
Losses as the seed writes them (001:165-216): real-vs-fake is a sigmoid cross-entropy on the 11th
logit alone (real 0, fake 1); the labeled loss is a softmax cross-entropy over all 11 logits; the
generator loss is the non-saturating "call my images real" term only (the feature-matching line is
commented out, 001:207-208). D and G step together on one forward pass (one ``sess.run`` of both
train ops, 001:296), so G's gradient comes from D's weights before D's update. Adam with TF's
defaults (001:230-232; the lr placeholders fed at 001:293-294 are never used), batch 32: 28
unlabeled + 3 labeled real images + 32 noise vectors U(-1, 1) (001:282-290, 321), 20,000 steps
(001:321), inputs x / 127.5 - 1 (001:33).

The seed's accidents, each a switch that defaults to the corrected behaviour:

- ``d_unshared_weights``: each ``discriminator()`` call builds new ``tf.keras.layers`` objects
  (001:111-132). Keras layers create their variables themselves and ignore
  ``tf.variable_scope(reuse=True)``; only ``tf.layers.batch_normalization`` (the TF1 layer, through
  ``get_variable``) is reused. ``get_collection(..., scope='Discriminator')`` matches by prefix, so
  the copies under ``Discriminator_1``/``_2`` are trained too (001:226). As published there are
  three discriminators with separate conv/dense weights and shared batch-norm gamma/beta: one sees
  only the 3 labeled images (and is the one evaluated on the test set, 001:169, 305), one the
  unlabeled images, one the fakes.
- ``dropout_inactive``: ``tf.keras.layers.Dropout(p)(x)`` without ``training=`` follows the Keras
  learning phase, which is never set (default 0) in this TF1 graph, so the fed rate 0.5 (001:291)
  never applies. Corrected: dropout 0.5 while training, none at test (the seed feeds 0, 001:309).
- ``bn_init_stats_at_test`` (evaluation only): ``minimize()`` runs without the UPDATE_OPS
  (001:230), so the moving averages stay at mean 0 / variance 1, which is what test-time batch
  norm (``training=False``, 001:310) uses.
- ``argmax_with_fake`` (evaluation only): test accuracy is the argmax over all 11 softmax outputs
  (001:210-214), so a test image called fake counts as an error.

Ours: running batch-norm statistics come from real images only (the fake pass leaves them alone).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from ..nets import KPlusOneClassifier, Seed001Discriminator, Seed001Generator
from ..precision import outside_autocast
from .base import HParamError, adam, bn_init_statistics
from .gan import GAN_DEFAULTS, GANMethod, frozen_bn_stats


def real_fake_loss(logits_unl: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Discriminator's unsupervised loss (001:184-189): sigmoid cross-entropy of the fake logit,
    target 0 on unlabeled real images and 1 on generated ones."""
    return (F.binary_cross_entropy_with_logits(logits_unl[:, -1], torch.zeros_like(logits_unl[:, -1]))
            + F.binary_cross_entropy_with_logits(logits_fake[:, -1], torch.ones_like(logits_fake[:, -1])))


def supervised_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Labeled loss (001:192-193): softmax cross-entropy over all K+1 logits, the target one-hot on
    the digit with a 0 in the fake column (``prepare_labels``, 001:58-63)."""
    return F.cross_entropy(logits, y)


def generator_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """Generator loss (001:204-208): sigmoid cross-entropy of the fake logit of G(z) with target 0
    (real), the non-saturating loss of Goodfellow et al. 2014."""
    return F.binary_cross_entropy_with_logits(logits_fake[:, -1], torch.zeros_like(logits_fake[:, -1]))


class SGAN(GANMethod):
    NAME = "sgan"
    IMAGE_RANGE = (-1.0, 1.0)  # tanh output
    EVAL_QUIRKS = ("bn_init_stats_at_test", "argmax_with_fake")
    DEFAULTS = {
        **GAN_DEFAULTS,            # z_dim 100 (001:247, 290)
        "epochs": 100,             # x 200 steps = 20,000 iterations (001:321); the source tests every 200 (001:300)
        "steps_per_epoch": 200,
        "batch_size": 32,          # 001:321; int(0.9 b) unlabeled + int(0.1 b) labeled + b noise (001:282-290)
        "lr": 1e-3,                # tf.train.AdamOptimizer() defaults (001:230-232)
        "beta1": 0.9,
        "dropout": 0.5,            # fed dropout_rate (001:291)
        "d_unshared_weights": False,   # quirk: three discriminators, shared BN only (see module doc)
        "dropout_inactive": False,     # quirk: Keras dropout never active (see module doc)
        "bn_init_stats_at_test": False,  # eval quirk: BN moving statistics never updated
        "argmax_with_fake": False,       # eval quirk: argmax over all 11 outputs
    }

    @classmethod
    def check_hparams(cls, hp):
        super().check_hparams(hp)
        if int(0.1 * hp["batch_size"]) < 1:
            raise HParamError(f"method 'sgan': batch_size {hp['batch_size']} leaves no labeled image "
                              "(int(0.1 * batch_size) labeled per step, as seed 001); use >= 10")

    @classmethod
    def build_generator(cls, hp) -> Seed001Generator:
        return Seed001Generator(hp["z_dim"])

    def __init__(self, hp, data, device, gen, pretrained=None):
        super().__init__(hp, data, device, gen, pretrained)
        p, k = (0.0 if hp["dropout_inactive"] else hp["dropout"]), data.n_classes
        self.D = Seed001Discriminator(k, p).to(device)  # the labeled copy: the classifier
        if hp["d_unshared_weights"]:
            bns = self.D.batch_norms()
            self.D_copies = torch.nn.ModuleList(Seed001Discriminator(k, p, bns) for _ in range(2)).to(device)
        self.G = self.build_generator(hp).to(device)
        betas = (hp["beta1"], 0.999)
        self.opt_D = adam(self.d_params(), lr=hp["lr"], betas=betas, eps=1e-8)
        self.opt_G = adam(self.G.parameters(), lr=hp["lr"], betas=betas, eps=1e-8)
        self._clf = (KPlusOneClassifier(self.D),)  # a tuple: not a module of its own in state_dict
        bs = hp["batch_size"]
        self.n_unl, self.n_lab = int(0.9 * bs), int(0.1 * bs)

    def d_params(self) -> list[torch.nn.Parameter]:
        """Every discriminator parameter once (the copies share their batch-norm parameters)."""
        nets = [self.D, *getattr(self, "D_copies", [])]
        return list({id(q): q for net in nets for q in net.parameters()}.values())

    def discriminators(self):
        """(labeled, unlabeled, fake) discriminators: three copies as published, else one."""
        if self.hp["d_unshared_weights"]:
            return self.D, self.D_copies[0], self.D_copies[1]
        return self.D, self.D, self.D

    def samples_per_step(self) -> int:
        return self.n_unl + self.n_lab + self.hp["batch_size"]

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """Flat [0, 1] images -> N x 1 x 28 x 28 in [-1, 1] (the seed's x / 127.5 - 1)."""
        return x.view(-1, 1, 28, 28) * 2 - 1

    def train_step(self):
        x_lab, y_lab = self.batch(self.data.x_lab, self.data.y_lab, self.n_lab)
        x_unl = self.images(self.batch(self.data.x_pool, size=self.n_unl))
        d_lab, d_unl, d_fake = self.discriminators()
        fake = self.G(self.noise(self.hp["batch_size"]))
        # Three separate calls, as the seed's graph: each batch gets its own batch-norm statistics.
        logits_lab = d_lab(self.images(x_lab))
        logits_unl = d_unl(x_unl)
        with frozen_bn_stats(d_fake):  # ours: running statistics from real images only
            logits_fake = d_fake(fake)
        loss_sup = supervised_loss(logits_lab, y_lab)
        loss_rf = real_fake_loss(logits_unl, logits_fake)
        loss_g = generator_loss(logits_fake)
        # One forward pass, both gradients from it, then both updates (001:296).
        d_params, g_params = self.d_params(), list(self.G.parameters())
        with outside_autocast(self.device.type):  # a bf16 run: autocast covers the forward pass and losses only
            grads_d = torch.autograd.grad(loss_sup + loss_rf, d_params, retain_graph=True, allow_unused=True)
            grads_g = torch.autograd.grad(loss_g, g_params, allow_unused=True)
            for params, grads in ((d_params, grads_d), (g_params, grads_g)):
                for q, g in zip(params, grads):
                    q.grad = g
            self.opt_D.step()
            self.opt_G.step()
        self.track_d_unsup(loss_rf)
        return {"sup": loss_sup.detach(), "d_unsup": loss_rf.detach(), "gen": loss_g.detach()}

    def classifier(self):
        return self._clf[0]

    @contextlib.contextmanager
    def eval_context(self):
        clf = self._clf[0]
        with contextlib.ExitStack() as stack:
            if self.hp["bn_init_stats_at_test"]:
                stack.enter_context(bn_init_statistics(self.D))
            clf.keep_fake = self.hp["argmax_with_fake"]
            try:
                yield
            finally:
                clf.keep_fake = False
