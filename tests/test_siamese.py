"""Siamese auxiliary learning (seed 000): the pair sampler, the frozen tower, metrics of the pair stage, a short run."""

from __future__ import annotations

import pytest
import torch

from fewlabels.report import aggregate
from fewlabels.report.figures import transfer as figures_transfer
from fewlabels.training import trainer as train
from fewlabels.data import TaskData, make_split
from fewlabels.methods.base import HParamError, resolve_hparams
from fewlabels.methods.siamese import PairSampler, Siamese, SiamesePairs, SiameseScratch

CPU = torch.device("cpu")
TINY = {"hidden": [32, 32, 32], "batch_size": 16}


def fake_data(n_classes=10, d=784):
    g = torch.Generator().manual_seed(0)
    x = lambda m: torch.rand(m, d, generator=g)  # noqa: E731
    y = lambda m: torch.arange(m) % n_classes      # noqa: E731  every class present
    return TaskData(x_lab=x(40), y_lab=y(40), x_pool=x(100), y_pool=y(100), x_val=x(20), y_val=y(20),
                    x_test=x(20), y_test=y(20), n_classes=n_classes, split_sha256="0")


# ---------------------------------------------------------------------------- pairs

@pytest.mark.parametrize("draw", ["uniform", "by_class"])
def test_pairs_are_balanced_and_their_targets_are_right(draw):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(10, (3000,), generator=g)
    a, b, same = PairSampler(y, 10, draw)(4000, g)
    assert same.sum() == 2000                                  # exactly balanced
    assert torch.equal((y[a] == y[b]).float(), same)           # targets match the labels
    assert not torch.equal(a[:2000], b[:2000])                 # "same" pairs are not one image twice
    # Different pairs cover every other class, roughly evenly.
    diff = (y[b[2000:]] - y[a[2000:]]) % 10
    assert set(diff.tolist()) == set(range(1, 10))
    assert torch.bincount(diff, minlength=10)[1:].min() > 150  # ~222 each
    # Either side draws from every class.
    assert set(y[b].tolist()) == set(range(10))


def test_uniform_pairs_are_random_pairs_kept_by_their_labels():
    """Seed 000's aux_mini_batch and Geron's generate_batch keep uniform random pairs whose labels match
    (or differ): a same-class pair's class has probability ~ n_c (n_c - 1), a different pair's classes
    ~ n_a n_b; never one image twice. The by-class draw gives every class of a same pair ~ n_c."""
    g = torch.Generator().manual_seed(1)
    y = torch.cat([torch.zeros(900, dtype=torch.long), torch.arange(100) % 9 + 1])  # class 0: 90 %
    a, b, same = PairSampler(y, 10, "uniform")(20000, g)
    assert not (a[:10000] == b[:10000]).any()
    share0 = float((y[a[:10000]] == 0).float().mean())
    assert share0 > 0.98                      # 900*899 / (900*899 + 9*100*99/9... ) = 0.99
    diff0 = float(((y[a[10000:]] == 0) | (y[b[10000:]] == 0)).float().mean())
    assert diff0 > 0.95                       # a different pair nearly always holds a zero
    a, b, same = PairSampler(y, 10, "by_class")(20000, g)
    assert 0.85 < float((y[a[:10000]] == 0).float().mean()) < 0.95   # ~ n_0 / N = 0.9
    with pytest.raises(ValueError, match="pair_draw"):
        PairSampler(y, 10, "nope")


def test_pair_sampler_refuses_odd_batches_and_missing_classes():
    y = torch.arange(20) % 10
    with pytest.raises(ValueError, match="even"):
        PairSampler(y, 10)(7, torch.Generator())
    with pytest.raises(ValueError, match="every class"):
        PairSampler(y % 9, 10)


# ---------------------------------------------------------------------------- stage 2

def pair_payload():
    torch.manual_seed(0)
    hp = resolve_hparams(SiamesePairs, TINY)
    m = SiamesePairs(hp, fake_data(), CPU, torch.Generator().manual_seed(0))
    for _ in range(5):
        m.train_step()
    return m.payload()


@pytest.mark.parametrize("freeze_tower", [True, False])
def test_frozen_tower_stays_bit_identical_and_fine_tuning_moves_it(freeze_tower):
    payload = pair_payload()
    hp = resolve_hparams(Siamese, {"batch_size": 16, "freeze_tower": freeze_tower})
    m = Siamese(hp, fake_data(), CPU, torch.Generator().manual_seed(1), payload)
    tower = {k: v.clone() for k, v in m.net.tower.state_dict().items()}
    assert all(torch.equal(tower[k], v) for k, v in payload["tower"].items())
    head = {k: v.clone() for k, v in m.net.head.state_dict().items()}
    for _ in range(10):
        m.train_step()
    same = {k: torch.equal(v, m.net.tower.state_dict()[k]) for k, v in tower.items()}
    assert all(same.values()) if freeze_tower else not any(same[k] for k in same if k.endswith("weight"))
    assert not any(torch.equal(v, m.net.head.state_dict()[k]) for k, v in head.items())


def test_siamese_needs_the_pair_model():
    hp = resolve_hparams(Siamese, {})
    with pytest.raises(HParamError, match="siamese-pairs"):
        Siamese(hp, fake_data(), CPU, torch.Generator(), None)
    scratch = SiameseScratch(resolve_hparams(SiameseScratch, {}), fake_data(), CPU, torch.Generator())
    assert [b[0].out_features for b in scratch.net.tower.blocks] == [100] * 5  # the seed's tower


# ---------------------------------------------------------------------------- real run

