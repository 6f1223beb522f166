"""N seeds of one of seed 003's autoencoder first stages (``ae-pretrain``, ``dae-pretrain``,
``conv-ae-pretrain``, ``vae-pretrain``) trained together (the many-runs-per-process path of
``fewlabels.methods.stacked``; ``nets``).

The runs' autoencoders are stacked; each step is one ``vmap`` over the runs of the method's own
``loss(net, x, noise)`` on a parameter-free template, and one step of the mirrored Adam. Each run draws
its minibatch and then its noise (``noise(x)``: the denoising mask, the VAE's epsilon) from its own
batch generator, in the one-run path's order, so every run sees what it sees alone. The nets have no
dropout and no batch norm; the nearest-class-mean readout is set by each run's own epoch-end hook, on
the unstacked runs.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import vmap

from ..autoencoders import AutoencoderPretrain
from .nets import StackedNets


class _Loss(nn.Module):
    """The method's loss as the forward of a module that holds the autoencoder, for ``functional_call``."""

    def __init__(self, net: nn.Module, method: AutoencoderPretrain):
        super().__init__()
        self.net, self._method = net, (method,)  # a tuple: the Method is not a submodule

    def forward(self, x, noise):
        return self._method[0].loss(self.net, x, noise)


class StackedAEPretrain(StackedNets):
    """N runs of one autoencoder first stage with the same hyperparameters."""

    METHOD = AutoencoderPretrain

    def __init__(self, runs, capturable: bool = False):
        super().__init__(runs, capturable=capturable)
        self.templates["loss"] = _Loss(self.templates["net"], self.methods[0])

    def train_step(self) -> dict[str, torch.Tensor]:
        loss = self.fn("loss")
        xs, noises = [], []
        for m in self.methods:
            xs.append(m.batch(m.data.x_pool))  # as the run's own train_step draws it
            noises.append(m.noise(xs[-1]))  # after the minibatch, from the same generator
        x = torch.stack(xs)
        noise = {k: torch.stack([d[k] for d in noises]) for k in noises[0]}
        P, B = self.params["net"], self.buffers["net"]
        losses = vmap(loss)({f"net.{k}": v for k, v in P.items()}, {f"net.{k}": v for k, v in B.items()}, x, noise)
        self.step("opt", sum(losses.values()))
        return {k: v.detach() for k, v in losses.items()}
