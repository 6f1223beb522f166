"""The one-run trainer: one (method, task, labels, seed) run -> ``metrics.json`` + ``history.csv`` + ``model.pt``.

The loop is the same for every method: seed everything, put the data on the device, run
``epochs x steps_per_epoch`` calls of the method's ``train_step``, evaluate its classifier once per
epoch, checkpoint, and report the final epoch (fixed in advance; test accuracy never chooses anything).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..data import MNIST_ARRAY_SHA256, atomic_write, file_sha256
from ..methods import PRETRAIN
from ..methods import get as get_method
from ..methods.base import DivergedError, resolve_hparams
from ..precision import autocast, native_bf16
from ..precision import resolve as resolve_precision
from ..provenance import build_info, code_fingerprint, describe, run_code_sha256
from .build import build_method, deterministic, device_name, pick_device, rng_state, set_rng_state

# What a checkpoint holds besides its fingerprint (``Run.end_epoch`` writes them).
CHECKPOINT_KEYS = ("epoch", "method", "rng", "history", "train_s")
RNG_KEYS = ("python", "numpy", "torch", "gen")


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


def torch_save(obj, path: Path) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def write_text(path: Path, text: str) -> None:
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
    hint = (" (the code that trains it, data, nets, config, methods or training, changed since it was written)"
            if "run_code_sha256" in keys else "")
    return f"it was made with another configuration: {what}{hint}"


class Run:
    """One (method, task, labels, seed) run, in the pieces every path shares: built and resumed
    (``__init__``, ``resume``), one epoch's bookkeeping (``end_epoch``: divergence check, evaluation,
    history row, checkpoint), and its files (``finish``). ``run`` drives one; ``group.run_group`` drives
    several in one process, one after another or stacked (``fewlabels.methods.stacked``).

    ``rng``: the run's own random state (``build.rng_state``: the global generators and the batch
    generator) as it stands between epochs; the one-run path keeps it in the global generators,
    a stacked group swaps it in around each run's evaluation and checkpoint.

    ``code``: the whole tree's fingerprint (``provenance.code_fingerprint``, recorded in metrics.json);
    ``run_code``: the hash of the code that makes a run's numbers (``provenance.run_code_sha256``),
    which a checkpoint must match. A group computes both once and hands them to its runs.
    """

    def __init__(self, *, method: str, task: str, labels: int | None, seed: int, mnist: Path, split: Path,
                 out: Path, hparams: dict | None = None, device: str = "auto", pool_limit: int | None = None,
                 pretrained: Path | None = None, checkpoint: Path | None = None, name: str | None = None,
                 log=print, code: dict | None = None, run_code: str | None = None):
        self.t_start = time.perf_counter()
        self.code = code or code_fingerprint()  # once per run (or group): what code made it
        self.run_code = run_code or run_code_sha256()
        self.method, self.task, self.labels, self.seed, self.name = method, task, labels, seed, name
        self.mnist, self.split = mnist, split
        self.out, self.checkpoint, self.pretrained, self.pool_limit, self.log = out, checkpoint, pretrained, pool_limit, log
        self.cls = get_method(method)
        self.hp = resolve_hparams(self.cls, hparams)
        self.dev = pick_device(device)
        self.precision = resolve_precision(self.hp["precision"], self.dev)  # "fp32" or "bf16", as it trains
        if self.precision == "bf16" and not native_bf16(self.dev):
            log(f"precision bf16 on {device_name(self.dev)}, which does not compute bf16 natively: "
                "emulated, likely slower than fp32 (precision: auto picks fp32 here)")
        self.build()
        # What a checkpoint must match to be resumed: anything that changes the numbers.
        self.fingerprint = {
            "method": method, "name": name, "hparams": self.hp, "split_sha256": self.data.split_sha256, "seed": seed,
            "pool_limit": pool_limit, "mnist_sha256": MNIST_ARRAY_SHA256, "fewlabels": __version__,
            "pretrained_sha256": file_sha256(pretrained) if pretrained else None, "device": self.dev.type,
            "precision": self.precision,  # resolved: "auto" trains in bf16 on one machine and fp32 on another
            # the training code's hash, not the commit (committing unchanged code must not restart runs),
            # and not the whole tree's (an edit to a figure must not restart them either)
            "run_code_sha256": self.run_code}

    def amp(self):
        """The context of one training step or evaluation in the run's precision (fp32: none)."""
        return autocast(self.precision, self.dev)

    def build(self) -> None:
        """The run's method as it stands before its first step (``build.build_method``), no epoch done."""
        self.m = build_method(self.cls, self.hp, self.seed, self.mnist, self.split, self.dev, self.pool_limit,
                              self.pretrained)
        self.data, self.gen = self.m.data, self.m.gen
        self.steps = self.m.steps_per_epoch()
        self.clf = self.m.classifier()
        self.rng = rng_state(self.gen)  # the state the first training step starts from
        self.history: list[dict] = []
        self.start_epoch, self.train_s = 1, 0.0

    def resume(self) -> None:
        """Take up the checkpoint when there is one made by this configuration (``rng`` included).
        One made by another configuration is ignored (the run's next checkpoint replaces it); one that
        cannot be read or does not hold what a checkpoint holds is set aside (``set_aside``) and the run
        starts again from scratch, with a log line that names the file and says why."""
        path = Path(self.checkpoint) if self.checkpoint else None
        if not (path and path.exists()):
            return
        try:  # On the CPU: RNG states must stay CPU tensors; load_state_dict moves the rest.
            ck = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:  # noqa: BLE001 (a truncated zip, a pickle error, an empty file: all unreadable)
            self.set_aside(f"it cannot be read ({type(e).__name__}: {_first_line(e)})")
            return
        if not isinstance(ck, dict):
            self.set_aside(f"it holds a {type(ck).__name__}, not a checkpoint")
            return
        if ck.get("fingerprint") != self.fingerprint:
            self.log(f"ignoring checkpoint {path} and starting again: "
                     f"{fingerprint_change(ck.get('fingerprint'), self.fingerprint)}")
            return
        why = self.inconsistency(ck)
        if why is None:
            try:
                set_rng_state(ck["rng"], torch.Generator(device=self.dev))  # a random state torch can take
                self.m.load_state_dict(ck["method"])
            except Exception as e:  # noqa: BLE001 (wrong shapes, missing keys, a broken random state)
                why = f"its state does not load ({type(e).__name__}: {_first_line(e)})"
        if why is not None:
            self.set_aside(why)
            self.build()  # load_state_dict may have taken part of it: the method again, as built
            return
        self.rng = ck["rng"]
        self.history, self.start_epoch, self.train_s = ck["history"], ck["epoch"] + 1, ck["train_s"]
        self.log(f"resuming from {path} after epoch {ck['epoch']}")

    def inconsistency(self, ck: dict) -> str | None:
        """What is wrong with a checkpoint of this configuration (``end_epoch`` writes it), or None."""
        missing = [k for k in CHECKPOINT_KEYS if k not in ck]
        if missing:
            return f"it lacks {', '.join(missing)}"
        epoch, history, rng = ck["epoch"], ck["history"], ck["rng"]
        if not isinstance(epoch, int) or not 1 <= epoch <= self.hp["epochs"]:
            return f"its epoch {epoch!r} is not one of 1..{self.hp['epochs']}"
        if not isinstance(history, list) or len(history) != epoch:
            return f"its history does not hold {epoch} epoch(s)"
        if not isinstance(rng, dict) or any(k not in rng for k in RNG_KEYS):
            return "its random state is incomplete"
        if not isinstance(ck["train_s"], (int, float)):
            return "its training time is not a number"
        return None

    def set_aside(self, why: str) -> None:
        """Rename a damaged checkpoint to ``<name>.damaged-<time>`` (kept for a look, never read again)
        and say so; the run then starts from scratch."""
        path = Path(self.checkpoint)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = path.with_name(f"{path.name}.damaged-{stamp}")
        n = 1
        while aside.exists():
            n += 1
            aside = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
        os.replace(path, aside)
        self.log(f"damaged checkpoint {path}: {why}; set aside as {aside.name}, starting this run again from scratch")

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
        with self.amp():  # evaluated in the precision it trains in
            val, test = evaluate(self.m, self.clf, self.data)
        self.history.append({"epoch": epoch, "step": epoch * self.steps, **{f"loss_{k}": v for k, v in means.items()},
                             "val_accuracy": val, "test_accuracy": test, "train_s": round(self.train_s, 3)})
        self.log(f"epoch {epoch}/{self.hp['epochs']} " + " ".join(f"{k}={v:.4f}" for k, v in means.items())
                 + f" val={val:.4f} ({self.train_s:.1f}s)")  # test accuracy only in history.csv: nothing selects on it
        self.rng = rng_state(self.gen)
        if self.checkpoint:
            torch_save({"epoch": epoch, "fingerprint": self.fingerprint, "method": self.m.state_dict(),
                         "rng": self.rng, "history": self.history, "train_s": self.train_s}, Path(self.checkpoint))

    def finish(self, keep_checkpoint: bool = False, group: int = 1) -> dict:
        """Final evaluation and the run's files (metrics.json last: it marks the run complete).
        ``keep_checkpoint``: leave the final checkpoint (a group deletes its runs' only when all are
        written, so that a group job that fails later finishes these again without training).
        ``group``: how many runs the process trained together (recorded with the timing)."""
        m, clf, data, hp = self.m, self.clf, self.data, self.hp
        n_test = len(data.y_test)
        with self.amp():  # (the same order of evaluations as before: test, extra metrics, quirk variants)
            correct = int(accuracy(clf, data.x_test, data.y_test, context=m.eval_context))
            extra, variants = m.extra_metrics(), eval_variants(m, clf, data)
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
                        **extra, "eval_variants": variants},
            "env": {"fewlabels": __version__, "torch": torch.__version__, "numpy": np.__version__,
                    "python": platform.python_version(), "device": self.dev.type, "precision": self.precision,
                    "device_name": device_name(self.dev), **build_info(), "code_sha256": self.code["sha256"],
                    "code_git": self.code["git"]},
            # group > 1: wall_s is from the group's start, train_s this run's share of the group's time
            "timing": {"wall_s": round(time.perf_counter() - self.t_start, 3), "train_s": round(self.train_s, 3),
                       "steps": total_steps, "group_runs": group,
                       "samples_per_s": round(total_steps * m.samples_per_step() / max(self.train_s, 1e-9), 1)},
        }
        out = Path(self.out)
        out.mkdir(parents=True, exist_ok=True)
        torch_save(m.payload(), out / "model.pt")
        write_text(out / "history.csv", history_csv(self.history))
        write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")  # last: marks the run complete
        if self.checkpoint and not keep_checkpoint:
            Path(self.checkpoint).unlink(missing_ok=True)
        self.log(f"done: test accuracy {correct / n_test:.4f} ({n_test - correct} errors of {n_test}), "
                 f"{metrics['timing']['samples_per_s']:.0f} samples/s on {device_name(self.dev)} in {self.precision}; "
                 f"code {describe(self.code)}")
        return metrics


