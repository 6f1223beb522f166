"""Stacked forms of the methods, beside the methods they stack: many runs of one method trained in one
``vmap``-ed step. Which class stacks which method is the registry's ``Spec.stacked``
(``fewlabels.methods``); ``make_stacked`` builds it.

``classifiers.StackedRuns`` stacks the methods with one network and one optimiser on the labeled
cross-entropy; a method with several networks, optimisers or its own loss has a stacker of its own
on ``nets.StackedNets``, in a module named after its method (``aae``, ``gan``, ``siamese``,
``autoencoders``). ``common`` holds what they share. This package imports only methods and the
foundation: the trainer builds the runs (``fewlabels.training.build.build_run``) and drives the
epochs (``fewlabels.training.group.train_stacked``).
"""

from __future__ import annotations

import importlib

import torch

from .. import RUNS_STACKER, stackers
from ..base import Method

# Every method and first stage whose runs stack, by name (the registry's ``Spec.stacked``).
STACKABLE = tuple(stackers())
# Those with a stacked form of their own (several networks and optimisers); their epoch-end hooks run on
# the unstacked runs, and ``resync`` takes back what they changed.
OWN_STACKER = tuple(n for n, s in stackers().items() if s != RUNS_STACKER)


def stacker(name: str) -> type:
    """The class that stacks runs of method ``name``."""
    where = stackers().get(name)
    if where is None:
        raise NotImplementedError(f"{name!r} has no stacked form; batched runs support {list(STACKABLE)}")
    module, cls = where.rsplit(".", 1)
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def why_not_stacked(m: Method) -> str | None:
    """Why runs configured as ``m`` cannot stack (a configuration the stacked form does not cover), or None."""
    check = getattr(stacker(m.NAME), "why_not", None)
    return check(m) if check else None


def make_stacked(runs: list[tuple[Method, torch.Generator]], capturable: bool = False):
    """The stacked form of these runs: the class the registry names for their method."""
    if not runs:
        raise ValueError("no runs to stack")
    return stacker(runs[0][0].NAME)(runs, capturable=capturable)
