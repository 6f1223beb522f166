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
