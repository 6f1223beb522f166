"""N seeds of a semi-supervised GAN trained together: ``sgan-fm`` (Salimans et al. 2016) and seed 001's
``sgan`` (the many-runs-per-process path of ``fewlabels.methods.stacked`` for methods with a discriminator and
a generator, ``nets``).

Each phase of the method's ``train_step`` is one ``vmap`` over the runs of the same losses on
parameter-free templates, and one step of each mirrored optimiser. Every random number is the run's
own, drawn outside ``vmap`` in the one-run path's order: minibatch indices and generator noise from the
run's batch generator (``m.gen``); the discriminator's Gaussian noise (``sgan-fm``) or dropout masks
(``sgan``) from a generator per run that carries the run's global RNG state (``training.build.build_run``),
each with the op the one-run path uses, so on the CPU every draw is the single run's bit for bit
(tests/test_group.py checks the runs' losses, weights and accuracies). The random numbers of the noise
and dropout layers are drawn as ``randn`` / ``bernoulli_`` on the CPU's generator; CUDA's are per run
and of the right distribution but not the single run's (CUDA's dropout is a fused kernel).

Batch norm (the generators; seed 001's discriminator) keeps per-run running statistics as stacked
buffers. The GAN's collapse check (``GANMethod.on_epoch_end``) runs on the unstacked runs: ``unstack``
hands each run its epoch's real-vs-fake loss, ``resync`` takes back the generator statistics its
samples moved.
"""

from __future__ import annotations

import torch
from torch.func import vmap

from ..gan import frozen_bn_stats
from ..sgan import SGAN, generator_loss, real_fake_loss, supervised_loss
from ..sgan_fm import SGANFM, feature_matching_loss, labeled_loss, unlabeled_loss
from ...nets import GaussianNoise
from .common import DropoutMasks, Injector, dropout_mask
from .nets import StackedNets, gather


class _StackedGAN(StackedNets):
    """What both GANs share: the real-vs-fake loss each run's collapse check reads, per-run draws."""

    def __init__(self, runs, capturable: bool = False):
        super().__init__(runs, capturable=capturable)
        self.d_unsup = torch.zeros(self.n, device=self.device)  # summed over the epoch's steps, per run

    @torch.no_grad()
    def unstack(self) -> None:
        """Also each run's summed real-vs-fake loss of the epoch, which its collapse check reads."""
        super().unstack()
        for i, m in enumerate(self.methods):
            m._d_unsup_sum = self.d_unsup[i].clone()
            m._steps = m.steps_per_epoch()
        self.d_unsup.zero_()


def _gaussian(layer: GaussianNoise, shape: tuple, dtype, g: torch.Generator) -> torch.Tensor | None:
    """``GaussianNoise``'s addend, ``sigma * randn_like(x)``, from generator ``g``; None when it adds none."""
    if layer.sigma <= 0:
        return None
    return layer.sigma * torch.randn(shape, dtype=dtype, device=g.device, generator=g)


