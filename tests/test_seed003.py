"""Seed 003 (autoencoders as pretraining, the chapter's classifiers): tied weights, the denoising
input, the VAE's KL term, frozen encoders, the seed's shapes, labels: all, and a short real run."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from fewlabels import config
from fewlabels.report import aggregate, tables
from fewlabels.training import trainer as train
from fewlabels.data import TaskData, make_split
from fewlabels.methods import METHODS, PRETRAIN, get
from fewlabels.methods.base import HParamError, resolve_hparams
from fewlabels.methods.classifiers import Conv
from fewlabels.methods.dae import DAEPretrain
from fewlabels.methods.vae import kl_to_standard_normal
from fewlabels.nets import ConvTiedAE, SeedConvNet, TiedAE, same_pads

CPU = torch.device("cpu")


def fake_data(n_classes=10, d=784):
    g = torch.Generator().manual_seed(0)
    x = lambda m: torch.rand(m, d, generator=g)  # noqa: E731
    y = lambda m: torch.arange(m) % n_classes      # noqa: E731
    return TaskData(x_lab=x(40), y_lab=y(40), x_pool=x(100), y_pool=y(100), x_val=x(20), y_val=y(20),
                    x_test=x(20), y_test=y(20), n_classes=n_classes, split_sha256="0")


def make(name, overrides=None, pretrained=None, seed=0):
    torch.manual_seed(seed)
    cls = get(name)
    return cls(resolve_hparams(cls, overrides), fake_data(), CPU, torch.Generator().manual_seed(seed), pretrained)


# ---------------------------------------------------------------------------- tied weights

def test_fc_autoencoder_uses_each_matrix_twice():
    torch.manual_seed(0)
    net = TiedAE()
    assert [tuple(p.shape) for p in net.parameters()] == [(784, 512), (512, 256), (256, 128), (128, 64)]
    x = torch.rand(8, 784)
    F.mse_loss(net.decode(net.encode(x)), x - net.mean).backward()
    tied = [w.grad.clone() for w in net.weights]
    # The same net with separate encoder and decoder copies: the tied gradient is the sum of both.
    enc = [w.detach().clone().requires_grad_() for w in net.weights]
    dec = [w.detach().clone().requires_grad_() for w in net.weights]
    h = x
    for w in enc:
        h = torch.relu(h @ w)
    for i, w in enumerate(dec[::-1]):
        h = h @ w.t()
        h = torch.relu(h) if i < 3 else h
    F.mse_loss(h, x).backward()
    for t, e, d in zip(tied, enc, dec):
        assert e.grad.abs().sum() > 0 and d.grad.abs().sum() > 0
        torch.testing.assert_close(t, e.grad + d.grad)


def test_conv_autoencoder_decodes_with_the_adjoint_of_its_filters():
    torch.manual_seed(0)
    net = ConvTiedAE()
    assert [tuple(p.shape) for p in net.parameters()] == [(16, 1, 4, 4), (16, 16, 4, 4), (16, 16, 4, 4)]
    assert net.sides == [28, 14, 7, 4] and net.code_dim == 4 * 4 * 16           # 003:443
    # One layer without ReLU: <conv(x), y> == <x, conv_transpose(y)>, the definition of a transpose.
    one = ConvTiedAE(filters=[3], output_relu=False, side=7)
    x, y = torch.randn(2, 49), torch.randn(2, 3 * 4 * 4)
    lhs = (F.conv2d(F.pad(x.view(2, 1, 7, 7), (1, 2, 1, 2)), one.weights[0], stride=2).flatten(1) * y).sum()
    rhs = (x * one.decode(y)).sum()
    torch.testing.assert_close(lhs, rhs)
    assert same_pads(28, 4, 2) == (1, 1) and same_pads(7, 4, 2) == (1, 2) and same_pads(28, 5, 2) == (1, 2)


def test_output_relu_quirk_clips_the_negative_reconstruction():
    torch.manual_seed(0)
    x = torch.rand(4, 784)
    for quirk in (False, True):
        net = TiedAE(output_relu=quirk)
        net.mean.fill_(0.5)
        assert (net.decode(net.encode(x)) < 0).any() != quirk


# ---------------------------------------------------------------------------- denoising and VAE

def test_denoising_input_is_masked_and_the_target_is_clean():
    m = make("dae-pretrain", {"noise": 0.5})
    x = m.data.x_pool[:32]
    seen = []
    encode = m.net.encode
    m.net.encode = lambda inp: seen.append(inp) or encode(inp)
    loss = m.loss(m.net, x, m.noise(x))["recon"]
    inp = seen[0]
    assert not torch.equal(inp, x)
    assert ((inp == 0) | (inp == x)).all()                          # masked, not shifted
    assert 0.4 < (inp == 0).float().mean() < 0.6                    # about half the pixels
    clean_target = F.mse_loss(m.net.decode(encode(inp)), x - m.net.mean)
    torch.testing.assert_close(loss, clean_target)
    with pytest.raises(HParamError, match="noise"):
        resolve_hparams(DAEPretrain, {"noise": 1.0})


def test_kl_is_zero_when_the_posterior_is_the_prior_and_positive_otherwise():
    z = torch.zeros(5, 2)
    assert kl_to_standard_normal(z, z).item() == 0.0
    assert kl_to_standard_normal(z + 1, z).item() == pytest.approx(1.0)  # 1/2 * |mu|^2 with |mu|^2 = 2
    assert kl_to_standard_normal(z, z + 1).item() > 0


# ---------------------------------------------------------------------------- second stage

@pytest.mark.parametrize("family", ["ae", "conv-ae", "dae", "vae"])
@pytest.mark.parametrize("freeze", [True, False])
def test_frozen_encoder_stays_bit_identical_and_fine_tuning_moves_it(family, freeze):
    stage = METHODS[family].pretrain
    pre = make(stage, {"batch_size": 16})
    for _ in range(3):
        pre.train_step()
    payload = pre.payload()
    m = make(family, {"batch_size": 16, "freeze_encoder": freeze}, payload, seed=1)
    before = {k: v.clone() for k, v in m.net.autoencoder.state_dict().items()}
    assert all(torch.equal(before[k], v) for k, v in payload["autoencoder"].items())
    for _ in range(5):
        m.train_step()
    after = m.net.autoencoder.state_dict()
    # encoder weights: the tied matrices (fc, conv) or the VAE's layers up to its mean
    keys = [k for k in before if k.startswith(("weights", "enc", "mu"))]
    same = [torch.equal(before[k], after[k]) for k in keys]
    assert all(same) if freeze else not any(same)


def test_second_stage_needs_its_own_first_stage_and_twins_share_the_architecture():
    assert {METHODS[m].pretrain for m in ("ae", "dae", "conv-ae", "vae")} == \
        {"ae-pretrain", "dae-pretrain", "conv-ae-pretrain", "vae-pretrain"} <= set(PRETRAIN)
    assert make("ae-pretrain").payload()["labels_used"] == {}        # no label reaches the encoder
    with pytest.raises(HParamError, match="ae-pretrain"):
        make("ae")
    wrong = make("dae-pretrain", {"batch_size": 16}).payload()
    with pytest.raises(HParamError, match="conv-ae-pretrain"):
        make("conv-ae", pretrained=wrong)
    pre, twin = make("ae-pretrain"), make("ae-scratch")
    assert [p.shape for p in pre.net.parameters()] == [p.shape for p in twin.net.autoencoder.parameters()]
    assert torch.equal(pre.net.mean, twin.net.autoencoder.mean)       # the same pool mean image


# ---------------------------------------------------------------------------- the seed's classifiers

def test_conv_classifier_has_the_seed_shapes_and_init():
    torch.manual_seed(0)
    net = SeedConvNet()
    shapes = [tuple(p.shape) for p in net.parameters()]
    assert shapes == [(32, 1, 5, 5), (32,), (64, 32, 5, 5), (64,), (128, 7 * 7 * 64), (128,), (10, 128), (10,)]
    assert net.features(torch.rand(3, 784)).shape == (3, 64, 7, 7)    # 003:1271
    assert 0.9 < net.convs[1].weight.std().item() < 1.1               # random_normal_initializer(): std 1
    m = make("conv")
    assert m.samples_per_step() == 50 and make("conv", {"library_batch": True}).samples_per_step() == 100
    assert Conv.DEFAULTS["epochs"] == 10 and get("linear").DEFAULTS["epochs"] == 5
    assert m.steps_per_epoch() == 1 and make("conv", {"min_steps_per_epoch": 30}).steps_per_epoch() == 30


# ---------------------------------------------------------------------------- labels: all

def test_labels_all_is_a_training_run_in_the_grid_tables_and_aggregate(tmp_path, mnist_path):
    cfg = {"grid": [{"task": "mnist10", "labels": [100, "all"], "methods": ["linear"]}], "seeds": [0],
           "methods": {}, "pretrain": {}}
    config.check(cfg)
    assert [r["labels"] for r in config.runs(cfg)] == [100, "all"]
    make_split(mnist_path, tmp_path / "nall.npz", "mnist10", None, seed=0)
    m = train.run(method="linear", task="mnist10", labels=None, seed=0, mnist=mnist_path, split=tmp_path / "nall.npz",
                  out=tmp_path / "lin", hparams={"epochs": 1, "steps_per_epoch": 50}, device="cpu", log=lambda s: None)
    assert m["run"]["stage"] == "train" and m["data"]["n_labeled"] == 55000
    row = aggregate.row(tmp_path / "lin" / "metrics.json")
    assert row["labels"] == "all" and row["test_accuracy"] > 0.7  # chance: 0.1
    df = pd.DataFrame([{**row, "labels": "all"}, {**row, "labels": "100", "test_accuracy": 0.5}])
    tex = tables.results_table(df)
    assert tex.index("100 labels") < tex.index("all labels")
    assert r"\def\csname fl@mnist10/linear/all/mean" in tables.macros(df, [], "t").replace("expandafter", "")


# ---------------------------------------------------------------------------- real run

def test_short_pretraining_beats_the_scratch_twin_at_100_labels(tmp_path, mnist_path):
    """300 autoencoder steps and 240 head steps: the pretrained encoder wins on the same split."""
    torch.set_num_threads(1)
    for labels in (None, 100):
        make_split(mnist_path, tmp_path / f"n{labels}.npz", "mnist10", labels, seed=0)
    common = dict(task="mnist10", seed=0, mnist=mnist_path, device="cpu", log=lambda s: None)
    train.run(method="ae-pretrain", labels=None, split=tmp_path / "nNone.npz", out=tmp_path / "pre",
              hparams={"epochs": 1, "steps_per_epoch": 300}, **common)
    head = {"epochs": 3, "steps_per_epoch": 80}
    acc = {}
    for name, pre in (("ae", tmp_path / "pre" / "model.pt"), ("ae-scratch", None)):
        acc[name] = train.run(method=name, labels=100, split=tmp_path / "n100.npz", out=tmp_path / name,
                              hparams=head, pretrained=pre, **common)["results"]["test_accuracy"]
    assert acc["ae"] > acc["ae-scratch"] + 0.05, acc
