"""The slurm profile against a real SLURM: a one-node cluster on localhost
(scripts/slurm_cluster.sh), the smoke preset's schedules on a two-method grid through
workflow/profiles/slurm, every training and first-stage job submitted with sbatch and the
paper built. Skipped, with the reason, where no cluster can be started (not root, no
apt-get, daemons that do not come up)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import REPO, snakemake

SCRIPT = REPO / "scripts" / "slurm_cluster.sh"
STATE = Path(os.environ.get("FEWLABELS_SLURM_STATE", "/tmp/fewlabels-slurm"))
# Test-only settings for a cluster without accounting or GPUs; the shipped profile has none of them.
OVERRIDES = ["--config", "device=cpu",
             "--slurm-no-account", "--slurm-status-command", "squeue",
             "--slurm-init-seconds-before-status-checks", "5", "--seconds-between-status-checks", "2",
             "--slurm-keep-successful-logs",
             "--set-resources", "train:mem_mb=1000", "train:runtime=20", "pretrain:mem_mb=1000",
             "pretrain:runtime=20", "train_group:mem_mb=1000", "train_group:runtime=20",
             "pretrain_group:mem_mb=1000", "pretrain_group:runtime=20"]


def _alive(pidfile: Path) -> bool:
    try:
        os.kill(int(pidfile.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


@pytest.fixture(scope="module")
def slurm():
    """A running one-node cluster; stopped afterwards if this test started it."""
    if os.name != "posix" or not hasattr(os, "geteuid"):
        pytest.skip("SLURM test needs Linux")
    have = all(shutil.which(b) for b in ("slurmctld", "slurmd", "munged"))
    if not have and os.geteuid() != 0:
        pytest.skip("slurm-wlm/munge are not installed and the tests do not run as root to install them")
    if not have and not shutil.which("apt-get"):
        pytest.skip("slurm-wlm/munge are not installed and there is no apt-get to install them")
    if os.geteuid() != 0:
        pytest.skip("starting slurmctld/slurmd needs root")
    was_running = _alive(STATE / "slurmctld.pid") and _alive(STATE / "slurmd.pid")
    try:
        start = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.skip("starting the SLURM cluster took more than 10 minutes")
    if start.returncode != 0:
        subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True)
        pytest.skip(f"could not start a one-node SLURM cluster: {start.stderr.strip()[-1500:]}")
    yield
    if not was_running:
        stop = subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, text=True)
        assert stop.returncode == 0, stop.stderr
        assert not _alive(STATE / "slurmctld.pid") and not _alive(STATE / "slurmd.pid")


def finished_jobs(workdir: Path) -> list[str]:
    """Comments (rule_<name>_wildcards_...) of the COMPLETED jobs run in ``workdir``; without
    accounting, slurmctld keeps finished jobs for MinJobAge seconds."""
    out = subprocess.run(["scontrol", "-o", "show", "job"], capture_output=True, text=True, check=True).stdout
    comments = []
    for line in out.splitlines():
        f = dict(re.findall(r"(\w+)=(\S*)", line))
        if f.get("WorkDir") == str(workdir) and f.get("JobState") == "COMPLETED":
            comments.append(f.get("Comment", ""))
    return comments


# The smoke preset's schedules on a grid with every kind of submitted job, in group mode
# (group_runs): transfer's first stage and its runs as two group jobs of two seeds each
# (pretrain_group, train_group; transfer reads the stage), and scratch, whose block sets its own
# seeds, as one job per run (train). Which rules go to sbatch does not depend on how many methods
# there are, and each submitted job costs a scheduler round trip and a snakemake start-up on the
# node: the whole smoke grid (23 jobs) took 6 minutes of the suite. The smoke preset's full grid
# runs to the PDF locally, one job per run, in tests/test_workflow.py.
SLURM_GRID = {"seeds": [0, 1], "group_runs": True,
              "grid": [{"task": "digits59", "labels": [50], "methods": ["transfer"]},
                       {"task": "digits59", "labels": [50], "methods": ["scratch"], "seeds": [0]}]}


@pytest.mark.slow
def test_smoke_preset_through_the_slurm_profile(slurm, sandbox):
    grid = sandbox / "slurm-grid.yaml"
    grid.write_text(yaml.safe_dump(SLURM_GRID))
    snakemake(sandbox, "--workflow-profile", "workflow/profiles/slurm",
              "--configfile", "presets/smoke.yaml", str(grid), *OVERRIDES, timeout=900, slurm=True)
    assert (sandbox / "paper" / "ms.pdf").stat().st_size > 10_000

    # Every training and first-stage job went through sbatch, and nothing else did
    # (data, aggregation, figures and the paper are localrules).
    runs = sorted((sandbox / "results" / "runs").glob("*/*/*/*/metrics.json"))
    stages = list((sandbox / "results" / "pretrain").glob("*/*/metrics.json"))
    assert [m.relative_to(sandbox / "results" / "runs").parts[1:4:2] for m in runs] == [
        ("scratch", "seed0"), ("transfer", "seed0"), ("transfer", "seed1")]
    assert len(stages) == 2  # transfer-source, once per seed, in one job
    jobs = finished_jobs(sandbox)
    rules = sorted(re.match(r"rule_([a-z_]+?)_wildcards", c).group(1) for c in jobs)
    assert rules == ["pretrain_group", "train", "train_group"], jobs
    logs = sandbox / ".snakemake" / "slurm_logs"
    assert len(list((logs / "rule_train_group").iterdir())) == 1
    for m in runs:  # the two transfer runs were trained by one process
        assert json.loads(m.read_text())["timing"]["group_runs"] == (2 if "transfer" in m.parts else 1)

    # The GPU request was switched off by device=cpu (the node has none: a job asking for
    # one would never start), and the runs say where they ran.
    for m in runs:
        assert json.loads(m.read_text())["env"]["device"] == "cpu"


# ---- the profiles, without a cluster ---------------------------------------------------------

def test_slurm_profile_asks_gpus_for_training_and_leaves_site_settings_to_the_user():
    prof = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
    assert prof["executor"] == "slurm" and prof["rerun-incomplete"] is True
    for rule in ("train", "pretrain", "train_group", "pretrain_group"):
        assert {"mem_mb", "runtime"} <= set(prof["set-resources"][rule])
    text = yaml.safe_dump(prof)
    # accounts, partitions and the test cluster's workarounds belong to the user, not the workflow
    for key in ("slurm_account", "slurm_partition", "slurm-no-account", "slurm-status-command", "gpu:"):
        assert key not in text


def test_default_profile_limits_local_gpu_jobs():
    """The default profile lets fewlabels.plan.GPU_SLOTS training jobs share one GPU (group jobs on CUDA)."""
    from fewlabels.plan import GPU_SLOTS

    prof = yaml.safe_load((REPO / "profiles/default/config.yaml").read_text())
    assert f"gpu={GPU_SLOTS}" in prof["resources"] and prof["rerun-incomplete"] is True


def gpu_requests(out: str, rule: str) -> set[str]:
    blocks = re.split(r"\n(?=\[|(?:local)?rule \w+:)", out)
    return {re.search(r"gpu=(\d+)", b).group(1) for b in blocks if re.match(rf"rule {rule}:", b.strip())}


def test_training_jobs_request_a_gpu_unless_device_is_cpu(sandbox):
    # on CUDA the runs group by default (group_runs: auto), one GPU slot a group job
    cuda = snakemake(sandbox, "-n", "--configfile", "presets/smoke.yaml", "--config", "device=cuda").stdout
    assert gpu_requests(cuda, "train_group") == {"1"} and gpu_requests(cuda, "pretrain_group") == {"1"}
    assert gpu_requests(cuda, "train") <= {"1"}
    alone = snakemake(sandbox, "-n", "--configfile", "presets/smoke.yaml", "--config", "device=cuda",
                      "group_runs=false").stdout
    assert gpu_requests(alone, "train") == {"1"} and gpu_requests(alone, "pretrain") == {"1"}
    cpu = snakemake(sandbox, "-n", "--configfile", "presets/smoke.yaml", "--config", "device=cpu").stdout
    assert gpu_requests(cpu, "train") == {"0"} and gpu_requests(cpu, "pretrain") == {"0"}
