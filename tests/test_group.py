"""Several runs in one process (``group.run_group``, ``--seed 0 1 2``): each run writes what it would
write alone; one after another it is the one-run path bit for bit, stacked (``fewlabels.methods.stacked``)
within float tolerance; a group that fails keeps its finished runs' final checkpoints."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
import torch

from fewlabels import data as D
from fewlabels.training.build import deterministic
from fewlabels.training.group import run_group, train_stacked
from fewlabels.training.trainer import Run, run

SEEDS = (0, 1, 2)
POOL = 200
# supervised: dropout (per-run masks) and batch norm in seed 004's MLP, shrunk
TINY = {"epochs": 2, "steps_per_epoch": 6, "batch_size": 32, "hidden": [64, 32], "dropout": 0.3, "init_std": 0.05}


@pytest.fixture(scope="module")
def splits(mnist10_splits):
    return mnist10_splits


def specs(root, splits, mnist_path, method="supervised", hp=TINY, seeds=SEEDS, checkpoint=True):
    return [dict(method=method, task="mnist10", labels=100, seed=s, mnist=mnist_path, split=splits[s],
                 out=root / f"seed{s}", hparams=hp, device="cpu", pool_limit=POOL,
                 checkpoint=root / "ck" / f"seed{s}.pt" if checkpoint else None) for s in seeds]


@pytest.fixture(scope="module")
def alone(tmp_path_factory, splits, mnist_path):
    """Each seed in its own ``run`` call (the one-run-per-process path)."""
    root = tmp_path_factory.mktemp("alone")
    for spec in specs(root, splits, mnist_path):
        run(**spec, log=lambda s: None)
    return root


def files(root, seed):
    d = root / f"seed{seed}"
    m = json.loads((d / "metrics.json").read_text())
    return m, pd.read_csv(d / "history.csv"), torch.load(d / "model.pt", weights_only=False)


def alone_and_stacked(sp, tmp_path, seeds=(0, 1), accuracy_tol=None):
    """``sp(root)``'s runs each alone, then all stacked in one group: the losses agree within 1e-4
    relative and the test accuracies within ``accuracy_tol`` (default two images). Returns each
    seed's ((metrics, history, model) alone, (...) stacked)."""
    for spec in sp(tmp_path / "alone"):
        run(**spec, log=lambda line: None)
    lines = []
    run_group(sp(tmp_path / "stacked"), stack="on", log=lines.append)
    assert any("stacked in one process" in line for line in lines)
    out = {}
    for s in seeds:
        (m1, h1, p1), (m2, h2, p2) = out[s] = files(tmp_path / "alone", s), files(tmp_path / "stacked", s)
        losses = [c for c in h1.columns if c.startswith("loss_")]
        assert losses
        pd.testing.assert_frame_equal(h2[losses], h1[losses], rtol=1e-4)
        tol = accuracy_tol if accuracy_tol is not None else 2 / m1["data"]["n_test"]
        assert abs(m2["results"]["test_accuracy"] - m1["results"]["test_accuracy"]) <= tol
    return out


def test_one_after_another_is_the_one_run_path_bit_for_bit(tmp_path, alone, splits, mnist_path):
    lines = []
    out = run_group(specs(tmp_path, splits, mnist_path), stack="off", log=lines.append)
    assert [m["run"]["seed"] for m in out] == list(SEEDS)
    assert any("one after another" in s for s in lines)
    for s in SEEDS:
        (m1, h1, p1), (m2, h2, p2) = files(alone, s), files(tmp_path, s)
        assert m2["results"] == m1["results"]
        assert m2["timing"]["group_runs"] == 3 and m1["timing"]["group_runs"] == 1
        pd.testing.assert_frame_equal(h2.drop(columns="train_s"), h1.drop(columns="train_s"))
        for name, weights in p1["modules"].items():
            for k, v in weights.items():
                assert torch.equal(p2["modules"][name][k], v), f"seed {s}: {name}.{k}"
        assert (tmp_path / "ck").exists() and not list((tmp_path / "ck").iterdir())  # deleted at the end


