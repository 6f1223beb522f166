"""``siamese-pairs`` / ``siamese`` / ``siamese-scratch``: pretraining on "same digit or not" (seed 000).

Seed 000 (000_ee9419910872d383.txt) is a TF1 notebook on the auxiliary-task exercise of Geron's
*Hands-On Machine Learning* (ch. 11, exercise 10); it stops after building the graph. What it fixes:
a tower of five ``fully_connected`` layers of 100 units (000:88-92) with He initialisation
(``variance_scaling_initializer()``, 000:83), ELU, ``tf.contrib.layers.batch_norm`` with decay 0.99
and ``updates_collections=None`` (000:84-87: the moving statistics do update; contrib's defaults:
no scale (gamma), eps 1e-3, and the dense layer under it has no bias), dropout keep 0.5 on the input
(000:79) and after every hidden layer (000:88-92), Adam with TF's defaults (lr 1e-3, 000:102);
pair batches of 100 same-digit + 100 different-digit pairs (``aux_mini_batch(..., 100)``,
000:26-44, 47); 5,000 labeled images and the other 55,000 for pairs, disjoint (one permutation,
000:15-18).

Not in the seed (it stops before): the pair head, which follows Geron's exercise 10 (the two
towers' outputs concatenated, a 10-unit ELU layer, one logistic output; ``pair_features``), and
the 10-way softmax head trained on the labeled images over the frozen tower (exercise 10.4).
Unlike the exercise's DNN A and B, the two towers share their weights by default (a Siamese
network, as the study's design says; ``shared_tower: false`` gives DNN A and B).

Geron's exercise as the seed builds it (ageron/handson-ml, ``11_deep_learning.ipynb``, exercise 10,
the ``siamese-geron*`` variants): what seed 000's tower adds to it is a key whose default is the
seed's: ``batch_norm`` (the exercise's ``dnn()`` has none), ``dropout``/``input_dropout`` (none),
``dense_bias`` (``tf.layers.dense`` has one), ``init`` (the exercise's ``he_init`` is TF core's
``variance_scaling_initializer()``, scale 1, not contrib's factor 2), ``optimizer`` (Nesterov momentum,
lr 0.01, momentum 0.95, for the pair stage and both classifiers), ``head_init`` (the softmax layer's
kernel is ``he_init`` too), ``shared_tower`` (two towers), the pair stage's batch (500 pairs) and
schedule (100 epochs x 110 batches), the classifiers' batch (50) and schedule (100 epochs, scratch
150, 100 batches an epoch). ``pair_draw``: how a pair is drawn; both sources draw uniform random
pairs of images and keep those with matching (or differing) labels (``aux_mini_batch``, 000:26-44;
``generate_batch``), which ``"uniform"`` reproduces; ``"by_class"`` (a uniform image, then a partner of
the same class or of a class drawn uniformly among the others) is what this port drew before.

Quirk (evaluation only, all three methods): ``dropout_at_test``. The hidden layers' ``dropout(h)``
(000:88-92) is contrib's ``dropout`` without ``is_training``, whose default is True, so those
layers keep dropping units at test time; the input dropout (000:79) obeys ``is_training``.

Disjoint pairs: the pair stage draws its pairs from ``data.x_pool``; with the common
``unlabeled: rest`` and the split of the budget to exclude, that pool is the task pool minus that
split's labeled images (the seed's protocol). ``labels_used()`` counts the images whose labels make
pair targets. ``siamese-scratch`` is the same tower and head trained on the same labels alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..nets import INITS, NearestCentroid, SiameseNet
from .base import HParamError, Method, descend
from .transfer import ARCH_KEYS, TowerMethod, build_tower, tower_optimizer

TOWER_DEFAULTS = {
    "hidden": [100, 100, 100, 100, 100],  # 000:88-92
    "dropout": 0.5,          # contrib dropout's default keep_prob 0.5 (000:88-92)
    "input_dropout": 0.5,    # 000:79
    "bn_momentum": 0.01,     # torch's; TF decay 0.99 (000:84)
    "bn_eps": 1e-3,          # contrib batch_norm default
    "bn_scale": False,       # contrib batch_norm default: no gamma (000:84-87)
    "dense_bias": False,     # fully_connected with a normalizer_fn has no bias (000:86-87)
    "lr": 1e-3,              # AdamOptimizer() default (000:102)
    "dropout_at_test": False,  # eval quirk: hidden dropout stays on at test (000:88-92)
    "batch_norm": True,      # normalizer_fn=batch_norm (000:86-87); Geron's dnn(): none
    "init": "he",            # contrib variance_scaling_initializer() (000:83); Geron: "variance_scaling"
    "head_init": "glorot",   # the softmax layer: ours, TF1's default (the source has none); Geron: he_init
    "optimizer": "adam",     # AdamOptimizer (000:102); Geron: "nesterov"
    "momentum": 0.95,        # Nesterov momentum (Geron ex. 10); unused by Adam
}


def pair_loss(logits: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the "same digit" logit (the seed's sigmoid output with log loss)."""
    return F.binary_cross_entropy_with_logits(logits, same)


