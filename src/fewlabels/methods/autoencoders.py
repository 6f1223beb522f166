"""What the four autoencoder families of seed 003 share: the first stage (pretraining on the
unlabeled pool) and the second stage (a classifier head on the pretrained encoder, frozen or
fine-tuned), with its scratch twin (the same encoder and head from a random start).

Seed 003 (003_e52dbb3e96ae8bc0.txt) is session 3 of Parag Mital's course *Creative
Applications of Deep Learning with TensorFlow*. It trains its autoencoders on MNIST's images
only (003:318) and never uses the codes for classification; using them as features for a
classifier trained on few labels is this study's question. A family module sets ``ARCH`` (which
net) and, for its first stage, the input corruption and the loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..nets import ConvTiedAE, EncoderClassifier, NearestCentroid, TiedAE, VAE
from .base import HParamError, Method, adam, descend

# Architecture keys of each net, with the seed's values.
ARCH_DEFAULTS = {
    "fc": {"sizes": [512, 256, 128, 64],  # 003:163 (dimensions = [512, 256, 128, 64])
           "init_std": 0.02,              # 003:215 (random_normal_initializer stddev=0.02)
           "output_relu": False},         # quirk: True is the source's ReLU on the output (003:264)
    "conv": {"filters": [16, 16, 16],     # 003:376
             "ksize": 4,                  # 003:377
             "init_std": 0.02,            # 003:414
             "output_relu": False},       # quirk: True is the source (003:464)
    "vae": {"hidden": [512, 256, 64],     # ours, after the course library's MNIST VAE (512-256, 64 hidden)
            "latent": 2},                 # 003:535: "encode the majority of MNIST into 2 values"
}


def build_autoencoder(arch: str, hp: dict, n_in: int = 784):
    """The net of ``arch`` from resolved hyperparameters (first stage, second stage and figures)."""
    if arch == "fc":
        return TiedAE(n_in, hp["sizes"], hp["init_std"], hp["output_relu"])
    if arch == "conv":
        return ConvTiedAE(hp["filters"], hp["ksize"], hp["init_std"], hp["output_relu"], side=int(n_in ** 0.5))
    if arch == "vae":
        return VAE(n_in, hp["hidden"], hp["latent"])
    raise HParamError(f"unknown autoencoder architecture {arch!r}; expected fc, conv or vae")


def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over pixels, then over the batch (003:279, 286)."""
    return F.mse_loss(recon, target)