@pytest.mark.numerical
def test_stacked_equals_the_runs_alone_within_float_tolerance(tmp_path, alone, splits, mnist_path):
    lines = []
    run_group(specs(tmp_path, splits, mnist_path), stack="on", log=lines.append)
    assert any("stacked in one process" in s for s in lines)
    for s in SEEDS:
        (m1, h1, _), (m2, h2, _) = files(alone, s), files(tmp_path, s)
        # the same images, dropout masks and initial weights; sums in another order: losses agree
        # to ~1e-6, and the accuracies to the image (a prediction on a near-tie may flip)
        losses = [c for c in h1.columns if c.startswith("loss_")]
        assert losses
        pd.testing.assert_frame_equal(h2[losses], h1[losses], rtol=1e-4)
        for col in ("val_accuracy", "test_accuracy"):
            assert (h2[col] - h1[col]).abs().max() <= 2 / min(m1["data"]["n_val"], m1["data"]["n_test"])
        assert abs(m2["results"]["test_accuracy"] - m1["results"]["test_accuracy"]) <= 2 / m1["data"]["n_test"]


def test_stacked_group_resumes_from_its_checkpoints(tmp_path, splits, mnist_path):
    """Killed after epoch 1 (emulated: a 1-epoch group keeps its checkpoints when told to), the group
    continues from every run's checkpoint stacked, and ends where an uninterrupted stacked group ends."""
    whole = tmp_path / "whole"
    run_group(specs(whole, splits, mnist_path), stack="on", log=lambda s: None)
    part = tmp_path / "part"
    first = specs(part, splits, mnist_path)
    lines = []
    # epoch 1 of each run, as a killed job leaves it: its checkpoint written after the epoch
    with deterministic(torch.device("cpu")):  # as run_group trains
        runs = [Run(**spec, log=lines.append) for spec in first]
        for r in runs:
            r.resume()
        train_stacked(runs, lines.append, last_epoch=1)
    assert all((part / "ck" / f"seed{s}.pt").exists() for s in SEEDS)
    lines.clear()
    run_group(specs(part, splits, mnist_path), stack="on", log=lines.append)
    assert sum("resuming from" in s and "after epoch 1" in s for s in lines) == 3
    assert any("stacked in one process" in s for s in lines)
    for s in SEEDS:
        (m1, h1, _), (m2, h2, _) = files(whole, s), files(part, s)
        assert m2["results"] == m1["results"]
        pd.testing.assert_frame_equal(h2.drop(columns="train_s"), h1.drop(columns="train_s"))


def test_a_failed_group_keeps_its_finished_runs(tmp_path, splits, mnist_path):
    """One run of the group fails (here: its split is missing); the runs before it wrote their files
    and kept their final checkpoints, so the group run again finishes them without training."""
    bad = specs(tmp_path, splits, mnist_path, seeds=(0, 1))
    bad[1]["split"] = tmp_path / "truncated.npz"
    bad[1]["split"].write_bytes(splits[1].read_bytes()[:100])
    with pytest.raises(Exception):
        run_group(bad, stack="off", log=lambda s: None)
    assert (tmp_path / "seed0" / "metrics.json").exists()
    assert (tmp_path / "ck" / "seed0.pt").exists()  # kept: the group has not finished
    lines = []
    run_group(specs(tmp_path, splits, mnist_path, seeds=(0, 1)), stack="off", log=lines.append)
    assert any(f"after epoch {TINY['epochs']}" in s for s in lines)  # seed 0: nothing left to train
    assert sum(s.startswith("epoch ") for s in lines) == TINY["epochs"]  # only seed 1 trained
    assert not list((tmp_path / "ck").iterdir())


