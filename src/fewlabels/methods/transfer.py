"""``transfer-source`` / ``transfer`` / ``scratch``: transfer from digits 0-4 to digits 5-9 (seed 002).

Seed 002 (002_0e661fa08b2a740e.txt) is a TF1 notebook after Geron's *Hands-On Machine Learning*,
ch. 11, exercises 8-9: hidden layers 200-50-50-50 (002:31-32, 102-105), each dense -> batch norm
(momentum 0.9, 002:35, 84-86) -> ELU -> dropout 0.5 (002:34, 88-92), dropout 0.5 on the input too
(002:99-100), He initialisation (``variance_scaling_initializer()``, 002:77), a glorot-initialised
softmax output (002:107), Adam lr 0.01 (002:37, 120), batches of 100 drawn as ``mnist.next_batch``
does (shuffled passes, 002:172-174). Stage 1 (``transfer-source``) trains 25 epochs on every 0-4
image (002:38, 265); stage 2 (``transfer``) restores *only* hidden1 (kernel and bias, scope
'hidden[1]', 002:152-159) and freezes it; hidden2-4 and the output start fresh from the same
initialisation (``model.init`` runs first, 002:158) and train (scope 'hidden[234]|outputs',
002:162-163), 100 epochs x (images // 100) batches (002:39, 172) on the first 500 5-9 images
(002:219-224; ``label_draw: first``). ``scratch`` is the same network on the same images (002:307).

The seed's accidents, switches that default to the corrected behaviour:

- ``bn_init_stats_at_test`` (evaluation only, all three): ``minimize()`` runs without the UPDATE_OPS
  (002:125, 165), so test-time batch norm (``is_training`` False, 002:181) uses mean 0 / variance 1.
- ``bn_params_frozen_at_init`` (``transfer`` only): the batch-norm variables are named
  ``batch_normalization*``, outside both the restored scope 'hidden[1]' and the trained scope
  'hidden[234]|outputs', so in stage 2 every layer's gamma/beta stay at their initial 1/0 and
  layer 1's batch norm is re-initialised rather than restored (it then normalises with batch
  statistics like the others). Corrected: the restored layer comes back whole (dense and batch
  norm with its statistics) and is frozen; the fresh layers' batch norm trains.
"""

from __future__ import annotations

import contextlib

import torch

from ..nets import ELUTower, TowerClassifier
from .base import HParamError, Method, adam, bn_init_statistics, classification_loss, descend, dropout_active

# what a second stage takes from its first stage
ARCH_KEYS = ("hidden", "bn_scale", "dense_bias", "batch_norm")


def build_tower(n_in: int, hp: dict) -> ELUTower:
    """The tower a method's hyperparameters describe (``.get`` defaults: models saved before these
    keys existed, e.g. the archived ones, load as they were built)."""
    return ELUTower(n_in, hp["hidden"], hp["dropout"], hp.get("input_dropout", 0.0),
                    hp.get("bn_momentum", 0.1), hp.get("bn_eps", 1e-5),
                    hp.get("bn_scale", True), hp.get("dense_bias", True),
                    hp.get("batch_norm", True), hp.get("init", "he"))


def tower_optimizer(params, hp: dict) -> torch.optim.Optimizer:
    """Adam (seeds 002 and 000), or ``optimizer: nesterov``: TF's ``MomentumOptimizer(lr, momentum,
    use_nesterov=True)``, whose update (accum = m * accum + g; w -= lr * (g + m * accum)) is torch's
    SGD with ``nesterov=True`` and no dampening (Geron's exercise 10: lr 0.01, momentum 0.95)."""
    if hp.get("optimizer", "adam") == "nesterov":
        return torch.optim.SGD(params, lr=hp["lr"], momentum=hp["momentum"], nesterov=True)
    return adam(params, lr=hp["lr"])