def test_smoke_run_beats_chance_and_pair_metrics_reach_the_aggregate(tmp_path, mnist_path):
    for labels in (None, 100):
        make_split(mnist_path, tmp_path / f"n{labels}.npz", "mnist10", labels, seed=0)
    common = dict(task="mnist10", seed=0, mnist=mnist_path, device="cpu", log=lambda s: None)
    pairs = train.run(method="siamese-pairs", labels=None, split=tmp_path / "nNone.npz", out=tmp_path / "sp",
                      # no dropout: with the seed's 0.5 on every layer, 100 steps stay at chance
                      hparams={"epochs": 1, "steps_per_epoch": 100, "eval_pairs": 2000,
                               "dropout": 0.0, "input_dropout": 0.0}, **common)
    assert pairs["results"]["pair_accuracy"] > 0.7                                     # chance: 0.5
    row = aggregate.collect([tmp_path / "sp" / "metrics.json"]).iloc[0]
    assert (row["stage"], row["labels"], row["method"]) == ("pretrain", "all", "siamese-pairs")
    assert row["pair_accuracy"] == pairs["results"]["pair_accuracy"]
    # The embedding figure reads that model without training anything.
    fig = tmp_path / "fig" / "embedding.pdf"
    figures_transfer.fig_siamese_embedding(tmp_path / "sp" / "model.pt", mnist_path, fig)
    assert fig.stat().st_size > 0 and fig.with_suffix(".png").stat().st_size > 0
    run = train.run(method="siamese", labels=100, split=tmp_path / "n100.npz", out=tmp_path / "s",
                    hparams={"epochs": 2, "steps_per_epoch": 20, "dropout": 0.0, "input_dropout": 0.0},
                    pretrained=tmp_path / "sp" / "model.pt",
                    pool_limit=500, **common)
    assert run["results"]["test_accuracy"] > 0.4                                      # chance: 0.1
    with pytest.raises(ValueError, match="siamese-pairs"):
        figures_transfer.embed_test(tmp_path / "s" / "model.pt", mnist_path)


# ---------------------------------------------------------------------------- Geron's exercise 10

GERON = {"batch_norm": False, "dropout": 0.0, "input_dropout": 0.0, "dense_bias": True, "init": "variance_scaling",
         "head_init": "variance_scaling", "optimizer": "nesterov", "lr": 0.01, "momentum": 0.95}


def test_geron_towers_dnn_a_and_b_without_normalisation_and_nesterov():
    """shared_tower false: DNN A and DNN B with their own weights; the second stage reuses DNN A. No batch
    norm, no dropout, biases; TF's MomentumOptimizer(use_nesterov=True) update, checked by hand."""
    torch.manual_seed(0)
    hp = resolve_hparams(SiamesePairs, {**GERON, "hidden": [32, 32], "batch_size": 16, "shared_tower": False})
    m = SiamesePairs(hp, fake_data(), CPU, torch.Generator().manual_seed(0))
    assert m.net.tower_b is not None and m.net.tower_b is not m.net.tower
    assert not torch.equal(m.net.tower.blocks[0][0].weight, m.net.tower_b.blocks[0][0].weight)
    assert not any(isinstance(x, torch.nn.modules.batchnorm._BatchNorm) for x in m.net.modules())
    assert all(b[0].bias is not None for b in m.net.tower.blocks)
    assert isinstance(m.opt, torch.optim.SGD) and m.opt.param_groups[0]["nesterov"]
    w = m.net.head[-1].weight
    w0, acc = w.detach().clone(), torch.zeros_like(w)
    for _ in range(3):  # accum = m accum + g; w -= lr (g + m accum)
        before = w.detach().clone()
        m.train_step()
        g = w.grad.detach()
        acc = 0.95 * acc + g
        torch.testing.assert_close(w.detach(), before - 0.01 * (g + 0.95 * acc))
    assert not torch.equal(w0, w.detach())
    payload = m.payload()
    assert all(torch.equal(payload["tower"][k], v) for k, v in m.net.tower.state_dict().items())
    s2 = Siamese(resolve_hparams(Siamese, {**{k: v for k, v in GERON.items() if k not in ("batch_norm", "dense_bias")},
                                           "batch_size": 16}),
                 fake_data(), CPU, torch.Generator().manual_seed(1), payload)
    assert not any(isinstance(x, torch.nn.modules.batchnorm._BatchNorm) for x in s2.net.modules())
    assert all(torch.equal(s2.net.tower.state_dict()[k], v) for k, v in payload["tower"].items())


def test_geron_init_is_tf_cores_variance_scaling():
    """Geron's he_init is tf.variance_scaling_initializer(): scale 1 (variance 1 / fan_in), not contrib's
    factor 2 of seeds 000 and 002 (variance 2 / fan_in); both truncated at 2 std."""
    from fewlabels.nets import ELUTower
    torch.manual_seed(0)
    core = ELUTower(2000, [2000], init="variance_scaling").blocks[0][0].weight
    contrib = ELUTower(2000, [2000]).blocks[0][0].weight
    assert abs(float(core.detach().var()) * 2000 - 1.0) < 0.02
    assert abs(float(contrib.detach().var()) * 2000 - 2.0) < 0.04
    assert float(core.detach().abs().max()) <= 2 * (1 / 2000) ** 0.5 / 0.87962566103423978 + 1e-6


def test_bad_siamese_keys_are_errors():
    for key, bad in (("optimizer", "sgd"), ("init", "xavier"), ("pair_draw", "any")):
        with pytest.raises(HParamError, match=key):
            resolve_hparams(SiamesePairs, {key: bad})