class StackedSGANFM(_StackedGAN):
    """N runs of ``sgan-fm`` with the same hyperparameters: D, G and the EMA of D stacked; opt_D and
    opt_G mirrored; D's Gaussian noise drawn per run and added by hooks on the template's noise layers."""

    METHOD = SGANFM

    @classmethod
    def nets(cls, m):
        return ["D", "G"] + (["D_ema"] if m.D_ema is not None else [])

    def __init__(self, runs, capturable: bool = False):
        super().__init__(runs, capturable=capturable)
        d = self.templates["D"]
        self.noise_layers = Injector([d.input_noise, *d.noise], lambda out, t: out + t,
                                     skip=lambda i, layer: layer.sigma <= 0)

    def _noise(self, shape: tuple, g: torch.Generator) -> list[torch.Tensor]:
        return self.draw_injected(self.noise_layers, self.templates["D"].features, shape, g, _gaussian)

    def train_step(self) -> dict[str, torch.Tensor]:
        hp, n = self.hp, self.hp["batch_size"]
        P, B = self.params, self.buffers
        D, G, features = self.fn("D"), self.fn("G"), self.fn("D", "features")
        width = self.methods[0].data.x_pool.shape[1]

        def draws(m, g):
            lab = torch.randint(len(m.data.x_lab), (n,), generator=m.gen, device=self.device)  # m.batch(x_lab, y_lab)
            unl = torch.randint(len(m.data.x_pool), (n,), generator=m.gen, device=self.device)
            unl2 = torch.randint(len(m.data.x_pool), (n,), generator=m.gen, device=self.device)
            z1, z2 = m.noise(n), m.noise(n)
            # the global generator's draws: D on the three batches, on G(z2), on the second real batch
            noise = [*self._noise((3 * n, width), g), *self._noise((n, width), g), *self._noise((n, width), g)]
            return (lab, unl, unl2, z1, z2, *noise)

        lab, unl, unl2, z1, z2, *noise = self.per_run(draws)
        k = len(noise) // 3
        n_d, n_fake, n_real = noise[:k], noise[k:2 * k], noise[2 * k:]
        x_lab, y_lab = gather(self.data("x_lab"), lab), gather(self.data("y_lab"), lab)
        x_unl, x_unl2 = gather(self.data("x_pool"), unl), gather(self.data("x_pool"), unl2)
        inject = self.noise_layers.use

        # Discriminator step: labeled CE + unlabeled real-vs-fake, one pass over the three batches.
        with torch.no_grad():
            fake = vmap(G)(P["G"], B["G"], z1)

        def d_losses(pd, bd, xl, yl, xu, fk, nz):
            with inject(nz):
                l_lab, l_unl, l_fake = D(pd, bd, torch.cat([xl, xu, fk])).split([len(xl), len(xu), len(fk)])
            return labeled_loss(l_lab, yl), unlabeled_loss(l_unl, l_fake)

        loss_lab, loss_unl = vmap(d_losses)(P["D"], B["D"], x_lab, y_lab, x_unl, fake, n_d)
        self.step("opt_D", loss_lab + hp["unlabeled_weight"] * loss_unl)
        if "D_ema" in self.params:
            with torch.no_grad():
                for k_, pe in self.params["D_ema"].items():
                    pe.lerp_(P["D"][k_], 1.0 - hp["ema_decay"])
        self.d_unsup += loss_unl.detach()

        # Generator step: match the mean last-hidden-layer features of real images.
        def real_features(pd, bd, x, nz):
            with inject(nz):
                return features(pd, bd, x)[1]

        def g_loss(pg, bg, pd, bd, z, nz, f_real):
            with inject(nz):
                _, f_fake = features(pd, bd, G(pg, bg, z))
            return feature_matching_loss(f_fake, f_real)

        with torch.no_grad():
            f_real = vmap(real_features)(P["D"], B["D"], x_unl2, n_real)
        loss_gen = self.step("opt_G", vmap(g_loss)(P["G"], B["G"], P["D"], B["D"], z2, n_fake, f_real))
        return {"lab": loss_lab.detach(), "unl": loss_unl.detach(), "gen": loss_gen}


