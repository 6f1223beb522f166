"""The semi-supervised adversarial autoencoder: phases, priors, losses, a short real run, failure, figures."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from fewlabels.training import trainer as train
from fewlabels.data import TaskData, make_split
from fewlabels.methods import aae as aae_mod
from fewlabels.methods.aae import AAE, discriminator_loss, sample_categorical, sample_gaussian
from fewlabels.methods.base import HParamError, resolve_hparams

TINY = {"hidden": [32, 32], "z_dim": 4, "batch_size": 16}


def fake_data(n_classes=10, n=64, d=784):
    g = torch.Generator().manual_seed(0)
    x = lambda m: torch.rand(m, d, generator=g)  # noqa: E731
    y = lambda m: torch.randint(n_classes, (m,), generator=g)  # noqa: E731
    return TaskData(x_lab=x(20), y_lab=y(20), x_pool=x(n), y_pool=y(n), x_val=x(10), y_val=y(10),
                    x_test=x(10), y_test=y(10), n_classes=n_classes, split_sha256="0")


def make_aae(**over):
    torch.manual_seed(0)
    hp = resolve_hparams(AAE, {**TINY, **over})
    return AAE(hp, fake_data(), torch.device("cpu"), torch.Generator().manual_seed(0))


def snapshot(m):
    return {name: {k: p.detach().clone() for k, p in mod.named_parameters()} for name, mod in m.modules().items()}


def changed(m, before):
    """Names of the networks with at least one parameter changed, and per-network changed tensors."""
    out = {}
    for name, mod in m.modules().items():
        out[name] = {k for k, p in mod.named_parameters() if not torch.equal(p, before[name][k])}
    return {k for k, v in out.items() if v}, out


# ---------------------------------------------------------------------------- phases

def test_reconstruction_phase_updates_encoder_and_decoder_only():
    m = make_aae()
    before = snapshot(m)
    m.phase_recon(m.batch(m.data.x_pool))
    nets, _ = changed(m, before)
    assert nets == {"enc", "dec"}


def test_discriminator_step_leaves_encoder_and_decoder_unchanged():
    m = make_aae()
    before = snapshot(m)
    m.phase_discriminators(m.batch(m.data.x_pool))
    nets, _ = changed(m, before)
    assert nets == {"d_cat", "d_gauss"}


def test_generator_phase_updates_the_encoder_only_both_heads():
    m = make_aae()
    _, _, y, z = m.phase_discriminators(m.batch(m.data.x_pool))
    before = snapshot(m)
    m.phase_generator(y, z)
    nets, per = changed(m, before)
    assert nets == {"enc"}
    assert {"y_head.weight", "z_head.weight", "trunk.0.weight"} <= per["enc"]


def test_classification_phase_updates_encoder_trunk_and_y_head_not_z_head():
    m = make_aae()
    before = snapshot(m)
    m.phase_ssl()
    nets, per = changed(m, before)
    assert nets == {"enc"}
    assert "y_head.weight" in per["enc"] and "trunk.0.weight" in per["enc"]
    assert not any(k.startswith("z_head") for k in per["enc"])


def test_train_step_returns_detached_scalar_losses_named_by_phase():
    losses = make_aae().train_step()
    assert set(losses) == {"recon", "d_cat", "d_gauss", "g_reg", "ssl"}
    assert all(v.dim() == 0 and not v.requires_grad and torch.isfinite(v) for v in losses.values())


# ---------------------------------------------------------------------------- priors and losses

def test_categorical_prior_is_uniform_one_hot():
    s = sample_categorical(20000, 10, torch.Generator().manual_seed(1), "cpu")
    assert s.shape == (20000, 10) and s.dtype == torch.float32
    assert torch.equal(s.sum(1), torch.ones(20000)) and set(s.unique().tolist()) == {0.0, 1.0}
    freq = s.mean(0)
    assert torch.all((freq - 0.1).abs() < 0.01), freq


def test_gaussian_prior_has_the_configured_std():
    s = sample_gaussian(20000, 6, 5.0, torch.Generator().manual_seed(2), "cpu")
    assert s.shape == (20000, 6)
    assert torch.all(s.mean(0).abs() < 0.15) and torch.all((s.std(0) - 5.0).abs() < 0.15)


def test_discriminator_loss_treats_prior_as_real_and_codes_as_fake():
    # The seed's pitfall: D_cat's fake target must be 0. A D that says "real" to prior samples and
    # "fake" to codes is right (loss ~ 0); the reverse is maximally wrong.
    big = torch.full((8,), 20.0)
    assert discriminator_loss(big, -big) < 1e-6
    assert discriminator_loss(-big, big) > 30


def test_bad_hparams_are_clear_errors():
    with pytest.raises(HParamError, match="optimizer"):
        resolve_hparams(AAE, {"optimizer": "rmsprop"})
    with pytest.raises(HParamError, match="z_std"):
        resolve_hparams(AAE, {"z_std": 0.0})
    with pytest.raises(HParamError, match="unknown hyperparameter"):
        resolve_hparams(AAE, {"lr": 1e-3})


def test_lr_decay_divides_every_learning_rate_by_ten():
    m = make_aae(lr_decay_epochs=[2])
    m.on_epoch_end(1)
    assert m.opt_ssl.param_groups[0]["lr"] == pytest.approx(1e-3)
    m.on_epoch_end(2)
    assert all(o.param_groups[0]["lr"] == pytest.approx(1e-4) for o in m.optimizers().values())


# ---------------------------------------------------------------------------- Makhzani et al.'s recipe

def recipe() -> dict:
    """presets/compare.yaml's aae-makhzani hyperparameters (the paper's optimiser, momenta, rates, noise,
    prior and reconstruction loss), without its schedule length."""
    import yaml
    from conftest import REPO
    hp = yaml.safe_load((REPO / "presets" / "compare.yaml").read_text())["variants"]["aae-makhzani"]["hparams"]
    return {k: v for k, v in hp.items() if k not in ("epochs", "steps_per_epoch")}


def test_the_recipe_is_the_papers_as_the_report_transcribes_it():
    hp = recipe()
    assert hp == {"optimizer": "sgd", "beta1": 0.9, "momentum_reg": 0.1, "lr_recon": 0.01, "lr_reg": 0.1,
                  "lr_ssl": 0.1, "lr_decay_epochs": [50, 1000], "input_noise": 0.3, "z_std": 1.0, "recon_loss": "sum"}


def test_each_phase_has_its_own_sgd_momentum_and_rate_over_its_own_networks():
    m = make_aae(**recipe())
    want = {"opt_recon": (0.9, 0.01, ("enc", "dec")), "opt_d_cat": (0.1, 0.1, ("d_cat",)),
            "opt_d_gauss": (0.1, 0.1, ("d_gauss",)), "opt_gen": (0.1, 0.1, ("enc",)), "opt_ssl": (0.9, 0.1, ("enc",))}
    for name, (momentum, lr, nets) in want.items():
        opt = getattr(m, name)
        assert isinstance(opt, torch.optim.SGD), name
        g = opt.param_groups[0]
        assert (g["momentum"], g["lr"]) == (momentum, lr), name
        assert {id(p) for p in g["params"]} == {id(p) for n in nets for p in getattr(m, n).parameters()}, name


def test_a_phase_steps_by_its_own_rate_first_sgd_step_is_minus_lr_times_gradient():
    """The first SGD step has no momentum yet: every parameter moves by -lr * its gradient. The classification
    phase with the recipe's noise: the gradient of the loss on the noisy labeled batch its generator drew."""
    m = make_aae(**recipe())
    gen_state = m.gen.get_state()
    before = {k: p.detach().clone() for k, p in m.enc.named_parameters()}
    m.phase_ssl()
    m2 = make_aae(**recipe())  # the same weights; replay the same draws by hand
    m2.gen.set_state(gen_state)
    idx = torch.randint(len(m2.data.x_lab), (TINY["batch_size"],), generator=m2.gen)
    x = m2.data.x_lab[idx] + 0.3 * torch.randn((TINY["batch_size"], 784), generator=m2.gen)
    loss = F.cross_entropy(m2.enc(x), m2.data.y_lab[idx])
    names, params = zip(*m2.enc.named_parameters())
    grads = dict(zip(names, torch.autograd.grad(loss, params, allow_unused=True)))  # z_head: no gradient
    for k, p in m.enc.named_parameters():
        want = before[k] if grads[k] is None else before[k] - 0.1 * grads[k]
        torch.testing.assert_close(p.detach(), want, rtol=1e-5, atol=1e-7)
    assert any(g is not None and g.abs().sum() > 0 for g in grads.values())


