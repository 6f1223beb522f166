"""The seeds' quirk switches: each changes what it claims to change and nothing else."""

from __future__ import annotations

import copy

import pytest
import torch

from fewlabels.data import TaskData
from fewlabels.methods import aae as aae_mod
from fewlabels.methods import get, sgan as sgan_mod
from fewlabels.methods.base import resolve_hparams
from fewlabels.methods.transfer import Transfer, TransferSource

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def fake_data(n_classes=10, n=64):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % n_classes  # every class present (pairs need them)
    return TaskData(x_lab=torch.rand(n, 784, generator=g), y_lab=y.clone(), x_pool=torch.rand(n, 784, generator=g),
                    y_pool=y.clone(), x_val=torch.rand(20, 784, generator=g), y_val=y[:20].clone(),
                    x_test=torch.rand(20, 784, generator=g), y_test=y[:20].clone(), n_classes=n_classes,
                    split_sha256="0")


def make(name, data=None, pretrained=None, seed=0, **over):
    cls = get(name)
    torch.manual_seed(seed)
    return cls(resolve_hparams(cls, over), data or fake_data(), CPU, torch.Generator().manual_seed(seed), pretrained)


def evaluate(m, x):
    """What the trainer does: eval mode, then the method's eval context."""
    clf = m.classifier()
    clf.eval()
    with torch.no_grad(), m.eval_context():
        out = clf(x)
    clf.train()
    return out


def state(m):
    return {f"{k}.{n}": v.clone() for k, mod in m.modules().items() for n, v in mod.state_dict().items()}


