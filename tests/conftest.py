"""Shared fixtures: the real MNIST file (fetched once into resources/) and a sandbox
working directory for running the workflow without touching the checkout's results."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
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


@pytest.fixture(scope="module")
def mnist10_splits(tmp_path_factory, mnist_path) -> dict[int, Path]:
    """100-label mnist10 splits of seeds 0, 1 and 2, by seed (the many-runs-per-process tests)."""
    from fewlabels import data as D

    folder = tmp_path_factory.mktemp("splits")
    for s in (0, 1, 2):
        D.make_split(mnist_path, folder / f"{s}.npz", "mnist10", 100, seed=s)
    return {s: folder / f"{s}.npz" for s in (0, 1, 2)}


def make_sandbox(path: Path) -> Path:
    """``path`` made a working directory with links to the workflow's sources and its own outputs."""
    subprocess.run(["bash", str(REPO / "scripts" / "sandbox.sh"), str(path)], check=True, capture_output=True)
    return path


@pytest.fixture
def sandbox(tmp_path, mnist_path) -> Path:
    """A working directory with links to the workflow's sources and its own outputs."""
    return make_sandbox(tmp_path)


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
    return checked(proc, args) if check else proc


def checked(proc: subprocess.CompletedProcess, args) -> subprocess.CompletedProcess:
    """``proc``, or an AssertionError with the ends of snakemake's output when it failed."""
    if proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


class Background:
    """A snakemake run started now and waited for later, so that it overlaps other tests (the
    suite is mostly single-threaded: one of the two cores is often idle). Its output goes to
    files beside ``workdir`` (a pipe nobody reads could fill up and stall it)."""

    def __init__(self, workdir: Path, *args: str, timeout: int = 900):
        self.workdir, self.args = workdir, args
        self.deadline = time.monotonic() + timeout
        self.out = workdir.parent / f"{workdir.name}.snakemake.out"
        self.err = workdir.parent / f"{workdir.name}.snakemake.err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            # its own process group, so that stop() also ends the jobs it started
            self.proc = subprocess.Popen([*SNAKEMAKE, "--cores", "2", *args], cwd=workdir, env=snakemake_env(),
                                         stdout=out, stderr=err, text=True, start_new_session=True)
        self.result: subprocess.CompletedProcess | None = None

    def wait(self, check: bool = True) -> subprocess.CompletedProcess:
        """The finished process, as snakemake() returns it (and fails as it does)."""
        if self.result is None:
            try:
                rc = self.proc.wait(timeout=max(1.0, self.deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stop()
                raise
            self.result = subprocess.CompletedProcess(self.proc.args, rc, self.out.read_text(), self.err.read_text())
        return checked(self.result, self.args) if check else self.result

    def stop(self) -> None:
        """End the run and its jobs if it is still going (an interrupted session)."""
        if self.proc.poll() is None:
            for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
                try:
                    os.killpg(self.proc.pid, sig)
                    self.proc.wait(timeout=grace)
                    break
                except ProcessLookupError:
                    break
                except subprocess.TimeoutExpired:
                    continue


def uses_smoke_run(item) -> bool:
    return "smoke_run" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config, items):
    """The tests that read the smoke run go last, so that the run, started in the background
    with the first test (_smoke_in_background), overlaps every other test."""
    later = [item for item in items if uses_smoke_run(item)]
    items[:] = [item for item in items if not uses_smoke_run(item)] + later


def start_smoke_run(tmp_path_factory) -> Background:
    workdir = make_sandbox(tmp_path_factory.mktemp("smoke"))
    # it shares the CPU with the rest of the suite: a longer limit than a run of its own gets
    return Background(workdir, "--configfile", "presets/smoke.yaml", timeout=1800)


@pytest.fixture(scope="session", autouse=True)
def _smoke_in_background(request, tmp_path_factory):
    """Starts the `smoke` preset's run when the session starts, if a selected test reads it."""
    if not any(uses_smoke_run(item) for item in request.session.items):
        yield None
        return
    request.getfixturevalue("mnist_path")
    run = start_smoke_run(tmp_path_factory)
    yield run
    run.stop()


@pytest.fixture(scope="session")
def smoke_run(_smoke_in_background, tmp_path_factory) -> Path:
    """A sandbox in which the whole `smoke` preset has run to paper/ms.pdf (shared by several tests)."""
    run = _smoke_in_background or start_smoke_run(tmp_path_factory)
    run.wait()
    return run.workdir
