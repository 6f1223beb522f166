"""``supervised``: the MLP trained on the labeled subset alone (seed 004's "basic NN classifier").

Defaults follow seed 004 (004_e9283f98c02d3284.txt:55-58, 69-79; its code is
Naresh1318/Adversarial_Autoencoder, ``basic_nn_classifier.py``, read at commit 1fd0d36):
784-1000-1000-10 (``n_l1``, ``n_l2``), ReLU, ``tf.nn.dropout(..., keep_prob=0.25)`` after both hidden
layers, N(0, 0.01^2) weights and zero biases (``dense()``), Adam(``learning_rate`` 1e-3, ``beta1``
0.9), ``batch_size`` 100, ``n_epochs`` 1000 epochs of ``int(n_labeled / batch_size)`` batches (10,000
steps at 1,000 labels). The seed's 1,000 labeled images come from MNIST's test set
(``mnist.test.next_batch(n_labeled)``): the common ``label_draw: test``.

Quirk (evaluation only): ``dropout_at_test``. The seed's ``tf.nn.dropout`` has a constant
``keep_prob`` and no training switch, so its accuracy is measured with dropout on.
"""

from __future__ import annotations

import contextlib

import torch

from ..nets import MLPClassifier
from .base import Method, adam, dropout_active


class Supervised(Method):
    NAME = "supervised"
    EVAL_QUIRKS = ("dropout_at_test",)
    DEFAULTS = {
        "epochs": 1000,           # n_epochs = 1000
        "steps_per_epoch": None,  # int(n_labeled / batch_size): 10 at 1,000 labels -> 10,000 steps
        "batch_size": 100,
        "hidden": [1000, 1000],   # n_l1, n_l2
        "dropout": 0.75,          # keep_prob = 0.25 in dense_nn()
        "init_std": 0.01,         # dense(): random_normal(stddev=0.01), zero bias
        "lr": 1e-3,               # learning_rate
        "beta1": 0.9,             # beta1
        "dropout_at_test": False,  # eval quirk: the source's dropout is on at test time too
    }

    def __init__(self, hp, data, device, gen, pretrained=None):
        super().__init__(hp, data, device, gen, pretrained)
        self.net = MLPClassifier(data.x_lab.shape[1], hp["hidden"], data.n_classes,
                                 hp["dropout"], hp["init_std"]).to(device)
        self.opt = adam(self.net.parameters(), lr=hp["lr"], betas=(hp["beta1"], 0.999))

    def train_step(self):
        return {"ce": self.labeled_step(self.net, self.opt)}

    def classifier(self):
        return self.net

    def eval_context(self):
        return dropout_active(self.net) if self.hp["dropout_at_test"] else contextlib.nullcontext()
