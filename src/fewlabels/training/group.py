"""Groups of runs in one process (``--seed 0 1 2 ...``): one after another, or stacked (every run's
step in one ``vmap``-ed step: the method's stacked form, ``fewlabels.methods.stacked``), each run writing what it writes alone.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..methods import get as get_method
from ..methods.base import Method
from ..provenance import code_fingerprint, run_code_sha256
from .build import deterministic, global_torch_state, pick_device, set_rng_state
from ..methods.stacked import OWN_STACKER, STACKABLE, make_stacked, why_not_stacked
from ..methods.stacked.common import graph_safe
from .capture import capture_step
from .trainer import Run, add_losses, sync, train_alone


def train_stacked(runs: list[Run], log, last_epoch: int | None = None, capture: str = "auto") -> None:
    """The runs' epochs trained together (``stacked.make_stacked``: ``StackedRuns`` or the
    method's own stacker); each run's evaluation and checkpoint as the one-run path makes them, its
    random state swapped into the global generators around them. The stacked dropout masks (and noise)
    come from a generator per run that carries the run's global state, so on the CPU every number equals
    the one-run path's up to the order of float sums (tests/test_group.py). ``last_epoch``: stop after it
    (default: the schedule's last). Call it inside ``build.deterministic`` (``run_group`` does).
    ``capture``: "auto" records the stacked step in a CUDA graph on a GPU (``capture``; the
    first epoch's first steps run eagerly as its warm-up, and a step that cannot be captured runs
    eagerly, with a log line); "off" always eager."""
    dev = runs[0].dev
    for r in runs:  # each run's batch generator where its last epoch (or its build) left it
        set_rng_state(r.rng, r.gen)
    # each run's global state moves into a generator of its own: its dropout masks are drawn from it
    noise = [torch.Generator(device=dev) for _ in runs]
    for r, g in zip(runs, noise):
        g.set_state(r.rng["cuda"][dev.index or 0] if dev.type == "cuda" else r.rng["torch"])
    cuda = dev.type == "cuda" and capture != "off"
    if cuda and not graph_safe(runs[0].m):
        log(f"capture: {runs[0].cls.NAME} draws its minibatches in Python (an epoch sampler), which a CUDA "
            "graph would replay unchanged; training steps run eagerly")
        cuda = False
    st = make_stacked([(r.m, g) for r, g in zip(runs, noise)], capturable=cuda)
    r0 = runs[0]
    log(f"training {len(runs)} runs of {r0.method} stacked in one process (seeds {[r.seed for r in runs]})")
    step = None  # on CUDA: the captured step, made in the first epoch trained here
    for epoch in range(r0.start_epoch, (last_epoch or r0.hp["epochs"]) + 1):
        sync(dev)
        t0 = time.perf_counter()
        sums: dict[str, torch.Tensor] = {}

        def add(losses):  # (capture_step hands its warm-up steps' losses here too)
            add_losses(sums, losses)

        left = r0.steps
        if step is None:
            if cuda:
                step, taken = capture_step(st.train_step, dev, log=log, taken_out=add,
                                           generators=[m.gen for m in st.methods] + list(st.noise))
                left -= taken
            else:
                step = st.train_step
        for _ in range(left):
            add(step())
        sync(dev)
        share = (time.perf_counter() - t0) / len(runs)
        st.unstack()
        for i, (r, g) in enumerate(zip(runs, noise)):
            r.rng["gen"] = r.gen.get_state()
            if dev.type == "cuda":
                r.rng["cuda"][dev.index or 0] = g.get_state()
            else:
                r.rng["torch"] = g.get_state()
            set_rng_state(r.rng, r.gen)
            r.end_epoch(epoch, {k: v[i] for k, v in sums.items()}, share)
            drawn = global_torch_state(dev)  # what its evaluation drew, if anything
            if not torch.equal(drawn, g.get_state()):
                g.set_state(drawn)
        if hasattr(st, "resync"):  # what the runs' epoch ends changed (a schedule, BN statistics), back
            st.resync()


def stackable(runs: list[Run]) -> str | None:
    """Why these runs (two or more of a method in ``stacked.STACKABLE``: ``run_group`` checks that before
    building them) cannot train stacked, or None when they can."""
    r0 = runs[0]
    if r0.cls.NAME not in OWN_STACKER and type(r0.m).on_epoch_end is not Method.on_epoch_end:
        return f"{r0.cls.NAME} has an epoch-end hook, which stacked runs do not call"
    why = why_not_stacked(r0.m)
    if why:
        return why
    if r0.precision != "fp32":  # the stacked step has no autocast (one after another follows the setting)
        return (f"precision {r0.hp['precision']!r} trains in {r0.precision} here and stacked runs train in fp32 "
                "only; set precision: fp32 to stack them, or --stack off to train them one after another in "
                f"{r0.precision}")
    if any(r.hp != r0.hp for r in runs):
        return "the runs' hyperparameters differ"
    if len({r.start_epoch for r in runs}) > 1:
        return f"their checkpoints are at different epochs ({sorted({r.start_epoch - 1 for r in runs})})"
    if any(r.start_epoch > r.hp["epochs"] for r in runs):
        return "they are already trained"
    return None


def run_group(specs: list[dict], stack: str = "auto", log=print, capture: str = "auto") -> list[dict]:
    """Several runs in one process: ``specs``, each a dict of ``run``'s keyword arguments (one method,
    task and budget; e.g. every seed). Each run writes its own files and checkpoint, as ``run`` does.

    ``stack``: "on" trains the runs stacked (one method of ``stacked.STACKABLE``, same hyperparameters,
    same epoch: ``stackable``) or fails; "off" one after another (each then equals its ``run`` bit for
    bit); "auto" stacks on a GPU when ``stackable`` and goes one after another on the CPU, where the
    stacked step measured slower than N single steps (README, Speed).

    Checkpoints are deleted only once every run's files are written: a group that fails (a killed job,
    one diverged run) leaves each run at its last epoch, and running the group again finishes the
    finished runs from their final checkpoint without training them again.
    ``capture``: a stacked group on CUDA records its step in a CUDA graph ("auto") or not ("off").
    """
    if stack not in ("auto", "on", "off"):
        raise ValueError(f"stack must be auto, on or off, not {stack!r}")
    if not specs:
        raise ValueError("a group needs at least one run")
    dev = pick_device(specs[0].get("device", "auto"))
    code = {"code": code_fingerprint(), "run_code": run_code_sha256()}  # once for the group
    if stack == "auto" and dev.type != "cuda":
        stack = "off"
    with deterministic(dev):
        if stack == "off" or len(specs) < 2 or get_method(specs[0]["method"]).NAME not in STACKABLE:
            if stack == "on":
                raise ValueError(f"cannot stack {len(specs)} run(s) of {specs[0]['method']}: batched runs "
                                 f"support {list(STACKABLE)}, two runs or more")
            return _one_after_another(specs, code, log)
        runs: list[Run] = []
        for spec in specs:
            runs.append(Run(**spec, log=log, **code))
            runs[-1].resume()
        why = stackable(runs)
        if why is None:
            train_stacked(runs, log, capture=capture)
        elif stack == "on":
            raise ValueError(f"cannot stack these runs: {why}")
        else:  # auto on a GPU
            log(f"training {len(runs)} runs one after another in one process (not stacked: {why})")
            for r in runs:
                train_alone(r)
        return _finish_group(runs)


def _one_after_another(specs: list[dict], code: dict, log) -> list[dict]:
    """Each run built, trained and written in turn (one run's data in memory at a time). ``code``:
    ``Run``'s ``code`` and ``run_code``, computed once for the group."""
    if len(specs) > 1:
        log(f"training {len(specs)} runs one after another in one process")
    done = []
    for spec in specs:
        r = Run(**spec, log=log, **code)
        r.resume()
        train_alone(r)
        done.append(r.finish(keep_checkpoint=True, group=len(specs)))
    _drop_checkpoints([spec.get("checkpoint") for spec in specs])
    return done


def _finish_group(runs: list[Run]) -> list[dict]:
    metrics = [r.finish(keep_checkpoint=True, group=len(runs)) for r in runs]
    _drop_checkpoints([r.checkpoint for r in runs])
    return metrics


def _drop_checkpoints(paths: list) -> None:
    """A group's checkpoints, once every run's files are written (not before: a group that failed
    earlier finishes its finished runs from their final checkpoints, without training)."""
    for path in paths:
        if path:
            Path(path).unlink(missing_ok=True)


