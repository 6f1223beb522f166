"""``aae``: the semi-supervised adversarial autoencoder (Makhzani et al. 2015, section 5; seed 004).

The encoder q(y, z | x) has a softmax class head y and a Gaussian style head z; the
decoder p(x | y, z) rebuilds the image from both. Every step runs the paper's three
phases on fresh minibatches:

1. reconstruction: encoder + decoder minimise the reconstruction error on unlabeled images;
2. regularisation: D_cat learns to tell y from one-hot samples of a uniform categorical prior
   and D_gauss to tell z from N(0, z_std^2 I) samples; then the encoder, as the generator,
   learns to fool both;
3. semi-supervised classification: the encoder minimises the cross-entropy of y on a
   labeled minibatch.

Defaults follow seed 004 (004_e9283f98c02d3284.txt:93-160, 247-255; its code is
Naresh1318/Adversarial_Autoencoder, ``semi_supervised_adversarial_autoencoder.py``, read at commit
0aa06dc): 784-1000-1000 nets (``n_l1``, ``n_l2``) with N(0, 0.01^2) weights (``dense()``),
``z_dim`` 10, prior z ~ N(0, 5^2 I) (``np.random.randn(...) * 5.``), a separate Adam(1e-3, beta1 0.9)
per phase, ``batch_size`` 100 unlabeled (``mnist.train.next_batch``) + 100 labeled, ``n_epochs``
1000 epochs of ``int(n_labeled / batch_size)`` steps (10,000 steps at 1,000 labels; constant lr),
mean squared reconstruction error. The seed's labeled images come from MNIST's test set
(``mnist.test.next_batch(n_labeled)``): the common ``label_draw: test``. (The seed's encoder
variable list, ``'e_' in var.name``, also catches the decoder's ``d_dense_*``; those get no gradient
from the generator or classification losses, so nothing changes.)

Quirk (training): ``dcat_fake_target_bug``. The code behind the blog post (Aug 2017) gave D_cat's
fake term the target 1 (``tf.ones_like(d_c_fake)``), so D_cat learned to call the encoder's y real
too; the author fixed it in Nov 2017 after issue #1 of the repository ("categorical discriminator
loss compared with 1", lines 235-236 of commit 2680a2b). Corrected (default): target 0, like
D_gauss's.

The paper's own recipe (Makhzani et al. 2015, appendix; as the reproduction report of
flatala/adverserial-autoencoders-semi-supervised transcribes it, its Table 1: "the exact same
hyper-parameters as in the original paper") is a configuration of this class, the ``aae-makhzani``
variant of presets/compare.yaml: ``optimizer: sgd`` with momentum 0.9 for the reconstruction and
classification phases (``beta1``) and 0.1 for the adversarial phase (``momentum_reg``), rates 0.01
(``lr_recon``) and 0.1 (``lr_reg``, ``lr_ssl``), each divided by 10 at epochs 50 and 1,000
(``lr_decay_epochs``), Gaussian noise of sd 0.3 on the encoder's input in training only
(``input_noise``), a N(0, 1) style prior (``z_std``) and the squared Euclidean reconstruction error of
each image (``recon_loss: sum``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..nets import AAEDecoder, AAEDiscriminator, AAEEncoder
from .base import HParamError, Method, adam, classification_loss, descend


# ---------------------------------------------------------------------------- priors

def sample_categorical(n: int, n_classes: int, gen: torch.Generator, device) -> torch.Tensor:
    """n one-hot rows, classes drawn uniformly: the prior p(y) = Cat(1/K) of section 5."""
    return F.one_hot(torch.randint(n_classes, (n,), generator=gen, device=device), n_classes).float()


def sample_gaussian(n: int, dim: int, std: float, gen: torch.Generator, device) -> torch.Tensor:
    """n draws of the style prior p(z) = N(0, std^2 I) (the seed uses std 5)."""
    return torch.randn(n, dim, generator=gen, device=device) * std


# ---------------------------------------------------------------------------- losses

RECON_LOSSES = ("mean", "sum")


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor, kind: str = "mean") -> torch.Tensor:
    """Reconstruction phase (section 2). "mean": the squared error averaged over pixels and images, as
    source 004 computes it (``tf.reduce_mean(tf.square(x - decoder_output))``). "sum": the squared
    Euclidean distance between an image and its reconstruction (summed over pixels), averaged over the
    images, the paper's reconstruction cost; under SGD the two differ by a factor of 784 in step size."""
    if kind == "sum":
        return (x_hat - x).pow(2).flatten(1).sum(1).mean()
    return F.mse_loss(x_hat, x)


