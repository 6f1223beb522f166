"""``linear`` and ``conv``: seed 003's two supervised classifiers, baselines on the labels alone.

Seed 003 (003_e52dbb3e96ae8bc0.txt:628-733): softmax regression (one 784x10 linear layer and a
softmax), cross-entropy, Adam 1e-3, 5 epochs, "batch_size = 50" (003:664-705); it printed about
92 % validation accuracy and "right about 93 %" (003:726-731, 1164). 003:1166-1343: the
convolutional classifier (``nets.SeedConvNet``: 5x5 convs of 32 and 64 filters, stride 2, dense
128, softmax), Adam at its default rate 1e-3, 10 epochs, "batch_size = 50" (003:1218-1311);
97.7 % validation after the last epoch (003:1341).

The seed's loss is the cross-entropy summed over the batch (003:680, 1292); Adam is (up to its
epsilon) invariant to that scale, so we use the mean. An epoch is one pass over the labeled
images, as the seed's; ``min_steps_per_epoch`` (ours) keeps small budgets from getting a handful
of steps (the seed's pass at 100 labels is 2 steps).

Quirk ``library_batch`` (default false): the seed assigns ``batch_size = 50`` but calls
``ds.train.next_batch()`` without it (003:704-707, 1310-1313), so the course library's default
batch of 100 is what ran; true trains with batches of 100, as the printed numbers did.
"""

from __future__ import annotations

import torch
from torch import nn

from ..nets import SeedConvNet
from .base import HParamError, Method, adam, classification_loss, descend

LIBRARY_BATCH = 100  # DatasetSplit.next_batch(batch_size=100) of the course library


class SeedClassifier(Method):
    DEFAULTS = {"batch_size": 50, "lr": 1e-3, "steps_per_epoch": None, "min_steps_per_epoch": 1,
                "library_batch": False}

    def __init__(self, hp, data, device, gen, pretrained=None):
        super().__init__(hp, data, device, gen, pretrained)
        self.net = self.build(data).to(device)
        self.opt = adam(self.net.parameters(), lr=hp["lr"])

    @classmethod
    def check_hparams(cls, hp):
        super().check_hparams(hp)
        if hp["min_steps_per_epoch"] < 1:
            raise HParamError(f"method {cls.NAME!r}: min_steps_per_epoch must be >= 1")

    def build(self, data) -> nn.Module:
        raise NotImplementedError

    def batch_size(self) -> int:
        return LIBRARY_BATCH if self.hp["library_batch"] else self.hp["batch_size"]

    def samples_per_step(self):
        return self.batch_size()

    def steps_per_epoch(self):
        if self.hp["steps_per_epoch"]:
            return int(self.hp["steps_per_epoch"])
        return max(self.hp["min_steps_per_epoch"], -(-len(self.data.x_lab) // self.batch_size()))

    def train_step(self):
        x, y = self.batch(self.data.x_lab, self.data.y_lab, self.batch_size())
        return {"ce": descend(self.opt, classification_loss(self.net(x), y))}  # 003:680 (up to its sum over the batch)

    def classifier(self):
        return self.net


class Linear(SeedClassifier):
    NAME = "linear"
    DEFAULTS = {**SeedClassifier.DEFAULTS, "epochs": 5}  # 003:705

    def build(self, data):
        return nn.Linear(data.x_lab.shape[1], data.n_classes)  # torch's default init (the seed's is not shown)


class Conv(SeedClassifier):
    NAME = "conv"
    DEFAULTS = {**SeedClassifier.DEFAULTS, "epochs": 10,  # 003:1311
                "filters": [32, 64], "ksize": 5, "dense": 128,  # 003:1219-1221, 1250, 1277
                "init_std": 1.0}  # 003:1225, 1254: random_normal_initializer() (std 1)

    def build(self, data):
        return SeedConvNet(data.n_classes, self.hp["filters"], self.hp["ksize"], self.hp["dense"],
                           self.hp["init_std"], side=int(data.x_lab.shape[1] ** 0.5))
