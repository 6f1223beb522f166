"""Provenance (issue 11, parts 2 and 3): the code fingerprint, the numerical build, the appendix
paragraph, the archive manifest, method files as job inputs, and config checks without torch."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, SNAKEMAKE, snakemake, snakemake_env
from test_workflow import jobs
from fewlabels import archive, provenance as P
from fewlabels.training.trainer import fingerprint_change


def _tree(root: Path) -> Path:
    pkg = root / "src" / "fewlabels"
    (pkg / "methods").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "methods" / "m.py").write_text("LOSS = 1\n")
    (root / "workflow" / "rules").mkdir(parents=True)
    (root / "workflow" / "rules" / "x.smk").write_text("rule x:\n")
    return pkg


def test_code_fingerprint_changes_with_any_source_or_workflow_file(tmp_path):
    pkg = _tree(tmp_path)
    first = P.code_fingerprint(tmp_path, pkg)
    assert first["git"] is None and re.fullmatch(r"[0-9a-f]{64}", first["sha256"])  # no git here: hash only
    assert P.code_fingerprint(tmp_path, pkg) == first  # deterministic
    (pkg / "methods" / "m.py").write_text("LOSS = 2\n")
    second = P.code_fingerprint(tmp_path, pkg)
    assert second["sha256"] != first["sha256"]
    (tmp_path / "workflow" / "rules" / "x.smk").write_text("rule y:\n")
    assert P.code_fingerprint(tmp_path, pkg)["sha256"] != second["sha256"]
    (tmp_path / "README.md").write_text("docs do not change the numbers")
    assert P.code_fingerprint(tmp_path, pkg)["sha256"] == P.code_fingerprint(tmp_path, pkg)["sha256"]


def test_run_code_hash_follows_what_makes_a_runs_numbers_only(tmp_path):
    """The checkpoint's hash (run_code_sha256) changes with data, nets, config, precision, methods and training
    (the methods' stacked forms included), not with reporting modules, the provenance module or the workflow."""
    pkg = _tree(tmp_path)
    for rel in ("data.py", "nets.py", "config.py", "precision.py", "provenance.py", "training/trainer.py",
                "methods/stacked/aae.py", "report/figures/accuracy.py", "report/tables.py"):
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text("X = 1\n")
    first = P.run_code_sha256(pkg)
    for rel in ("report/figures/accuracy.py", "report/tables.py", "provenance.py", "../../workflow/rules/x.smk"):
        (pkg / rel).write_text("X = 2  # an edit that changes no run's numbers\n")
        assert P.run_code_sha256(pkg) == first, rel
    seen = {first}
    for rel in ("data.py", "nets.py", "config.py", "precision.py", "methods/m.py", "training/trainer.py",
                "methods/stacked/aae.py"):
        (pkg / rel).write_text("X = 3\n")
        now = P.run_code_sha256(pkg)
        assert now not in seen, rel
        seen.add(now)
    (pkg / "methods" / "new.py").write_text("")  # a new method file counts too
    assert P.run_code_sha256(pkg) not in seen
    assert P.run_code_sha256() == P.run_code_sha256(P.PACKAGE)  # this checkout's, by default


@pytest.mark.skipif(not shutil.which("git"), reason="needs git")
def test_code_fingerprint_names_the_commit_and_marks_a_dirty_tree(tmp_path):
    pkg = _tree(tmp_path)
    git = ["git", "-C", str(tmp_path), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert P.code_fingerprint(tmp_path, pkg)["git"] == head
    (tmp_path / "notes.txt").write_text("untracked, outside src and workflow")
    assert P.code_fingerprint(tmp_path, pkg)["git"] == head
    (pkg / "methods" / "m.py").write_text("LOSS = 3\n")
    assert P.code_fingerprint(tmp_path, pkg)["git"] == head + "-dirty"


TORCH_211 = """PyTorch built with:
  - GCC 11.2
  - Intel(R) oneAPI Math Kernel Library Version 2024.2-Product Build 20240605 for Intel(R) 64 architecture applications
  - Intel(R) MKL-DNN v3.7.1 (Git Hash 8d263e693366ef8db40acc569cc7d8edf644556d)
  - CPU capability usage: AVX512
  - Build settings: BLAS_INFO=mkl, BUILD_TYPE=Release, CXX_COMPILER=/opt/rh/devtoolset-11/root/usr/bin/c++, LAPACK_INFO=mkl,
"""
TORCH_OPENBLAS = """PyTorch built with:
  - oneDNN v3.12.0 (Git Hash 0)
  - Build settings: BLAS_INFO=open, LAPACK_INFO=open, TORCH_VERSION=2.13.0,
"""


def test_build_info_parses_torch_config_text():
    info = P.build_info(TORCH_211)
    assert (info["blas"], info["mkl"], info["onednn"]) == ("mkl", "2024.2", "3.7.1")
    assert info["cpu_capability"]  # this machine's, from torch.backends.cpu
    other = P.build_info(TORCH_OPENBLAS)
    assert (other["blas"], other["mkl"], other["onednn"]) == ("open", None, "3.12.0")
    live = P.build_info()  # whatever this torch is, nothing raises and the BLAS is named
    assert live["blas"] and live["gpu"] in (None, live["gpu"])


def test_checkpoint_mismatch_message_names_the_key():
    old = {"method": "supervised", "seed": 0, "run_code_sha256": "a" * 64}
    msg = fingerprint_change(old, {**old, "run_code_sha256": "b" * 64})
    assert "run_code_sha256" in msg and "the code that trains it" in msg and "seed" not in msg
    assert "seed was 0, is 1" in fingerprint_change(old, {**old, "seed": 1})
    assert "no fingerprint" in fingerprint_change(None, old)


def _df(codes):
    return pd.DataFrame({"method": ["supervised", "aae", "aae"][:len(codes)], "code_sha256": codes,
                         "code_git": [None] * len(codes), "cpu_capability": ["AVX2"] * len(codes)})


def test_appendix_says_when_runs_mix_code_versions():
    one = P.provenance_tex(_df(["a" * 64, "a" * 64]))
    assert "same code" in one and "mix" not in one and "AVX2" in one
    mixed = P.provenance_tex(_df(["a" * 64, "a" * 64, "b" * 64]))
    assert "mix 2 versions" in mixed and mixed.count(r"\item") == 2
    partly = P.provenance_tex(_df(["a" * 64, None]))
    assert "mix 2 versions" in partly and "1 run(s) record no fingerprint" in partly
    old = P.provenance_tex(pd.DataFrame({"method": ["supervised"]}))
    assert "do not record a code fingerprint" in old


def test_archive_manifest_records_code_and_flags_a_mix(tmp_path):
    files = []
    for i, code in enumerate(["a" * 64, "b" * 64]):
        d = tmp_path / "results" / "runs" / "mnist10" / "m" / "n10" / f"seed{i}"
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps({"env": {"code_sha256": code}}))
        (d / "history.csv").write_text("epoch\n1\n")
        files.append(d / "history.csv")
    pd.DataFrame({"code_sha256": ["a" * 64, "b" * 64]}).to_csv(tmp_path / "results" / "metrics.csv", index=False)
    files.append(tmp_path / "results" / "metrics.csv")
    arc = tmp_path / "results" / "archive"
    archive.create(files, arc, {"grid": []})
    text = (arc / "MANIFEST.tsv").read_text()
    assert "runs/mnist10/m/n10/seed0/history.csv" in text and "\t" + "a" * 64 in text
    assert f"metrics.csv\t" in text and "a" * 64 + "," + "b" * 64 in text
    assert "MIXES 2 versions" in text
    assert set(archive.manifest(arc)) == {"metrics.csv", "runs/mnist10/m/n10/seed0/history.csv",
                                          "runs/mnist10/m/n10/seed1/history.csv"}


GRID = {"seeds": [0], "data": {"source": "pypi", "pool_limit": 300},
        "grid": [{"task": "mnist10", "labels": [100], "methods": ["supervised", "siamese"]},
                 {"task": "digits59", "labels": [50], "methods": ["transfer", "scratch"]}]}


def test_editing_a_method_file_makes_exactly_its_runs_out_of_date(sandbox):
    # the sandbox's own copy of src/, so that touching a method file leaves the checkout alone
    (sandbox / "src").unlink()
    shutil.copytree(REPO / "src", sandbox / "src", ignore=shutil.ignore_patterns("__pycache__"))
    cfg = sandbox / "grid.yaml"
    cfg.write_text(yaml.safe_dump(GRID))
    old, now = time.time() - 3600, time.time()
    for f in (sandbox / "src").rglob("*.py"):
        os.utime(f, (old, old))
    # every output of the runs, as if they had been made after the sources
    targets = []
    for task, labels, methods in (("mnist10", 100, ["supervised", "siamese"]), ("digits59", 50, ["transfer", "scratch"])):
        split = sandbox / f"results/splits/{task}/n{labels}/seed0.npz"
        for method in methods:
            d = f"results/runs/{task}/{method}/n{labels}/seed0"
            targets.append(f"{d}/metrics.json")
            for name in ("metrics.json", "history.csv", "model.pt"):
                (sandbox / d).mkdir(parents=True, exist_ok=True)
                (sandbox / d / name).write_text("x")
        split.parent.mkdir(parents=True, exist_ok=True)
        split.write_text("x")
    for stage, task in (("transfer-source", "digits04"), ("siamese-pairs", "mnist10")):
        for name in ("metrics.json", "history.csv", "model.pt"):
            (sandbox / f"results/pretrain/{stage}/seed0").mkdir(parents=True, exist_ok=True)
            (sandbox / f"results/pretrain/{stage}/seed0/{name}").write_text("x")
        (sandbox / f"results/splits/{task}/nall").mkdir(parents=True, exist_ok=True)
        (sandbox / f"results/splits/{task}/nall/seed0.npz").write_text("x")
    for f in (sandbox / "results").rglob("*"):
        if f.is_file():
            os.utime(f, (now, now))
    # pretrain outputs after the splits, runs after the pretrain outputs
    for f in (sandbox / "results/pretrain").rglob("*"):
        os.utime(f, (now + 10, now + 10))
    for f in (sandbox / "results/runs").rglob("*"):
        os.utime(f, (now + 20, now + 20))

    def planned():
        out = snakemake(sandbox, "-n", *targets, "--configfile", str(cfg)).stdout  # targets first: --configfile takes every word after it
        return ({wc[1] for wc in jobs(out, "train")},
                set(re.findall(r"rule pretrain:.*?wildcards: stage=([\w-]+)", out, re.S)))

    assert planned() == (set(), set())
    os.utime(sandbox / "src/fewlabels/methods/transfer.py", (now + 60, now + 60))
    runs, stages = planned()
    # seed 000's Siamese tower is seed 002's (siamese.py imports it from transfer.py): its runs too
    assert runs == {"transfer", "scratch", "siamese"} and stages == {"transfer-source", "siamese-pairs"}
    os.utime(sandbox / "src/fewlabels/methods/supervised.py", (now + 60, now + 60))
    assert planned()[0] == {"transfer", "scratch", "siamese", "supervised"}
    for f in (sandbox / "src").rglob("*.py"):  # back to before the runs
        os.utime(f, (old, old))
    assert planned() == (set(), set())
    # a stacked form decides its runs' numbers too: the pair stage's, only its own
    os.utime(sandbox / "src/fewlabels/methods/stacked/siamese.py", (now + 60, now + 60))
    assert planned() == ({"siamese"}, {"siamese-pairs"})


def test_config_checks_run_on_a_host_without_torch(sandbox, tmp_path):
    """Parse the Snakefile where `import torch` fails (as under --use-conda): a method on the wrong
    task is still rejected before any job, and a good config still parses."""
    fake = tmp_path / "fake"
    (fake / "torch").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text("raise ImportError('no torch on this host (test)')\n")
    env = {**snakemake_env(), "PYTHONPATH": os.pathsep.join([str(fake), str(sandbox / "src")])}
    probe = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert "no torch on this host" in probe.stderr

    def dry(grid):
        cfg = tmp_path / "c.yaml"
        cfg.write_text(yaml.safe_dump({"seeds": [0], "grid": grid}))
        return subprocess.run([*SNAKEMAKE, "-n", "--cores", "1", "--configfile", str(cfg)], cwd=sandbox, env=env,
                              capture_output=True, text=True, timeout=300)

    bad = dry([{"task": "mnist10", "labels": [100], "methods": ["transfer"]}])
    assert bad.returncode != 0
    assert "method 'transfer' runs on task 'digits59', not 'mnist10'" in bad.stdout + bad.stderr
    good = dry([{"task": "mnist10", "labels": [100], "methods": ["supervised"]}])
    assert good.returncode == 0, good.stdout + good.stderr
    assert "rule train:" in good.stdout


def test_a_checkpoint_of_other_code_restarts_the_run_and_says_why(tmp_path, mnist_path, monkeypatch):
    import fewlabels.training.trainer as T
    from fewlabels import data as D
    from fewlabels.methods.supervised import Supervised

    split = tmp_path / "split.npz"
    D.make_split(mnist_path, split, "mnist10", 20, 0)
    hp = {"epochs": 2, "steps_per_epoch": 2, "hidden": [16]}
    kw = dict(method="supervised", task="mnist10", labels=20, seed=0, mnist=mnist_path, split=split,
              hparams=hp, device="cpu", pool_limit=300, checkpoint=tmp_path / "ck.pt")
    real, calls = Supervised.train_step, {"n": 0}

    def dies_in_epoch_two(self):
        calls["n"] += 1
        if calls["n"] > hp["steps_per_epoch"]:
            raise RuntimeError("killed")
        return real(self)

    monkeypatch.setattr(Supervised, "train_step", dies_in_epoch_two)
    with pytest.raises(RuntimeError, match="killed"):
        T.run(out=tmp_path / "a", log=lambda _: None, **kw)
    monkeypatch.setattr(Supervised, "train_step", real)
    # the method's file was "fixed" while the run was down
    monkeypatch.setattr(T, "run_code_sha256", lambda: "f" * 64)
    monkeypatch.setattr(T, "code_fingerprint", lambda: {"sha256": "e" * 64, "git": None})
    logs = []
    m = T.run(out=tmp_path / "b", log=logs.append, **kw)
    [msg] = [s for s in logs if "ignoring checkpoint" in s]
    assert "run_code_sha256" in msg and "f" * 16 in msg and "the code that trains it" in msg
    assert not any("resuming" in s for s in logs)
    assert m["env"]["code_sha256"] == "e" * 64 and m["env"]["cpu_capability"]  # the whole tree's, for provenance