def discriminator_loss(d_prior: torch.Tensor, d_code: torch.Tensor, fake_target: float = 0.0) -> torch.Tensor:
    """Regularisation phase, discriminator side of the GAN game (eq. 1 of the paper):
    -log D(prior sample) - log(1 - D(q(code | x))). Prior samples are real (target 1),
    the encoder's codes are fake (target 0). ``fake_target=1`` is the seed's D_cat as the blog
    post ran it (see ``dcat_fake_target_bug``): both inputs called real, so D_cat learns nothing."""
    return (F.binary_cross_entropy_with_logits(d_prior, torch.ones_like(d_prior))
            + F.binary_cross_entropy_with_logits(d_code, torch.full_like(d_code, fake_target)))


def generator_loss(d_code: torch.Tensor) -> torch.Tensor:
    """Regularisation phase, generator side (eq. 1 with the non-saturating -log D(q(code|x))
    of Goodfellow et al. 2014, as in the seed): the encoder wants its codes called real."""
    return F.binary_cross_entropy_with_logits(d_code, torch.ones_like(d_code))


# ---------------------------------------------------------------------------- method

def _step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """Back-propagate ``loss`` into this optimiser's parameters only, then update them."""
    descend(opt, loss, inputs=[p for g in opt.param_groups for p in g["params"]])