class AutoencoderPretrain(Method):
    """First stage: an autoencoder on the pool's images, ``epochs`` passes of batches of 100.

    The reported class accuracy is a nearest-class-mean readout of the code (class means of the
    labeled images, i.e. the pool at ``labels: all``): a diagnostic only; the encoder never sees a
    label, so the stage exports no labels used.
    """

    ARCH = "fc"
    DEFAULTS = {"epochs": 5,          # 003:307 (n_epochs = 5)
                "batch_size": 100,    # 003:306
                "lr": 1e-3}           # 003:291 (Adam)

    def __init__(self, hp, data, device, gen, pretrained=None):
        super().__init__(hp, data, device, gen, pretrained)
        self.net = build_autoencoder(self.arch(), hp, data.x_pool.shape[1]).to(device)
        if hasattr(self.net, "mean"):
            # The seed subtracts the mean image (003:163, 318); ours is the pool's mean (the seed's
            # covered all 70,000 images, test included).
            self.net.mean.copy_(data.x_pool.mean(0))
        self.readout = NearestCentroid(_Encode(self.net), data.n_classes, self.net.code_dim).to(device)
        self.opt = adam(self.net.parameters(), lr=hp["lr"])

    def arch(self) -> str:
        return self.ARCH

    def steps_per_epoch(self):
        if self.hp["steps_per_epoch"]:
            return int(self.hp["steps_per_epoch"])
        return max(1, len(self.data.x_pool) // self.hp["batch_size"])

    def noise(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The step's random numbers besides its minibatch ``x``, drawn from the batch generator after it
        (a plain autoencoder: none). Apart from ``loss`` so that stacked runs
        (``fewlabels.methods.stacked.autoencoders``) draw them per run, outside ``vmap``."""
        return {}

    def corrupt(self, x: torch.Tensor, noise: dict[str, torch.Tensor]) -> torch.Tensor:
        """The input the encoder sees (plain autoencoder: the image itself)."""
        return x

    def loss(self, net: nn.Module, x: torch.Tensor, noise: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The step's losses of autoencoder ``net`` (the run's, or a stacked template) on minibatch ``x``."""
        recon = net.decode(net.encode(self.corrupt(x, noise)))
        return {"recon": reconstruction_loss(recon, x - net.mean)}  # target: the clean image

    def train_step(self):
        x = self.batch(self.data.x_pool)
        losses = self.loss(self.net, x, self.noise(x))
        descend(self.opt, sum(losses.values()))
        return {k: v.detach() for k, v in losses.items()}

    @torch.no_grad()
    def on_epoch_end(self, epoch):
        x, y = self.data.x_lab, self.data.y_lab
        h = torch.cat([self.net.encode(x[i:i + 5000]) for i in range(0, len(x), 5000)])
        sums = torch.zeros_like(self.readout.centroids).index_add_(0, y, h)
        self.readout.centroids.copy_(sums / torch.bincount(y, minlength=len(sums)).clamp_min(1)[:, None])

    def classifier(self):
        return self.readout

    def labels_used(self):
        return {}  # the encoder is trained on images alone; the readout's class means are a diagnostic

    def export(self):
        return {**super().export(), "arch": self.arch(), "autoencoder": self.net.state_dict()}


class _Encode(torch.nn.Module):
    """``net.encode`` as a module, for the readout."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.encode(x)


HEAD_DEFAULTS = {
    "epochs": 10,              # 003:1311 (the conv classifier's n_epochs = 10)
    "steps_per_epoch": 50,     # ours: the source's one pass is 2 steps at 100 labels
    "batch_size": 50,          # 003:1310 (batch_size = 50)
    "lr": 1e-3,                # 003:681, 1293 (Adam, 0.001 / its default)
    "head_hidden": [128],      # ours, after the source's conv classifier's dense 128 (003:1277)
}


class EncoderHead(Method):
    """The scratch twin: encoder ``ARCH`` + head from a random start, trained on the labels alone.
    The second stage (``Pretrained``) overrides ``autoencoder`` to load the first stage's net."""

    ARCH = "fc"
    DEFAULTS = {**HEAD_DEFAULTS, **ARCH_DEFAULTS["fc"]}

    def __init__(self, hp, data, device, gen, pretrained=None):
        super().__init__(hp, data, device, gen, pretrained)
        self.net = EncoderClassifier(self.autoencoder(), data.n_classes, hp["head_hidden"]).to(device)
        self.opt = adam([p for p in self.net.parameters() if p.requires_grad], lr=hp["lr"])

    def autoencoder(self):
        ae = build_autoencoder(self.ARCH, self.hp, self.data.x_lab.shape[1])
        if hasattr(ae, "mean"):  # the same input normalisation as the pretrained twin
            ae.mean.copy_(self.data.x_pool.mean(0).to(ae.mean.device))
        return ae

    def train_step(self):
        return {"ce": self.labeled_step(self.net, self.opt)}

    def classifier(self):
        return self.net


class Pretrained(EncoderHead):
    """Second stage: the first stage's autoencoder (``PRETRAIN_STAGE``) under a new head; the
    encoder frozen (``freeze_encoder``) or fine-tuned with the head."""

    PRETRAIN_STAGE = "ae-pretrain"
    DEFAULTS = {**HEAD_DEFAULTS, "freeze_encoder": False}  # the net's sizes come from the first stage

    def autoencoder(self):
        p = self.pretrained
        if not p or p.get("method") != self.PRETRAIN_STAGE:
            raise HParamError(f"method {self.NAME!r} needs the {self.PRETRAIN_STAGE} model "
                              "(--pretrained .../model.pt)")
        ae = build_autoencoder(p["arch"], p["hparams"], self.data.x_lab.shape[1])
        ae.load_state_dict(p["autoencoder"])
        ae.requires_grad_(not self.hp["freeze_encoder"])
        return ae
