"""Stacked forms of the methods: many runs of one method trained in one ``vmap``-ed step, and the
registry that says which class stacks which method (``make_stacked``).

``classifiers.StackedRuns`` stacks the methods with one network and one optimiser on the labeled
cross-entropy; a method with several networks, optimisers or its own loss has a stacker of its own
on ``nets.StackedNets``, in a module named after its method (``aae``, ``gan``, ``siamese``,
``autoencoders``). ``common`` holds what they share; ``capture`` records a step in a CUDA graph.
"""

from __future__ import annotations

import torch

from ...methods.base import Method
from .aae import StackedAAE
from .autoencoders import StackedAEPretrain
from .classifiers import SUPPORTED, StackedRuns
from .gan import StackedSGAN, StackedSGANFM
from .siamese import StackedSiamesePairs

# Methods with a stacked form of their own (on ``nets.StackedNets``: several networks and optimisers);
# their epoch-end hooks run on the unstacked runs, and ``resync`` takes back what they changed.
OWN_STACKER = {"aae": StackedAAE, "sgan-fm": StackedSGANFM, "sgan": StackedSGAN, "siamese-pairs": StackedSiamesePairs,
               **{f"{a}-pretrain": StackedAEPretrain for a in ("ae", "dae", "conv-ae", "vae")}}
STACKABLE = SUPPORTED + tuple(OWN_STACKER)


def stacker(name: str) -> type:
    """The class that stacks runs of method ``name``."""
    return OWN_STACKER.get(name, StackedRuns)


def why_not_stacked(m: Method) -> str | None:
    """Why runs configured as ``m`` cannot stack (a configuration the stacked form does not cover), or None."""
    check = getattr(stacker(m.NAME), "why_not", None)
    return check(m) if check else None


def make_stacked(runs: list[tuple[Method, torch.Generator]], capturable: bool = False):
    """The stacked form of these runs: ``StackedRuns`` or a method's own (``OWN_STACKER``)."""
    if not runs:
        raise ValueError("no runs to stack")
    return stacker(runs[0][0].NAME)(runs, capturable=capturable)
