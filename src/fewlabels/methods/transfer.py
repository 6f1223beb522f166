"""``transfer-source`` / ``transfer`` / ``scratch``: transfer from digits 0-4 to digits 5-9 (seed 002).

Seed 002 is the transfer-learning exercise of Géron's *Hands-On Machine Learning*
(chapter 11, exercises 8-9) as its author solved it: a dense network with hidden
layers 200-50-50-50 and a softmax output, ELU, He initialisation, batch norm and
dropout, trained with Adam. Stage 1 (``transfer-source``) learns digits 0-4 from
every 0-4 image of the pool; stage 2 (``transfer``) reuses its hidden layers,
freezes the bottom ``freeze`` of them, puts a fresh 5-way output layer on top and
trains on ``labels`` images of digits 5-9 (labels shifted to 0-4 by the task).
``scratch`` is the same network trained on the same 5-9 images from a random start.
"""

from __future__ import annotations

import torch

from ..nets import ELUTower, TowerClassifier
from .base import HParamError, Method


class TowerMethod(Method):
    """Shared body of transfer, scratch and the Siamese heads: one TowerClassifier trained
    with Adam on the labeled images; a second stage overrides ``hidden`` and ``prepare``."""

    DEFAULTS = {
        "hidden": [200, 50, 50, 50],   # seed 002
        "dropout": 0.2,
        "lr": 1e-3,                    # Adam's default, as in the seed
        "batch_size": 100,
    }

    def __init__(self, hp, data, device, gen, pretrained=None):
        super().__init__(hp, data, device, gen, pretrained)
        self.net = TowerClassifier(ELUTower(data.x_lab.shape[1], self.hidden(), hp["dropout"]),
                                   data.n_classes).to(device)
        self.prepare()
        self.opt = torch.optim.Adam([p for p in self.net.parameters() if p.requires_grad], lr=hp["lr"])

    def hidden(self) -> list[int]:
        return self.hp["hidden"]

    def prepare(self) -> None:
        """Hook for stage 2: load and freeze layers before the optimiser is built."""

    def train_step(self):
        return {"ce": self.labeled_step(self.net, self.opt)}

    def classifier(self):
        return self.net

    def export(self):
        return {**super().export(), "tower": self.net.tower.state_dict()}


class TransferSource(TowerMethod):
    """Stage 1: every digit-0-4 image of the pool; tested on the 0-4 test images."""

    NAME = "transfer-source"
    DEFAULTS = {**TowerMethod.DEFAULTS, "epochs": 50, "steps_per_epoch": None}  # one pass of ~28k images per epoch


class Scratch(TowerMethod):
    """The control: the same network on the same 5-9 images, no pretraining."""

    NAME = "scratch"
    DEFAULTS = {**TowerMethod.DEFAULTS, "epochs": 40, "steps_per_epoch": 50}


class Transfer(TowerMethod):
    """Stage 2: the source network's hidden layers, bottom ``freeze`` frozen, a new output layer."""

    NAME = "transfer"
    # The architecture (hidden sizes) comes from the source model, so it has no key here.
    DEFAULTS = {k: v for k, v in {**TowerMethod.DEFAULTS, "epochs": 40, "steps_per_epoch": 50,
                                  "freeze": 1}.items() if k != "hidden"}

    @classmethod
    def check_hparams(cls, hp):
        super().check_hparams(hp)
        if hp["freeze"] < 0:
            raise HParamError(f"method {cls.NAME!r}: freeze must be >= 0 (hidden layers to freeze), got {hp['freeze']}")

    def hidden(self):
        if not self.pretrained or "tower" not in self.pretrained:
            raise HParamError("method 'transfer' needs the transfer-source model (--pretrained .../model.pt)")
        if self.pretrained.get("method") != "transfer-source":
            raise HParamError(f"method 'transfer' needs a transfer-source model, got {self.pretrained.get('method')!r}")
        hidden = self.pretrained["hparams"]["hidden"]
        if self.hp["freeze"] > len(hidden):
            raise HParamError(f"method 'transfer': freeze={self.hp['freeze']} but the source network "
                              f"has only {len(hidden)} hidden layers")
        return hidden

    def prepare(self):
        self.net.tower.load_state_dict(self.pretrained["tower"])
        self.net.tower.freeze(self.hp["freeze"])
