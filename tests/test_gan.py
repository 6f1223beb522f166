"""The semi-supervised GANs (sgan, sgan-fm): shapes, losses against hand-computed values,
weight norm's data-dependent initialisation, short real runs, divergence and collapse."""

from __future__ import annotations

import math

import pytest
import torch

from fewlabels.report.figures import gan as figures_gan
from fewlabels.training import build
from fewlabels.training import trainer as train
from fewlabels.training.__main__ import main as train_cli
from fewlabels.data import make_split
from fewlabels.methods import get
from fewlabels.methods.base import HParamError, resolve_hparams
from fewlabels.methods.gan import GANCollapseError
from fewlabels.methods.sgan import generator_loss, real_fake_loss, supervised_loss
from fewlabels.methods.sgan_fm import feature_matching_loss, labeled_loss, unlabeled_loss
from fewlabels.nets import (FMDiscriminator, FMGenerator, KPlusOneClassifier, Seed001Discriminator,
                            Seed001Generator, WNLinear)

# Short schedules for the real runs: seed 001's nets for sgan (batch 50: 45 unlabeled + 5 labeled),
# the published nets for sgan-fm.
SGAN_SHORT = {"epochs": 1, "steps_per_epoch": 60, "batch_size": 50}
FM_SHORT = {"epochs": 1, "steps_per_epoch": 25, "ema_decay": 0.0}


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as a Snakemake job gets (and far faster on a busy 2-core machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_generators_and_discriminators_output_shapes_and_ranges():
    torch.manual_seed(0)
    z = torch.rand(4, 100)
    g = Seed001Generator(100)
    x = g(z)
    assert x.shape == (4, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    d = Seed001Discriminator(10)
    logits, feats = d.features(x)
    assert logits.shape == (4, 11) and feats.shape == (4, 512)
    clf = KPlusOneClassifier(d).eval()
    assert clf(torch.rand(4, 784)).shape == (4, 10)  # fake logit dropped
    clf.keep_fake = True
    assert clf(torch.rand(4, 784)).shape == (4, 11)

    fg = FMGenerator(100, (500, 500))
    xf = fg(z)
    assert xf.shape == (4, 784) and xf.min() >= 0 and xf.max() <= 1
    fd = FMDiscriminator()
    logits, feats = fd.features(xf)
    assert logits.shape == (4, 10) and feats.shape == (4, 250)
    assert (feats >= 0).all()  # ReLU output before the noise


def test_seed001_networks_have_the_seeds_layer_shapes():
    """001:70-96 and 001:106-134: every intermediate shape of the generator and discriminator."""
    g, d = Seed001Generator(100), Seed001Discriminator(10)
    h, shapes = torch.rand(2, 100), []
    h = h.view(2, 100, 1, 1)
    for m in g.net:
        h = m(h)
        if isinstance(m, torch.nn.ConvTranspose2d):
            shapes.append(tuple(h.shape[1:]))
    assert shapes == [(100, 2, 2), (64, 5, 5), (32, 12, 12), (1, 28, 28)]
    assert [(m.kernel_size, m.stride) for m in g.net if isinstance(m, torch.nn.ConvTranspose2d)] == [
        ((2, 2), (1, 1)), ((3, 3), (2, 2)), ((4, 4), (2, 2)), ((6, 6), (2, 2))]
    h, shapes = torch.rand(2, 1, 28, 28), []
    for m in d.body:
        h = m(h)
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Flatten)):
            shapes.append(tuple(h.shape[1:]))
    assert shapes == [(32, 14, 14), (64, 7, 7), (128, 4, 4), (128, 2, 2), (512,)]
    assert [m.kernel_size for m in d.body if isinstance(m, torch.nn.Conv2d)] == [(5, 5), (3, 3), (2, 2), (2, 2)]
    assert d.out.out_features == 11
    # batch norm on conv 2 and 3 only, TF's defaults; dropout after conv 1 and 3
    bns = [m for m in d.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert [b.num_features for b in bns] == [64, 128] and all(b.eps == 1e-3 and b.momentum == 0.01 for b in bns)
    assert sum(isinstance(m, torch.nn.Dropout) for m in d.modules()) == 2
    assert not any(isinstance(m, torch.nn.Dropout) for m in Seed001Discriminator(10, 0.0).modules())


def test_seed001_same_padding_matches_tf():
    # TF 'same', stride 2, kernel 5 on 28: pad 1 before, 2 after; a one-hot input shows the taps.
    conv = Seed001Discriminator(10).body[:2]
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 27, 27] = 1.0  # the last pixel is seen by the last output (rows 26..30 of the padded image)
    w = conv[1].weight
    out = conv(x) - conv[1].bias.view(1, -1, 1, 1)
    assert torch.allclose(out[0, :, 13, 13], w[:, 0, 2, 2], atol=1e-6)


