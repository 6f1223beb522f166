"""Transfer 0-4 -> 5-9 (seed 002): label shifting, frozen layers, stage 1 once per seed, a short real run."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from conftest import snakemake
from fewlabels.training import trainer as train
from fewlabels.data import TEST_CLASS_COUNTS, TaskData, load_mnist, load_task, make_split
from fewlabels.methods.base import HParamError, resolve_hparams
from fewlabels.methods.transfer import Scratch, Transfer, TransferSource

CPU = torch.device("cpu")
TINY = {"hidden": [32, 16, 16, 16], "batch_size": 16}


def fake_data(n_classes=5, d=784):
    g = torch.Generator().manual_seed(0)
    x = lambda m: torch.rand(m, d, generator=g)  # noqa: E731
    y = lambda m: torch.randint(n_classes, (m,), generator=g)  # noqa: E731
    return TaskData(x_lab=x(40), y_lab=y(40), x_pool=x(40), y_pool=y(40), x_val=x(10), y_val=y(10),
                    x_test=x(10), y_test=y(10), n_classes=n_classes, split_sha256="0")


def source_payload():
    torch.manual_seed(0)
    hp = resolve_hparams(TransferSource, TINY)
    src = TransferSource(hp, fake_data(), CPU, torch.Generator().manual_seed(0))
    for _ in range(5):
        src.train_step()
    return src.payload()


def make_transfer(payload, **over):
    hp = resolve_hparams(Transfer, {"batch_size": 16, **over})
    return Transfer(hp, fake_data(), CPU, torch.Generator().manual_seed(1), payload)


# ---------------------------------------------------------------------------- labels

def test_digits59_labels_are_shifted_to_0_4(tmp_path, mnist_path):
    split = tmp_path / "s.npz"
    make_split(mnist_path, split, "digits59", 50, seed=3)
    d = load_task(mnist_path, split, CPU)
    arrays = load_mnist(mnist_path)
    with np.load(split) as z:
        lab = z["labeled"]
    original = arrays["y_train"][lab]
    assert set(original.tolist()) == {5, 6, 7, 8, 9}
    assert torch.equal(d.y_lab, torch.from_numpy(original - 5))
    assert torch.bincount(d.y_lab).tolist() == [10] * 5
    assert d.n_classes == 5 and int(d.y_test.min()) == 0 and int(d.y_test.max()) == 4
    # Only 5-9 test images, each with its digit minus 5.
    assert torch.bincount(d.y_test).tolist() == list(TEST_CLASS_COUNTS[5:])
    assert int(d.y_pool.max()) == 4 and int(d.y_val.max()) == 4


# ---------------------------------------------------------------------------- stage 2

@pytest.mark.parametrize("restore", [1, 2])
def test_only_the_restored_layers_come_from_the_source_and_stay_bit_identical(restore):
    """Seed 002 restores scope 'hidden[1]' only (002:152-159): the layers above start fresh."""
    payload = source_payload()
    m = make_transfer(payload, restore_layers=restore)
    tower = m.net.tower
    for k, v in payload["tower"].items():
        if int(k.split(".")[1]) < restore:
            assert torch.equal(tower.state_dict()[k], v), k           # restored whole, BN included
        elif k.endswith("0.weight"):
            assert not torch.equal(tower.state_dict()[k], v), k       # fresh dense layers
    before = {k: v.clone() for k, v in m.net.state_dict().items()}  # parameters and batch-norm statistics
    for _ in range(10):
        m.train_step()
    after = m.net.state_dict()
    for k in before:
        block = int(k.split(".")[2]) if k.startswith("tower.blocks.") else None
        if block is not None and block < restore:
            assert torch.equal(after[k], before[k]), f"frozen {k} changed"
        elif k.endswith(("weight", "bias")):
            assert not torch.equal(after[k], before[k]), f"trainable {k} did not change"
    # The frozen layers' batch norm stays in inference mode even after model.train().
    m.net.train()
    assert not tower.blocks[0][1].training and tower.blocks[restore][1].training


def test_transfer_needs_the_source_model_and_a_sane_restore():
    with pytest.raises(HParamError, match="transfer-source"):
        make_transfer(None)
    with pytest.raises(HParamError, match="only 4 hidden layers"):
        make_transfer(source_payload(), restore_layers=5)
    with pytest.raises(HParamError, match="restore_layers"):
        resolve_hparams(Transfer, {"restore_layers": -1})
    with pytest.raises(HParamError, match="unknown hyperparameter 'hidden'"):
        resolve_hparams(Transfer, {"hidden": [10]})  # the architecture is the source model's


def test_seed002_defaults():
    hp = resolve_hparams(Transfer, {})
    assert (hp["lr"], hp["batch_size"], hp["dropout"], hp["input_dropout"], hp["epochs"]) == (0.01, 100, 0.5, 0.5, 100)
    assert hp["restore_layers"] == 1 and resolve_hparams(TransferSource, {})["epochs"] == 25
    m = Scratch(resolve_hparams(Scratch, {}), fake_data(), CPU, torch.Generator().manual_seed(0))
    bn = m.net.tower.blocks[0][1]
    assert (bn.momentum, bn.eps) == (0.1, 1e-3)                 # TF momentum 0.9 (002:35)
    assert isinstance(m.net.tower.drop_in, torch.nn.Dropout) and m.net.tower.drop_in.p == 0.5
    # He init as tf.contrib's variance_scaling_initializer(): truncated normal, std sqrt(1.3 * 2 / fan_in)
    w = m.net.tower.blocks[0][0].weight
    std = (2.6 / 784) ** 0.5
    assert w.abs().max() <= 2 * std and abs(w.std().item() / (std * 0.8796) - 1) < 0.02


def test_epoch_batches_are_shuffled_passes_like_next_batch():
    from fewlabels.methods.transfer import EpochBatches
    g = torch.Generator().manual_seed(0)
    eb = EpochBatches(10)
    first = torch.cat([eb(4, g), eb(4, g)])
    third = eb(4, g)                        # 2 left in this pass + 2 from a new permutation
    assert sorted(first.tolist() + third[:2].tolist()) == list(range(10))
    assert eb(30, g).shape == (30,)         # a batch larger than the data cycles through passes


def test_scratch_is_the_same_network_with_every_layer_learning():
    hp = resolve_hparams(Scratch, TINY)
    m = Scratch(hp, fake_data(), CPU, torch.Generator().manual_seed(0))
    assert m.net.tower.frozen == 0
    assert all(p.requires_grad for p in m.net.parameters())
    assert [b[0].out_features for b in m.net.tower.blocks] == TINY["hidden"]


# ---------------------------------------------------------------------------- workflow

def test_stage_one_runs_once_per_seed_whatever_the_budgets(sandbox):
    cfg = sandbox / "many.yaml"
    cfg.write_text("seeds: [0, 1]\n"
                   "grid:\n  - {task: digits59, labels: [50, 100, 500, 1000], methods: [transfer, scratch]}\n")
    # Target the aggregate: every run and first stage, without figures that need other methods.
    out = snakemake(sandbox, "-n", "--configfile", "presets/smoke.yaml", str(cfg), "--",
                    "results/metrics.csv").stdout
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.M))
    assert int(counts["pretrain"]) == 2              # transfer-source, seeds 0 and 1
    assert int(counts["train"]) == 4 * 2 * 2         # 4 budgets x 2 methods x 2 seeds
    assert "results/pretrain/transfer-source/seed1/model.pt" in out
    assert "siamese-pairs" not in out                # no siamese run asked for


# ---------------------------------------------------------------------------- real run

def test_smoke_run_beats_chance_and_transfer_uses_the_source(tmp_path, mnist_path):
    for task, labels in (("digits04", None), ("digits59", 50)):
        make_split(mnist_path, tmp_path / f"{task}.npz", task, labels, seed=0)
    common = dict(seed=0, mnist=mnist_path, device="cpu", pool_limit=500, log=lambda s: None)
    src = train.run(method="transfer-source", task="digits04", labels=None, split=tmp_path / "digits04.npz",
                    out=tmp_path / "src", hparams={"epochs": 1, "steps_per_epoch": 100}, **common)
    assert src["run"]["stage"] == "pretrain" and src["results"]["test_accuracy"] > 0.8  # chance: 0.2
    assert src["data"]["n_test"] == sum(TEST_CLASS_COUNTS[:5])
    tr = train.run(method="transfer", task="digits59", labels=50, split=tmp_path / "digits59.npz",
                   out=tmp_path / "tr", hparams={"epochs": 2, "steps_per_epoch": 20},
                   pretrained=tmp_path / "src" / "model.pt", **common)
    assert tr["results"]["test_accuracy"] > 0.4                                        # chance: 0.2
    assert tr["data"]["n_test"] == sum(TEST_CLASS_COUNTS[5:])
    assert tr["data"]["pretrained_sha256"] is not None