def test_a_group_with_damaged_checkpoints_starts_those_runs_again(tmp_path, splits, mnist_path, monkeypatch):
    """A group killed in its second run's epoch 3 of 4 leaves the first run's final checkpoint and the
    second's after epoch 2; one cut to its first 3,000 bytes, the other inconsistent (its history one
    epoch short). Run again, the group names each damaged file and why, sets it aside, trains those
    runs from scratch and ends with every run bit-identical to an uninterrupted group."""
    from fewlabels.methods.supervised import Supervised

    hp = {**TINY, "epochs": 4}
    run_group(specs(tmp_path / "whole", splits, mnist_path, hp=hp), stack="off", log=lambda s: None)
    real, calls = Supervised.train_step, {"n": 0}

    def killed_in_the_second_runs_third_epoch(self):
        calls["n"] += 1
        if calls["n"] > (hp["epochs"] + 2) * hp["steps_per_epoch"]:
            raise RuntimeError("killed")
        return real(self)

    monkeypatch.setattr(Supervised, "train_step", killed_in_the_second_runs_third_epoch)
    part = tmp_path / "part"
    with pytest.raises(RuntimeError, match="killed"):
        run_group(specs(part, splits, mnist_path, hp=hp), stack="off", log=lambda s: None)
    monkeypatch.setattr(Supervised, "train_step", real)
    ck = part / "ck"
    assert sorted(p.name for p in ck.iterdir()) == ["seed0.pt", "seed1.pt"]
    assert [torch.load(ck / f"seed{s}.pt", weights_only=False)["epoch"] for s in (0, 1)] == [4, 2]
    (ck / "seed1.pt").write_bytes((ck / "seed1.pt").read_bytes()[:3000])
    first = torch.load(ck / "seed0.pt", weights_only=False)
    first["history"] = first["history"][:-1]
    torch.save(first, ck / "seed0.pt")

    lines = []
    run_group(specs(part, splits, mnist_path, hp=hp), stack="off", log=lines.append)
    damaged = [s for s in lines if s.startswith("damaged checkpoint")]
    assert len(damaged) == 2
    assert damaged[0].startswith(f"damaged checkpoint {ck / 'seed0.pt'}: its history does not hold 4 epoch(s)")
    assert damaged[1].startswith(f"damaged checkpoint {ck / 'seed1.pt'}: it cannot be read")
    assert not any("resuming" in s for s in lines)
    assert sum(s.startswith("epoch ") for s in lines) == len(SEEDS) * hp["epochs"]  # all from scratch
    assert sorted(p.name.split(".damaged-")[0] for p in ck.iterdir()) == ["seed0.pt", "seed1.pt"]  # aside
    for s in SEEDS:
        (m1, h1, w1), (m2, h2, w2) = files(tmp_path / "whole", s), files(part, s)
        assert m2["results"] == m1["results"]
        pd.testing.assert_frame_equal(h2.drop(columns="train_s"), h1.drop(columns="train_s"))
        for k, t in w1["modules"]["net"].items():
            assert torch.equal(t, w2["modules"]["net"][k]), (s, k)


def test_stack_on_refuses_what_it_cannot_stack(tmp_path, splits, mnist_path):
    with pytest.raises(ValueError, match="cannot stack"):
        # every method stacks now; one run does not
        run_group(specs(tmp_path, splits, mnist_path, hp={"epochs": 1}, seeds=(0,)), stack="on")
    with pytest.raises(ValueError, match="stack must be"):
        run_group(specs(tmp_path, splits, mnist_path), stack="sometimes")
    assert not (tmp_path / "seed0").exists()


def test_cli_takes_one_value_per_seed(tmp_path, splits, mnist_path):
    cmd = [sys.executable, "-m", "fewlabels.training", "--method", "supervised", "--task", "mnist10", "--labels", "100",
           "--seed", "0", "1", "--mnist", str(mnist_path), "--split", str(splits[0]), str(splits[1]),
           "--out", str(tmp_path / "a"), "--device", "cpu", "--pool-limit", str(POOL),
           "--hparams", json.dumps(TINY)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode != 0
    assert "--out takes one value per --seed: 2 seed(s), 1 value(s)" in p.stderr
    assert not (tmp_path / "a").exists()


def test_group_runs_gives_one_job_per_method_task_and_budget(sandbox):
    """Snakemake with group_runs: transfer's first stages and its runs are one job each (all seeds,
    one value per seed on the command line); scratch, whose block has its own seeds, keeps one job per
    run; the cost table pairs each grouped run with its group's benchmark file."""
    import re

    import yaml

    from conftest import snakemake

    cfg = sandbox / "group.yaml"
    cfg.write_text(yaml.safe_dump({"seeds": [0, 1], "group_runs": True, "grid": [
        {"task": "digits59", "labels": [50], "methods": ["transfer"]},
        {"task": "digits59", "labels": [50], "methods": ["scratch"], "seeds": [0]}]}))
    out = snakemake(sandbox, "-n", "-p", "--configfile", "presets/smoke.yaml", str(cfg)).stdout
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out.split("Job stats:")[1], re.M))
    assert {k: counts.get(k) for k in ("train_group", "pretrain_group", "train", "pretrain")} == {
        "train_group": "1", "pretrain_group": "1", "train": "1", "pretrain": None}
    group_cmd = next(line for line in out.splitlines() if "--name transfer " in line)
    assert "--seed 0 1 " in group_cmd and "--stack auto" in group_cmd
    assert ("--out results/runs/digits59/transfer/n50/seed0 results/runs/digits59/transfer/n50/seed1 "
            in group_cmd)
    assert ("--pretrained results/pretrain/transfer-source/seed0/model.pt "
            "results/pretrain/transfer-source/seed1/model.pt" in group_cmd)
    assert "benchmarks/train_group/digits59/transfer/n50.tsv" in out
    assert "benchmarks/train/digits59/scratch/n50/seed0.tsv" in out
    # the README's spelling on the command line
    out = snakemake(sandbox, "-n", "--configfile", "presets/smoke.yaml", "--config", "group_runs=true").stdout
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out.split("Job stats:")[1], re.M))
    assert "train_group" in counts and "train" not in counts


