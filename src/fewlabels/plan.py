"""Which training path a workflow takes: one process per run, or each cell's seeds grouped in one process
(stacked and graph-captured on CUDA, several such jobs sharing the GPU).

The nets of this study are small: one run leaves a GPU mostly idle, so on CUDA the fast path is the default
(``group_runs: auto``): every seed of a (task, method, budget) trains in one process, stacked where the
method allows, its step in a CUDA graph, and up to ``GPU_SLOTS`` such jobs share the GPU (the ``gpu``
resource counts job slots, profiles/default/config.yaml). On the CPU, where stacking measured slower
(docs/speed.md), every run stays a job of its own.

Importing this module does not import torch (the Snakefile reads it when planning).
"""

from __future__ import annotations

import os
import shutil

GPU_SLOTS = 8  # group jobs sharing one GPU at once (profiles/default/config.yaml's gpu resource)
CUDA_ENV = "FEWLABELS_CUDA"  # "1" / "0": plan as if a CUDA GPU were / were not visible (planning a GPU box's run)


def cuda_visible() -> tuple[bool, str]:
    """Whether this machine's training jobs would see a CUDA GPU, and how that was found out."""
    forced = os.environ.get(CUDA_ENV)
    if forced in ("0", "1"):
        return forced == "1", f"{CUDA_ENV}={forced}"
    try:
        import torch
    except ImportError:  # e.g. --use-conda: torch lives only in the rules' environment
        found = shutil.which("nvidia-smi") is not None
        return found, "nvidia-smi " + ("found" if found else "not found")
    if torch.cuda.is_available():
        return True, f"torch sees {torch.cuda.get_device_name(0)}"
    return False, "torch sees no CUDA GPU"


def on_cuda(device: str, local: bool = True) -> tuple[bool, str]:
    """Whether training jobs will run on CUDA under ``device`` (cpu | cuda | auto), and why. Off this machine
    (a cluster), ``auto`` assumes the nodes have GPUs, as the jobs' ``gpu`` resource asks for them."""
    if device == "cpu":
        return False, "device: cpu"
    if device == "auto" and local:
        seen, how = cuda_visible()
        return seen, f"device: auto, {how}"
    return True, f"device: {device}" + ("" if local else " on a cluster")


def group_runs(setting, device: str, local: bool = True) -> tuple[bool, str]:
    """``group_runs`` (true | false | auto) resolved: auto groups exactly when the jobs train on CUDA."""
    if isinstance(setting, bool):
        return setting, f"group_runs: {str(setting).lower()}"
    if setting != "auto":
        raise ValueError(f"group_runs must be true, false or auto, got {setting!r}")
    cuda, why = on_cuda(device, local)
    return cuda, why


def describe(grouped: bool, cuda: bool, why: str) -> str:
    """The dry run's line: which path the workflow takes and why."""
    if grouped and cuda:
        return (f"training path: each cell's seeds in one process, stacked and graph-captured on CUDA, up to "
                f"{GPU_SLOTS} jobs sharing the GPU ({why})")
    if grouped:
        return f"training path: each cell's seeds in one process, one run after another on the CPU ({why})"
    if cuda:
        return f"training path: one process per run on CUDA, up to {GPU_SLOTS} jobs sharing the GPU ({why})"
    return f"training path: one process per run on the CPU, one job per core ({why})"
