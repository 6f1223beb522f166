"""N runs of a one-network classifier (issue 13, part 1): the runs' networks stacked with ``torch.func``.

Runs that share a method and its schedule (the seeds of one method x task x budget) differ only in
their random numbers: initial weights, minibatch indices and dropout masks. ``StackedRuns`` builds
each run exactly as the one-run trainer does (``build_run``: same seeding order, same ``Method``
class, so the same initial weights bit for bit), then trains them together:

* the networks stay the methods' plain ``nn.Module``s; their parameters and buffers are stacked
  along a new leading run axis (``torch.func.stack_module_state``) and one forward of a parameter-free
  template (``functional_call`` under ``vmap``) computes every run's loss;
* minibatch indices are drawn from each run's own ``torch.Generator`` (the method's ``gen``), in the
  single path's order, so the runs see the same images as they would alone;
* dropout masks come from a per-run generator that takes over the state of the global RNG at the
  moment the one-run trainer would start drawing masks from it (after the initialisation); each mask
  is drawn with the op ``F.dropout`` uses on the CPU (``empty_like(x).bernoulli_(1 - p) / (1 - p)``), so
  on the CPU the masks are those of the single run bit for bit. (CUDA's dropout is a fused Philox
  kernel; there the masks are per-run and of the right distribution, but not the single run's.)
  Dropout layers of the template stay in eval mode and a forward hook multiplies by the mask, so no
  random op runs under ``vmap`` (its default ``randomness="error"`` guards against any that would);
* batch norm, when a network has it, keeps per-run running statistics: they are stacked buffers
  updated in place under ``vmap``;
* one optimiser of the method's class and settings (fused Adam) over the stacked parameters. The
  loss is the sum of the runs' losses, so each run's slice of a gradient is that run's gradient, and
  Adam is elementwise with one step count per tensor: its per-run state is that of N independent
  Adams (checked bit for bit, fused kernel included, in tests/test_batched.py).

``unstack()`` writes the stacked weights, buffers and Adam state back into each run's own ``Method``,
so its ``state_dict()`` / ``payload()`` are exactly what a single run would checkpoint and save.

Methods with several networks, optimisers or another loss have stackers of their own (``OWN_STACKER``,
on ``nets.StackedNets``: the AAE, both GANs, the pair stage, the autoencoder first stages).

Supported here: methods with one network trained by one optimiser on the labeled cross-entropy
(``SUPPORTED``: seed 004's ``supervised``, seed 003's ``linear`` and ``conv``, and the towers of
seeds 002 and 000: ``transfer-source``, ``transfer``, ``scratch``, ``siamese``, ``siamese-scratch``,
and seed 003's heads on an encoder: ``ae``, ``dae``, ``conv-ae``, ``vae`` and their scratch twins).
Frozen layers (a second stage's restored layers) stack without gradients and the optimiser skips
them, as the single run's, which never holds them. The towers draw their minibatches as TF's
``next_batch`` does (``transfer.EpochBatches``: a permutation per pass, kept in Python), each run
from its own sampler; such a step cannot be replayed from a CUDA graph (``graph_safe``).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from .. import RUNS_STACKER, stackers
from ..base import Method, classification_loss
from .common import (DropoutMasks, dropout_mask, labeled_batch_size, labeled_indices, run_state, shared_or_stacked,
                     stack_state)

# The registry's methods that this class stacks (``Spec.stacked``).
SUPPORTED = tuple(n for n, where in stackers().items() if where == RUNS_STACKER)


# ----------------------------------------------------------------------------- the stacked runs

class StackedRuns:
    """N runs of one supported method, built by ``build_run``, trained together (see the module's doc)."""

    def __init__(self, runs: list[tuple[Method, torch.Generator]], capturable: bool = False):
        """``runs`` from ``build_run``. ``capturable``: the optimiser keeps its step counts on the device
        (``capturable=True``), as a CUDA-graph capture of ``train_step`` needs (``capture``)."""
        if not runs:
            raise ValueError("no runs to stack")
        self.methods = [m for m, _ in runs]
        self.noise = [g for _, g in runs]
        m0 = self.methods[0]
        if m0.NAME not in SUPPORTED:
            raise NotImplementedError(f"batched runs support {list(SUPPORTED)}, not {m0.NAME!r}")
        for m in self.methods:
            if type(m) is not type(m0) or m.hp != m0.hp:
                raise ValueError("stacked runs must share their method and hyperparameters (their schedule)")
            if set(m.modules()) != {"net"} or set(m.optimizers()) != {"opt"} or m.classifier() is not m.net:
                raise NotImplementedError(f"{m.NAME}: batched runs need one network (net) and one optimiser (opt)")
        self.device = m0.device
        self.n = len(self.methods)
        self.batch_size = labeled_batch_size(m0)
        self.template = copy.deepcopy(m0.net).to("meta")
        self.drop = DropoutMasks(self.template)
        self._probed: dict[tuple, list] = {}
        self.params, self.buffers = stack_module_state([m.net for m in self.methods])
        self.names = list(self.params)
        opt0 = m0.opt
        if len(opt0.param_groups) != 1:
            raise NotImplementedError("batched runs need one parameter group")
        group = {k: v for k, v in opt0.param_groups[0].items() if k in opt0.defaults}
        if capturable:
            group["capturable"] = True
        # the trainable parameters only (frozen layers stack without gradients), as the single run's
        self.opt = type(opt0)([p for p in self.params.values() if p.requires_grad], **group)
        self._stack_optimizer_state()
        self._data_cache: dict[str, tuple[torch.Tensor, int | None]] = {}

    # ---- stacking and unstacking
    def _data(self, name: str) -> tuple[torch.Tensor, int | None]:
        """A data tensor of every run and its ``vmap`` dimension: one shared tensor (None) when every run
        holds the same values (the validation set; the labeled set of runs that share a split), else
        the runs' tensors stacked along a leading run axis (0)."""
        if name not in self._data_cache:
            self._data_cache[name] = shared_or_stacked([getattr(m.data, name) for m in self.methods], name)
        return self._data_cache[name]

    def _stack_optimizer_state(self) -> None:
        """A resumed run's Adam state (``Method.load_state_dict`` before stacking) becomes the stacked state."""
        states = [[m.opt.state.get(p) for p in m.net.parameters()] for m in self.methods]
        for j, p in enumerate(self.params.values()):
            st = stack_state([run[j] for run in states])
            if st is not None:
                self.opt.state[p] = st

    @torch.no_grad()
    def unstack(self) -> None:
        """Write the stacked weights, buffers and optimiser state back into each run's ``Method``."""
        for i, m in enumerate(self.methods):
            for name, p in m.net.named_parameters():
                p.copy_(self.params[name][i])
            for name, b in m.net.named_buffers():
                b.copy_(self.buffers[name][i])
            for p_run, p in zip(m.net.parameters(), self.params.values()):
                st = self.opt.state.get(p)
                if st:
                    m.opt.state[p_run] = run_state(st, i)

    # ---- random numbers, per run
    def _dropout_calls(self, shape: tuple, training: bool) -> list:
        """(layer, input shape, dtype) of each dropout call of one forward of an input of ``shape``."""
        key = (shape, training)
        if key not in self._probed:
            self.template.train(training)
            for layer in self.drop.layers:
                layer.eval()
            self._probed[key] = self.drop.calls(self.template, shape)
        return self._probed[key]

    def _masks(self, shape: tuple, training: bool, active: set[int]) -> list[torch.Tensor]:
        """Per-run dropout masks (stacked, N x ...), drawn from each run's generator in call order, as
        ``F.dropout`` draws them on the CPU; none for p = 0 or 1 (which draw nothing)."""
        out = []
        for i, shp, dtype in self._dropout_calls(shape, training):
            if i in active and self.drop.layers[i].p != 0:
                out.append(torch.stack([dropout_mask(self.drop.layers[i], shp, dtype, g) for g in self.noise]))
        return out

    def _set_mode(self, training: bool, active: set[int]) -> None:
        self.template.train(training)
        for layer in self.drop.layers:
            layer.eval()
        self.drop.active = active

    # ---- training
    def train_step(self) -> dict[str, torch.Tensor]:
        """One step of every run. Returns each loss as a tensor of N values (detached, no host sync)."""
        (x_lab, dim), (y_lab, _) = self._data("x_lab"), self._data("y_lab")
        idx = torch.stack([labeled_indices(m) for m in self.methods])  # each run's draw, as it draws alone
        if dim is None:
            x, y = x_lab[idx], y_lab[idx]
        else:
            rows = torch.arange(self.n, device=self.device)[:, None]
            x, y = x_lab[rows, idx], y_lab[rows, idx]
        active = {i for i, layer in enumerate(self.drop.layers) if layer.p > 0}
        masks = self._masks(tuple(x.shape[1:]), True, active)
        self._set_mode(True, active)

        def loss(params, buffers, x, y, masks):
            with self.drop.use(masks):
                return classification_loss(functional_call(self.template, (params, buffers), (x,)), y)

        losses = vmap(loss)(self.params, self.buffers, x, y, masks)
        self.opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        self.opt.step()
        return {"ce": losses.detach()}

    def on_epoch_end(self, epoch: int) -> None:
        for m in self.methods:
            if type(m).on_epoch_end is not Method.on_epoch_end:
                raise NotImplementedError(f"{m.NAME} has an epoch-end hook; batched runs do not call it yet")

    # ---- evaluation
    def _eval_dropout(self) -> set[int]:
        """The dropout layers that the method's evaluation leaves on (a test-time quirk), as the trainer
        evaluates: ``eval()``, then the method's ``eval_context``."""
        m0 = self.methods[0]
        net_drops = [m for m in m0.net.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
        was = m0.net.training
        m0.net.eval()
        try:
            with m0.eval_context():
                active = {i for i, layer in enumerate(net_drops) if layer.training}
        finally:
            m0.net.train(was)
        return active

    @torch.no_grad()
    def correct(self, split: str, batch: int = 2000) -> torch.Tensor:
        """Correct predictions of every run on ``split`` ("val" or "test"): N counts, in the chunks of
        ``trainer.accuracy`` (so test-time dropout draws its masks in the single run's order)."""
        (x, dim), (y, ydim) = self._data(f"x_{split}"), self._data(f"y_{split}")
        if dim != ydim:  # images shared, labels not (or the reverse): stack both
            x, y = (t.expand(self.n, *t.shape) if d is None else t for t, d in ((x, dim), (y, ydim)))
            dim = 0
        active = self._eval_dropout()
        self._set_mode(False, active)
        out = torch.zeros(self.n, dtype=torch.long, device=self.device)

        def count(params, buffers, x, y, masks):
            with self.drop.use(masks):
                return (functional_call(self.template, (params, buffers), (x,)).argmax(1) == y).sum()

        n, ax = (x.shape[0], None) if dim is None else (x.shape[1], 1)
        for i in range(0, n, batch):
            xb, yb = x.narrow(ax or 0, i, min(batch, n - i)), y.narrow(ax or 0, i, min(batch, n - i))
            masks = self._masks(tuple(xb.shape[0 if dim is None else 1:]), False, active)
            out += vmap(count, in_dims=(0, 0, dim, dim, 0))(self.params, self.buffers, xb, yb, masks)
        return out