def plan(sandbox, cuda: str, *extra: str) -> tuple[dict, str, list[str]]:
    """The bare command's dry run (the default profile) with a CUDA GPU reported present or not (fewlabels.plan's
    FEWLABELS_CUDA): job counts, the training-path line, and each training job's gpu resource."""
    import re

    from conftest import SNAKEMAKE, snakemake_env

    env = {**snakemake_env(), "FEWLABELS_CUDA": cuda}
    p = subprocess.run([*SNAKEMAKE, "-n", "--configfile", "presets/smoke.yaml", *extra], cwd=sandbox, env=env,
                       text=True, capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", p.stdout.split("Job stats:")[1], re.M))
    path = next(line for line in (p.stdout + p.stderr).splitlines() if line.startswith("training path:"))
    jobs = re.split(r"\n(?=(?:local)?rule )", p.stdout)
    gpus = [re.search(r"gpu=(\d+)", j).group(1) for j in jobs if re.match(r"(local)?rule (train|pretrain)", j)]
    return counts, path, gpus


def test_the_bare_command_takes_the_grouped_captured_path_when_cuda_is_visible(sandbox):
    """group_runs: auto (the default). With a CUDA GPU reported present, every cell's seeds train in one job
    (stacked and captured: --stack auto, --capture auto), each job takes one GPU slot and the default profile
    lets fewlabels.plan.GPU_SLOTS of them share the GPU; the dry run says so in one line. Without one, or with
    device: cpu, the plan is one job per run with no GPU slot, as before."""
    import yaml

    from conftest import REPO
    from fewlabels import plan as P

    counts, path, gpus = plan(sandbox, "1")
    assert "train_group" in counts and "train" not in counts and "pretrain_group" in counts
    assert path.startswith("training path: each cell's seeds in one process, stacked and graph-captured on CUDA")
    assert f"up to {P.GPU_SLOTS} jobs sharing the GPU" in path and "FEWLABELS_CUDA=1" in path
    assert gpus and set(gpus) == {"1"}
    profile = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())
    assert profile["resources"] == [f"gpu={P.GPU_SLOTS}"]
    for cuda, extra in (("0", ()), ("1", ("--config", "device=cpu"))):
        counts, path, gpus = plan(sandbox, cuda, *extra)
        assert "train" in counts and "train_group" not in counts, extra
        assert path.startswith("training path: one process per run on the CPU"), path
        assert gpus and set(gpus) == {"0"}


def test_group_runs_auto_resolves_by_device():
    from fewlabels import plan as P

    assert P.group_runs(True, "cpu") == (True, "group_runs: true")
    assert P.group_runs(False, "cuda")[0] is False
    assert P.group_runs("auto", "cpu") == (False, "device: cpu")
    assert P.group_runs("auto", "cuda") == (True, "device: cuda")
    assert P.group_runs("auto", "auto", local=False)[0] is True  # a cluster's nodes are assumed to have GPUs
    with pytest.raises(ValueError, match="true, false or auto"):
        P.group_runs("sometimes", "cpu")


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")


def same_losses(root_a, root_b, seeds, rtol=1e-3) -> None:
    """Two groups' runs (folders root_a/seed<s>, root_b/seed<s>) have the same epoch losses within rtol."""
    for s in seeds:
        a = pd.read_csv(root_a / f"seed{s}" / "history.csv")
        b = pd.read_csv(root_b / f"seed{s}" / "history.csv")
        losses = [c for c in b.columns if c.startswith("loss_")]
        pd.testing.assert_frame_equal(a[losses], b[losses], rtol=rtol)


def same_ends(out_a, out_b, root_a, root_b, seeds=SEEDS) -> None:
    """Two groups end alike on a GPU: test accuracy within two test images, epoch losses within 1e-3."""
    for a, b in zip(out_a, out_b):
        assert abs(a["results"]["test_accuracy"] - b["results"]["test_accuracy"]) <= 2 / b["data"]["n_test"]
    same_losses(root_a, root_b, seeds)


