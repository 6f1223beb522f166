"""Plain ``nn.Module`` building blocks: no optimisers, loops or I/O in here."""

from __future__ import annotations

import torch
from torch import nn


def mlp(sizes, act=nn.ReLU, dropout: float = 0.0, batch_norm: bool = False, final_act: bool = False) -> nn.Sequential:
    """Dense layers ``sizes[0] -> ... -> sizes[-1]``; the last layer is linear unless ``final_act``."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        last = i == len(sizes) - 2
        if last and not final_act:
            break
        if batch_norm:
            layers.append(nn.BatchNorm1d(b))
        layers.append(act())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def init_normal_(module: nn.Module, std: float) -> nn.Module:
    """Weights ~ N(0, std^2), biases 0: the initialisation of the seed-004 TensorFlow code."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            nn.init.zeros_(m.bias)
    return module


class MLPClassifier(nn.Module):
    """784-1000-1000-10 with ReLU and dropout: the seed-004 "basic NN classifier"."""

    def __init__(self, n_in: int = 784, hidden=(1000, 1000), n_classes: int = 10, dropout: float = 0.75,
                 init_std: float | None = 0.01):
        super().__init__()
        self.net = mlp([n_in, *hidden, n_classes], act=nn.ReLU, dropout=dropout)
        if init_std is not None:
            init_normal_(self.net, init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
