"""What the stacked forms share: data and optimiser state stacked along a run axis and back, each
run's minibatch drawn as it draws alone, and per-call tensors handed into ``vmap``-ed forwards
(``Injector``: dropout masks, Gaussian noise). The runs themselves are built by the trainer
(``fewlabels.training.build.build_run``): this package imports only methods and the foundation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import nn

from ..base import Method


# ----------------------------------------------------------------------------- stacking the runs' state

def all_same(tensors: list[torch.Tensor]) -> bool:
    """Whether every run holds the same values (one copy can serve them all)."""
    t0 = tensors[0]
    return all(t is t0 or (t.shape == t0.shape and torch.equal(t, t0)) for t in tensors)


def shared_or_stacked(tensors: list[torch.Tensor], what: str = "data") -> tuple[torch.Tensor, int | None]:
    """One tensor and ``vmap`` dimension None when every run holds the same values, else the runs'
    tensors stacked along a leading run axis (dimension 0)."""
    t0 = tensors[0]
    if all_same(tensors):
        return t0, None
    if len({tuple(t.shape) for t in tensors}) != 1:
        raise NotImplementedError(f"batched runs need {what} of one size in every run")
    return torch.stack(tensors), 0


def stack_state(per_run: list[dict | None]) -> dict | None:
    """One parameter's optimiser state over the runs: None when no run has any (a frozen parameter, or
    one that never had a gradient), else each tensor stacked along the run axis and the step count,
    which every run must share, once."""
    if all(not s for s in per_run):
        return None
    if any(not s for s in per_run):
        raise ValueError("some runs have optimiser state and some do not")
    st = {}
    for key in per_run[0]:
        vals = [s[key] for s in per_run]
        if key == "step":
            if any(not torch.equal(v, vals[0]) for v in vals):
                raise ValueError("stacked runs must have taken the same number of steps")
            st[key] = vals[0].clone()
        else:
            st[key] = torch.stack(vals)
    return st


def run_state(st: dict, i: int) -> dict:
    """Run ``i``'s slice of a stacked optimiser state (``stack_state``'s inverse)."""
    return {k: (v.clone() if k == "step" else v[i].clone()) for k, v in st.items()}


def labeled_batch_size(m: Method) -> int:
    """The minibatch of a labeled step: seed 003's classifiers may take the library's (``batch_size()``)."""
    return m.batch_size() if callable(getattr(m, "batch_size", None)) else m.hp["batch_size"]


def labeled_indices(m: Method) -> torch.Tensor:
    """The labeled images of ``m``'s next step, drawn as its own ``train_step`` draws them: a tower's
    epoch sampler (``m.batches``), else ``Method.batch``'s uniform draw from the run's generator."""
    if hasattr(m, "batches"):
        return m.batches(m.hp["batch_size"], m.gen)
    return torch.randint(len(m.data.x_lab), (labeled_batch_size(m),), generator=m.gen, device=m.device)


def graph_safe(m: Method) -> bool:
    """Whether a captured step can replay ``m``'s draws: not when Python decides them (an epoch sampler,
    a pair draw that rejects in rounds)."""
    return not hasattr(m, "batches") and not getattr(m, "draws_in_python", False)


# ----------------------------------------------------------------------------- dropout from per-run generators

class Injector:
    """Forward hooks on some layers of a template (kept in eval mode, so that they pass their input
    through) that combine each call's output with a tensor handed in per call, a ``vmap``-ed argument:
    the run's dropout mask or Gaussian noise, drawn outside ``vmap`` from the run's own generator (no
    random op runs under ``vmap``). ``calls`` lists the hooked calls of a forward, probed on the meta
    device; ``use`` hands in one forward's tensors, in call order."""

    def __init__(self, layers: list[nn.Module], combine: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 skip: Callable[[int, nn.Module], bool] = lambda i, layer: False):
        """``skip(i, layer)``: the hooked call draws nothing now (a dropout of p = 0, noise of sigma 0, a
        layer the current mode leaves off), so it takes no tensor."""
        self.layers, self.combine, self.skip = layers, combine, skip
        self.pending: list | None = None
        self.recording: list | None = None
        for i, layer in enumerate(layers):
            layer.eval()
            layer.register_forward_hook(self._hook(i))

    def _hook(self, i: int):
        def hook(module, inputs, output):
            if self.recording is not None:
                self.recording.append((i, tuple(inputs[0].shape), inputs[0].dtype))
            elif self.pending is not None and not self.skip(i, module):
                return self.combine(output, self.pending.pop(0))
            return None
        return hook

    def calls(self, forward: Callable[[torch.Tensor], object], shape: tuple) -> list[tuple[int, tuple, torch.dtype]]:
        """(layer, input shape, dtype) of each hooked call of ``forward`` on one run's input of ``shape``."""
        self.recording = []
        try:
            with torch.no_grad():
                forward(torch.empty(shape, device="meta"))
            return self.recording
        finally:
            self.recording = None

    @contextlib.contextmanager
    def use(self, tensors: list):
        self.pending = list(tensors)
        try:
            yield
            left = self.pending
        finally:
            self.pending = None
        if left:
            raise RuntimeError(f"{len(left)} injected tensors were not used: the forward's hooked calls differ "
                               "from the probe's")


class DropoutMasks(Injector):
    """Hooks on a template's ``nn.Dropout`` layers that multiply by the current run's mask (``dropout_mask``),
    for the layers that drop now: those in ``active`` (None: every one) whose p is not 0."""

    def __init__(self, template: nn.Module):
        layers = [m for m in template.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
        other = [type(m).__name__ for m in layers if type(m) is not nn.Dropout]
        if other:
            raise NotImplementedError(f"batched runs support nn.Dropout only, not {sorted(set(other))}")
        self.active: set[int] | None = None   # layers that drop in the current mode (None: all)
        super().__init__(layers, lambda out, mask: out * mask,
                         skip=lambda i, layer: (self.active is not None and i not in self.active) or layer.p == 0)


def dropout_mask(layer: nn.Dropout, shape: tuple, dtype, g: torch.Generator) -> torch.Tensor | None:
    """``F.dropout``'s CPU mask, ``empty_like(x).bernoulli_(1 - p) / (1 - p)``, from generator ``g``; None
    for p = 0 (which draws nothing), zeros for p = 1 (which draws nothing either)."""
    p = layer.p
    if p == 0:
        return None
    if p == 1:
        return torch.zeros(shape, dtype=dtype, device=g.device)
    return torch.empty(shape, dtype=dtype, device=g.device).bernoulli_(1 - p, generator=g).div_(1 - p)
