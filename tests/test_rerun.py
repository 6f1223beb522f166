"""Re-running archived runs and comparing them with the archive (issue 11, part 2)."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from fewlabels import data as D, rerun
from fewlabels.report import aggregate
from fewlabels.training.trainer import run

CFG = {"preset": "tiny", "seeds": [0, 1], "data": {"source": "pypi", "pool_limit": 300},
       "grid": [{"task": "mnist10", "labels": [20], "methods": ["supervised"]}],
       "methods": {"supervised": {"epochs": 1, "steps_per_epoch": 3, "hidden": [16]}}}


@pytest.fixture
def tiny_archive(tmp_path, mnist_path):
    """A fabricated archive: two tiny supervised runs made here, their metrics.csv and config."""
    import torch
    torch.set_num_threads(1)
    paths = []
    for seed in CFG["seeds"]:
        split = tmp_path / f"results/splits/mnist10/n20/seed{seed}.npz"
        D.make_split(mnist_path, split, "mnist10", 20, seed)
        out = tmp_path / f"results/runs/mnist10/supervised/n20/seed{seed}"
        run(method="supervised", task="mnist10", labels=20, seed=seed, mnist=mnist_path, split=split, out=out,
            hparams=CFG["methods"]["supervised"], device="cpu", pool_limit=300, log=lambda _: None)
        paths.append(out / "metrics.json")
    arc = tmp_path / "archive"
    arc.mkdir()
    aggregate.collect(paths).to_csv(arc / "metrics.csv", index=False)
    (arc / "config.yaml").write_text(yaml.safe_dump({**CFG, "archive": True}))
    return arc


def test_rerun_on_the_same_machine_is_identical_and_within_spread(tiny_archive, mnist_path, tmp_path):
    res = rerun.compare(tiny_archive, 2, None, mnist_path, workdir=tmp_path, log=lambda _: None)
    assert sorted(res["run"]) == ["mnist10/supervised/20/0", "mnist10/supervised/20/1"]
    assert res["identical"].all() and res["split_same"].all() and (res["diff_points"] == 0).all()
    assert res["within_2sd"].all() and (res["n_seeds"] == 2).all()
    assert "2 of 2 run(s) identical" in rerun.summary(res)


def test_rerun_reports_a_run_that_differs_and_lies_outside_the_spread(tiny_archive, mnist_path, tmp_path):
    df = pd.read_csv(tiny_archive / "metrics.csv")
    # make the archive claim seed 0 scored far from what this code gives, with a tiny spread over seeds
    acc = df.loc[df["seed"] == 1, "test_accuracy"].iloc[0]
    df.loc[df["seed"] == 0, "test_accuracy"] = acc + 0.300
    df.loc[df["seed"] == 1, "test_accuracy"] = acc + 0.301
    df.to_csv(tiny_archive / "metrics.csv", index=False)
    res = rerun.compare(tiny_archive, 2, ["mnist10/supervised/20/1"], mnist_path, workdir=tmp_path, log=lambda _: None)
    [row] = res.to_dict("records")
    assert row["run"] == "mnist10/supervised/20/1" and not row["identical"]
    assert row["diff_points"] == pytest.approx(-30.1) and not row["within_2sd"] and row["split_same"]
    text = rerun.summary(res)
    assert "0 of 1 run(s) identical" in text and "0 of 1 within" in text


def test_unknown_run_is_named(tiny_archive, mnist_path):
    with pytest.raises(SystemExit, match="mnist10/aae/20/0"):
        rerun.compare(tiny_archive, 1, ["mnist10/aae/20/0"], mnist_path, log=lambda _: None)


def test_a_full_label_run_is_re_run(tmp_path, mnist_path):
    """A run with every pool label (budget "all", e.g. seed 003's classifiers) re-runs from its archive."""
    import torch
    torch.set_num_threads(1)
    cfg = {**CFG, "seeds": [0], "grid": [{"task": "mnist10", "labels": ["all"], "methods": ["linear"]}],
           "methods": {"linear": {"epochs": 1, "steps_per_epoch": 3}}}
    split = tmp_path / "nall.npz"
    D.make_split(mnist_path, split, "mnist10", None, 0)
    out = tmp_path / "runs/linear"
    run(method="linear", task="mnist10", labels=None, seed=0, mnist=mnist_path, split=split, out=out,
        hparams=cfg["methods"]["linear"], device="cpu", pool_limit=300, log=lambda _: None)
    arc = tmp_path / "archive"
    arc.mkdir()
    aggregate.collect([out / "metrics.json"]).to_csv(arc / "metrics.csv", index=False)
    (arc / "config.yaml").write_text(yaml.safe_dump({**cfg, "archive": True}))
    res = rerun.compare(arc, 1, ["mnist10/linear/all/0"], mnist_path, workdir=tmp_path, log=lambda _: None)
    assert list(res["run"]) == ["mnist10/linear/all/0"] and res["identical"].all() and res["split_same"].all()