@cuda
def test_cuda_stacked_group_captured_equals_eager(tmp_path, splits, mnist_path):
    """On a GPU: the stacked group with its step in a CUDA graph ends where the eager stacked group
    ends (same per-run random numbers: the graph replays the registered generators), and says so."""
    hp = {**TINY, "epochs": 3}
    got = {}
    for capture in ("auto", "off"):
        lines = []
        sp = [{**spec, "device": "cuda"} for spec in specs(tmp_path / capture, splits, mnist_path, hp=hp)]
        got[capture] = run_group(sp, stack="on", capture=capture, log=lines.append)
        if capture == "auto":
            assert any("captured in a CUDA graph" in s for s in lines), lines
    same_ends(got["auto"], got["off"], tmp_path / "auto", tmp_path / "off")


@cuda
def test_cuda_group_resumes(tmp_path, splits, mnist_path):
    """On a GPU: a stacked, captured group stopped after epoch 1 resumes from its checkpoints and ends
    where the same group trained without a stop ends (its step captured again after the resume, the
    registered generators restored). (It asked for a test accuracy above 0.2 before; seed 0 of this
    12-step schedule reaches 0.19 on the CPU too, so it failed on the GPU lent on 2026-12-04.)"""
    cuda = torch.device("cuda")
    whole = run_group([{**spec, "device": "cuda"} for spec in specs(tmp_path / "whole", splits, mnist_path)],
                      stack="on", log=lambda s: None)
    sp = [{**spec, "device": "cuda"} for spec in specs(tmp_path / "part", splits, mnist_path)]
    with deterministic(cuda):
        runs = [Run(**spec, log=lambda s: None) for spec in sp]
        train_stacked(runs, lambda s: None, last_epoch=1)
    lines = []
    out = run_group(sp, stack="on", log=lines.append)
    assert sum("after epoch 1" in s for s in lines) == len(SEEDS)
    same_ends(out, whole, tmp_path / "part", tmp_path / "whole")


TOWER = {"epochs": 2, "steps_per_epoch": 4, "batch_size": 20}


@pytest.mark.numerical
@pytest.mark.parametrize("method", ["transfer"])  # scratch is the same tower without the frozen layer
def test_stacked_towers_equal_their_runs_alone(tmp_path, mnist_path, method):
    """Seed 002's towers stack too: input dropout, batch norm, the epoch sampler of each run, and for
    transfer the restored first layer frozen (no gradient, no Adam state) under fresh layers."""
    seeds = (0, 1)
    for s in seeds:
        D.make_split(mnist_path, tmp_path / f"59-{s}.npz", "digits59", 50, seed=s)
    pretrained = {}
    if method == "transfer":
        for s in seeds:
            D.make_split(mnist_path, tmp_path / f"04-{s}.npz", "digits04", None, seed=s)
            run(method="transfer-source", task="digits04", labels=None, seed=s, mnist=mnist_path,
                split=tmp_path / f"04-{s}.npz", out=tmp_path / "src" / str(s), device="cpu", pool_limit=POOL,
                hparams={"epochs": 1, "steps_per_epoch": 3}, log=lambda line: None)
            pretrained[s] = tmp_path / "src" / str(s) / "model.pt"

    def spec(s, root):
        return dict(method=method, task="digits59", labels=50, seed=s, mnist=mnist_path, split=tmp_path / f"59-{s}.npz",
                    out=root / f"seed{s}", hparams=TOWER, device="cpu", pool_limit=POOL, pretrained=pretrained.get(s))

    # The accuracy tolerance is looser than the MLP's two images: the seed's dense layers keep a bias
    # under batch norm, whose gradient is zero up to float noise; Adam scales that noise to steps of
    # about lr, so those biases (and the running means that follow them) drift apart between two
    # summation orders. Training is blind to them; evaluation sees the lag of the running mean.
    got = alone_and_stacked(lambda root: [spec(s, root) for s in seeds], tmp_path, seeds, accuracy_tol=0.01)
    for s, ((_, _, p1), (_, _, p2)) in got.items():
        for k, w in p1["modules"]["net"].items():
            if k.endswith(".0.weight") or k.startswith("head."):  # the weights that carry the function
                torch.testing.assert_close(p2["modules"]["net"][k], w, rtol=1e-3, atol=5e-3)
        if method == "transfer":  # the restored layer did not move, in either path
            key = next(k for k in p1["modules"]["net"] if k.startswith("tower.blocks.0.0.weight"))
            src = torch.load(pretrained[s], weights_only=False)["tower"]["blocks.0.0.weight"]
            assert torch.equal(p2["modules"]["net"][key], src) and torch.equal(p1["modules"]["net"][key], src)