def sync(dev: torch.device) -> None:
    """Wait for the device (timings of CUDA work)."""
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def add_losses(sums: dict[str, torch.Tensor], losses: dict[str, torch.Tensor]) -> None:
    """A step's losses into the epoch's sums (on the device: no host sync)."""
    for k, v in losses.items():
        if v.dtype in (torch.bfloat16, torch.float16):  # a bf16 step's loss: summed in fp32
            v = v.float()
        sums[k] = sums[k] + v if k in sums else v.clone()


def train_alone(r: Run) -> None:
    """The epochs left to one run, its random state in the global generators."""
    set_rng_state(r.rng, r.gen)
    for epoch in range(r.start_epoch, r.hp["epochs"] + 1):
        sync(r.dev)
        t0 = time.perf_counter()
        sums: dict[str, torch.Tensor] = {}
        for _ in range(r.steps):
            with r.amp():  # bf16: the method's forward passes and losses; it steps outside (precision.outside_autocast)
                losses = r.m.train_step()
            add_losses(sums, losses)
        sync(r.dev)
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
    with deterministic(pick_device(device)):
        r = Run(method=method, task=task, labels=labels, seed=seed, mnist=mnist, split=split, out=out,
                hparams=hparams, device=device, pool_limit=pool_limit, pretrained=pretrained, checkpoint=checkpoint,
                name=name, log=log)
        if dry_run:
            with r.amp():
                losses = r.m.train_step()
            log(f"dry run: {method} on {task}, {len(r.data.x_lab)} labeled, {len(r.data.x_pool)} unlabeled, "
                f"{r.steps} steps/epoch x {r.hp['epochs']} epochs on {device_name(r.dev)}; "
                f"first step losses {({k: float(v) for k, v in losses.items()})}")
            return {}
        r.resume()
        train_alone(r)
        return r.finish()


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else "no message"
