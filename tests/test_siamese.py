"""Siamese auxiliary learning (seed 000): the pair sampler, the frozen tower, metrics of the pair stage, a short run."""

from __future__ import annotations

import pytest
import torch

from fewlabels import aggregate, figures_transfer, train
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

def test_pairs_are_balanced_and_their_targets_are_right():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(10, (3000,), generator=g)
    a, b, same = PairSampler(y, 10)(4000, g)
    assert same.sum() == 2000                                  # exactly balanced
    assert torch.equal((y[a] == y[b]).float(), same)           # targets match the labels
    assert not torch.equal(a[:2000], b[:2000])                 # "same" pairs are not one image twice
    # Different pairs cover every other class, roughly evenly.
    diff = (y[b[2000:]] - y[a[2000:]]) % 10
    assert set(diff.tolist()) == set(range(1, 10))
    assert torch.bincount(diff, minlength=10)[1:].min() > 150  # ~222 each
    # Either side draws from every class.
    assert set(y[b].tolist()) == set(range(10))


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
    assert run["results"]["test_accuracy"] > 0.5                                      # chance: 0.1
    with pytest.raises(ValueError, match="siamese-pairs"):
        figures_transfer.embed_test(tmp_path / "s" / "model.pt", mnist_path)
