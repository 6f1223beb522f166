"""The contract between a method and the shared trainer.

A method owns its networks, optimisers and the body of one training step. The
trainer (``fewlabels.training``) owns everything else: seeding, the device, the
epoch loop, evaluation, checkpoints, the history and the metrics file.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data import DATA_SPLITS, TaskData
from ..precision import PRECISIONS, outside_autocast

# Keys every method understands; a method's DEFAULTS add to (or override) them.
COMMON_DEFAULTS: dict[str, Any] = {
    "epochs": 10,            # length of the schedule, fixed in advance; the final epoch is reported
    "steps_per_epoch": None,  # None: one pass over the method's main data per epoch
    "batch_size": 100,
    # Which labeled images a run sees. "balanced": the class-balanced subset of the shared split file
    # (the protocol). "random": `labels` pool images drawn uniformly with the run's seed, classes
    # unbalanced, as sources 000 and 001 draw them (000:15-17, 001:43-45). "first": the first `labels`
    # images of the task's pool in file order, as source 002 takes them (002:219-224). "test": `labels`
    # images drawn from MNIST's test set, as source 004's reference code does (mnist.test.next_batch(1000)
    # in semi_supervised_adversarial_autoencoder.py and basic_nn_classifier.py); the run is then tested
    # on the rest of the test set. "head" (with data_split "tf1"): the first `labels` images of the
    # training file, which read_data_sets makes the validation set (Geron's exercise 10 trains on X_valid).
    # "train_test_split": `labels` images drawn as sklearn's train_test_split(random_state=seed) draws its
    # train part, classes unbalanced (source 001 calls it on all 60,000 training images, 001:43-45).
    "label_draw": "balanced",
    # Unlabeled data. "pool": the whole pool, labeled images included (the protocol, as the reference
    # implementations do). "rest": the pool without the labeled images (sources 000 and 001 keep them apart).
    "unlabeled": "pool",
    # How the training file is cut. "protocol": the fixed stratified validation set, the pool the rest.
    # "tf1": as TF1's input_data.read_data_sets cuts it, validation = the first 5,000 images and train
    # = the other 55,000 in file order (sources 002 and 004 read MNIST this way, 002:197). "keras": every
    # training image in the pool, none held out (keras.datasets.mnist.load_data, source 001, 001:13-14);
    # the protocol's validation images are then used for monitoring only.
    "data_split": "protocol",
    # label_draw "first" starts at this training index (0: the pool's first images; the 500-image sets
    # of the seeds preset's "which 500 images" cells start at 5,000 k).
    "label_offset": 0,
    # The arithmetic of training and evaluation (fewlabels.precision). "fp32": plain fp32, no autocast.
    # "bf16": PyTorch's mixed precision, forward pass and losses under bf16 autocast, fp32 weights and
    # optimiser state (ours; the sources trained in fp32). "auto": bf16 where the device computes it
    # natively (a CPU with avx512_bf16 or amx_bf16, a GPU with bf16 units), else fp32. metrics.json
    # records what a run resolved it to.
    "precision": "fp32",
}
LABEL_DRAWS = ("balanced", "random", "train_test_split", "first", "test", "head")
UNLABELED = ("pool", "rest")


def adam(params, lr: float, **kw) -> torch.optim.Optimizer:
    """Adam as every method builds it: the fused kernel (one pass over each parameter's state
    instead of several elementwise ops; about 25 % off a CPU step of the seed-004 MLP, README
    "Speed"). Same update rule as ``torch.optim.Adam``'s default, so a seed's settings carry over."""
    return torch.optim.Adam(params, lr=lr, fused=True, **kw)


def descend(opt: torch.optim.Optimizer, loss: torch.Tensor, inputs: list | None = None) -> torch.Tensor:
    """One optimiser step on ``loss``: clear the gradients, back-propagate (into ``inputs`` only,
    when given: the tensors whose gradients this step needs), update. Returns the detached loss."""
    opt.zero_grad(set_to_none=True)
    with outside_autocast(loss.device.type):  # a bf16 run: autocast covers the forward pass and loss only
        loss.backward(inputs=inputs)
        opt.step()
    return loss.detach()


def classification_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean softmax cross-entropy of a labeled minibatch: the supervised term every method
    shares (``softmax_cross_entropy_with_logits`` in the seeds' TensorFlow code)."""
    return F.cross_entropy(logits, y)


