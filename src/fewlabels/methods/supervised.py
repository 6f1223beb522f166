"""``supervised``: the MLP trained on the labeled subset alone (seed 004's "basic NN classifier").

Defaults follow seed 004 (Naresh1318/Adversarial_Autoencoder, basic_nn_classifier.py):
784-1000-1000-10, ReLU, dropout with keep probability 0.25, N(0, 0.01^2) weights,
Adam(lr 1e-3, beta1 0.9), batches of 100. Unlike the seed, dropout is off at test time.
"""

from __future__ import annotations

import torch

from ..nets import MLPClassifier
from .base import Method


class Supervised(Method):
    NAME = "supervised"
    DEFAULTS = {
        "epochs": 100,
        "steps_per_epoch": 100,   # 10,000 steps: the seed's 1000 epochs x 10 batches at 1000 labels
        "batch_size": 100,
        "hidden": [1000, 1000],
        "dropout": 0.75,          # keep_prob = 0.25 in the seed
        "init_std": 0.01,
        "lr": 1e-3,
        "beta1": 0.9,
    }

    def __init__(self, hp, data, device, gen, pretrained=None):
        super().__init__(hp, data, device, gen, pretrained)
        self.net = MLPClassifier(data.x_lab.shape[1], hp["hidden"], data.n_classes,
                                 hp["dropout"], hp["init_std"]).to(device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=hp["lr"], betas=(hp["beta1"], 0.999))

    def train_step(self):
        return {"ce": self.labeled_step(self.net, self.opt)}

    def classifier(self):
        return self.net
