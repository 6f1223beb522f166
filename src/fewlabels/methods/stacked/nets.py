"""What the stacked forms of the methods with several networks, optimisers or their own losses share
(``aae.StackedAAE``, ``gan.StackedSGANFM`` and ``StackedSGAN``,
``siamese.StackedSiamesePairs``, ``autoencoders.StackedAEPretrain``): each of a run's networks
stacked along a leading run axis, and each of the run's optimisers mirrored over the stacked tensors.

A subclass names its networks (``nets``) and writes ``train_step`` as one ``vmap`` per phase over
parameter-free templates (``fn``), stepping the mirrored optimiser of that phase (``step``). A mirrored
optimiser has the run's class, settings and parameters (in the run's order), so its per-run state is
that of N separate optimisers: the loss it descends is the sum over the runs. ``unstack`` writes
weights, buffers and optimiser states back into each run's ``Method`` (its checkpoint and model.pt are
then what a single run writes); ``resync`` takes back what the runs' epoch-end hooks changed (a
learning-rate schedule, batch-norm statistics updated by a GAN's collapse check).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call, stack_module_state

from ..base import Method, descend
from .common import Injector, all_same, run_state, stack_state


class _Calls(nn.Module):
    """A module whose forward calls another's method (``encode``, ``features``), so ``functional_call``
    can reach it."""

    def __init__(self, module: nn.Module, fn: str):
        super().__init__()
        self.m, self.fn = module, fn

    def forward(self, *args):
        return getattr(self.m, self.fn)(*args)


def gather(data: tuple[torch.Tensor, torch.Tensor | None], idx: torch.Tensor) -> torch.Tensor:
    """Rows ``idx`` (N x batch, each run's indices into its own data) of the runs' data (``StackedNets.data``)."""
    t, offsets = data
    return t[idx] if offsets is None else t[idx + offsets[:, None]]


class StackedNets:
    """N runs of one multi-network method with the same hyperparameters (``training.build.build_run`` or
    ``trainer.Run``). Subclasses set ``METHOD``, implement ``train_step`` and, for networks other than ``net``,
    ``nets``."""

    METHOD: type[Method] = Method

    def __init__(self, runs: list[tuple[Method, torch.Generator]], capturable: bool = False):
        """``capturable``: the optimisers keep their step counts on the device, as a CUDA-graph capture
        of ``train_step`` needs (``capture``)."""
        if not runs:
            raise ValueError("no runs to stack")
        self.methods = [m for m, _ in runs]
        self.noise = [g for _, g in runs]  # each run's stand-in for the global generator
        m0 = self.methods[0]
        if not isinstance(m0, self.METHOD) or any(type(m) is not type(m0) or m.hp != m0.hp for m in self.methods):
            raise ValueError(f"stacked {self.METHOD.NAME} runs must all be {self.METHOD.NAME} runs with the "
                             "same hyperparameters")
        self.n, self.device, self.hp = len(self.methods), m0.device, m0.hp
        self.names = self.nets(m0)
        self.params, self.buffers, self.templates = {}, {}, {}
        for name in self.names:
            self.params[name], self.buffers[name] = stack_module_state([getattr(m, name) for m in self.methods])
            self.templates[name] = copy.deepcopy(getattr(m0, name)).to("meta").train()  # batch statistics
        # each run parameter -> (net, name), to mirror the run's optimisers over the stacked tensors
        self._where = [{id(p): (name, k) for name in self.names for k, p in getattr(m, name).named_parameters()}
                       for m in self.methods]
        self.opts = {}
        for oname, opt0 in m0.optimizers().items():
            if len(opt0.param_groups) != 1:
                raise NotImplementedError(f"stacked {m0.NAME} runs need one parameter group per optimiser")
            group = {k: v for k, v in opt0.param_groups[0].items() if k in opt0.defaults}
            if capturable:  # a captured step reads the learning rate from device memory: a schedule can move it
                group["capturable"], group["lr"] = True, torch.tensor(float(group["lr"]), device=self.device)
            self.opts[oname] = type(opt0)([self._stacked(0, p) for p in opt0.param_groups[0]["params"]], **group)
        self._stack_optimizer_state()
        self._data: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
        self._fns: dict[tuple[str, str], object] = {}
        self._calls: dict = {}  # (injector, one run's input shape) -> its hooked calls

    @classmethod
    def nets(cls, m: Method) -> list[str]:
        """The attribute names of the networks to stack (every one a run's optimisers touch); by default
        the one network of the methods' convention, ``net``."""
        return ["net"]

    def data(self, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The runs' ``data.<name>`` for ``gather``: one tensor and None when every run holds the same
        values, else the runs' tensors end to end and where each run's begins (runs of a ``pool_limit``
        hold pools of different sizes)."""
        if name not in self._data:
            ts = [getattr(m.data, name) for m in self.methods]
            if all_same(ts):
                self._data[name] = ts[0], None
            else:
                starts = torch.tensor([0] + [len(t) for t in ts[:-1]], device=self.device).cumsum(0)
                self._data[name] = torch.cat(ts), starts
        return self._data[name]

    def _stacked(self, run: int, p: torch.Tensor) -> torch.Tensor:
        name, k = self._where[run][id(p)]
        return self.params[name][k]

    def _stack_optimizer_state(self) -> None:
        """Resumed runs' optimiser states (loaded before stacking) become the stacked optimisers' states."""
        for oname, opt in self.opts.items():
            run_opts = [m.optimizers()[oname] for m in self.methods]
            for j, p in enumerate(opt.param_groups[0]["params"]):
                st = stack_state([o.state.get(o.param_groups[0]["params"][j]) for o in run_opts])
                if st is not None:
                    opt.state[p] = st

    @torch.no_grad()
    def unstack(self) -> None:
        """Weights, buffers and optimiser states back into each run's ``Method``."""
        for i, m in enumerate(self.methods):
            for name in self.names:
                for k, p in getattr(m, name).named_parameters():
                    p.copy_(self.params[name][k][i])
                for k, b in getattr(m, name).named_buffers():
                    b.copy_(self.buffers[name][k][i])
            for oname, opt in self.opts.items():
                run_opt = m.optimizers()[oname]
                for p_run, p in zip(run_opt.param_groups[0]["params"], opt.param_groups[0]["params"]):
                    st = opt.state.get(p)
                    if st:
                        run_opt.state[p_run] = run_state(st, i)

    @torch.no_grad()
    def resync(self) -> None:
        """What the runs' epoch-end hooks changed, back onto the stacked state: learning rates (a schedule;
        every run has the same) and buffers (batch-norm statistics)."""
        for oname, opt in self.opts.items():
            lr = self.methods[0].optimizers()[oname].param_groups[0]["lr"]
            if torch.is_tensor(opt.param_groups[0]["lr"]):  # in place: a CUDA graph replays this tensor
                opt.param_groups[0]["lr"].fill_(float(lr))
            else:
                opt.param_groups[0]["lr"] = lr
        for i, m in enumerate(self.methods):
            for name in self.names:
                for k, b in getattr(m, name).named_buffers():
                    self.buffers[name][k][i].copy_(b)

    def fn(self, name: str, method: str = "forward"):
        """Network ``name`` (its ``method``) as a function of (params, buffers, *inputs), for ``vmap``."""
        if (name, method) not in self._fns:
            self._fns[name, method] = self._make_fn(name, method)
        return self._fns[name, method]

    def _make_fn(self, name: str, method: str):
        template = self.templates[name]
        if method != "forward":
            template = _Calls(template, method)
        prefix = "" if method == "forward" else "m."  # the wrapper holds the network as .m

        def call(params, buffers, *args):
            return functional_call(template, ({prefix + k: v for k, v in params.items()},
                                              {prefix + k: v for k, v in buffers.items()}), args)
        return call

    def step(self, oname: str, losses: torch.Tensor) -> torch.Tensor:
        """One step of the mirrored optimiser ``oname`` on the runs' losses (N values); returns them detached."""
        opt = self.opts[oname]
        descend(opt, losses.sum(), inputs=list(opt.param_groups[0]["params"]))
        return losses.detach()

    def per_run(self, draw) -> list[torch.Tensor]:
        """``draw(m, g)`` for every run (its tensors, in the run's order), each stacked over the runs."""
        out = [draw(m, g) for m, g in zip(self.methods, self.noise)]
        return [torch.stack(t) for t in zip(*out)]

    def draw_injected(self, inj: Injector, forward, shape: tuple, g: torch.Generator, make) -> list[torch.Tensor]:
        """One run's tensors for one forward of ``forward`` on an input of ``shape``: ``make(layer, shape,
        dtype, g)`` for each hooked call that draws (``None`` draws nothing), in call order."""
        key = (id(inj), shape)
        if key not in self._calls:
            self._calls[key] = inj.calls(forward, shape)
        out = []
        for i, shp, dtype in self._calls[key]:
            t = make(inj.layers[i], shp, dtype, g)
            if t is not None:
                out.append(t)
        return out

    def train_step(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError
