"""N seeds of seed 004's ``aae`` trained together (the many-runs-per-process path of ``fewlabels.batched``
for a method with four networks and five optimisers).

The runs' encoders, decoders and both discriminators are stacked along a leading run axis
(``torch.func.stack_module_state``); each phase of ``AAE.train_step`` is one ``vmap`` over the runs of
the same loss on parameter-free templates, and one step of a stacked optimiser that mirrors the run's
optimiser of that phase (same class, settings and parameters, so its per-run state is that of N
separate optimisers: the loss is the sum over runs). Every random number comes from each run's own
batch generator, drawn in ``AAE.train_step``'s order before the phases (the unlabeled minibatch, the
categorical prior, the Gaussian prior, the labeled minibatch), so every run sees what it sees alone;
none comes from the global generator, so the step is graph-safe. The AAE nets have no dropout and no
batch norm. Learning-rate decay (``lr_decay_epochs``) is the runs' own ``on_epoch_end``, copied onto
the stacked optimisers (``sync_schedules``). ``unstack`` writes weights and optimiser states back into
each run's ``AAE``, so its checkpoint and model.pt are what a single run writes.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from .methods.aae import (AAE, classification_loss, discriminator_loss, generator_loss, reconstruction_loss,
                          sample_categorical, sample_gaussian)
from .batched import run_state, shared_or_stacked, stack_state
from .methods.base import descend

NETS = ("enc", "dec", "d_cat", "d_gauss")


class _Calls(nn.Module):
    """A module whose forward calls another's method (``encode``), so ``functional_call`` can reach it."""

    def __init__(self, module: nn.Module, fn: str):
        super().__init__()
        self.m, self.fn = module, fn

    def forward(self, *args):
        return getattr(self.m, self.fn)(*args)


def gather(data: tuple[torch.Tensor, int | None], idx: torch.Tensor) -> torch.Tensor:
    """Rows ``idx`` (N x batch) of each run's data: the run's own tensor, or the shared one."""
    t, dim = data
    if dim is None:
        return t[idx]
    return t[torch.arange(len(idx), device=idx.device)[:, None], idx]


