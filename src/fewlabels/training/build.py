"""What the one-run trainer, groups and the stacked forms share: the device, seeding, a run's method
built in the one order every path uses, a run's random state, and determinism scoped to a run.
"""

from __future__ import annotations

import contextlib
import platform
import random
from pathlib import Path

import numpy as np
import torch

from ..data import TaskData, load_task, task_options
from ..methods import get as get_method
from ..methods.base import Method, resolve_hparams


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but torch {torch.__version__} sees no CUDA GPU; "
                           "use device: auto or device: cpu")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


@contextlib.contextmanager
def deterministic(dev: torch.device):
    """``torch.use_deterministic_algorithms`` for a run (or a group): on on the CPU, where it makes the
    numbers reproducible bit for bit, off on CUDA (cuBLAS refuses it), and back to what it was afterwards
    (also when the run fails), so the process that called the trainer (a test session, a group's next
    run on another device) does not inherit it. Every path that trains runs inside it: ``run``,
    ``run_group``."""
    was, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(dev.type == "cpu")
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was, warn_only=warn_only)


def build_method(cls: type, hp: dict, seed: int, mnist: Path, split: Path, dev: torch.device,
                 pool_limit: int | None = None, pretrained: Path | None = None, data=None):
    """A run's method, built in the one order every path shares (the numbers depend on it): seed
    everything, load the task (``data`` when the caller already loaded this split with the method's
    ``task_options``: loading draws nothing from the global RNGs), the batch generator
    seeded with ``seed``, the first stage's payload, the method. Call it inside ``deterministic``."""
    seed_everything(seed)
    if data is None:
        data = load_task(mnist, split, dev, pool_limit, **task_options(hp))
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    payload = torch.load(pretrained, map_location=dev, weights_only=False) if pretrained else None
    return cls(hp, data, dev, gen, payload)


def rng_state(gen: torch.Generator) -> dict:
    """A run's random state: the global generators (Python, numpy, torch, CUDA) and its batch generator."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state(), "gen": gen.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, gen: torch.Generator) -> None:
    """``rng_state``'s inverse: the global generators and ``gen`` set to ``state``."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if not torch.equal(gen.get_state(), state["gen"]):  # (a graph-registered CUDA generator: leave it be)
        gen.set_state(state["gen"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def global_torch_state(dev: torch.device) -> torch.Tensor:
    """The state of the global torch generator of ``dev`` (the CPU's or the CUDA device's)."""
    return torch.cuda.get_rng_state(dev) if dev.type == "cuda" else torch.get_rng_state()


def build_run(method: str | type[Method], hparams: dict | None, seed: int, mnist: Path, split: Path, device: torch.device,
              pool_limit: int | None = None, data: TaskData | None = None) -> tuple[Method, torch.Generator]:
    """One run's ``Method``, built as ``trainer.run`` builds it (``build.build_method``), and the
    generator that stands in for the global RNG from then on (the state the global RNG has after the
    initialisation: what the run's dropout masks would come from). Train it inside
    ``build.deterministic``, as the trainer does.

    tests/test_batched.py checks the result against ``trainer.run``.
    ``data``: the run's tensors when already loaded (``load_task`` of this ``split`` with the method's
    ``label_draw``/``unlabeled``; it draws nothing from the global RNGs, so loading it earlier changes
    no number): runs that share a split need not read MNIST again.
    """
    cls = get_method(method) if isinstance(method, str) else method
    m = build_method(cls, resolve_hparams(cls, hparams), seed, mnist, split, device, pool_limit, data=data)
    noise = torch.Generator(device=device)
    noise.set_state(global_torch_state(device))
    return m, noise
