"""``siamese-pairs`` / ``siamese`` / ``siamese-scratch``: pretraining on "same digit or not" (seed 000).

Seed 000 is the auxiliary-task exercise of Géron's *Hands-On Machine Learning*
(chapter 11, exercise 10): a tower of five hidden layers of 100 units (ELU, He
initialisation; here also batch norm and dropout, as the issue asks) applied with
shared weights to two images, a small head on the pair that predicts whether they
show the same digit, then the tower reused under a 10-way softmax trained on a few
labeled images. Stage 1 (``siamese-pairs``) draws balanced same/different pairs
from the pool on the device. The same/different signal comes from the pool's
labels: weaker supervision than class labels (the tower never sees which digit),
but not none. ``siamese-scratch`` is the same tower and head trained on the same
labels from a random start.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..nets import ELUTower, NearestCentroid, SiameseNet
from .base import HParamError, Method
from .transfer import TowerMethod

TOWER_DEFAULTS = {"hidden": [100, 100, 100, 100, 100], "dropout": 0.1}


def pair_loss(logits: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the "same digit" logit (the seed's sigmoid output with log loss)."""
    return F.binary_cross_entropy_with_logits(logits, same)


class PairSampler:
    """Balanced pairs drawn on the device: the first half of a batch shows the same class,
    the second half two different classes (the partner's class uniform over the others)."""

    def __init__(self, y: torch.Tensor, n_classes: int):
        counts = torch.bincount(y, minlength=n_classes)
        if (counts == 0).any() or n_classes < 2:
            raise ValueError(f"pairs need images of every class; class counts are {counts.tolist()}")
        self.y, self.n_classes = y, n_classes
        self.order = torch.argsort(y, stable=True)            # indices grouped by class
        self.start = torch.cumsum(counts, 0) - counts
        self.counts = counts

    def _of_class(self, c: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        u = torch.rand(len(c), generator=gen, device=c.device)
        k = (u * self.counts[c]).long().clamp_max(self.counts[c] - 1)
        return self.order[self.start[c] + k]

    def __call__(self, n: int, gen: torch.Generator):
        """Indices ``a, b`` into ``y`` and the float target ``same`` (1: same class), ``n`` pairs."""
        if n % 2:
            raise ValueError(f"pairs come in balanced batches; n must be even, got {n}")
        dev = self.y.device
        a = torch.randint(len(self.y), (n,), generator=gen, device=dev)
        ca = self.y[a]
        shift = torch.randint(1, self.n_classes, (n // 2,), generator=gen, device=dev)
        cb = torch.cat([ca[: n // 2], (ca[n // 2:] + shift) % self.n_classes])
        b = self._of_class(cb, gen)
        same = torch.cat([torch.ones(n // 2, device=dev), torch.zeros(n // 2, device=dev)])
        return a, b, same


class SiamesePairs(Method):
    """Stage 1: the shared tower and pair head on balanced pairs from the pool.

    Its reported class accuracy is a nearest-class-mean readout of the tower's
    embedding (class means of the pool), so the aggregate has a number for it;
    ``pair_accuracy`` on validation and test pairs is the stage's own metric.
    """

    NAME = "siamese-pairs"
    DEFAULTS = {**TOWER_DEFAULTS, "epochs": 50, "steps_per_epoch": 500, "batch_size": 100,  # 100 pairs
                "pair_hidden": 10, "lr": 1e-3, "eval_pairs": 10000}

    def __init__(self, hp, data, device, gen, pretrained=None):
        super().__init__(hp, data, device, gen, pretrained)
        if hp["batch_size"] % 2:
            raise HParamError(f"method {self.NAME!r}: batch_size (pairs per step) must be even")
        self.sampler = PairSampler(data.y_pool, data.n_classes)
        self.net = SiameseNet(ELUTower(data.x_pool.shape[1], hp["hidden"], hp["dropout"]),
                              hp["pair_hidden"]).to(device)
        self.readout = NearestCentroid(self.net.tower, data.n_classes, self.net.tower.out_dim).to(device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=hp["lr"])

    def samples_per_step(self):
        return 2 * self.hp["batch_size"]

    def train_step(self):
        a, b, same = self.sampler(self.hp["batch_size"], self.gen)
        loss = pair_loss(self.net(self.data.x_pool[a], self.data.x_pool[b]), same)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"pair": loss.detach()}

    @torch.no_grad()
    def on_epoch_end(self, epoch):
        # Class means of the labeled images' embeddings (eval mode) for the readout.
        tower = self.net.tower
        tower.eval()
        x, y = self.data.x_lab, self.data.y_lab
        h = torch.cat([tower(x[i:i + 5000]) for i in range(0, len(x), 5000)])
        sums = torch.zeros_like(self.readout.centroids).index_add_(0, y, h)
        self.readout.centroids.copy_(sums / torch.bincount(y, minlength=len(sums)).clamp_min(1)[:, None])
        tower.train()

    @torch.no_grad()
    def pair_accuracy(self, x, y) -> float:
        """Share of balanced pairs (a fixed draw) whose same/different call is right, in eval mode."""
        g = torch.Generator(device=x.device)
        g.manual_seed(0)
        a, b, same = PairSampler(y, self.data.n_classes)(self.hp["eval_pairs"], g)
        self.net.eval()
        right = ((self.net(x[a], x[b]) > 0).float() == same).float().mean()
        self.net.train()
        return float(right)

    def classifier(self):
        return self.readout

    def extra_metrics(self):
        return {"pair_accuracy": self.pair_accuracy(self.data.x_test, self.data.y_test),
                "pair_accuracy_val": self.pair_accuracy(self.data.x_val, self.data.y_val)}

    def export(self):
        return {**super().export(), "tower": self.net.tower.state_dict()}


class SiameseScratch(TowerMethod):
    """The control: the same tower and 10-way head trained on the labeled subset only."""

    NAME = "siamese-scratch"
    DEFAULTS = {**TOWER_DEFAULTS, "epochs": 40, "steps_per_epoch": 50, "batch_size": 100, "lr": 1e-3}


class Siamese(SiameseScratch):
    """Stage 2: the pair-trained tower under a new 10-way head; tower frozen or fine-tuned."""

    NAME = "siamese"
    # The tower's sizes come from the pair stage's model.
    DEFAULTS = {**{k: v for k, v in SiameseScratch.DEFAULTS.items() if k != "hidden"}, "freeze_tower": True}

    def hidden(self):
        if not self.pretrained or self.pretrained.get("method") != "siamese-pairs":
            raise HParamError("method 'siamese' needs the siamese-pairs model (--pretrained .../model.pt)")
        return self.pretrained["hparams"]["hidden"]

    def prepare(self):
        tower = self.net.tower
        tower.load_state_dict(self.pretrained["tower"])
        tower.freeze(len(tower.blocks) if self.hp["freeze_tower"] else 0)