class StackedAAE:
    """N runs of ``aae`` with the same hyperparameters, built by ``batched.build_run`` (or ``train.Run``)."""

    def __init__(self, runs: list[tuple[AAE, torch.Generator]], capturable: bool = False):
        self.methods = [m for m, _ in runs]
        self.noise = [g for _, g in runs]  # unused by the AAE's step (no dropout); kept for the caller
        m0 = self.methods[0]
        if any(type(m) is not AAE or m.hp != m0.hp for m in self.methods):
            raise ValueError("stacked AAE runs must all be aae runs with the same hyperparameters")
        self.n, self.device = len(self.methods), m0.device
        self.params, self.buffers, self.templates = {}, {}, {}
        for name in NETS:
            self.params[name], self.buffers[name] = stack_module_state([getattr(m, name) for m in self.methods])
            self.templates[name] = copy.deepcopy(getattr(m0, name)).to("meta")
        self.encode_template = _Calls(self.templates["enc"], "encode")
        self.fns = {n: self._f(n) for n in ("encode", *NETS)}  # the nets as functions of their parameters
        # each run parameter -> (net, name), to mirror its optimisers over the stacked tensors
        self._where = [{id(p): (name, k) for name in NETS for k, p in getattr(m, name).named_parameters()}
                       for m in self.methods]
        self.opts = {}
        for oname, opt0 in m0.optimizers().items():
            if len(opt0.param_groups) != 1:
                raise NotImplementedError("stacked AAE runs need one parameter group per optimiser")
            group = {k: v for k, v in opt0.param_groups[0].items() if k in opt0.defaults}
            if capturable:
                group["capturable"] = True
            self.opts[oname] = type(opt0)([self._stacked(0, p) for p in opt0.param_groups[0]["params"]], **group)
        self._stack_optimizer_state()
        self.pool = shared_or_stacked([m.data.x_pool for m in self.methods])
        self.x_lab = shared_or_stacked([m.data.x_lab for m in self.methods])
        self.y_lab = shared_or_stacked([m.data.y_lab for m in self.methods])

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
        """Weights and optimiser states back into each run's ``AAE``."""
        for i, m in enumerate(self.methods):
            for name in NETS:
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

    def sync_schedules(self) -> None:
        """The runs' learning-rate schedules (their ``on_epoch_end`` has just run) onto the stacked optimisers."""
        for oname, opt in self.opts.items():
            opt.param_groups[0]["lr"] = self.methods[0].optimizers()[oname].param_groups[0]["lr"]

    # ---- the step
    def _draws(self):
        """Each run's random numbers of one step, in ``AAE.train_step``'s order, stacked."""
        hp, k = self.methods[0].hp, self.methods[0].data.n_classes
        n = hp["batch_size"]
        out = []
        for m in self.methods:
            dev = self.device
            pool = torch.randint(len(m.data.x_pool), (n,), generator=m.gen, device=dev)  # AAE.batch(x_pool)
            cat = sample_categorical(n, k, m.gen, dev)
            gauss = sample_gaussian(n, hp["z_dim"], hp["z_std"], m.gen, dev)
            lab = torch.randint(len(m.data.x_lab), (n,), generator=m.gen, device=dev)    # AAE.batch(x_lab)
            out.append((pool, cat, gauss, lab))
        return [torch.stack(t) for t in zip(*out)]

    def _f(self, name: str):
        """The template ``name`` as a function of (params, buffers, *inputs), for ``vmap``."""
        template = self.encode_template if name == "encode" else self.templates[name]
        prefix = "m." if name == "encode" else ""  # the wrapper holds the encoder as .m

        def call(params, buffers, *args):
            return functional_call(template, ({prefix + k: v for k, v in params.items()},
                                              {prefix + k: v for k, v in buffers.items()}), args)
        return call

    def _step(self, oname: str, losses: torch.Tensor) -> torch.Tensor:
        opt = self.opts[oname]
        descend(opt, losses.sum(), inputs=list(opt.param_groups[0]["params"]))
        return losses.detach()

    def train_step(self) -> dict[str, torch.Tensor]:
        P, B = self.params, self.buffers
        encode, enc, dec, d_cat, d_gauss = (self.fns[n] for n in ("encode", *NETS))
        fake = 1.0 if self.methods[0].hp["dcat_fake_target_bug"] else 0.0
        pool_idx, cat, gauss, lab_idx = self._draws()
        x = gather(self.pool, pool_idx)

        def recon(pe, be, pd, bd, x):
            y_logits, z = encode(pe, be, x)
            return reconstruction_loss(dec(pd, bd, F.softmax(y_logits, 1), z), x)

        out = {"recon": self._step("opt_recon", vmap(recon)(P["enc"], B["enc"], P["dec"], B["dec"], x))}
        y_logits, z = vmap(encode)(P["enc"], B["enc"], x)
        y = F.softmax(y_logits, -1)

        def d_loss(d, fake_target):
            def f(p, b, prior, code):
                return discriminator_loss(d(p, b, prior), d(p, b, code), fake_target)
            return f

        out["d_cat"] = self._step("opt_d_cat", vmap(d_loss(d_cat, fake))(P["d_cat"], B["d_cat"], cat, y.detach()))
        out["d_gauss"] = self._step("opt_d_gauss",
                                    vmap(d_loss(d_gauss, 0.0))(P["d_gauss"], B["d_gauss"], gauss, z.detach()))

        def gen(pc, bc, pg, bg, y, z):
            return generator_loss(d_cat(pc, bc, y)) + generator_loss(d_gauss(pg, bg, z))

        out["g_reg"] = self._step("opt_gen", vmap(gen)(P["d_cat"], B["d_cat"], P["d_gauss"], B["d_gauss"], y, z))
        xl, yl = gather(self.x_lab, lab_idx), gather(self.y_lab, lab_idx)

        def ssl(pe, be, x, y):
            return classification_loss(enc(pe, be, x), y)

        out["ssl"] = self._step("opt_ssl", vmap(ssl)(P["enc"], B["enc"], xl, yl))
        return out