PAIR_DRAWS = ("uniform", "by_class")


class PairSampler:
    """Balanced pairs drawn on the device: the first half of a batch shows the same class, the second
    half two different classes. ``draw="uniform"``: uniform random pairs of two images, kept when their
    labels match (or differ), as seed 000's ``aux_mini_batch`` (000:26-44) and Geron's ``generate_batch``
    draw them; a same-class pair's class then has probability ~ n_c^2. ``"by_class"``: a uniform image,
    then a partner of its class, or of a class uniform over the others."""

    def __init__(self, y: torch.Tensor, n_classes: int, draw: str = "uniform"):
        counts = torch.bincount(y, minlength=n_classes)
        if (counts == 0).any() or n_classes < 2:
            raise ValueError(f"pairs need images of every class; class counts are {counts.tolist()}")
        if draw not in PAIR_DRAWS:
            raise ValueError(f"pair_draw must be one of {list(PAIR_DRAWS)}, got {draw!r}")
        self.y, self.n_classes, self.draw = y, n_classes, draw
        self.order = torch.argsort(y, stable=True)            # indices grouped by class
        self.start = torch.cumsum(counts, 0) - counts
        self.counts = counts

    def _of_class(self, c: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        u = torch.rand(len(c), generator=gen, device=c.device)
        k = (u * self.counts[c]).long().clamp_max(self.counts[c] - 1)
        return self.order[self.start[c] + k]

    def _kept(self, n: int, same: bool, gen: torch.Generator):
        """``n`` uniform random pairs of distinct images whose labels match (``same``) or differ: candidates
        are drawn in rounds and the first ``n`` that qualify are kept (rejection sampling)."""
        dev, parts, have = self.y.device, [], 0
        while have < n:
            m = 16 * n if same else 2 * n
            a = torch.randint(len(self.y), (m,), generator=gen, device=dev)
            b = torch.randint(len(self.y), (m,), generator=gen, device=dev)
            ok = (self.y[a] == self.y[b]) & (a != b) if same else self.y[a] != self.y[b]
            parts.append(torch.stack([a[ok], b[ok]]))
            have += int(ok.sum())
        return torch.cat(parts, 1)[:, :n]

    def __call__(self, n: int, gen: torch.Generator):
        """Indices ``a, b`` into ``y`` and the float target ``same`` (1: same class), ``n`` pairs."""
        if n % 2:
            raise ValueError(f"pairs come in balanced batches; n must be even, got {n}")
        dev = self.y.device
        if self.draw == "uniform":
            ab = torch.cat([self._kept(n // 2, True, gen), self._kept(n // 2, False, gen)], 1)
            same = torch.cat([torch.ones(n // 2, device=dev), torch.zeros(n // 2, device=dev)])
            return ab[0], ab[1], same
        a = torch.randint(len(self.y), (n,), generator=gen, device=dev)
        ca = self.y[a]
        shift = torch.randint(1, self.n_classes, (n // 2,), generator=gen, device=dev)
        cb = torch.cat([ca[: n // 2], (ca[n // 2:] + shift) % self.n_classes])
        b = self._of_class(cb, gen)
        same = torch.cat([torch.ones(n // 2, device=dev), torch.zeros(n // 2, device=dev)])
        return a, b, same


class SiameseEval:
    """The seed-000 evaluation quirk for every Siamese method (``TowerMethod.eval_context``), and the
    checks of the keys they share."""

    EVAL_QUIRKS = ("dropout_at_test",)

    @classmethod
    def check_hparams(cls, hp):
        super().check_hparams(hp)
        for key, allowed in (("optimizer", ("adam", "nesterov")), ("init", tuple(INITS)),
                             ("head_init", ("glorot", *INITS)), ("pair_draw", PAIR_DRAWS)):
            if key in hp and hp[key] not in allowed:
                raise HParamError(f"method {cls.NAME!r}: {key} must be one of {list(allowed)}, got {hp[key]!r}")


class SiamesePairs(SiameseEval, Method):
    """Stage 1: the shared tower and pair head on balanced pairs from the pool.

    Its reported class accuracy is a nearest-class-mean readout of the tower's
    embedding (class means of the pool), so the aggregate has a number for it;
    ``pair_accuracy`` on validation and test pairs is the stage's own metric.
    """

    NAME = "siamese-pairs"
    DEFAULTS = {**TOWER_DEFAULTS, "epochs": 50, "steps_per_epoch": 500,  # schedule: ours (the source stops before)
                "batch_size": 200,       # pairs per step: 100 same + 100 different (000:30-40, 47)
                "pair_hidden": 10,       # Geron ex. 10: a 10-unit hidden layer over both towers
                "pair_features": "concat",  # Geron ex. 10: concatenated tower outputs
                "pair_draw": "uniform",  # aux_mini_batch (000:26-44): random pairs kept by label match
                "shared_tower": True,    # a Siamese network (the design); Geron: DNN A and DNN B
                "eval_pairs": 10000}     # Geron ex. 10: 10,000 test pairs
    draws_in_python = True   # the uniform draw rejects in rounds: a captured CUDA graph cannot replay it
    eval_context = TowerMethod.eval_context

    def __init__(self, hp, data, device, gen, pretrained=None):
        super().__init__(hp, data, device, gen, pretrained)
        if hp["batch_size"] % 2:
            raise HParamError(f"method {self.NAME!r}: batch_size (pairs per step) must be even")
        if len(data.y_pool) == 0:
            raise HParamError(f"method {self.NAME!r}: no pool images left to draw pairs from (unlabeled: rest "
                              "on a split of every image?); give the pair stage the split of the budget it excludes")
        self.sampler = PairSampler(data.y_pool, data.n_classes, hp["pair_draw"])
        width = data.x_pool.shape[1]
        tower_a = build_tower(width, hp)
        tower_b = None if hp["shared_tower"] else build_tower(width, hp)
        self.net = SiameseNet(tower_a, hp["pair_hidden"], hp["pair_features"], tower_b, hp["init"]).to(device)
        self.readout = NearestCentroid(self.net.tower, data.n_classes, self.net.tower.out_dim).to(device)
        self.opt = tower_optimizer(self.net.parameters(), hp)

    def samples_per_step(self):
        return 2 * self.hp["batch_size"]

    def train_step(self):
        a, b, same = self.sampler(self.hp["batch_size"], self.gen)
        return {"pair": descend(self.opt, pair_loss(self.net(self.data.x_pool[a], self.data.x_pool[b]), same))}

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
        a, b, same = PairSampler(y, self.data.n_classes, self.hp["pair_draw"])(self.hp["eval_pairs"], g)
        self.net.eval()
        right = ((self.net(x[a], x[b]) > 0).float() == same).float().mean()
        self.net.train()
        return float(right)

    def classifier(self):
        return self.readout

    def labels_used(self) -> dict[str, int]:
        """The images whose class labels make the same/different targets: every image the pairs
        come from. (The nearest-class-mean readout's labels serve only this stage's diagnostic
        accuracy and never reach a second stage.)"""
        return {"pair_targets": len(self.data.y_pool)}

    def extra_metrics(self):
        return {"pair_accuracy": self.pair_accuracy(self.data.x_test, self.data.y_test),
                "pair_accuracy_val": self.pair_accuracy(self.data.x_val, self.data.y_val)}

    def export(self):
        return {**super().export(), "tower": self.net.tower.state_dict()}


class SiameseScratch(SiameseEval, TowerMethod):
    """The control: the same tower and 10-way head trained on the labeled subset only."""

    NAME = "siamese-scratch"
    # schedule and batch: ours (the source stops before training)
    DEFAULTS = {**TOWER_DEFAULTS, "epochs": 40, "steps_per_epoch": 50, "batch_size": 100}


class Siamese(SiameseScratch):
    """Stage 2: the pair-trained tower under a new 10-way head; tower frozen or fine-tuned."""

    NAME = "siamese"
    # The tower's sizes come from the pair stage's model.
    DEFAULTS = {**{k: v for k, v in SiameseScratch.DEFAULTS.items() if k not in ARCH_KEYS},
                "freeze_tower": True}  # Geron ex. 10.4: reuse and freeze the tower

    def arch(self):
        if not self.pretrained or self.pretrained.get("method") != "siamese-pairs":
            raise HParamError("method 'siamese' needs the siamese-pairs model (--pretrained .../model.pt)")
        src = self.pretrained["hparams"]
        return {**self.hp, **{k: src[k] for k in ARCH_KEYS if k in src}}

    def prepare(self):
        tower = self.net.tower
        tower.load_state_dict(self.pretrained["tower"])
        tower.freeze(len(tower.blocks) if self.hp["freeze_tower"] else 0)