class StackedSGAN(_StackedGAN):
    """N runs of seed 001's ``sgan`` with the same hyperparameters (one discriminator: the corrected
    ``d_unshared_weights: false``): D and G stacked, opt_D and opt_G mirrored, D's dropout masks drawn
    per run and applied by hooks on the template's dropout layers. D and G step together on gradients
    from one forward pass (001:296), as ``SGAN.train_step``."""

    METHOD = SGAN

    @classmethod
    def nets(cls, m):
        return ["D", "G"]

    @classmethod
    def why_not(cls, m) -> str | None:
        if m.hp["d_unshared_weights"]:
            return "stacked sgan runs have one discriminator (d_unshared_weights: true has three)"
        return None

    def __init__(self, runs, capturable: bool = False):
        if runs and self.why_not(runs[0][0]):
            raise NotImplementedError(self.why_not(runs[0][0]))
        super().__init__(runs, capturable=capturable)
        self.drops = DropoutMasks(self.templates["D"])
        m0 = self.methods[0]
        self.n_unl, self.n_lab = m0.n_unl, m0.n_lab

    def _masks(self, shape: tuple, g: torch.Generator) -> list[torch.Tensor]:
        return self.draw_injected(self.drops, self.templates["D"], shape, g, dropout_mask)

    def train_step(self) -> dict[str, torch.Tensor]:
        bs = self.hp["batch_size"]
        P, B = self.params, self.buffers
        D, G, d_template = self.fn("D"), self.fn("G"), self.templates["D"]
        img = (1, 28, 28)

        def draws(m, g):
            lab = torch.randint(len(m.data.x_lab), (self.n_lab,), generator=m.gen, device=self.device)
            unl = torch.randint(len(m.data.x_pool), (self.n_unl,), generator=m.gen, device=self.device)
            z = m.noise(bs)
            # the global generator's draws: D's dropout on the labeled, unlabeled and generated batches
            masks = [self._masks((len_, *img), g) for len_ in (self.n_lab, self.n_unl, bs)]
            return (lab, unl, z, *masks[0], *masks[1], *masks[2])

        lab, unl, z, *masks = self.per_run(draws)
        k = len(masks) // 3  # each of the three calls is one forward of D: as many masks each
        m_lab, m_unl, m_fake = masks[:k], masks[k:2 * k], masks[2 * k:]
        # flat [0, 1] images -> 1 x 28 x 28 in [-1, 1], as SGAN.images
        x_lab = gather(self.data("x_lab"), lab).view(self.n, self.n_lab, *img) * 2 - 1
        x_unl = gather(self.data("x_pool"), unl).view(self.n, self.n_unl, *img) * 2 - 1
        y_lab = gather(self.data("y_lab"), lab)
        use = self.drops.use

        def losses(pd, bd, pg, bg, xl, yl, xu, z, ml, mu, mf):
            fake = G(pg, bg, z)
            with use(ml):  # three separate calls, as the seed's graph: each batch its own BN statistics
                logits_lab = D(pd, bd, xl)
            with use(mu):
                logits_unl = D(pd, bd, xu)
            with use(mf), frozen_bn_stats(d_template):  # ours: running statistics from real images only
                logits_fake = D(pd, bd, fake)
            return (supervised_loss(logits_lab, yl), real_fake_loss(logits_unl, logits_fake),
                    generator_loss(logits_fake))

        loss_sup, loss_rf, loss_g = vmap(losses)(P["D"], B["D"], P["G"], B["G"], x_lab, y_lab, x_unl, z,
                                                 m_lab, m_unl, m_fake)
        # One forward pass, both gradients from it, then both updates (001:296).
        opt_d, opt_g = self.opts["opt_D"], self.opts["opt_G"]
        d_params, g_params = opt_d.param_groups[0]["params"], opt_g.param_groups[0]["params"]
        grads_d = torch.autograd.grad((loss_sup + loss_rf).sum(), d_params, retain_graph=True, allow_unused=True)
        grads_g = torch.autograd.grad(loss_g.sum(), g_params, allow_unused=True)
        # contiguous: vmap's backward hands some gradients over as transposed views (D's last weight), and
        # the fused CPU Adam of torch 2.13 reads a strided gradient as if it were contiguous: wrong updates
        # (measured; without this line tests/test_group.py's stacked sgan drifts from step 2). backward()
        # lays gradients out like their parameters; a gradient assigned by hand must be made so.
        for params, grads in ((d_params, grads_d), (g_params, grads_g)):
            for q, g in zip(params, grads):
                q.grad = None if g is None else g.contiguous()
        opt_d.step()
        opt_g.step()
        self.d_unsup += loss_rf.detach()
        return {"sup": loss_sup.detach(), "d_unsup": loss_rf.detach(), "gen": loss_g.detach()}