class AAE(Method):
    NAME = "aae"
    DEFAULTS = {
        "epochs": 1000,           # seed n_epochs = 1000
        "steps_per_epoch": None,  # None: int(n_labeled / batch_size), the source's batches per epoch (Method's)
        "batch_size": 100,        # seed: 100 unlabeled + 100 labeled images per step
        "hidden": [1000, 1000],   # seed and paper: two layers of 1000 ReLU units in every net
        "z_dim": 10,              # seed: z_dim = 10
        "z_std": 5.0,             # seed: real_distribution = randn * 5
        "init_std": 0.01,         # seed: N(0, 0.01^2) weights, zero biases
        "optimizer": "adam",      # seed: Adam for every phase; "sgd" with momentum is the paper's
        "lr_recon": 1e-3,         # seed: learning_rate = 0.001 for every phase
        "lr_reg": 1e-3,           # both discriminators and the generator step
        "lr_ssl": 1e-3,
        "beta1": 0.9,             # seed: Adam beta1 = 0.9; with sgd the momentum of the reconstruction and
                                  # classification phases (paper: 0.9)
        "momentum_reg": None,     # with sgd, the momentum of the adversarial phase (both discriminators and the
                                  # generator step); None: beta1 (paper: 0.1)
        "lr_decay_epochs": [],    # learning rates x 0.1 after each listed epoch (the paper's schedule)
        "input_noise": 0.0,       # sd of Gaussian noise added to the encoder's input in training, never at
                                  # evaluation (seed: none; paper: 0.3)
        "recon_loss": "mean",     # seed: mean squared error; "sum": per-image squared Euclidean distance (paper)
        # Quirk of the code behind the blog post (Aug 2017): D_cat's fake loss used target 1
        # (tf.ones_like(d_c_fake)), fixed in the repository's commit 0aa06dc "discriminator loss fix"
        # (Nov 2017). True reproduces it.
        "dcat_fake_target_bug": False,
    }
    OPTIMIZERS = ("adam", "sgd")

    @classmethod
    def check_hparams(cls, hp):
        super().check_hparams(hp)
        if hp["optimizer"] not in cls.OPTIMIZERS:
            raise HParamError(f"method 'aae': optimizer must be one of {cls.OPTIMIZERS}, got {hp['optimizer']!r}")
        if hp["recon_loss"] not in RECON_LOSSES:
            raise HParamError(f"method 'aae': recon_loss must be one of {RECON_LOSSES}, got {hp['recon_loss']!r}")
        if hp["input_noise"] < 0:
            raise HParamError(f"method 'aae': input_noise must be >= 0 (an sd), got {hp['input_noise']}")
        if hp["momentum_reg"] is not None and (hp["optimizer"] != "sgd" or not 0 <= hp["momentum_reg"] < 1):
            raise HParamError(f"method 'aae': momentum_reg is an SGD momentum in [0, 1) and needs optimizer: sgd, "
                              f"got {hp['momentum_reg']!r} with optimizer {hp['optimizer']!r}")
        for k in ("z_dim",):
            if hp[k] < 1:
                raise HParamError(f"method 'aae': {k} must be >= 1, got {hp[k]}")
        for k in ("z_std", "lr_recon", "lr_reg", "lr_ssl"):
            if not hp[k] > 0:
                raise HParamError(f"method 'aae': {k} must be > 0, got {hp[k]}")
        if not all(isinstance(e, int) and e >= 1 for e in hp["lr_decay_epochs"]):
            raise HParamError(f"method 'aae': lr_decay_epochs must list epochs >= 1, got {hp['lr_decay_epochs']}")

    def __init__(self, hp, data, device, gen, pretrained=None):
        super().__init__(hp, data, device, gen, pretrained)
        k, zd, hid, std = data.n_classes, hp["z_dim"], hp["hidden"], hp["init_std"]
        self.enc = AAEEncoder(data.x_pool.shape[1], hid, k, zd, std).to(device)
        self.dec = AAEDecoder(k, zd, hid[::-1], data.x_pool.shape[1], std).to(device)
        self.d_cat = AAEDiscriminator(k, hid, std).to(device)
        self.d_gauss = AAEDiscriminator(zd, hid, std).to(device)
        # One optimiser per phase, as in the seed: the encoder's reconstruction, generator and
        # classification updates keep separate moment estimates.
        self.opt_recon = self._opt([*self.enc.parameters(), *self.dec.parameters()], hp["lr_recon"])
        reg = hp["momentum_reg"]  # the adversarial phase's own momentum (SGD), if set
        self.opt_d_cat = self._opt(self.d_cat.parameters(), hp["lr_reg"], reg)
        self.opt_d_gauss = self._opt(self.d_gauss.parameters(), hp["lr_reg"], reg)
        self.opt_gen = self._opt(self.enc.parameters(), hp["lr_reg"], reg)
        self.opt_ssl = self._opt(self.enc.parameters(), hp["lr_ssl"])

    def _opt(self, params, lr, momentum=None):
        if self.hp["optimizer"] == "sgd":
            return torch.optim.SGD(params, lr=lr, momentum=self.hp["beta1"] if momentum is None else momentum)
        return adam(params, lr=lr, betas=(self.hp["beta1"], 0.999))

    def samples_per_step(self):
        return 2 * self.hp["batch_size"]  # an unlabeled and a labeled minibatch

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        y_logits, z = self.enc.encode(x)
        return self.dec(F.softmax(y_logits, 1), z)

    def noisy(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's training input: ``x`` plus N(0, input_noise^2) noise drawn from the run's generator
        (``x`` itself, and no draw, when input_noise is 0). Evaluation never calls this."""
        sd = self.hp["input_noise"]
        return x + sd * torch.randn(x.shape, generator=self.gen, device=x.device, dtype=x.dtype) if sd else x

    # The three phases of section 5, one method each so the tests can check what each updates.
    def phase_recon(self, x: torch.Tensor, x_in: torch.Tensor | None = None) -> torch.Tensor:
        """Reconstruct the clean ``x`` from the encoder's input ``x_in`` (``x`` when None)."""
        loss = reconstruction_loss(self.reconstruct(x if x_in is None else x_in), x, self.hp["recon_loss"])
        _step(self.opt_recon, loss)
        return loss.detach()

    def phase_discriminators(self, x: torch.Tensor):
        """Train D_cat and D_gauss on the current codes of ``x`` (the encoder's input); return their losses
        and the codes.

        The codes enter the discriminator losses detached, so these steps cannot move the
        encoder; the generator step then reuses them (with their graph) against the updated Ds."""
        y_logits, z = self.enc.encode(x)
        y, n, dev = F.softmax(y_logits, 1), len(x), x.device
        d_cat = discriminator_loss(self.d_cat(sample_categorical(n, y.shape[1], self.gen, dev)),
                                   self.d_cat(y.detach()), 1.0 if self.hp["dcat_fake_target_bug"] else 0.0)
        _step(self.opt_d_cat, d_cat)
        d_gauss = discriminator_loss(self.d_gauss(sample_gaussian(n, z.shape[1], self.hp["z_std"], self.gen, dev)),
                                     self.d_gauss(z.detach()))
        _step(self.opt_d_gauss, d_gauss)
        return d_cat.detach(), d_gauss.detach(), y, z

    def phase_generator(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        loss = generator_loss(self.d_cat(y)) + generator_loss(self.d_gauss(z))
        _step(self.opt_gen, loss)
        return loss.detach()

    def phase_ssl(self) -> torch.Tensor:
        """Semi-supervised classification phase (section 5): cross-entropy of q(y | x) on labeled images."""
        x_lab, y_lab = self.batch(self.data.x_lab, self.data.y_lab)
        loss = classification_loss(self.enc(self.noisy(x_lab)), y_lab)
        _step(self.opt_ssl, loss)
        return loss.detach()

    def train_step(self):
        x = self.batch(self.data.x_pool)
        x_in = self.noisy(x)  # one noisy copy for the reconstruction and regularisation phases
        recon = self.phase_recon(x, x_in)
        d_cat, d_gauss, y, z = self.phase_discriminators(x_in)  # codes after the reconstruction update
        g_reg = self.phase_generator(y, z)
        ssl = self.phase_ssl()
        return {"recon": recon, "d_cat": d_cat, "d_gauss": d_gauss, "g_reg": g_reg, "ssl": ssl}

    def on_epoch_end(self, epoch):
        if epoch in self.hp["lr_decay_epochs"]:
            for opt in self.optimizers().values():
                for group in opt.param_groups:
                    group["lr"] *= 0.1

    def classifier(self):
        return self.enc  # its forward is argmax-able class logits q(y | x)

    def export(self):
        """Encoder and decoder only: the figures need no discriminator, and model.pt stays small."""
        return {"modules": {"enc": self.enc.state_dict(), "dec": self.dec.state_dict()}}


def nets_from_export(payload: dict, device="cpu") -> tuple[AAEEncoder, AAEDecoder]:
    """The trained encoder and decoder of an ``aae`` model.pt (for figures), in eval mode."""
    if payload.get("method") != AAE.NAME:
        raise ValueError(f"expected a model.pt of method 'aae', got {payload.get('method')!r}")
    hp, k = payload["hparams"], payload["n_classes"]
    mods = payload["modules"]
    n_px = mods["enc"]["trunk.0.weight"].shape[1]
    enc = AAEEncoder(n_px, hp["hidden"], k, hp["z_dim"], None)
    dec = AAEDecoder(k, hp["z_dim"], hp["hidden"][::-1], n_px, None)
    enc.load_state_dict(mods["enc"])
    dec.load_state_dict(mods["dec"])
    return enc.to(device).eval(), dec.to(device).eval()
