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
from .data import MNIST_ARRAY_SHA256, DataError, atomic_write, file_sha256, load_task
from .methods import PRETRAIN
from .methods import get as get_method
from .methods.base import HParamError, resolve_hparams
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
    ``label_draw``/``unlabeled``: loading draws nothing from the global RNGs), the batch generator
    seeded with ``seed``, the first stage's payload, the method."""
    seed_everything(seed)
    if dev.type == "cpu":
        torch.use_deterministic_algorithms(True)
    if data is None:
        data = load_task(mnist, split, dev, pool_limit, label_draw=hp["label_draw"], unlabeled=hp["unlabeled"])
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    payload = torch.load(pretrained, map_location=dev, weights_only=False) if pretrained else None
    return cls(hp, data, dev, gen, payload)


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
    t_start = time.perf_counter()
    code = code_fingerprint()  # once per run: what code made it (metrics.json, the checkpoint)
    cls = get_method(method)
    hp = resolve_hparams(cls, hparams)
    dev = pick_device(device)
    m = build_method(cls, hp, seed, mnist, split, dev, pool_limit, pretrained)
    data, gen = m.data, m.gen
    steps = m.steps_per_epoch()

    if dry_run:
        losses = m.train_step()
        log(f"dry run: {method} on {task}, {len(data.x_lab)} labeled, {len(data.x_pool)} unlabeled, "
            f"{steps} steps/epoch x {hp['epochs']} epochs on {device_name(dev)}; "
            f"first step losses {({k: float(v) for k, v in losses.items()})}")
        return {}

    history: list[dict] = []
    start_epoch, train_s = 1, 0.0
    # What a checkpoint must match to be resumed: anything that changes the numbers.
    fingerprint = {"method": method, "name": name, "hparams": hp, "split_sha256": data.split_sha256, "seed": seed,
                   "pool_limit": pool_limit, "mnist_sha256": MNIST_ARRAY_SHA256, "fewlabels": __version__,
                   "pretrained_sha256": file_sha256(pretrained) if pretrained else None, "device": dev.type,
                   # the sources' hash, not the commit: committing unchanged code must not restart runs
                   "code_sha256": code["sha256"]}
    if checkpoint and Path(checkpoint).exists():
        # On the CPU: RNG states must stay CPU tensors; load_state_dict moves the rest.
        ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if ck.get("fingerprint") != fingerprint:
            log(f"ignoring checkpoint {checkpoint} and starting again: {fingerprint_change(ck.get('fingerprint'), fingerprint)}")
        else:
            m.load_state_dict(ck["method"])
            _set_rng_state(ck["rng"], gen)
            history, start_epoch, train_s = ck["history"], ck["epoch"] + 1, ck["train_s"]
            log(f"resuming from {checkpoint} after epoch {ck['epoch']}")

    clf = m.classifier()
    for epoch in range(start_epoch, hp["epochs"] + 1):
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        sums: dict[str, torch.Tensor] = {}
        for _ in range(steps):
            for k, v in m.train_step().items():
                sums[k] = sums[k] + v if k in sums else v.clone()
        m.on_epoch_end(epoch)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        train_s += time.perf_counter() - t0
        means = {k: float(v) / steps for k, v in sums.items()}  # one sync per epoch
        bad = [k for k, v in means.items() if not math.isfinite(v)]
        if bad:
            raise DivergedError(f"{method}: loss {', '.join(bad)} became {means[bad[0]]} in epoch {epoch} "
                                f"(seed {seed}, labels {labels}); the run diverged and no metrics were written. "
                                "Lower the learning rate or check the inputs.")
        val, test = evaluate(m, clf, data)
        row = {"epoch": epoch, "step": epoch * steps, **{f"loss_{k}": v for k, v in means.items()},
               "val_accuracy": val, "test_accuracy": test, "train_s": round(train_s, 3)}
        history.append(row)
        log(f"epoch {epoch}/{hp['epochs']} " + " ".join(f"{k}={v:.4f}" for k, v in means.items())
            + f" val={val:.4f} ({train_s:.1f}s)")  # test accuracy only in history.csv: nothing selects on it
        if checkpoint:
            _torch_save({"epoch": epoch, "fingerprint": fingerprint,
                         "method": m.state_dict(), "rng": _rng_state(gen), "history": history,
                         "train_s": train_s}, Path(checkpoint))

    n_test = len(data.y_test)
    correct = int(accuracy(clf, data.x_test, data.y_test, context=m.eval_context))
    total_steps = hp["epochs"] * steps
    metrics = {
        "run": {"method": name or method, "base_method": method, "task": task, "labels": labels, "seed": seed,
                # labels None: every pool image labeled; a first stage, or a full-label reference run
                "stage": "pretrain" if labels is None and cls.NAME in PRETRAIN else "train"},
        "hparams": hp,
        "data": {"split_sha256": data.split_sha256, "mnist_sha256": MNIST_ARRAY_SHA256, "pool_limit": pool_limit,
                 "n_labeled": len(data.x_lab), "n_unlabeled": len(data.x_pool), "n_val": len(data.y_val),
                 "n_test": n_test, "pretrained_sha256": file_sha256(pretrained) if pretrained else None,
                 "labels_used": m.labels_used(), "labels_used_total": sum(m.labels_used().values())},
        "results": {"test_accuracy": correct / n_test, "test_errors": n_test - correct,
                    "test_error_per_10k": round((n_test - correct) / n_test * 1e4, 1),
                    "val_accuracy": history[-1]["val_accuracy"], "final_epoch": hp["epochs"],
                    **m.extra_metrics(), "eval_variants": eval_variants(m, clf, data)},
        "env": {"fewlabels": __version__, "torch": torch.__version__, "numpy": np.__version__,
                "python": platform.python_version(), "device": dev.type, "device_name": device_name(dev),
                **build_info(), "code_sha256": code["sha256"], "code_git": code["git"]},
        "timing": {"wall_s": round(time.perf_counter() - t_start, 3), "train_s": round(train_s, 3),
                   "steps": total_steps, "samples_per_s": round(total_steps * m.samples_per_step() / max(train_s, 1e-9), 1)},
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _torch_save(m.payload(), out / "model.pt")
    _write_text(out / "history.csv", history_csv(history))
    _write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")  # last: marks the run complete
    if checkpoint:
        Path(checkpoint).unlink(missing_ok=True)
    log(f"done: test accuracy {correct / n_test:.4f} ({n_test - correct} errors of {n_test}), "
        f"{metrics['timing']['samples_per_s']:.0f} samples/s on {device_name(dev)}; code {describe(code)}")
    return metrics


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m fewlabels.train", description=__doc__)
    p.add_argument("--method", required=True, help="a registered method or first stage")
    p.add_argument("--name", default=None, help="the run's name when it is a named variant of --method")
    p.add_argument("--task", required=True)
    p.add_argument("--labels", required=True, help="label budget, or 'all' (every pool image: a first stage, or a full-label run)")
    p.add_argument("--seed", required=True, type=int)
    p.add_argument("--mnist", required=True, type=Path)
    p.add_argument("--split", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path, help="folder for metrics.json, history.csv, model.pt")
    p.add_argument("--hparams", default="{}", help="JSON object of hyperparameter overrides")
    p.add_argument("--device", default="auto")
    p.add_argument("--pool-limit", type=int, default=None)
    p.add_argument("--pretrained", type=Path, default=None, help="model.pt of the first stage")
    p.add_argument("--checkpoint", type=Path, default=None)
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--dry-run", action="store_true", help="build everything, take one step, write nothing")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        hparams = json.loads(args.hparams)
        if not isinstance(hparams, dict):
            raise HParamError("--hparams must be a JSON object")
        run(method=args.method, task=args.task, labels=None if args.labels == "all" else int(args.labels),
            seed=args.seed, mnist=args.mnist, split=args.split, out=args.out, hparams=hparams,
            device=args.device, pool_limit=args.pool_limit, pretrained=args.pretrained,
            checkpoint=args.checkpoint, dry_run=args.dry_run, name=args.name, log=lambda s: print(s, flush=True))
    except (DataError, HParamError, DivergedError, KeyError, ValueError) as e:  # JSONDecodeError is a ValueError
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