def test_sgan_losses_match_hand_computed_values():
    # seed 001: sigmoid on the last logit for real/fake, softmax over all K+1 for the labels.
    logits = torch.tensor([[0.0, 0.0, 0.0], [math.log(2), 0.0, math.log(3)]])
    sig = torch.sigmoid(logits[:, -1])                     # p(fake) = 1/2, 3/4
    want_real = -(math.log(1 - 0.5) + math.log(1 - 0.75)) / 2
    want_fake = -(math.log(0.5) + math.log(0.75)) / 2
    assert sig.tolist() == pytest.approx([0.5, 0.75])
    assert real_fake_loss(logits, logits).item() == pytest.approx(want_real + want_fake, rel=1e-6)
    assert generator_loss(logits).item() == pytest.approx(want_real, rel=1e-6)
    y = torch.tensor([1, 0])
    want_sup = -(math.log(1 / 3) + math.log(2 / 6)) / 2    # softmax over all 3 logits
    assert supervised_loss(logits, y).item() == pytest.approx(want_sup, rel=1e-6)


def test_fixed_zero_logit_losses_match_hand_computed_values():
    # K = 2 logits, fake logit fixed at 0: D(x) = Z / (Z + 1).
    unl = torch.tensor([[0.0, 0.0]])               # Z = 2, D = 2/3
    fake = torch.tensor([[math.log(3), 0.0]])      # Z = 4, 1 - D = 1/5
    want = 0.5 * -math.log(2 / 3) + 0.5 * -math.log(1 / 5)
    assert unlabeled_loss(unl, fake).item() == pytest.approx(want, rel=1e-6)
    assert labeled_loss(fake, torch.tensor([0])).item() == pytest.approx(-math.log(3 / 4), rel=1e-6)
    # Large logits stay finite (log-sum-exp, softplus).
    big = torch.tensor([[400.0, -400.0]])
    assert math.isfinite(unlabeled_loss(big, big).item())


def test_feature_matching_loss_is_mean_squared_difference_of_means():
    f_fake = torch.tensor([[1.0, 2.0], [3.0, 4.0]])   # means (2, 3)
    f_real = torch.tensor([[0.0, 0.0], [2.0, 2.0]])   # means (1, 1)
    assert feature_matching_loss(f_fake, f_real).item() == pytest.approx((1 + 4) / 2)


def test_weight_norm_data_init_standardises_preactivations_on_its_batch():
    torch.manual_seed(0)
    x = torch.randn(256, 50) * 3 + 1
    layer = WNLinear(50, 20)
    before = layer(x)
    assert before.std(0).sub(1).abs().max() > 0.5  # not standardised by chance
    layer.data_init(x)
    with torch.no_grad():
        t = layer(x)
    assert t.mean(0).abs().max() < 1e-4
    assert t.std(0, unbiased=False).sub(1).abs().max() < 1e-4


def test_discriminator_data_init_standardises_every_layer():
    torch.manual_seed(0)
    d = FMDiscriminator(784, (64, 32, 16), 10).eval()  # eval: no noise, so the check is exact
    x = torch.rand(300, 784)
    d.data_init(x)
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(o)) for m in [*d.hidden, d.out]]
    with torch.no_grad():
        d(x)
    for h in hooks:
        h.remove()
    assert len(seen) == 4
    for t in seen:
        assert t.mean(0).abs().max() < 1e-3 and t.std(0, unbiased=False).sub(1).abs().max() < 1e-3


def test_bad_hparams_are_clear_errors():
    with pytest.raises(HParamError, match="ema_decay"):
        resolve_hparams(get("sgan-fm"), {"ema_decay": 1.0})
    with pytest.raises(HParamError, match="unknown hyperparameter 'ema_decay'"):
        resolve_hparams(get("sgan"), {"ema_decay": 0.5})


@pytest.fixture(scope="module")
def split(mnist_path, tmp_path_factory):
    path = tmp_path_factory.mktemp("gan") / "split.npz"
    make_split(mnist_path, path, "mnist10", 100, 0)
    return path


def run(method, split, mnist_path, out, hparams, pool_limit=2000):
    return train.run(method=method, task="mnist10", labels=100, seed=0, mnist=mnist_path, split=split, out=out,
                     hparams=hparams, device="cpu", pool_limit=pool_limit, log=lambda s: None)


@pytest.mark.parametrize("method,hparams", [("sgan", SGAN_SHORT), ("sgan-fm", FM_SHORT)])
def test_short_run_beats_chance_and_exports_the_generator(method, hparams, split, mnist_path, tmp_path):
    metrics = run(method, split, mnist_path, tmp_path / "run", hparams)
    assert metrics["results"]["test_accuracy"] > 0.3  # chance is 0.1
    payload = torch.load(tmp_path / "run" / "model.pt", weights_only=False)
    cls = get(method)
    g = cls.build_generator(payload["hparams"])
    g.load_state_dict(payload["modules"]["G"])  # the figure code rebuilds the generator this way
    imgs = figures_gan.generate(payload, 16)
    assert imgs.shape == (16, 28, 28) and imgs.min() >= 0 and imgs.max() <= 1 and imgs.std(0).mean() > 0
    figures_gan.fig_samples([tmp_path / "run" / "model.pt"], tmp_path / "samples.pdf")
    figures_gan.fig_curves([tmp_path / "run" / "history.csv"], tmp_path / "curves.pdf")
    for f in ("samples.pdf", "samples.png", "curves.pdf", "curves.png"):
        assert (tmp_path / f).stat().st_size > 1000


