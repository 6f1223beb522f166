"""The Snakemake workflow: lint, the paper preset's DAG, and a real end-to-end smoke run to the PDF."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess

import pandas as pd
import pytest
import yaml

from conftest import REPO, snakemake


def jobs(dry_run_output: str, rule: str) -> set[tuple]:
    """(task, method, labels, seed) of every job of ``rule`` in a `snakemake -n` listing."""
    found = set()
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", dry_run_output):
        if re.match(rf"(?:local)?rule {rule}:", block.strip()):
            wc = dict(kv.split("=") for kv in re.search(r"wildcards: (.*)", block).group(1).split(", "))
            found.add(tuple(wc.get(k) for k in ("task", "method", "labels", "seed")))
    return found


def test_lint_is_clean(sandbox):
    proc = snakemake(sandbox, "--lint", check=False)
    # snakemake --lint exits 1 when it has lints (and on any parse error)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Lints for" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_paper_preset_lists_exactly_the_expected_training_jobs(sandbox):
    """The bare command's preset is the study (fewlabels.presets: config.yaml, then the compare preset's
    schedules, the seeds preset's claims and presets/paper.yaml): every grid block's runs, its own seeds
    where it names them, on this machine one job per run."""
    from fewlabels import presets

    cfg = presets.load()
    assert cfg["preset"] == "paper" and cfg["seeds"] == [0, 1, 2, 3, 4]
    expected = {(b["task"], m, str(n), str(s)) for b in cfg["grid"]
                for m, n, s in itertools.product(b["methods"], b["labels"], b.get("seeds", cfg["seeds"]))}
    out = snakemake(sandbox, "-n", "--forceall").stdout
    assert jobs(out, "train") == expected
    assert len(expected) >= 500  # 16 methods x 4 budgets x 5 seeds and more


def test_unusual_budgets_and_seeds_run(sandbox):
    odd = sandbox / "odd.yaml"
    odd.write_text(yaml.safe_dump({
        "seeds": [13], "data": {"source": "pypi", "pool_limit": 500},
        "grid": [{"task": "mnist10", "labels": [70], "methods": ["supervised"]}],
        "methods": {"supervised": {"epochs": 1, "steps_per_epoch": 5, "hidden": [32]}}}))
    snakemake(sandbox, "results/metrics.csv", "--configfile", str(odd))
    df = pd.read_csv(sandbox / "results/metrics.csv")
    assert df[["labels", "seed"]].values.tolist() == [[70, 13]]
    split = __import__("numpy").load(sandbox / "results/splits/mnist10/n70/seed13.npz")
    assert len(split["labeled"]) == 70


def test_smoke_run_builds_the_paper_from_its_runs(smoke_run):
    cfg = yaml.safe_load((REPO / "presets" / "smoke.yaml").read_text())
    metrics = pd.read_csv(smoke_run / "results/metrics.csv", dtype={"labels": str})
    train = metrics[metrics["stage"] == "train"]
    expected = {(b["task"], m, str(n)) for b in cfg["grid"] for m in b["methods"] for n in b["labels"]}
    assert set(zip(train["task"], train["method"], train["labels"])) == expected
    # every row is what its metrics.json says
    for _, r in train.iterrows():
        m = json.loads((smoke_run / r["path"]).read_text())
        assert m["results"]["test_accuracy"] == pytest.approx(r["test_accuracy"])
    pdf = smoke_run / "paper/ms.pdf"
    assert pdf.stat().st_size > 10_000 and pdf.read_bytes()[:5] == b"%PDF-"
    table = (smoke_run / "paper/generated/tab_results.tex").read_text()
    row = train[(train["method"] == "supervised") & (train["task"] == "mnist10")].iloc[0]
    assert f"{100 * row['test_accuracy']:.2f}" in table
    for fig in ("fig_accuracy.pdf", "fig_accuracy.png"):
        assert (smoke_run / "paper/generated" / fig).stat().st_size > 1000
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
        assert f"{100 * row['test_accuracy']:.2f}" in text  # the generated table is in the PDF
        assert "Scorecard" in text


def test_bare_snakemake_reads_the_default_profile_and_resumes_after_kill_9(sandbox):
    """A bare `snakemake` at the root uses profiles/default (rerun-incomplete among its keys): a run
    killed with SIGKILL mid-job leaves its locks and an incomplete output, and a bare rerun clears the
    locks of the dead run and reruns the job, where Snakemake alone stops (LockException, then
    IncompleteFilesException)."""
    import base64
    import os
    import signal
    import sys
    import time

    from conftest import snakemake_env

    (sandbox / "profiles").symlink_to(REPO / "profiles")
    tiny = sandbox / "tiny.yaml"
    # one group job trains both seeds and writes each seed's files when that seed ends: killed in the
    # second seed, it leaves the first seed's files behind, marked incomplete
    tiny.write_text(yaml.safe_dump({
        "seeds": [3, 4], "group_runs": True, "data": {"source": "pypi", "pool_limit": 500},
        "grid": [{"task": "mnist10", "labels": [20], "methods": ["supervised"]}],
        "methods": {"supervised": {"epochs": 3, "steps_per_epoch": 1500, "hidden": [32]}}}))
    target = ("results/metrics.csv", "--configfile", str(tiny))
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "1", *target], cwd=sandbox,
                            env=snakemake_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    incomplete = sandbox / ".snakemake" / "incomplete"
    deadline = time.time() + 300
    try:
        # kill once the first seed's files are written and the group job is still running
        while time.time() < deadline and proc.poll() is None:
            marks = [base64.b64decode(p.name).decode() for p in incomplete.glob("*")] if incomplete.is_dir() else []
            if any(m.startswith("results/runs/") and (sandbox / m).exists() for m in marks):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before its training job could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    state = sandbox / ".snakemake"
    left = {p: p.read_bytes() for p in [*(state / "locks").glob("*.lock"), state / "fewlabels_lock_owner.json"]}
    assert len(left) > 1, "kill -9 should leave the locks and their owner"
    # without the profile (no rerun-incomplete) Snakemake refuses the half-written run
    without = snakemake(sandbox, "--workflow-profile", "none", *target, check=False)
    assert without.returncode != 0 and "IncompleteFilesException" in without.stdout + without.stderr
    for p, data in left.items():  # as the kill left them (that run cleared the stale locks)
        p.write_bytes(data)
    rerun = snakemake(sandbox, *target)
    log = rerun.stdout + rerun.stderr
    assert "Using workflow specific profile profiles/default" in log
    assert "removed .snakemake/locks/" in log and "LockException" not in log
    df = pd.read_csv(sandbox / "results/metrics.csv")
    assert sorted(df[["labels", "seed"]].values.tolist()) == [[20, 3], [20, 4]]
    assert not list((sandbox / ".snakemake" / "locks").glob("*.lock"))