@pytest.mark.numerical
@pytest.mark.parametrize("method", ["ae", "conv-ae-scratch"])
def test_stacked_seed003_heads_equal_their_runs_alone(tmp_path, splits, mnist_path, method):
    """Seed 003's heads stack: a pretrained (tied-weight) encoder under a head, and the conv twin."""
    hp = {"epochs": 2, "steps_per_epoch": 4}
    pretrained = {}
    if method == "ae":
        for s in (0, 1):
            D.make_split(mnist_path, tmp_path / f"all-{s}.npz", "mnist10", None, seed=s)
            run(method="ae-pretrain", task="mnist10", labels=None, seed=s, mnist=mnist_path,
                split=tmp_path / f"all-{s}.npz", out=tmp_path / "pre" / str(s), device="cpu", pool_limit=POOL,
                hparams={"epochs": 1, "steps_per_epoch": 3}, log=lambda line: None)
            pretrained[s] = tmp_path / "pre" / str(s) / "model.pt"
    sp = lambda root: [{**spec, "pretrained": pretrained.get(spec["seed"])}  # noqa: E731
                       for spec in specs(root, splits, mnist_path, method=method, hp=hp, seeds=(0, 1), checkpoint=False)]
    alone_and_stacked(sp, tmp_path)


# a shrunk seed-004 AAE whose learning rates drop after epoch 1, with the blog-era D_cat target
AAE_HP = {"epochs": 2, "steps_per_epoch": 3, "batch_size": 20, "hidden": [32, 32], "z_dim": 4,
          "lr_decay_epochs": [1], "dcat_fake_target_bug": True}


def aae_specs(root, splits, mnist_path):
    return specs(root, splits, mnist_path, method="aae", hp=AAE_HP, seeds=(0, 1))


@pytest.mark.numerical
def test_stacked_aae_equals_its_runs_alone(tmp_path, splits, mnist_path):
    """Seed 004's AAE stacks (fewlabels.methods.stacked.aae): four networks, five optimisers, every phase and
    the priors' draws per run; the learning-rate decay after epoch 1 reaches the stacked optimisers."""
    for (_, h1, p1), (_, _, p2) in alone_and_stacked(lambda root: aae_specs(root, splits, mnist_path),
                                                    tmp_path).values():
        assert {c for c in h1.columns if c.startswith("loss_")} == {
            "loss_recon", "loss_d_cat", "loss_d_gauss", "loss_g_reg", "loss_ssl"}
        for net in ("enc", "dec"):
            for k, w in p1["modules"][net].items():
                torch.testing.assert_close(p2["modules"][net][k], w, rtol=1e-4, atol=1e-6)


@pytest.mark.numerical
def test_stacked_aae_with_makhzanis_recipe_equals_its_runs_alone(tmp_path, splits, mnist_path):
    """The paper's recipe stacks too: per-phase SGD momenta (0.9 / 0.1), the summed reconstruction error and
    the input noise, drawn per run in the one-run order (unlabeled batch, its noise, priors, labeled batch,
    its noise)."""
    hp = {**AAE_HP, "dcat_fake_target_bug": False, "optimizer": "sgd", "beta1": 0.9, "momentum_reg": 0.1,
          "lr_recon": 0.001, "lr_reg": 0.1, "lr_ssl": 0.1, "input_noise": 0.3, "z_std": 1.0, "recon_loss": "sum",
          "init_std": 0.1}  # weights large enough that the noise moves every loss
    sp = lambda root: specs(root, splits, mnist_path, method="aae", hp=hp, seeds=(0, 1))  # noqa: E731
    for (_, _, p1), (_, _, p2) in alone_and_stacked(sp, tmp_path).values():
        for net in ("enc", "dec"):
            for k, w in p1["modules"][net].items():
                torch.testing.assert_close(p2["modules"][net][k], w, rtol=1e-4, atol=1e-5)


