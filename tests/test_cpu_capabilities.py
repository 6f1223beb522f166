"""The numerical comparisons hold whatever kernels the CPU dispatches to.

Tests marked ``numerical`` compare two computations that sum in a different order (stacked runs
against runs alone). Their tolerances must hold on AVX2 and AVX-512 machines alike and under any
thread count, so the suite runs them a second time here, in a subprocess with
``ATEN_CPU_CAPABILITY=default`` (torch's plain kernels, other summation orders than the vectorised
ones this process uses) and one thread: a tolerance that is too tight fails here, not in somebody
else's CI on another CPU.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from conftest import REPO


@pytest.mark.slow
def test_numerical_comparisons_hold_under_the_default_cpu_capability(mnist_path):
    if torch.backends.cpu.get_cpu_capability() == "DEFAULT":
        pytest.skip("this process already runs torch's default kernels")
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "1"}
    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                           env=env, capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "DEFAULT", f"ATEN_CPU_CAPABILITY=default was not honoured: {probe.stdout}"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "numerical", "-p", "no:cacheprovider"],
                          cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, "numerical tests fail under ATEN_CPU_CAPABILITY=default:\n" + proc.stdout[-6000:]
