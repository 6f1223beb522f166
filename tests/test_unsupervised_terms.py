"""The unlabeled part of each semi-supervised method reaches its classifier, and the adversarial
phases train in the right direction: tests that fail if the unsupervised term were dead or the
prior and the codes were swapped (a labeled loss alone would pass a "beats chance" test)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fewlabels.methods.aae import sample_categorical, sample_gaussian
from fewlabels.methods.base import resolve_hparams
from fewlabels.methods.sgan import SGAN, real_fake_loss
from fewlabels.methods.sgan_fm import SGANFM

from test_aae import fake_data, make_aae


def _build(cls, **over):
    torch.manual_seed(0)
    hp = resolve_hparams(cls, over)
    return cls(hp, fake_data(n=200), torch.device("cpu"), torch.Generator().manual_seed(0))


def test_aae_discriminators_learn_prior_as_real_and_codes_as_fake():
    m = make_aae(lr_reg=1e-3)
    x = m.data.x_pool[:16]
    for _ in range(40):
        m.phase_discriminators(x)
    with torch.no_grad():
        y_logits, z = m.enc.encode(x)
        prior_cat = m.d_cat(sample_categorical(16, 10, m.gen, "cpu")).mean()
        prior_gauss = m.d_gauss(sample_gaussian(16, z.shape[1], m.hp["z_std"], m.gen, "cpu")).mean()
        code_cat, code_gauss = m.d_cat(F.softmax(y_logits, 1)).mean(), m.d_gauss(z).mean()
    # swapping prior and code in the phase would invert both inequalities
    assert prior_cat > 0 > code_cat and prior_gauss > 0 > code_gauss


def test_aae_dcat_bug_calls_the_codes_real_too():
    m = make_aae(lr_reg=1e-3, dcat_fake_target_bug=True)
    x = m.data.x_pool[:16]
    for _ in range(40):
        m.phase_discriminators(x)
    with torch.no_grad():
        code_cat = m.d_cat(F.softmax(m.enc.encode(x)[0], 1)).mean()
        code_gauss = m.d_gauss(m.enc.encode(x)[1]).mean()
    assert code_cat > 0 > code_gauss  # D_cat learns nothing useful; D_gauss is unaffected


def test_sgan_unlabeled_terms_reach_the_classifier_only_when_weights_are_shared():
    for unshared in (False, True):
        m = _build(SGAN, d_unshared_weights=unshared, batch_size=16)
        _, d_unl, d_fake = m.discriminators()
        x = m.images(m.data.x_pool[:14])
        loss = real_fake_loss(d_unl(x), d_fake(m.G(m.noise(16))))
        convs = [p for n, p in m.D.named_parameters() if "bn" not in n and p.dim() > 1]
        grads = torch.autograd.grad(loss, convs, allow_unused=True)
        reached = any(g is not None and g.abs().sum() > 0 for g in grads)
        # corrected: one discriminator, so the real/fake game shapes the classifier's weights; as
        # published (seed 001's Keras copies) the classifier's convolutions never see it
        assert reached is (not unshared)


def test_sgan_fm_unlabeled_weight_changes_the_discriminator_step():
    after = {}
    for w in (0.0, 1.0):
        m = _build(SGANFM, unlabeled_weight=w, d_hidden=[32, 16], g_hidden=[16], init_batch=50,
                   batch_size=16, ema_decay=0.0)
        m.train_step()
        after[w] = torch.cat([p.detach().flatten() for p in m.classifier().parameters()])
    # same seed, same batches: the only difference is the unlabeled term's gradient
    assert not torch.equal(after[0.0], after[1.0])