class EpochBatches:
    """Batches as TF's ``DataSet.next_batch`` draws them (002:174): a new permutation per pass; a
    batch crossing the end of a pass takes the rest of it and the start of the next one."""

    def __init__(self, n: int):
        self.n, self.perm, self.pos = n, None, n

    def __call__(self, size: int, gen: torch.Generator) -> torch.Tensor:
        parts = []
        while size:
            if self.pos >= self.n:
                self.perm, self.pos = torch.randperm(self.n, generator=gen, device=gen.device), 0
            take = min(size, self.n - self.pos)
            parts.append(self.perm[self.pos:self.pos + take])
            self.pos, size = self.pos + take, size - take
        return torch.cat(parts)

    def state_dict(self) -> dict:
        return {"perm": self.perm, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.perm, self.pos = state["perm"], state["pos"]


class TowerMethod(Method):
    """Shared body of transfer, scratch and the Siamese heads: one TowerClassifier trained
    with Adam on the labeled images; a second stage overrides ``arch`` and ``prepare``."""

    DEFAULTS = {
        "hidden": [200, 50, 50, 50],   # 002:31-32, 102-105
        "dropout": 0.5,                # after every hidden layer (002:34, 90-92)
        "input_dropout": 0.5,          # on the input (002:99-100)
        "bn_momentum": 0.1,            # torch's; TF momentum 0.9 (002:35, 86)
        "bn_eps": 1e-3,                # tf.layers.batch_normalization default
        "lr": 0.01,                    # 002:37, 120
        "batch_size": 100,             # 002:40
        "bn_init_stats_at_test": False,  # eval quirk: BN moving statistics never updated (002:125, 165)
    }
    EVAL_QUIRKS = ("bn_init_stats_at_test",)

    def __init__(self, hp, data, device, gen, pretrained=None):
        super().__init__(hp, data, device, gen, pretrained)
        self.net = TowerClassifier(build_tower(data.x_lab.shape[1], self.arch()), data.n_classes,
                                   hp.get("head_init", "glorot")).to(device)
        self.prepare()
        self.opt = tower_optimizer([p for p in self.net.parameters() if p.requires_grad], hp)
        self.batches = EpochBatches(len(data.x_lab))

    def arch(self) -> dict:
        """Hyperparameters the tower is built from (a second stage takes ARCH_KEYS from its source)."""
        return self.hp

    def prepare(self) -> None:
        """Hook for stage 2: load and freeze layers before the optimiser is built."""

    def train_step(self):
        idx = self.batches(self.hp["batch_size"], self.gen)
        return {"ce": descend(self.opt, classification_loss(self.net(self.data.x_lab[idx]), self.data.y_lab[idx]))}

    def classifier(self):
        return self.net

    @contextlib.contextmanager
    def eval_context(self):
        with contextlib.ExitStack() as stack:
            if self.hp.get("bn_init_stats_at_test"):
                stack.enter_context(bn_init_statistics(self.net))
            if self.hp.get("dropout_at_test"):  # hidden layers only: the input dropout obeys is_training
                for block in self.net.tower.blocks:
                    stack.enter_context(dropout_active(block))
            yield

    def state_dict(self):
        return {**super().state_dict(), "batches": self.batches.state_dict()}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.batches.load_state_dict(state["batches"])

    def export(self):
        return {**super().export(), "tower": self.net.tower.state_dict()}


class TransferSource(TowerMethod):
    """Stage 1: every digit-0-4 image of the pool; tested on the 0-4 test images."""

    NAME = "transfer-source"
    # 25 passes over the 0-4 images (002:38, 172)
    DEFAULTS = {**TowerMethod.DEFAULTS, "epochs": 25, "steps_per_epoch": None}


class Scratch(TowerMethod):
    """The control: the same network on the same 5-9 images, no pretraining (002:300-307)."""

    NAME = "scratch"
    # 100 passes over the labeled images, images // 100 batches each (002:39, 172)
    DEFAULTS = {**TowerMethod.DEFAULTS, "epochs": 100, "steps_per_epoch": None}


class Transfer(TowerMethod):
    """Stage 2: the bottom ``restore_layers`` hidden layers of the source model, frozen; the layers
    above and the output layer start fresh and train."""

    NAME = "transfer"
    # The architecture (hidden sizes) comes from the source model, so it has no key here.
    DEFAULTS = {k: v for k, v in {**Scratch.DEFAULTS,
                                  "restore_layers": 1,               # hidden1 only (002:150-153)
                                  "bn_params_frozen_at_init": False,  # quirk (see module doc)
                                  }.items() if k != "hidden"}

    @classmethod
    def check_hparams(cls, hp):
        super().check_hparams(hp)
        if hp["restore_layers"] < 0:
            raise HParamError(f"method {cls.NAME!r}: restore_layers must be >= 0 (bottom hidden layers "
                              f"restored and frozen), got {hp['restore_layers']}")

    def arch(self):
        if not self.pretrained or "tower" not in self.pretrained:
            raise HParamError("method 'transfer' needs the transfer-source model (--pretrained .../model.pt)")
        if self.pretrained.get("method") != "transfer-source":
            raise HParamError(f"method 'transfer' needs a transfer-source model, got {self.pretrained.get('method')!r}")
        src = self.pretrained["hparams"]
        if self.hp["restore_layers"] > len(src["hidden"]):
            raise HParamError(f"method 'transfer': restore_layers={self.hp['restore_layers']} but the source "
                              f"network has only {len(src['hidden'])} hidden layers")
        return {**self.hp, **{k: src[k] for k in ARCH_KEYS if k in src}}

    def prepare(self):
        tower, k = self.net.tower, self.hp["restore_layers"]
        quirk = self.hp["bn_params_frozen_at_init"]
        # blocks.i.0 is layer i's dense layer, blocks.i.1 its batch norm
        keep = [f"blocks.{i}.0." for i in range(k)] if quirk else [f"blocks.{i}." for i in range(k)]
        state = {n: v for n, v in self.pretrained["tower"].items() if n.startswith(tuple(keep))}
        tower.load_state_dict(state, strict=False)
        if not quirk:
            tower.freeze(k)
            return
        for i, block in enumerate(tower.blocks):
            for p in block[0].parameters():
                p.requires_grad_(i >= k)
            for p in block[1].parameters():  # gamma/beta: in neither scope, never trained
                p.requires_grad_(False)
