"""The shared trainer and its CLI: one run -> ``metrics.json`` + ``history.csv`` + ``model.pt``.

The loop is the same for every method: seed everything, put the data on the
device, run ``epochs x steps_per_epoch`` calls of the method's ``train_step``,
evaluate its classifier once per epoch, checkpoint, and report the final epoch
(fixed in advance; test accuracy never chooses anything).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .data import MNIST_ARRAY_SHA256, DataError, atomic_write, file_sha256, load_task, task_options
from .methods import PRETRAIN
from .methods import get as get_method
from .methods.base import HParamError, Method, resolve_hparams
from .provenance import build_info, code_fingerprint, describe


class DivergedError(RuntimeError):
    """A loss became NaN or infinite."""


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


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 2000,
             context=contextlib.nullcontext) -> torch.Tensor:
    """Number of correct predictions (a 0-d tensor; no host sync here), in eval mode.
    ``context`` (a method's ``eval_context``) is entered after ``eval()``: a seed's test-time quirks."""
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=x.device)
    with context():
        for i in range(0, len(x), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum()
    model.train(was_training)
    return correct


def evaluate(m, clf, data) -> tuple[float, float]:
    """One epoch's evaluation: validation, then test accuracy, with the method's test-time context."""
    return tuple(int(accuracy(clf, x, y, context=m.eval_context)) / len(y)
                 for x, y in ((data.x_val, data.y_val), (data.x_test, data.y_test)))


def eval_variants(m, clf, data) -> dict:
    """The final model evaluated with each of its method's evaluation-only quirks flipped, and with
    all of them on and all off: what each test-time quirk of a seed is worth, on one trained model."""
    quirks = type(m).EVAL_QUIRKS
    if not quirks:
        return {}
    saved = {q: m.hp[q] for q in quirks}
    settings = {q: {**saved, q: not saved[q]} for q in quirks}
    settings["all_on"] = {q: True for q in quirks}
    settings["all_off"] = {q: False for q in quirks}
    out = {}
    try:
        for name, values in settings.items():
            m.hp.update(values)
            entry = {"value": values[name]} if name in quirks else {}
            for split, x, y in (("test", data.x_test, data.y_test), ("val", data.x_val, data.y_val)):
                entry[f"{split}_accuracy"] = int(accuracy(clf, x, y, context=m.eval_context)) / len(y)
            out[name] = entry
    finally:
        m.hp.update(saved)
    return out


def _rng_state(gen: torch.Generator) -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state(), "gen": gen.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, gen: torch.Generator) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if not torch.equal(gen.get_state(), state["gen"]):  # (a graph-registered CUDA generator: leave it be)
        gen.set_state(state["gen"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _torch_save(obj, path: Path) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def history_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()


def fingerprint_change(old, new: dict) -> str:
    """Which keys of a checkpoint's fingerprint differ from this run's, in words (for the log)."""
    if not isinstance(old, dict):
        return "it has no fingerprint"
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    def short(v):
        v = json.dumps(v, sort_keys=True, default=str)
        return v if len(v) <= 40 else v[:37] + "..."
    what = "; ".join(f"{k} was {short(old.get(k))}, is {short(new.get(k))}" for k in keys)
    hint = " (the code changed since it was written)" if "code_sha256" in keys else ""
    return f"it was made with another configuration: {what}{hint}"


def build_method(cls: type, hp: dict, seed: int, mnist: Path, split: Path, dev: torch.device,
                 pool_limit: int | None = None, pretrained: Path | None = None, data=None):
    """A run's method, built in the one order every path shares (the numbers depend on it): seed
    everything, load the task (``data`` when the caller already loaded this split with the method's
    ``task_options``: loading draws nothing from the global RNGs), the batch generator
    seeded with ``seed``, the first stage's payload, the method."""
    seed_everything(seed)
    if dev.type == "cpu":
        torch.use_deterministic_algorithms(True)
    if data is None:
        data = load_task(mnist, split, dev, pool_limit, **task_options(hp))
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    payload = torch.load(pretrained, map_location=dev, weights_only=False) if pretrained else None
    return cls(hp, data, dev, gen, payload)


class Run:
    """One (method, task, labels, seed) run, in the pieces every path shares: built and resumed
    (``__init__``), one epoch's bookkeeping (``end_epoch``: divergence check, evaluation, history row,
    checkpoint), and its files (``finish``). ``run`` drives one; ``run_group`` drives several in one
    process, one after another or stacked (``fewlabels.batched``).

    ``rng``: the run's own random state (``_rng_state``: the global generators and the batch
    generator) as it stands between epochs; the one-run path keeps it in the global generators,
    a stacked group swaps it in around each run's evaluation and checkpoint.
    """

    def __init__(self, *, method: str, task: str, labels: int | None, seed: int, mnist: Path, split: Path,
                 out: Path, hparams: dict | None = None, device: str = "auto", pool_limit: int | None = None,
                 pretrained: Path | None = None, checkpoint: Path | None = None, name: str | None = None,
                 log=print, code: dict | None = None):
        self.t_start = time.perf_counter()
        self.code = code or code_fingerprint()  # once per run (or group): what code made it
        self.method, self.task, self.labels, self.seed, self.name = method, task, labels, seed, name
        self.out, self.checkpoint, self.pretrained, self.pool_limit, self.log = out, checkpoint, pretrained, pool_limit, log
        self.cls = get_method(method)
        self.hp = resolve_hparams(self.cls, hparams)
        self.dev = pick_device(device)
        self.m = build_method(self.cls, self.hp, seed, mnist, split, self.dev, pool_limit, pretrained)
        self.data, self.gen = self.m.data, self.m.gen
        self.steps = self.m.steps_per_epoch()
        self.clf = self.m.classifier()
        self.rng = _rng_state(self.gen)  # the state the first training step starts from
        self.history: list[dict] = []
        self.start_epoch, self.train_s = 1, 0.0
        # What a checkpoint must match to be resumed: anything that changes the numbers.
        self.fingerprint = {
            "method": method, "name": name, "hparams": self.hp, "split_sha256": self.data.split_sha256, "seed": seed,
            "pool_limit": pool_limit, "mnist_sha256": MNIST_ARRAY_SHA256, "fewlabels": __version__,
            "pretrained_sha256": file_sha256(pretrained) if pretrained else None, "device": self.dev.type,
            # the sources' hash, not the commit: committing unchanged code must not restart runs
            "code_sha256": self.code["sha256"]}

    def resume(self) -> None:
        """Take up the checkpoint when there is one made by this configuration (``rng`` included)."""
        if not (self.checkpoint and Path(self.checkpoint).exists()):
            return
        # On the CPU: RNG states must stay CPU tensors; load_state_dict moves the rest.
        ck = torch.load(self.checkpoint, map_location="cpu", weights_only=False)
        if ck.get("fingerprint") != self.fingerprint:
            self.log(f"ignoring checkpoint {self.checkpoint} and starting again: "
                     f"{fingerprint_change(ck.get('fingerprint'), self.fingerprint)}")
            return
        self.m.load_state_dict(ck["method"])
        self.rng = ck["rng"]
        self.history, self.start_epoch, self.train_s = ck["history"], ck["epoch"] + 1, ck["train_s"]
        self.log(f"resuming from {self.checkpoint} after epoch {ck['epoch']}")

    def end_epoch(self, epoch: int, sums: dict[str, torch.Tensor], seconds: float) -> None:
        """After an epoch's steps (``sums``: the losses summed over them; ``seconds``: its training
        time): stop on a diverged loss, evaluate, log, checkpoint. The run's random state must be
        in the global generators (its evaluation may draw from them: a test-time quirk)."""
        self.m.on_epoch_end(epoch)
        self.train_s += seconds
        means = {k: float(v) / self.steps for k, v in sums.items()}  # one sync per epoch
        bad = [k for k, v in means.items() if not math.isfinite(v)]
        if bad:
            raise DivergedError(f"{self.method}: loss {', '.join(bad)} became {means[bad[0]]} in epoch {epoch} "
                                f"(seed {self.seed}, labels {self.labels}); the run diverged and no metrics were "
                                "written. Lower the learning rate or check the inputs.")
        val, test = evaluate(self.m, self.clf, self.data)
        self.history.append({"epoch": epoch, "step": epoch * self.steps, **{f"loss_{k}": v for k, v in means.items()},
                             "val_accuracy": val, "test_accuracy": test, "train_s": round(self.train_s, 3)})
        self.log(f"epoch {epoch}/{self.hp['epochs']} " + " ".join(f"{k}={v:.4f}" for k, v in means.items())
                 + f" val={val:.4f} ({self.train_s:.1f}s)")  # test accuracy only in history.csv: nothing selects on it
        self.rng = _rng_state(self.gen)
        if self.checkpoint:
            _torch_save({"epoch": epoch, "fingerprint": self.fingerprint, "method": self.m.state_dict(),
                         "rng": self.rng, "history": self.history, "train_s": self.train_s}, Path(self.checkpoint))

    def finish(self, keep_checkpoint: bool = False, group: int = 1) -> dict:
        """Final evaluation and the run's files (metrics.json last: it marks the run complete).
        ``keep_checkpoint``: leave the final checkpoint (a group deletes its runs' only when all are
        written, so that a group job that fails later finishes these again without training).
        ``group``: how many runs the process trained together (recorded with the timing)."""
        m, clf, data, hp = self.m, self.clf, self.data, self.hp
        n_test = len(data.y_test)
        correct = int(accuracy(clf, data.x_test, data.y_test, context=m.eval_context))
        total_steps = hp["epochs"] * self.steps
        pretrained = self.pretrained
        metrics = {
            "run": {"method": self.name or self.method, "base_method": self.method, "task": self.task,
                    "labels": self.labels, "seed": self.seed,
                    # labels None: every pool image labeled; a first stage, or a full-label reference run
                    "stage": "pretrain" if self.labels is None and self.cls.NAME in PRETRAIN else "train"},
            "hparams": hp,
            "data": {"split_sha256": data.split_sha256, "mnist_sha256": MNIST_ARRAY_SHA256,
                     "pool_limit": self.pool_limit, "n_labeled": len(data.x_lab), "n_unlabeled": len(data.x_pool),
                     "n_val": len(data.y_val), "n_test": n_test,
                     "pretrained_sha256": file_sha256(pretrained) if pretrained else None,
                     "labels_used": m.labels_used(), "labels_used_total": sum(m.labels_used().values())},
            "results": {"test_accuracy": correct / n_test, "test_errors": n_test - correct,
                        "test_error_per_10k": round((n_test - correct) / n_test * 1e4, 1),
                        "val_accuracy": self.history[-1]["val_accuracy"], "final_epoch": hp["epochs"],
                        **m.extra_metrics(), "eval_variants": eval_variants(m, clf, data)},
            "env": {"fewlabels": __version__, "torch": torch.__version__, "numpy": np.__version__,
                    "python": platform.python_version(), "device": self.dev.type,
                    "device_name": device_name(self.dev), **build_info(), "code_sha256": self.code["sha256"],
                    "code_git": self.code["git"]},
            # group > 1: wall_s is from the group's start, train_s this run's share of the group's time
            "timing": {"wall_s": round(time.perf_counter() - self.t_start, 3), "train_s": round(self.train_s, 3),
                       "steps": total_steps, "group_runs": group,
                       "samples_per_s": round(total_steps * m.samples_per_step() / max(self.train_s, 1e-9), 1)},
        }
        out = Path(self.out)
        out.mkdir(parents=True, exist_ok=True)
        _torch_save(m.payload(), out / "model.pt")
        _write_text(out / "history.csv", history_csv(self.history))
        _write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")  # last: marks the run complete
        if self.checkpoint and not keep_checkpoint:
            Path(self.checkpoint).unlink(missing_ok=True)
        self.log(f"done: test accuracy {correct / n_test:.4f} ({n_test - correct} errors of {n_test}), "
                 f"{metrics['timing']['samples_per_s']:.0f} samples/s on {device_name(self.dev)}; "
                 f"code {describe(self.code)}")
        return metrics


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _add_losses(sums: dict[str, torch.Tensor], losses: dict[str, torch.Tensor]) -> None:
    """A step's losses into the epoch's sums (on the device: no host sync)."""
    for k, v in losses.items():
        sums[k] = sums[k] + v if k in sums else v.clone()


def _train_alone(r: Run) -> None:
    """The epochs left to one run, its random state in the global generators."""
    _set_rng_state(r.rng, r.gen)
    for epoch in range(r.start_epoch, r.hp["epochs"] + 1):
        _sync(r.dev)
        t0 = time.perf_counter()
        sums: dict[str, torch.Tensor] = {}
        for _ in range(r.steps):
            _add_losses(sums, r.m.train_step())
        _sync(r.dev)
        r.end_epoch(epoch, sums, time.perf_counter() - t0)


def run(*, method: str, task: str, labels: int | None, seed: int, mnist: Path, split: Path, out: Path,
        hparams: dict | None = None, device: str = "auto", pool_limit: int | None = None,
        pretrained: Path | None = None, checkpoint: Path | None = None, dry_run: bool = False,
        name: str | None = None, log=print) -> dict:
    """Train one (method, task, labels, seed) run and write its files into ``out``.

    ``name`` is what the run is called in metrics.json when it is a named variant of ``method``
    (a preset's ``variants:``, e.g. a seed's protocol as published); by default the method's name.

    ``checkpoint`` is where the per-epoch checkpoint lives (outside ``out``, so that
    Snakemake does not delete it with a failed job's outputs); a run that finds one
    resumes from it and ends with the same numbers as an uninterrupted run.
    """
    r = Run(method=method, task=task, labels=labels, seed=seed, mnist=mnist, split=split, out=out, hparams=hparams,
            device=device, pool_limit=pool_limit, pretrained=pretrained, checkpoint=checkpoint, name=name, log=log)
    if dry_run:
        losses = r.m.train_step()
        log(f"dry run: {method} on {task}, {len(r.data.x_lab)} labeled, {len(r.data.x_pool)} unlabeled, "
            f"{r.steps} steps/epoch x {r.hp['epochs']} epochs on {device_name(r.dev)}; "
            f"first step losses {({k: float(v) for k, v in losses.items()})}")
        return {}
    r.resume()
    _train_alone(r)
    return r.finish()


def _global_torch_state(dev: torch.device) -> torch.Tensor:
    return torch.cuda.get_rng_state(dev) if dev.type == "cuda" else torch.get_rng_state()


def _train_stacked(runs: list[Run], log, last_epoch: int | None = None, capture: str = "auto") -> None:
    """The runs' epochs trained together (``fewlabels.batched.make_stacked``: ``StackedRuns`` or the
    method's own stacker); each run's evaluation and checkpoint as the one-run path makes them, its
    random state swapped into the global generators around them. The stacked dropout masks (and noise)
    come from a generator per run that carries the run's global state, so on the CPU every number equals the one-run path's up to the order of float sums
    (tests/test_group.py). ``last_epoch``: stop after it (default: the schedule's last).
    ``capture``: "auto" records the stacked step in a CUDA graph on a GPU (``fewlabels.capture``; the
    first epoch's first steps run eagerly as its warm-up, and a step that cannot be captured runs
    eagerly, with a log line); "off" always eager."""
    from .batched import graph_safe, make_stacked

    dev = runs[0].dev
    for r in runs:  # each run's batch generator where its last epoch (or its build) left it
        _set_rng_state(r.rng, r.gen)
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
        _sync(dev)
        t0 = time.perf_counter()
        sums: dict[str, torch.Tensor] = {}

        def add(losses):  # (capture_step hands its warm-up steps' losses here too)
            _add_losses(sums, losses)

        left = r0.steps
        if step is None:
            if cuda:
                from .capture import capture_step

                step, taken = capture_step(st.train_step, dev, log=log, taken_out=add,
                                           generators=[m.gen for m in st.methods] + list(st.noise))
                left -= taken
            else:
                step = st.train_step
        for _ in range(left):
            add(step())
        _sync(dev)
        share = (time.perf_counter() - t0) / len(runs)
        st.unstack()
        for i, (r, g) in enumerate(zip(runs, noise)):
            r.rng["gen"] = r.gen.get_state()
            if dev.type == "cuda":
                r.rng["cuda"][dev.index or 0] = g.get_state()
            else:
                r.rng["torch"] = g.get_state()
            _set_rng_state(r.rng, r.gen)
            r.end_epoch(epoch, {k: v[i] for k, v in sums.items()}, share)
            drawn = _global_torch_state(dev)  # what its evaluation drew, if anything
            if not torch.equal(drawn, g.get_state()):
                g.set_state(drawn)
        if hasattr(st, "resync"):  # what the runs' epoch ends changed (a schedule, BN statistics), back
            st.resync()


def stackable(runs: list[Run]) -> str | None:
    """Why these runs (two or more of a method in ``batched.STACKABLE``: ``run_group`` checks that before
    building them) cannot train stacked, or None when they can."""
    from .batched import OWN_STACKER, why_not_stacked

    r0 = runs[0]
    if r0.cls.NAME not in OWN_STACKER and type(r0.m).on_epoch_end is not Method.on_epoch_end:
        return f"{r0.cls.NAME} has an epoch-end hook, which stacked runs do not call"
    why = why_not_stacked(r0.m)
    if why:
        return why
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

    ``stack``: "on" trains the runs stacked (one method of ``batched.STACKABLE``, same hyperparameters,
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
    from .batched import STACKABLE

    code = code_fingerprint()
    if stack == "auto" and pick_device(specs[0].get("device", "auto")).type != "cuda":
        stack = "off"
    if stack == "off" or len(specs) < 2 or get_method(specs[0]["method"]).NAME not in STACKABLE:
        if stack == "on":
            raise ValueError(f"cannot stack {len(specs)} run(s) of {specs[0]['method']}: batched runs support "
                             f"{list(STACKABLE)}, two runs or more")
        return _one_after_another(specs, code, log)
    runs: list[Run] = []
    for spec in specs:
        runs.append(Run(**spec, log=log, code=code))
        runs[-1].resume()
    why = stackable(runs)
    if why is None:
        _train_stacked(runs, log, capture=capture)
    elif stack == "on":
        raise ValueError(f"cannot stack these runs: {why}")
    else:  # auto on a GPU
        log(f"training {len(runs)} runs one after another in one process (not stacked: {why})")
        for r in runs:
            _train_alone(r)
    return _finish_group(runs)


def _one_after_another(specs: list[dict], code: dict, log) -> list[dict]:
    """Each run built, trained and written in turn (one run's data in memory at a time)."""
    if len(specs) > 1:
        log(f"training {len(specs)} runs one after another in one process")
    done = []
    for spec in specs:
        r = Run(**spec, log=log, code=code)
        r.resume()
        _train_alone(r)
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


def _per_run(values: list | None, n: int, flag: str) -> list:
    """A per-run CLI list: one value per --seed (or none at all)."""
    if not values:
        return [None] * n
    if len(values) != n:
        raise HParamError(f"{flag} takes one value per --seed: {n} seed(s), {len(values)} value(s)")
    return values


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m fewlabels.train", description=__doc__)
    p.add_argument("--method", required=True, help="a registered method or first stage")
    p.add_argument("--name", default=None, help="the run's name when it is a named variant of --method")
    p.add_argument("--task", required=True)
    p.add_argument("--labels", required=True, help="label budget, or 'all' (every pool image: a first stage, or a full-label run)")
    p.add_argument("--seed", required=True, type=int, nargs="+",
                   help="one seed, or several: a group of runs in one process (--split, --out, --checkpoint "
                        "and --pretrained then take one value per seed)")
    p.add_argument("--mnist", required=True, type=Path)
    p.add_argument("--split", required=True, type=Path, nargs="+")
    p.add_argument("--out", required=True, type=Path, nargs="+", help="folder for metrics.json, history.csv, model.pt")
    p.add_argument("--hparams", default="{}", help="JSON object of hyperparameter overrides")
    p.add_argument("--device", default="auto")
    p.add_argument("--pool-limit", type=int, default=None)
    p.add_argument("--pretrained", type=Path, default=None, nargs="+", help="model.pt of the first stage")
    p.add_argument("--checkpoint", type=Path, default=None, nargs="+")
    p.add_argument("--stack", choices=["auto", "on", "off"], default="auto",
                   help="several seeds: stacked (fewlabels.batched) or one after another; auto: stacked on a "
                        "GPU when the method allows, one after another on the CPU")
    p.add_argument("--capture", choices=["auto", "off"], default="auto",
                   help="stacked runs on CUDA: record the training step in a CUDA graph (auto) or not")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--dry-run", action="store_true", help="build everything, take one step, write nothing")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    log = lambda s: print(s, flush=True)  # noqa: E731
    try:
        hparams = json.loads(args.hparams)
        if not isinstance(hparams, dict):
            raise HParamError("--hparams must be a JSON object")
        n = len(args.seed)
        specs = [dict(method=args.method, task=args.task, labels=None if args.labels == "all" else int(args.labels),
                      seed=seed, mnist=args.mnist, split=split, out=out, hparams=hparams, device=args.device,
                      pool_limit=args.pool_limit, pretrained=pre, checkpoint=ck, name=args.name)
                 for seed, split, out, pre, ck in zip(args.seed, _per_run(args.split, n, "--split"),
                                                      _per_run(args.out, n, "--out"),
                                                      _per_run(args.pretrained, n, "--pretrained"),
                                                      _per_run(args.checkpoint, n, "--checkpoint"))]
        if args.dry_run:
            for spec in specs:
                run(**spec, dry_run=True, log=log)
        elif n == 1:
            run(**specs[0], log=log)
        else:
            run_group(specs, stack=args.stack, log=log, capture=args.capture)
    except (DataError, HParamError, DivergedError, KeyError, ValueError) as e:  # JSONDecodeError is a ValueError
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
