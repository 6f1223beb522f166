"""N seeds of seed 004's ``aae`` trained together (the many-runs-per-process path of
``fewlabels.methods.stacked`` for a method with four networks and five optimisers).

The runs' encoders, decoders and both discriminators are stacked along a leading run axis
(``torch.func.stack_module_state``); each phase of ``AAE.train_step`` is one ``vmap`` over the runs of
the same loss on parameter-free templates, and one step of a stacked optimiser that mirrors the run's
optimiser of that phase (same class, settings and parameters, so its per-run state is that of N
separate optimisers: the loss is the sum over runs). Every random number comes from each run's own
batch generator, drawn in ``AAE.train_step``'s order before the phases (the unlabeled minibatch, its input
noise, the categorical prior, the Gaussian prior, the labeled minibatch, its input noise; the noise only
where ``input_noise`` is set), so every run sees what it sees alone;
none comes from the global generator, so the step is graph-safe. The AAE nets have no dropout and no
batch norm. Learning-rate decay (``lr_decay_epochs``) is the runs' own ``on_epoch_end``, copied onto
the stacked optimisers (``resync``). ``unstack`` writes weights and optimiser states back into each
run's ``AAE``, so its checkpoint and model.pt are what a single run writes (``nets``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import vmap

from ..aae import AAE, discriminator_loss, generator_loss, reconstruction_loss, sample_categorical, sample_gaussian
from ..base import classification_loss
from .nets import StackedNets, gather

NETS = ("enc", "dec", "d_cat", "d_gauss")


class StackedAAE(StackedNets):
    """N runs of ``aae`` with the same hyperparameters, built by ``training.build.build_run`` (or ``trainer.Run``)."""

    METHOD = AAE

    @classmethod
    def nets(cls, m):
        return list(NETS)

    # ---- the step
    def _draws(self):
        """Each run's random numbers of one step, in ``AAE.train_step``'s order, stacked."""
        hp, k = self.methods[0].hp, self.methods[0].data.n_classes
        n, sd = hp["batch_size"], hp["input_noise"]
        out = []
        for m in self.methods:
            dev, px = self.device, m.data.x_pool.shape[1]

            def noise():  # AAE.noisy's draw, or none
                return torch.randn((n, px), generator=m.gen, device=dev, dtype=m.data.x_pool.dtype) if sd else None
            pool = torch.randint(len(m.data.x_pool), (n,), generator=m.gen, device=dev)  # AAE.batch(x_pool)
            pool_noise = noise()
            cat = sample_categorical(n, k, m.gen, dev)
            gauss = sample_gaussian(n, hp["z_dim"], hp["z_std"], m.gen, dev)
            lab = torch.randint(len(m.data.x_lab), (n,), generator=m.gen, device=dev)    # AAE.batch(x_lab)
            out.append((pool, pool_noise, cat, gauss, lab, noise()))
        return [torch.stack(t) if t[0] is not None else None for t in zip(*out)]

    def train_step(self) -> dict[str, torch.Tensor]:
        P, B = self.params, self.buffers
        encode = self.fn("enc", "encode")
        enc, dec, d_cat, d_gauss = (self.fn(n) for n in NETS)
        hp = self.methods[0].hp
        fake, sd, kind = 1.0 if hp["dcat_fake_target_bug"] else 0.0, hp["input_noise"], hp["recon_loss"]
        pool_idx, pool_noise, cat, gauss, lab_idx, lab_noise = self._draws()
        x = gather(self.data("x_pool"), pool_idx)
        x_in = x + sd * pool_noise if sd else x  # AAE.noisy

        def recon(pe, be, pd, bd, x_in, x):
            y_logits, z = encode(pe, be, x_in)
            return reconstruction_loss(dec(pd, bd, F.softmax(y_logits, 1), z), x, kind)

        out = {"recon": self.step("opt_recon", vmap(recon)(P["enc"], B["enc"], P["dec"], B["dec"], x_in, x))}
        y_logits, z = vmap(encode)(P["enc"], B["enc"], x_in)
        y = F.softmax(y_logits, -1)

        def d_loss(d, fake_target):
            def f(p, b, prior, code):
                return discriminator_loss(d(p, b, prior), d(p, b, code), fake_target)
            return f

        out["d_cat"] = self.step("opt_d_cat", vmap(d_loss(d_cat, fake))(P["d_cat"], B["d_cat"], cat, y.detach()))
        out["d_gauss"] = self.step("opt_d_gauss",
                                   vmap(d_loss(d_gauss, 0.0))(P["d_gauss"], B["d_gauss"], gauss, z.detach()))

        def gen(pc, bc, pg, bg, y, z):
            return generator_loss(d_cat(pc, bc, y)) + generator_loss(d_gauss(pg, bg, z))

        out["g_reg"] = self.step("opt_gen", vmap(gen)(P["d_cat"], B["d_cat"], P["d_gauss"], B["d_gauss"], y, z))
        xl, yl = gather(self.data("x_lab"), lab_idx), gather(self.data("y_lab"), lab_idx)
        xl = xl + sd * lab_noise if sd else xl

        def ssl(pe, be, x, y):
            return classification_loss(enc(pe, be, x), y)

        out["ssl"] = self.step("opt_ssl", vmap(ssl)(P["enc"], B["enc"], xl, yl))
        return out
