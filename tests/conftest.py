"""Shared fixtures: the real MNIST file (fetched once into resources/) and a sandbox
working directory for running the workflow without touching the checkout's results."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MNIST = REPO / "resources" / "mnist.npz"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    """resources/mnist.npz, acquired from the default source if it is not there yet."""
    if not MNIST.exists():
        from fewlabels.data import acquire
        acquire(MNIST)
    return MNIST


@pytest.fixture
def sandbox(tmp_path, mnist_path) -> Path:
    """A working directory with links to the workflow's sources and its own outputs."""
    subprocess.run(["bash", str(REPO / "scripts" / "sandbox.sh"), str(tmp_path)], check=True,
                   capture_output=True)
    return tmp_path


def snakemake_env(slurm: bool = False) -> dict:
    """The environment of a snakemake run: rules call `python`, so this interpreter comes first on
    PATH (as scripts/reproduce.sh does with the venv).

    Unless ``slurm``, SLURM_CONF is /dev/null. The slurm executor plugin runs `scontrol show config`
    whenever snakemake is imported; on a host with a slurm.conf but no controller running (such as
    this one once scripts/slurm_cluster.sh has run and stopped) that call waits 9 s before failing,
    for every snakemake started. An empty configuration makes it fail at once. Local runs never
    talk to SLURM; tests/test_slurm.py passes ``slurm=True`` for the runs that do."""
    env = {**os.environ, "PATH": os.pathsep.join((str(Path(sys.executable).parent), os.environ.get("PATH", "")))}
    if not slurm:
        env["SLURM_CONF"] = os.devnull
    return env


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 900,
              slurm: bool = False) -> subprocess.CompletedProcess:
    """Run snakemake in ``workdir`` with this interpreter; returns the finished process."""
    proc = subprocess.run([*SNAKEMAKE, "--cores", "2", *args], cwd=workdir, env=snakemake_env(slurm), text=True,
                          capture_output=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, mnist_path) -> Path:
    """A sandbox in which the whole `smoke` preset has run to paper/ms.pdf (shared by several tests)."""
    workdir = tmp_path_factory.mktemp("smoke")
    subprocess.run(["bash", str(REPO / "scripts" / "sandbox.sh"), str(workdir)], check=True, capture_output=True)
    snakemake(workdir, "--configfile", "presets/smoke.yaml")
    return workdir
