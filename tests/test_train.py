"""The shared trainer with the supervised baseline: shapes, determinism, failure modes, files."""

from __future__ import annotations

import json

import pytest
import torch

from fewlabels import data as D
from fewlabels.methods import get
from fewlabels.methods.base import HParamError, resolve_hparams
from fewlabels.methods.supervised import Supervised
from fewlabels.nets import MLPClassifier
from fewlabels.training.trainer import DivergedError, run

TINY = {"epochs": 2, "steps_per_epoch": 15, "batch_size": 50, "hidden": [128, 64], "dropout": 0.2, "init_std": 0.05}


@pytest.fixture(scope="module")
def split(tmp_path_factory, mnist_path):
    path = tmp_path_factory.mktemp("split") / "s.npz"
    D.make_split(mnist_path, path, "mnist10", 100, seed=0)
    return path


def train(tmp_path, mnist_path, split, name="run", seed=0, **kw):
    kw.setdefault("hparams", TINY)
    return run(method="supervised", task="mnist10", labels=100, seed=seed, mnist=mnist_path, split=split,
               out=tmp_path / name, pool_limit=500, log=lambda s: None, **kw)


def test_mlp_shapes_and_eval_mode_is_deterministic():
    net = MLPClassifier(784, [1000, 1000], 10, dropout=0.75)
    x = torch.rand(7, 784)
    assert net(x).shape == (7, 10)
    assert [m.out_features for m in net.modules() if isinstance(m, torch.nn.Linear)] == [1000, 1000, 10]
    net.eval()  # dropout off at test time (the seed kept it on)
    assert torch.equal(net(x), net(x))
    net.train()
    assert not torch.equal(net(x), net(x))


def test_same_seed_gives_identical_metrics_and_another_seed_does_not(tmp_path, mnist_path, split):
    a = train(tmp_path, mnist_path, split, "a")
    b = train(tmp_path, mnist_path, split, "b")
    c = train(tmp_path, mnist_path, split, "c", seed=1)  # same labeled images, another initialisation

    def history(name):  # every column but the last (the timing)
        return [line.rsplit(",", 1)[0] for line in (tmp_path / name / "history.csv").read_text().splitlines()]

    assert a["results"] == b["results"]
    assert history("a") == history("b")  # every loss and accuracy, bit for bit
    assert a["results"] != c["results"] and history("a") != history("c")


def test_metrics_file_describes_the_run(tmp_path, mnist_path, split):
    m = train(tmp_path, mnist_path, split)
    on_disk = json.loads((tmp_path / "run/metrics.json").read_text())
    assert on_disk == m
    assert m["run"] == {"method": "supervised", "base_method": "supervised", "task": "mnist10", "labels": 100,
                        "seed": 0, "stage": "train"}
    assert m["hparams"]["epochs"] == 2 and m["hparams"]["hidden"] == [128, 64]
    assert m["data"]["split_sha256"] == D.file_sha256(split) and m["data"]["n_test"] == 10000
    assert m["data"]["n_labeled"] == 100
    assert m["env"]["device"] == "cpu" and m["env"]["torch"] == torch.__version__
    assert m["timing"]["samples_per_s"] > 0 and m["timing"]["steps"] == 30
    r = m["results"]
    assert r["test_errors"] == round((1 - r["test_accuracy"]) * 10000)
    assert r["test_accuracy"] > 0.3  # 30 steps on 100 labels is far above chance (10 %)
    assert (tmp_path / "run/history.csv").read_text().count("\n") == 3  # header + 2 epochs
    saved = torch.load(tmp_path / "run/model.pt", weights_only=False)
    assert set(saved["modules"]) == {"net"} and saved["method"] == "supervised"


def test_dry_run_writes_nothing(tmp_path, mnist_path, split):
    assert train(tmp_path, mnist_path, split, dry_run=True) == {}
    assert not (tmp_path / "run").exists()


def test_nan_loss_stops_the_run_without_metrics(tmp_path, mnist_path, split, monkeypatch):
    real = Supervised.train_step
    calls = {"n": 0}

    def poisoned(self):
        calls["n"] += 1
        out = real(self)
        return {"ce": out["ce"] * float("nan")} if calls["n"] > 20 else out

    monkeypatch.setattr(Supervised, "train_step", poisoned)
    with pytest.raises(DivergedError, match=r"loss ce became nan in epoch 2"):
        train(tmp_path, mnist_path, split)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_hyperparameters_are_checked():
    assert resolve_hparams(get("supervised"), {"lr": 0.01})["lr"] == 0.01
    with pytest.raises(HParamError, match="unknown hyperparameter 'lrate'"):
        resolve_hparams(get("supervised"), {"lrate": 0.01})
    with pytest.raises(HParamError, match="'epochs' should be int"):
        resolve_hparams(get("supervised"), {"epochs": 1.5})
    with pytest.raises(HParamError, match="batch_size must be >= 1"):
        resolve_hparams(get("supervised"), {"batch_size": 0})
    with pytest.raises(KeyError, match="unknown method 'resnet'"):
        get("resnet")


def test_cli_reports_errors_without_a_traceback(tmp_path, mnist_path, split):
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "fewlabels.training", "--method", "supervised", "--task", "mnist10",
                           "--labels", "100", "--seed", "0", "--mnist", str(mnist_path), "--split", str(split),
                           "--out", str(tmp_path / "x"), "--hparams", '{"epoch": 3}'],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "unknown hyperparameter 'epoch'" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "x").exists()