def test_input_noise_is_drawn_in_training_and_absent_at_evaluation():
    m = make_aae(**recipe())
    x = m.data.x_val
    state = m.gen.get_state()
    clf = m.classifier().eval()
    out1, out2 = clf(x), clf(x)
    assert torch.equal(out1, out2) and torch.equal(out1, m.enc(x))  # no noise: the same logits every time
    assert torch.equal(m.gen.get_state(), state)                     # and no draw from the run's generator
    noisy = m.noisy(x)
    assert not torch.equal(noisy, x) and abs(float((noisy - x).std()) - 0.3) < 0.02
    assert torch.equal(make_aae().noisy(x), x)                        # input_noise 0 (the default): untouched


def test_sum_reconstruction_loss_is_the_per_image_squared_distance():
    g = torch.Generator().manual_seed(3)
    a, b = torch.rand(5, 784, generator=g), torch.rand(5, 784, generator=g)
    dist = ((a - b) ** 2).sum(1).mean()
    torch.testing.assert_close(aae_mod.reconstruction_loss(a, b, "sum"), dist)
    torch.testing.assert_close(aae_mod.reconstruction_loss(a, b), dist / 784)


def test_recipe_hparams_are_checked():
    with pytest.raises(HParamError, match="momentum_reg"):
        resolve_hparams(AAE, {"momentum_reg": 0.1})  # Adam has no such momentum
    with pytest.raises(HParamError, match="input_noise"):
        resolve_hparams(AAE, {"input_noise": -0.1})
    with pytest.raises(HParamError, match="recon_loss"):
        resolve_hparams(AAE, {"recon_loss": "l1"})