def test_stacked_aae_resumes_from_its_checkpoints(tmp_path, splits, mnist_path):
    """Stopped after epoch 1, the stacked AAE group takes up every run's five optimiser states and
    ends where an uninterrupted stacked group ends (bit for bit: same process, same sums)."""
    sp = lambda root: aae_specs(root, splits, mnist_path)  # noqa: E731
    run_group(sp(tmp_path / "whole"), stack="on", log=lambda line: None)
    with deterministic(torch.device("cpu")):  # as run_group trains
        runs = [Run(**spec, log=lambda line: None) for spec in sp(tmp_path / "part")]
        train_stacked(runs, lambda line: None, last_epoch=1)
    lines = []
    run_group(sp(tmp_path / "part"), stack="on", log=lines.append)
    assert sum("after epoch 1" in line for line in lines) == 2
    for s in (0, 1):
        (m1, h1, _), (m2, h2, _) = files(tmp_path / "whole", s), files(tmp_path / "part", s)
        assert m2["results"] == m1["results"]
        pd.testing.assert_frame_equal(h2.drop(columns="train_s"), h1.drop(columns="train_s"))


# shrunk GANs: sgan-fm's weight-normalised D with Gaussian noise and an EMA; seed 001's conv D with
# dropout and batch norm (its G too), whose collapse check's samples move G's batch-norm statistics
GAN_HP = {
    "sgan-fm": {"epochs": 2, "steps_per_epoch": 3, "batch_size": 20, "z_dim": 8, "init_batch": 50,
                "d_hidden": [32, 16, 16], "g_hidden": [16, 16], "ema_decay": 0.9,
                "input_noise": 0.0},  # a noise layer that draws nothing: the stacked hooks must skip it
    "sgan": {"epochs": 2, "steps_per_epoch": 3, "batch_size": 20, "z_dim": 8},
}


# sgan under the default capability costs a minute more than the suite can spare: measured to pass there
# (bash scripts/tolerance_spread.sh), it is left out of the second pass
@pytest.mark.parametrize("method", [pytest.param("sgan-fm", marks=pytest.mark.numerical), "sgan"])
def test_stacked_gans_equal_their_runs_alone(tmp_path, splits, mnist_path, method):
    """Both GANs stack (fewlabels.methods.stacked.gan): every run's minibatches, generator noise and the
    discriminator's noise or dropout masks are its own, so losses, weights (EMA included) and the
    generator's batch-norm statistics match the runs alone."""
    # seed 001's nets put biases before batch norm: their gradients are float noise, which Adam scales
    # to steps of about lr, so they and the running means that follow them differ between the paths
    # (as the towers', test_stacked_towers_equal_their_runs_alone), and so does evaluation, a little
    # (measured: weights within 7e-5 after 6 steps of lr 1e-3, the float-order differences of the
    # others scaled by Adam where a gradient is small)
    pre_bn = {"sgan": ("D.body.5.bias", "D.body.9.bias", "G.net.0.bias", "G.net.3.bias", "G.net.6.bias")}
    atol = {"sgan": 2e-4, "sgan-fm": 1e-5}
    seeds = (0, 1, 2) if method == "sgan-fm" else (0, 1)  # seed 2's pool (pool_limit) is one image longer
    got = alone_and_stacked(lambda root: specs(root, splits, mnist_path, method=method, hp=GAN_HP[method],
                                               seeds=seeds), tmp_path, seeds,
                            accuracy_tol=0.01 if method == "sgan" else None)
    for (_, h1, p1), (_, _, p2) in got.values():
        assert len(h1) == 2
        for net, weights in p1["modules"].items():
            for k, w in weights.items():
                if f"{net}.{k}" in pre_bn.get(method, ()) or (method == "sgan" and "running_" in k):
                    continue
                if w.is_floating_point():
                    torch.testing.assert_close(p2["modules"][net][k], w, rtol=1e-4, atol=atol[method], msg=f"{net}.{k}")
                else:  # batch norm's step counts
                    assert torch.equal(p2["modules"][net][k], w), f"{net}.{k}"


def test_stacked_sgan_refuses_three_discriminators(tmp_path, splits, mnist_path):
    """Seed 001's published three discriminators have no stacked form: stack on says so, auto trains
    the runs one after another."""
    hp = {**GAN_HP["sgan"], "d_unshared_weights": True}
    with pytest.raises(ValueError, match="d_unshared_weights"):
        run_group(specs(tmp_path, splits, mnist_path, method="sgan", hp=hp, seeds=(0, 1)), stack="on",
                  log=lambda line: None)