def test_sample_figure_rejects_a_checkpoint_without_generator():
    with pytest.raises(ValueError, match="has no generator"):
        figures_gan.generate({"method": "supervised", "hparams": {}, "modules": {}}, 4)


def test_nan_in_a_gan_stops_the_run_with_a_clear_error(split, mnist_path, tmp_path, monkeypatch):
    real_load = build.load_task

    def poisoned(*a, **k):
        data = real_load(*a, **k)
        data.x_pool[:] = float("nan")
        return data

    monkeypatch.setattr(build, "load_task", poisoned)
    with pytest.raises(train.DivergedError, match=r"sgan-fm: loss .* became nan in epoch 1"):
        run("sgan-fm", split, mnist_path, tmp_path / "run", {**FM_SHORT, "steps_per_epoch": 2}, pool_limit=200)
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.parametrize("over,epoch,what", [
    ({"collapse_std": 10.0, "collapse_patience": 1}, 1, "generator output std"),
    ({"collapse_std": 0.0, "collapse_d_loss": 100.0, "collapse_patience": 2}, 2, "discriminator real-vs-fake loss"),
])
def test_collapse_criterion_stops_the_run(over, epoch, what, split, mnist_path, tmp_path):
    hp = {**SGAN_SHORT, "epochs": 3, "steps_per_epoch": 2, **over}
    with pytest.raises(GANCollapseError, match=f"collapsed in epoch {epoch}: {what}"):
        run("sgan", split, mnist_path, tmp_path / "run", hp, pool_limit=200)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_collapse_exits_the_cli_with_an_error(split, mnist_path, tmp_path):
    import json
    hp = {**SGAN_SHORT, "steps_per_epoch": 2, "collapse_std": 10.0, "collapse_patience": 1}
    with pytest.raises(SystemExit, match="error: sgan: the GAN collapsed"):
        train_cli(["--method", "sgan", "--task", "mnist10", "--labels", "100", "--seed", "0",
                    "--mnist", str(mnist_path), "--split", str(split), "--out", str(tmp_path / "run"),
                    "--device", "cpu", "--pool-limit", "200", "--hparams", json.dumps(hp)])
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_ema_of_the_discriminator_is_what_gets_evaluated(split, mnist_path):
    from fewlabels.data import load_task
    torch.manual_seed(0)
    data = load_task(mnist_path, split, torch.device("cpu"), 200)
    cls = get("sgan-fm")
    m = cls(resolve_hparams(cls, {"ema_decay": 0.5}), data, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert m.classifier() is m.D_ema
    before = m.D_ema.out.v.detach().clone()
    m.train_step()
    # After one step at decay 0.5 the average sits halfway between its old value and D's new one.
    assert torch.allclose(m.D_ema.out.v, 0.5 * before + 0.5 * m.D.out.v, atol=1e-6)
    off = cls(resolve_hparams(cls, {"ema_decay": 0.0}), data, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert off.classifier() is off.D and off.D_ema is None


def test_ema_starts_at_zero_as_published_and_leaves_frozen_scales(split, mnist_path):
    # improved-gan: disc_param_avg = 0.*p for the trainable parameters only, updated a + 1e-4 (p - a)
    # with no bias correction; the hidden layers' frozen weight-norm scales are not averaged.
    from fewlabels.data import load_task
    data = load_task(mnist_path, split, torch.device("cpu"), 200)
    cls = get("sgan-fm")
    m = cls(resolve_hparams(cls, {}), data, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert m.hp["ema_start"] == "zero"
    frozen = [(pe, p) for pe, p in zip(m.D_ema.parameters(), m.D.parameters()) if not p.requires_grad]
    trained = [pe for pe in m.D_ema.parameters() if pe.requires_grad]
    assert frozen and trained
    assert all(torch.count_nonzero(pe) == 0 for pe in trained)
    assert all(torch.equal(pe, p) for pe, p in frozen)
    m.train_step()
    # one step from zero: the average is 1e-4 of D's new weights, nothing of its initial ones
    assert torch.allclose(m.D_ema.out.v, 1e-4 * m.D.out.v, atol=1e-9)
    assert all(torch.equal(pe, p) for pe, p in frozen)
    init = cls(resolve_hparams(cls, {"ema_start": "init"}), data, torch.device("cpu"),
               torch.Generator().manual_seed(0))
    assert all(torch.equal(pe, p) for pe, p in zip(init.D_ema.parameters(), init.D.parameters()))
    with pytest.raises(HParamError, match="ema_start"):
        resolve_hparams(cls, {"ema_start": "ones"})