# ---------------------------------------------------------------------------- real runs

# 100 steps of a narrower AAE on 2,000 pool images; a gentler adversary (lr_reg 1e-4) lets the
# classifier get going within so few steps (about 65 % on this CPU).
SHORT = {"epochs": 2, "steps_per_epoch": 50, "batch_size": 50, "hidden": [128, 128], "beta1": 0.5, "lr_reg": 1e-4}


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, mnist_path):
    d = tmp_path_factory.mktemp("aae")
    make_split(mnist_path, d / "split.npz", "mnist10", 100, 0)
    torch.set_num_threads(1)
    metrics = train.run(method="aae", task="mnist10", labels=100, seed=0, mnist=mnist_path, split=d / "split.npz",
                        out=d / "run", hparams=SHORT, device="cpu", pool_limit=2000, log=lambda s: None)
    return d, metrics


def test_short_run_beats_chance(short_run):
    _, metrics = short_run
    assert metrics["results"]["test_accuracy"] > 0.4, metrics["results"]  # chance is 0.1


def test_nan_stops_the_run_naming_phase_and_epoch(tmp_path, mnist_path, monkeypatch, short_run):
    calls = {"n": 0}
    real = aae_mod.classification_loss

    def poisoned(logits, y):  # finite for the first epoch, NaN from the 5th step of epoch 2
        calls["n"] += 1
        return real(logits, y) * (float("nan") if calls["n"] > 14 else 1.0)

    monkeypatch.setattr(aae_mod, "classification_loss", poisoned)
    d, _ = short_run
    with pytest.raises(train.DivergedError, match=r"ssl.* in epoch 2") as e:
        train.run(method="aae", task="mnist10", labels=100, seed=0, mnist=mnist_path, split=d / "split.npz",
                  out=tmp_path / "run", hparams={**SHORT, "steps_per_epoch": 10, "hidden": [16, 16]},
                  device="cpu", pool_limit=200, log=lambda s: None)
    assert "nan" in str(e.value)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_figures_from_the_runs_checkpoint(short_run, mnist_path, tmp_path):
    from fewlabels.report.figures.__main__ import main
    d, _ = short_run
    outs = {k: tmp_path / f"fig_aae_{k}.pdf" for k in ("latent", "style", "recon")}
    main(["aae", "--model", str(d / "run" / "model.pt"), "--mnist", str(mnist_path),
          *[a for k, p in outs.items() for a in (f"--{k}", str(p))]])
    for p in outs.values():
        assert p.read_bytes()[:5] == b"%PDF-"
        assert p.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_figure_code_rejects_another_methods_checkpoint(short_run, tmp_path):
    d, _ = short_run
    payload = torch.load(d / "run" / "model.pt", weights_only=False)
    assert json.loads(json.dumps(payload["hparams"]))["z_dim"] == 10
    with pytest.raises(ValueError, match="method 'aae'"):
        aae_mod.nets_from_export({**payload, "method": "supervised"})


def test_encoder_is_the_classifier_and_decoder_outputs_pixels():
    m = make_aae()
    x = m.data.x_val
    logits = m.classifier()(x)
    assert logits.shape == (len(x), 10)
    x_hat = m.reconstruct(x)
    assert x_hat.shape == x.shape and x_hat.min() >= 0 and x_hat.max() <= 1
    assert torch.allclose(F.softmax(logits, 1).sum(1), torch.ones(len(x)))