def assert_same_state(a, b):
    sa, sb = state(a), state(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


SMALL = {"sgan": {"batch_size": 20}, "supervised": {"hidden": [64, 64], "batch_size": 16},
         "siamese-scratch": {"batch_size": 16}, "scratch": {"batch_size": 16, "hidden": [32, 16]}}


@pytest.mark.parametrize("name,quirk", [("sgan", "bn_init_stats_at_test"), ("sgan", "argmax_with_fake"),
                                        ("supervised", "dropout_at_test"), ("siamese-scratch", "dropout_at_test"),
                                        ("scratch", "bn_init_stats_at_test")])
def test_eval_quirks_are_declared_and_leave_training_bit_identical(name, quirk):
    assert quirk in get(name).EVAL_QUIRKS
    off, on = make(name, **SMALL[name]), make(name, **SMALL[name], **{quirk: True})
    for m in (off, on):
        torch.manual_seed(5)  # dropout draws from the global generator
        for _ in range(3):
            m.train_step()
    assert_same_state(off, on)


def test_bn_init_statistics_quirk_uses_mean_0_var_1_and_keeps_the_running_stats():
    m = make("scratch", **SMALL["scratch"], bn_init_stats_at_test=True)
    for _ in range(5):
        m.train_step()
    bn = m.net.tower.blocks[0][1]
    stored = bn.running_mean.clone(), bn.running_var.clone()
    assert not torch.equal(stored[0], torch.zeros_like(stored[0]))  # training did move them
    x = m.data.x_test
    got = evaluate(m, x)
    # by hand: every batch norm with mean 0 / var 1
    ref = copy.deepcopy(m.net).eval()
    for mod in ref.modules():
        if isinstance(mod, torch.nn.BatchNorm1d):
            mod.running_mean.zero_()
            mod.running_var.fill_(1.0)
    assert torch.allclose(got, ref(x), atol=1e-6)
    assert torch.equal(bn.running_mean, stored[0]) and torch.equal(bn.running_var, stored[1])
    m.hp["bn_init_stats_at_test"] = False
    assert not torch.allclose(evaluate(m, x), got)


@pytest.mark.parametrize("name", ["supervised", "siamese-scratch"])
def test_dropout_at_test_makes_two_evaluations_differ(name):
    m = make(name, **SMALL[name])
    x = m.data.x_test
    assert torch.equal(evaluate(m, x), evaluate(m, x))
    m.hp["dropout_at_test"] = True
    assert not torch.equal(evaluate(m, x), evaluate(m, x))
    if name == "siamese-scratch":  # the input dropout obeys is_training in seed 000 (000:79)
        clf = m.classifier().eval()
        with m.eval_context():
            assert not m.net.tower.drop_in.training and m.net.tower.blocks[0][3].training
    assert not any(mod.training for mod in m.classifier().eval().modules())  # restored afterwards


def test_sgan_argmax_with_fake_counts_fake_calls_as_errors():
    m = make("sgan", **SMALL["sgan"])
    x = m.data.x_test
    assert evaluate(m, x).shape == (20, 10)
    m.hp["argmax_with_fake"] = True
    out = evaluate(m, x)
    assert out.shape == (20, 11) and torch.equal(out[:, :10], evaluate(m, x)[:, :10])
    assert m.classifier().keep_fake is False  # only inside the context


def test_sgan_unshared_discriminators_are_three_copies_sharing_batch_norm(monkeypatch):
    m = make("sgan", **SMALL["sgan"], d_unshared_weights=True)
    d_lab, d_unl, d_fake = m.discriminators()
    assert len({id(d_lab), id(d_unl), id(d_fake)}) == 3
    convs = [[c.weight for c in d.body if isinstance(c, torch.nn.Conv2d)] for d in (d_lab, d_unl, d_fake)]
    assert all(not torch.equal(convs[0][i], convs[j][i]) for i in range(4) for j in (1, 2))
    assert all(a is b for a, b in zip(d_lab.batch_norms(), d_unl.batch_norms()))
    assert all(a is b for a, b in zip(d_lab.batch_norms(), d_fake.batch_norms()))
    assert m.classifier().disc is d_lab
    # The labeled copy learns only from the labeled loss: with that loss zeroed it does not move.
    monkeypatch.setattr(sgan_mod, "supervised_loss", lambda logits, y: 0.0 * logits.sum())
    before = {k: v.clone() for k, v in d_lab.state_dict().items() if "body.1." in k or "out." in k}
    unl_before = d_unl.body[1].weight.clone()
    m.train_step()
    for k, v in before.items():
        assert torch.equal(d_lab.state_dict()[k], v), k
    assert not torch.equal(d_unl.body[1].weight, unl_before)
    shared = make("sgan", **SMALL["sgan"])
    w = shared.D.body[1].weight.clone()
    shared.train_step()
    assert not torch.equal(shared.D.body[1].weight, w)  # one D: the unsupervised losses move it


def test_sgan_dropout_inactive_removes_dropout_only():
    on, off = make("sgan", **SMALL["sgan"], dropout_inactive=True), make("sgan", **SMALL["sgan"])
    assert not any(isinstance(x, torch.nn.Dropout) for x in on.D.modules())
    assert sum(isinstance(x, torch.nn.Dropout) for x in off.D.modules()) == 2
    assert_same_state(on, off)  # same initial weights: nothing else differs
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    assert torch.equal(on.D(x), on.D(x)) and not torch.equal(off.D(x), off.D(x))  # train mode


def test_sgan_generator_steps_against_the_discriminator_before_its_update():
    m = make("sgan", **SMALL["sgan"], dropout_inactive=True)
    ref = copy.deepcopy(m)
    g_before = {k: v.clone() for k, v in m.G.state_dict().items()}
    gen_state = m.gen.get_state()
    m.train_step()
    # Recompute G's loss with the pre-update D on the same noise: G's update must follow its gradient.
    ref.gen.set_state(gen_state)
    ref.batch(ref.data.x_lab, ref.data.y_lab, ref.n_lab)
    ref.batch(ref.data.x_pool, size=ref.n_unl)
    fake = ref.G(ref.noise(ref.hp["batch_size"]))
    loss = sgan_mod.generator_loss(ref.D(fake))
    grads = torch.autograd.grad(loss, list(ref.G.parameters()))
    # Adam's first step moves each weight by -lr * sign(grad) (up to eps)
    for (name, p), g in zip(ref.G.named_parameters(), grads):
        step = m.G.state_dict()[name] - g_before[name]
        big = g.abs() > 1e-4  # Adam's eps 1e-8 is negligible there
        assert torch.allclose(step[big], -1e-3 * torch.sign(g[big]), rtol=1e-3), name


def test_transfer_bn_params_frozen_at_init_reproduces_the_seed_scopes():
    torch.manual_seed(0)
    data = fake_data(5)
    src = TransferSource(resolve_hparams(TransferSource, {"hidden": [32, 16, 16], "batch_size": 16}), data, CPU,
                         torch.Generator().manual_seed(0))
    for _ in range(20):
        src.train_step()
    payload = src.payload()
    assert not torch.equal(payload["tower"]["blocks.0.1.weight"], torch.ones(32))  # the source trained its BN

    def transfer(quirk):
        torch.manual_seed(1)
        return Transfer(resolve_hparams(Transfer, {"batch_size": 16, "bn_params_frozen_at_init": quirk}), data,
                        CPU, torch.Generator().manual_seed(1), payload)

    on, off = transfer(True), transfer(False)
    for m in (on, off):  # hidden1's dense layer is restored either way
        assert torch.equal(m.net.tower.blocks[0][0].weight, payload["tower"]["blocks.0.0.weight"])
    assert torch.equal(off.net.tower.blocks[0][1].weight, payload["tower"]["blocks.0.1.weight"])
    assert torch.equal(on.net.tower.blocks[0][1].weight, torch.ones(32))      # re-initialised, not restored
    assert torch.equal(on.net.tower.blocks[0][1].running_mean, torch.zeros(32))
    for _ in range(10):
        on.train_step()
        off.train_step()
    for i, block in enumerate(on.net.tower.blocks):
        assert torch.equal(block[1].weight, torch.ones_like(block[1].weight)), i     # gamma stays 1
        assert torch.equal(block[1].bias, torch.zeros_like(block[1].bias)), i       # beta stays 0
        assert block[1].training                                                    # batch statistics
    assert torch.equal(on.net.tower.blocks[0][0].weight, payload["tower"]["blocks.0.0.weight"])  # still frozen
    assert not torch.equal(off.net.tower.blocks[1][1].weight, torch.ones(16))  # corrected: fresh BN trains
    assert not torch.equal(on.net.tower.blocks[1][0].weight, transfer(True).net.tower.blocks[1][0].weight)


def test_aae_dcat_fake_target_bug_flips_only_dcats_fake_target(monkeypatch):
    d = torch.tensor([0.3, -1.2])
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    assert torch.isclose(aae_mod.discriminator_loss(d, d, 1.0), 2 * bce(d, torch.ones(2)))
    assert torch.isclose(aae_mod.discriminator_loss(d, d), bce(d, torch.ones(2)) + bce(d, torch.zeros(2)))
    seen = []
    real = aae_mod.discriminator_loss
    monkeypatch.setattr(aae_mod, "discriminator_loss", lambda a, b, t=0.0: seen.append(t) or real(a, b, t))
    small = {"hidden": [32, 32], "batch_size": 8}
    for bug in (False, True):
        m = make("aae", **small, dcat_fake_target_bug=bug)
        m.phase_discriminators(m.data.x_pool[:8])
    assert seen == [0.0, 0.0, 1.0, 0.0]  # (D_cat, D_gauss) without, then with the bug


def test_siamese_pair_stage_counts_the_images_behind_its_pair_targets():
    m = make("siamese-pairs", batch_size=20)
    assert m.labels_used() == {"pair_targets": len(m.data.y_pool)}
    empty = fake_data()
    empty.x_pool, empty.y_pool = empty.x_pool[:0], empty.y_pool[:0]
    with pytest.raises(ValueError, match="no pool images left"):
        make("siamese-pairs", data=empty)