@contextlib.contextmanager
def dropout_active(module: nn.Module):
    """Every dropout layer of ``module`` in training mode for the duration: a seed's network that
    kept dropping units at test time (a quirk switch; the trainer has already called ``eval()``)."""
    drops = [m for m in module.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
    was = [m.training for m in drops]
    for m in drops:
        m.train()
    try:
        yield
    finally:
        for m, w in zip(drops, was):
            m.train(w)


@contextlib.contextmanager
def bn_init_statistics(module: nn.Module):
    """Batch norm in eval mode normalises with mean 0 / variance 1 for the duration: what TF1 code
    gets when ``minimize()`` runs without the UPDATE_OPS, so the moving averages never leave their
    initial values. The stored running statistics are restored afterwards."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
           and m.running_mean is not None]
    saved = [(m.running_mean.clone(), m.running_var.clone()) for m in bns]
    with torch.no_grad():
        for m in bns:
            m.running_mean.zero_()
            m.running_var.fill_(1.0)
    try:
        yield
    finally:
        with torch.no_grad():
            for m, (mean, var) in zip(bns, saved):
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)


class DivergedError(RuntimeError):
    """A loss became NaN or infinite (the trainer checks every epoch; a method may raise it too, e.g. a
    collapsed GAN). The CLI exits non-zero and writes no metrics file."""


class HParamError(ValueError):
    """A method's configuration has an unknown key or a value of the wrong type."""


def _type_ok(default, value) -> bool:
    if default is None or value is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def resolve_hparams(cls: type["Method"], overrides: dict | None) -> dict:
    """Defaults of ``cls`` updated with ``overrides``; unknown keys and wrong types are errors."""
    hp = {**COMMON_DEFAULTS, **cls.DEFAULTS}
    for key, value in (overrides or {}).items():
        if key not in hp:
            raise HParamError(f"method {cls.NAME!r}: unknown hyperparameter {key!r}; "
                              f"known keys are {sorted(hp)}")
        if not _type_ok(hp[key], value):
            raise HParamError(f"method {cls.NAME!r}: hyperparameter {key!r} should be "
                              f"{type(hp[key]).__name__} like its default {hp[key]!r}, got {value!r}")
        hp[key] = list(value) if isinstance(value, tuple) else value
    cls.check_hparams(hp)
    return hp


class Method:
    """Base class. Subclasses set NAME and DEFAULTS and implement ``train_step`` and ``classifier``.

    ``__init__`` receives the resolved hyperparameters, the run's tensors (already on
    ``device``), a ``torch.Generator`` on that device for drawing batches, and, for a
    second stage, the ``pretrained`` payload that the first stage exported.
    """

    NAME = "base"
    DEFAULTS: dict[str, Any] = {}
    # Boolean hyperparameters that change only how the trained model is evaluated (a seed's test-time
    # quirk). ``eval_context`` applies them; the trainer re-evaluates the final model with each flipped.
    EVAL_QUIRKS: tuple[str, ...] = ()

    def __init__(self, hp: dict, data: TaskData, device: torch.device, gen: torch.Generator,
                 pretrained: dict | None = None):
        self.hp, self.data, self.device, self.gen = hp, data, device, gen
        self.pretrained = pretrained

    # ---- configuration
    @classmethod
    def check_hparams(cls, hp: dict) -> None:
        """Raise HParamError for values that have the right type but make no sense."""
        for k in ("epochs", "batch_size"):
            if hp[k] < 1:
                raise HParamError(f"method {cls.NAME!r}: {k} must be >= 1, got {hp[k]}")
        for k, allowed in (("label_draw", LABEL_DRAWS), ("unlabeled", UNLABELED), ("data_split", DATA_SPLITS),
                           ("precision", PRECISIONS)):
            if hp[k] not in allowed:
                raise HParamError(f"method {cls.NAME!r}: {k} must be one of {list(allowed)}, got {hp[k]!r}")
        if hp["label_draw"] == "head" and hp["data_split"] != "tf1":
            raise HParamError(f"method {cls.NAME!r}: label_draw 'head' takes the tf1 validation images; "
                              "set data_split: tf1")
        if hp["label_offset"] < 0:
            raise HParamError(f"method {cls.NAME!r}: label_offset must be >= 0, got {hp['label_offset']}")
        spe = hp["steps_per_epoch"]
        if spe is not None and (isinstance(spe, bool) or not isinstance(spe, int) or spe < 1):
            raise HParamError(f"method {cls.NAME!r}: steps_per_epoch must be an integer >= 1, or null for "
                              f"one pass over the method's data, got {spe!r}")

    # ---- what the trainer calls
    def steps_per_epoch(self) -> int:
        """Default: one pass over the labeled subset (supervised methods)."""
        if self.hp["steps_per_epoch"]:
            return int(self.hp["steps_per_epoch"])
        return max(1, len(self.data.x_lab) // self.hp["batch_size"])

    def samples_per_step(self) -> int:
        """Images that pass through the networks per step, for the throughput figure."""
        return self.hp["batch_size"]

    def train_step(self) -> dict[str, torch.Tensor]:
        """One optimisation step. Returns detached scalar losses named by phase (no ``.item()``)."""
        raise NotImplementedError

    def classifier(self) -> nn.Module:
        """The module that maps images (N x 784, floats in [0, 1]) to class logits."""
        raise NotImplementedError

    def eval_context(self) -> contextlib.AbstractContextManager:
        """Entered by the trainer around every evaluation, after ``eval()``: where the method applies
        its ``EVAL_QUIRKS`` that are switched on (e.g. ``dropout_active(net)``)."""
        return contextlib.nullcontext()

    def on_epoch_end(self, epoch: int) -> None:
        """Learning-rate schedules and the like; ``epoch`` counts from 1."""

    def modules(self) -> dict[str, nn.Module]:
        return {k: v for k, v in vars(self).items() if isinstance(v, nn.Module)}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {k: v for k, v in vars(self).items() if isinstance(v, torch.optim.Optimizer)}

    def state_dict(self) -> dict:
        """Everything needed to resume: networks and optimisers (schedulers: override)."""
        return {"modules": {k: m.state_dict() for k, m in self.modules().items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()}}

    def load_state_dict(self, state: dict) -> None:
        for k, m in self.modules().items():
            m.load_state_dict(state["modules"][k])
        for k, o in self.optimizers().items():
            o.load_state_dict(state["optimizers"][k])

    def export(self) -> dict:
        """What ``model.pt`` keeps for figures and for a second stage: the networks' weights."""
        return {"modules": {k: m.state_dict() for k, m in self.modules().items()}}

    def payload(self) -> dict:
        """The contents of ``model.pt``: what the figures and a second stage (``pretrained``) read."""
        return {"method": self.NAME, "hparams": self.hp, "n_classes": self.data.n_classes,
                "labels_used": self.labels_used(), **self.export()}

    def labels_used(self) -> dict[str, int]:
        """Labels of every kind this run used, by kind: "class" (images whose class label was used)
        and "pair_targets" (images whose class labels made same/different targets).

        Default: the labeled subset's class labels, plus whatever the first stage used (its
        payload carries its own count), so a second stage counts everything upstream of it.
        A method that uses labels another way (pair targets) overrides this.
        """
        used = {"class": len(self.data.x_lab)}
        for k, v in ((self.pretrained or {}).get("labels_used") or {}).items():
            used[k] = used.get(k, 0) + int(v)
        return used

    def extra_metrics(self) -> dict:
        """Method-specific numbers for ``metrics.json`` (e.g. a pair accuracy)."""
        return {}

    # ---- helpers for subclasses
    def labeled_step(self, net: nn.Module, opt: torch.optim.Optimizer) -> torch.Tensor:
        """One step of ``opt`` on the cross-entropy of ``net`` over a labeled minibatch."""
        x, y = self.batch(self.data.x_lab, self.data.y_lab)
        return descend(opt, classification_loss(net(x), y))

    def batch(self, x: torch.Tensor, y: torch.Tensor | None = None, size: int | None = None):
        """A random minibatch drawn on the device by indexing (with replacement across steps)."""
        size = size or self.hp["batch_size"]
        idx = torch.randint(len(x), (size,), generator=self.gen, device=x.device)
        return (x[idx], y[idx]) if y is not None else x[idx]
