"""Many runs of one method in one process (issue 13, part 1): the runs' networks stacked with ``torch.func``.

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
on ``batched_nets.StackedNets``: the AAE, both GANs, the pair stage, the autoencoder first stages).

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

import contextlib
import copy
import importlib
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from .data import TaskData
from .methods import get as get_method
from .methods.base import Method, classification_loss, resolve_hparams
from .train import build_method

SUPPORTED = ("supervised", "linear", "conv", "transfer-source", "transfer", "scratch", "siamese", "siamese-scratch",
             "ae", "dae", "conv-ae", "vae", "ae-scratch", "conv-ae-scratch", "vae-scratch")


# ----------------------------------------------------------------------------- building the runs

def build_run(method: str | type[Method], hparams: dict | None, seed: int, mnist: Path, split: Path, device: torch.device,
              pool_limit: int | None = None, data: TaskData | None = None) -> tuple[Method, torch.Generator]:
    """One run's ``Method``, built as ``train.run`` builds it (``train.build_method``), and the
    generator that stands in for the global RNG from then on (the state the global RNG has after the
    initialisation: what the run's dropout masks would come from).

    tests/test_batched.py checks the result against ``train.run``.
    ``data``: the run's tensors when already loaded (``load_task`` of this ``split`` with the method's
    ``label_draw``/``unlabeled``; it draws nothing from the global RNGs, so loading it earlier changes
    no number): runs that share a split need not read MNIST again.
    """
    cls = get_method(method) if isinstance(method, str) else method
    m = build_method(cls, resolve_hparams(cls, hparams), seed, mnist, split, device, pool_limit, data=data)
    noise = torch.Generator(device=device)
    noise.set_state(torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state())
    return m, noise


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


# Methods with a stacked form of their own (``batched_nets.StackedNets``: several networks and optimisers),
# by module and class; their epoch-end hooks run on the unstacked runs, and ``resync`` takes back what
# they changed.
OWN_STACKER = {"aae": ("batched_aae", "StackedAAE"), "sgan-fm": ("batched_gan", "StackedSGANFM"),
               "sgan": ("batched_gan", "StackedSGAN"), "siamese-pairs": ("batched_pairs", "StackedSiamesePairs"),
               **{f"{a}-pretrain": ("batched_ae", "StackedAEPretrain") for a in ("ae", "dae", "conv-ae", "vae")}}
STACKABLE = SUPPORTED + tuple(OWN_STACKER)


def stacker(name: str) -> type:
    """The class that stacks runs of method ``name``."""
    if name not in OWN_STACKER:
        return StackedRuns
    module, cls = OWN_STACKER[name]
    return getattr(importlib.import_module(f"{__package__}.{module}"), cls)


def why_not_stacked(m: Method) -> str | None:
    """Why runs configured as ``m`` cannot stack (a configuration the stacked form does not cover), or None."""
    check = getattr(stacker(m.NAME), "why_not", None)
    return check(m) if check else None


def make_stacked(runs: list[tuple[Method, torch.Generator]], capturable: bool = False):
    """The stacked form of these runs: ``StackedRuns`` or a method's own (``OWN_STACKER``)."""
    if not runs:
        raise ValueError("no runs to stack")
    return stacker(runs[0][0].NAME)(runs, capturable=capturable)


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


# ----------------------------------------------------------------------------- the stacked runs

class StackedRuns:
    """N runs of one supported method, built by ``build_run``, trained together (see the module's doc)."""

    def __init__(self, runs: list[tuple[Method, torch.Generator]], capturable: bool = False):
        """``runs`` from ``build_run``. ``capturable``: the optimiser keeps its step counts on the device
        (``capturable=True``), as a CUDA-graph capture of ``train_step`` needs (``fewlabels.capture``)."""
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
        ``train.accuracy`` (so test-time dropout draws its masks in the single run's order)."""
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