@pytest.mark.numerical
def test_stacked_siamese_pairs_equal_their_runs_alone(tmp_path, mnist_path):
    """Seed 000's pair stage stacks (fewlabels.methods.stacked.siamese): each run's pairs from its own sampler,
    its tower's dropout masks and batch-norm statistics; the readout is each run's own."""
    for s in (0, 1):
        D.make_split(mnist_path, tmp_path / f"s{s}.npz", "mnist10", 100, seed=s)
    hp = PAIRS_HP

    def sp(root):
        return [dict(method="siamese-pairs", task="mnist10", labels=None, seed=s, mnist=mnist_path,
                     split=tmp_path / f"s{s}.npz", out=root / f"seed{s}", hparams=hp, device="cpu", pool_limit=POOL)
                for s in (0, 1)]

    got = alone_and_stacked(sp, tmp_path, accuracy_tol=0.01)  # a bias under batch norm, as the towers'
    for s, ((m1, _, p1), (m2, _, p2)) in got.items():
        assert abs(m2["results"]["pair_accuracy"] - m1["results"]["pair_accuracy"]) <= 0.02
        for k, w in p1["tower"].items():
            if k.endswith(".0.weight"):  # the weights that carry the function
                torch.testing.assert_close(p2["tower"][k], w, rtol=1e-3, atol=5e-3)


PAIRS_HP = {"epochs": 2, "steps_per_epoch": 3, "batch_size": 20, "eval_pairs": 200}


@cuda
@pytest.mark.parametrize("method", ["aae", "sgan-fm", "sgan", "siamese-pairs"])
def test_cuda_multi_network_groups_captured_equal_eager(tmp_path, splits, mnist_path, method):
    """On a GPU: the stackers with several networks and optimisers record their step in a CUDA graph (the
    pair stage, whose pairs are drawn in Python, says so and runs eagerly), and the captured group ends
    where the eager one does: its epoch losses within 1e-3 (sgan's conv nets: 1e-2; on the H200 lent on
    2026-12-04 one of two tries differed by 1.2e-3 in the second epoch's generator loss)."""
    hp = {"aae": AAE_HP, "siamese-pairs": PAIRS_HP, **GAN_HP}[method]
    got = {}
    for capture in ("auto", "off"):
        lines = []
        sp = [{**spec, "device": "cuda", "labels": None if method == "siamese-pairs" else 100}
              for spec in specs(tmp_path / capture, splits, mnist_path, method=method, hp=hp, seeds=(0, 1))]
        got[capture] = run_group(sp, stack="on", capture=capture, log=lines.append)
        if capture == "auto":  # the pair stage draws its pairs in Python: it says so and runs eagerly
            said = "draws its minibatches in Python" if method == "siamese-pairs" else "captured in a CUDA graph"
            assert any(said in s for s in lines), lines
    same_losses(tmp_path / "auto", tmp_path / "off", (0, 1), rtol=1e-2 if method == "sgan" else 1e-3)


@pytest.mark.numerical
@pytest.mark.parametrize("method", ["dae-pretrain", "vae-pretrain", "conv-ae-pretrain"])
def test_stacked_autoencoder_stages_equal_their_runs_alone(tmp_path, splits, mnist_path, method):
    """Seed 003's first stages stack (fewlabels.methods.stacked.autoencoders): each run's minibatch and then its noise (the
    denoising mask, the VAE's epsilon) from its own generator, the method's own loss under vmap."""
    hp = {"epochs": 2, "steps_per_epoch": 3, "batch_size": 20}
    got = alone_and_stacked(lambda root: [{**sp, "labels": None} for sp in specs(
        root, splits, mnist_path, method=method, hp=hp, seeds=(0, 1))], tmp_path)
    for (_, h1, p1), (_, _, p2) in got.values():
        assert len(h1) == 2
        for k, w in p1["modules"]["net"].items():
            # (measured: the DAE's bit for bit; the VAE's within 1.9e-5 over ATEN_CPU_CAPABILITY default /
            # avx2 / avx512 and 1 / 2 threads, where Adam divides the float-order noise of a few small
            # gradients by the root of their small second moments: a fraction of the 6 steps' 6e-3
            # displacement, see tests/test_batched.py; allowed 2e-4, 1/30 of it)
            torch.testing.assert_close(p2["modules"]["net"][k], w, rtol=1e-4, atol=2e-4, msg=lambda m, k=k: f"{k}: {m}")