def test_steps_per_epoch_must_be_a_positive_integer_or_null():
    for bad in (0, -3, "x", 2.5):
        with pytest.raises(HParamError, match="steps_per_epoch"):
            resolve_hparams(get("supervised"), {"steps_per_epoch": bad})
    assert resolve_hparams(get("supervised"), {"steps_per_epoch": None})["steps_per_epoch"] is None


def test_a_checkpoint_resumes_only_the_run_it_belongs_to(tmp_path, mnist_path, split, monkeypatch):
    ck = tmp_path / "ck.pt"
    real, calls = Supervised.train_step, {"n": 0}

    def dies_in_epoch_two(self):
        calls["n"] += 1
        if calls["n"] > TINY["steps_per_epoch"]:
            raise RuntimeError("killed")
        return real(self)

    monkeypatch.setattr(Supervised, "train_step", dies_in_epoch_two)
    with pytest.raises(RuntimeError, match="killed"):
        train(tmp_path, mnist_path, split, checkpoint=ck)
    assert ck.exists() and not (tmp_path / "run" / "metrics.json").exists()
    monkeypatch.setattr(Supervised, "train_step", real)
    logs = []
    # another unlabeled pool (pool_limit) changes the numbers: start afresh
    run(method="supervised", task="mnist10", labels=100, seed=0, mnist=mnist_path, split=split,
        out=tmp_path / "other", pool_limit=400, hparams=TINY, checkpoint=ck, log=logs.append)
    assert any("ignoring checkpoint" in s for s in logs) and not any("resuming" in s for s in logs)


class _DropoutAtTest(Supervised):
    """The baseline with one evaluation-only quirk, to test the trainer's eval_variants."""
    NAME = "supervised"
    DEFAULTS = {**Supervised.DEFAULTS, "keep_dropout": False}
    EVAL_QUIRKS = ("keep_dropout",)

    def eval_context(self):
        from fewlabels.methods.base import dropout_active
        import contextlib
        return dropout_active(self.net) if self.hp["keep_dropout"] else contextlib.nullcontext()


def test_eval_quirks_are_measured_on_the_same_model(tmp_path, mnist_path, split, monkeypatch):
    import fewlabels.training.trainer as T
    monkeypatch.setattr(T, "get_method", lambda name: _DropoutAtTest)
    m = train(tmp_path, mnist_path, split, hparams={**TINY, "dropout": 0.9})
    ev = m["results"]["eval_variants"]
    assert set(ev) == {"keep_dropout", "all_on", "all_off"}
    assert ev["keep_dropout"]["value"] is True
    # the run's own number is the quirk-off evaluation, repeated exactly by "all_off"
    assert ev["all_off"]["test_accuracy"] == m["results"]["test_accuracy"]
    # dropping 90 % of the units at test time costs accuracy on the same weights
    assert ev["all_on"]["test_accuracy"] < m["results"]["test_accuracy"] - 0.02
    assert m["hparams"]["keep_dropout"] is False  # the switch is restored after the re-evaluation


def test_named_variant_is_recorded(tmp_path, mnist_path, split):
    m = run(method="supervised", name="supervised-as-seed", task="mnist10", labels=100, seed=0,
            mnist=mnist_path, split=split, out=tmp_path / "v", pool_limit=500, log=lambda s: None,
            hparams={**TINY, "label_draw": "random"})
    assert m["run"]["method"] == "supervised-as-seed" and m["run"]["base_method"] == "supervised"
    assert m["data"]["n_labeled"] == 100


@pytest.fixture
def determinism_as_it_was():
    """The process's deterministic-algorithms setting, put back after the test whatever it does."""
    was = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    yield
    torch.use_deterministic_algorithms(was[0], warn_only=was[1])


def test_deterministic_algorithms_are_set_for_a_run_and_restored_after_it(tmp_path, mnist_path, split, monkeypatch,
                                                                          determinism_as_it_was):
    """A run on the CPU trains with torch.use_deterministic_algorithms on; its caller (a test session,
    a group's next run) gets back the setting it had, also when the run fails."""
    from fewlabels.training.group import run_group

    seen, killed = [], []
    real = Supervised.train_step

    def step(self):
        seen.append((torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()))
        if killed:
            raise RuntimeError("killed")
        return real(self)

    monkeypatch.setattr(Supervised, "train_step", step)
    hp = {**TINY, "epochs": 1, "steps_per_epoch": 2}
    torch.use_deterministic_algorithms(False)
    train(tmp_path, mnist_path, split, "a", hparams=hp)
    assert seen == [(True, False)] * 2
    assert not torch.are_deterministic_algorithms_enabled()

    spec = dict(method="supervised", task="mnist10", labels=100, mnist=mnist_path, split=split, hparams=hp,
                device="cpu", pool_limit=500)
    run_group([{**spec, "seed": s, "out": tmp_path / f"g{s}"} for s in (0, 1)], log=lambda s: None)
    assert seen[2:] == [(True, False)] * 4
    assert not torch.are_deterministic_algorithms_enabled()

    torch.use_deterministic_algorithms(True, warn_only=True)  # a caller's own setting
    killed.append(True)
    with pytest.raises(RuntimeError, match="killed"):
        train(tmp_path, mnist_path, split, "killed", hparams=hp)
    assert seen[-1] == (True, False)
    assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
