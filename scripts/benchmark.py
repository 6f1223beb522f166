"""Training throughput of every registered method on this machine, in fp32 and in bf16 (ms/step, samples/s,
their ratio), and what one evaluation costs (the classifier on the validation and test sets, as the trainer
does each epoch), in one invocation.

Usage: python scripts/benchmark.py [--device auto] [--steps 10] [--rounds 5] [--threads N]
       [--methods a b ...] [--precisions fp32 bf16] [--tsv FILE] [--markdown docs/speed.md]

Builds each method once per precision on a real 100-label split (first stages on their own tasks), warms
both up, then times ``--rounds`` rounds of ``--steps`` training steps, the precisions alternating within
each round and their order swapped every round (fp32 bf16, bf16 fp32, ...), so that a change of load on a
shared machine falls on both alike; each number is the median over the rounds. bf16 is the trainer's
(``fewlabels.precision``): each step under ``torch.autocast(..., dtype=torch.bfloat16)``, the backward
pass and the optimiser step outside it, fp32 weights. The header names the CPU's bf16 flags.

Prints a Markdown table; ``--tsv scripts/benchmark_cpu.tsv`` also writes the table that
``python -m fewlabels.report.estimate`` (and scripts/reproduce.sh) reads to say how long a preset takes
(one row per method and precision), and ``--markdown docs/speed.md`` rewrites that page's block between
``<!-- benchmark:begin -->`` and ``<!-- benchmark:end -->``.

On a machine shared with other work the ratios between precisions are fair (alternating rounds) but the
absolute times are not. ``--reference OLD.tsv`` then writes the TSV from OLD's fp32 rows (an idle
machine's times) and gives every precision this run's ratio to fp32: bf16 ms/step = OLD's fp32 ms/step
/ the measured fp32/bf16 ratio (evaluations likewise); the TSV's header says so.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from fewlabels import data as D
from fewlabels import precision as P
from fewlabels.files import rewrite_marked_block
from fewlabels.methods import METHODS, PRETRAIN, get
from fewlabels.methods.base import resolve_hparams
from fewlabels.training.build import device_name, pick_device, seed_everything
from fewlabels.training.trainer import evaluate

REPO = Path(__file__).resolve().parents[1]
MNIST = REPO / "resources/mnist.npz"


def build(name: str, device: torch.device, precision: str, workdir: Path):
    """Method ``name`` as the trainer builds it (default hyperparameters, ``precision``), and its data."""
    spec = METHODS.get(name) or PRETRAIN[name]
    labels = None if name in PRETRAIN else 100
    split = workdir / f"{spec.task}-{labels}.npz"
    if not split.exists():
        D.make_split(MNIST, split, spec.task, labels, seed=0)
    seed_everything(0)
    data = D.load_task(MNIST, split, device)
    gen = torch.Generator(device=device)
    gen.manual_seed(0)
    pretrained = None
    if getattr(spec, "pretrain", None):
        # a second stage needs a first-stage payload: export an untrained first stage
        first = get(spec.pretrain)
        fsplit = workdir / f"{PRETRAIN[spec.pretrain].task}-all.npz"
        if not fsplit.exists():
            D.make_split(MNIST, fsplit, PRETRAIN[spec.pretrain].task, None, seed=0)
        fdata = D.load_task(MNIST, fsplit, device)
        pretrained = first(resolve_hparams(first, {}), fdata, device, gen).payload()
    cls = get(name)
    return cls(resolve_hparams(cls, {"precision": precision}), data, device, gen, pretrained), data


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_steps(m, device: torch.device, precision: str, steps: int) -> float:
    """Seconds per training step over ``steps`` steps, each in ``precision`` as the trainer runs it."""
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        with P.autocast(precision, device):
            m.train_step()
    sync(device)
    return (time.perf_counter() - t0) / steps


def timed_eval(m, data, device: torch.device, precision: str) -> float:
    """Seconds of one epoch's evaluation (validation + test; ``evaluate`` returns host numbers: synchronised)."""
    t0 = time.perf_counter()
    with P.autocast(precision, device):
        evaluate(m, m.classifier(), data)
    return time.perf_counter() - t0


def bench(name: str, device: torch.device, precisions: list[str], steps: int, rounds: int,
          workdir: Path) -> dict[str, dict]:
    """precision -> {"ms": ms/step, "sps": samples/s, "eval_ms": ms}, medians over alternating rounds."""
    built = {p: build(name, device, p, workdir) for p in precisions}
    for p, (m, data) in built.items():  # warm-up: first calls allocate, pick kernels, fill caches
        timed_steps(m, device, p, 3)
        timed_eval(m, data, device, p)
    step_s = {p: [] for p in precisions}
    eval_s = {p: [] for p in precisions}
    for r in range(rounds):
        order = precisions if r % 2 == 0 else precisions[::-1]
        for p in order:
            step_s[p].append(timed_steps(built[p][0], device, p, steps))
        if r < 2:  # an evaluation costs up to seconds: two rounds, one in each order
            for p in order:
                eval_s[p].append(timed_eval(built[p][0], built[p][1], device, p))
    out = {}
    for p in precisions:
        s = statistics.median(step_s[p])
        out[p] = {"ms": 1000 * s, "sps": built[p][0].samples_per_step() / s, "eval_ms": 1000 * statistics.median(eval_s[p])}
    return out


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def conditions(device: torch.device, args, load: tuple[float, float]) -> str:
    """One line: where and how the numbers were taken (the TSV's and the page's header)."""
    flags = ", ".join(P.cpu_bf16_flags()) or "none"
    return (f"scripts/benchmark.py on {device_name(device)}, {cpu_model()}, torch {torch.__version__} "
            f"(CPU capability {torch.backends.cpu.get_cpu_capability()}; bf16 CPU flags: {flags}), "
            f"{args.rounds} alternating rounds of {args.steps} timed steps (median), default hyperparameters, "
            f"load average {load[0]:.1f} at the start and {load[1]:.1f} at the end")


def ratio(results: dict, p: str, key: str = "ms") -> float | None:
    """fp32's time over ``p``'s (above 1: ``p`` is faster)."""
    if "fp32" not in results or p not in results or not results[p][key]:
        return None
    return results["fp32"][key] / results[p][key]


def markdown(rows: dict[str, dict], precisions: list[str]) -> str:
    others = [p for p in precisions if p != "fp32"]
    head = ["method", *(f"{p} ms/step" for p in precisions), *(f"fp32/{p}" for p in others if "fp32" in precisions),
            *(f"{p} samples/s" for p in precisions), *(f"{p} evaluation (ms)" for p in precisions)]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name, res in rows.items():
        cells = [name, *(f"{res[p]['ms']:.2f}" for p in precisions),
                 *(f"{ratio(res, p):.2f}x" for p in others if "fp32" in precisions),
                 *(f"{res[p]['sps']:,.0f}" for p in precisions), *(f"{res[p]['eval_ms']:,.0f}" for p in precisions)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def read_reference(path: Path) -> dict[str, dict]:
    """method -> {"ms", "eval_ms"} of a benchmark TSV's fp32 rows (rows without a precision are fp32)."""
    lines = [ln.split("\t") for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    rows = [dict(zip(lines[0], r)) for r in lines[1:]]
    return {r["method"]: {"ms": float(r["ms_per_step"]), "eval_ms": float(r["eval_ms"])} for r in rows
            if r.get("precision", "fp32") == "fp32" and r.get("eval_ms")}


def scaled(rows: dict[str, dict], reference: dict[str, dict]) -> dict[str, dict]:
    """``rows`` with each method's times put on ``reference``'s scale: every precision keeps its measured ratio
    to fp32, fp32 takes the reference's time. Methods the reference lacks keep their measured times."""
    out = {}
    for name, res in rows.items():
        ref = reference.get(name)
        if ref is None or "fp32" not in res:
            out[name] = res
            continue
        f_ms, f_ev = ref["ms"] / res["fp32"]["ms"], ref["eval_ms"] / res["fp32"]["eval_ms"]
        out[name] = {p: {"ms": r["ms"] * f_ms, "sps": r["sps"] / f_ms, "eval_ms": r["eval_ms"] * f_ev}
                     for p, r in res.items()}
    return out


def tsv(rows: dict[str, dict], precisions: list[str], header: str) -> str:
    """The estimate's table: one row per method and precision (``speedup``: fp32's ms/step over this one's)."""
    out = [f"# {header}; eval_ms: one epoch's evaluation (validation + test)",
           "method\tprecision\tms_per_step\tsamples_per_s\teval_ms\tspeedup"]
    for name, res in rows.items():
        for p in precisions:
            r = ratio(res, p)
            out.append(f"{name}\t{p}\t{res[p]['ms']:.2f}\t{res[p]['sps']:.0f}\t{res[p]['eval_ms']:.0f}\t"
                       + (f"{r:.2f}" if r is not None else ""))
    return "\n".join(out) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=10, help="timed steps per round and precision")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds (the median is reported)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--methods", nargs="*", default=None)
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--tsv", type=Path, default=None, help="also write the estimate's table here")
    p.add_argument("--markdown", type=Path, default=None, help="rewrite this page's benchmark block (docs/speed.md)")
    p.add_argument("--reference", type=Path, default=None,
                   help="a TSV of idle fp32 times: the written TSV takes them and this run's ratios (see above)")
    args = p.parse_args()
    if args.steps < 1 or args.rounds < 1:
        p.error("--steps and --rounds must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    precisions = list(dict.fromkeys(args.precisions))
    names = args.methods or [*PRETRAIN, *METHODS]
    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"device: {device_name(device)}; {cpu_model()}; torch {torch.__version__}; bf16 CPU flags: "
          f"{', '.join(P.cpu_bf16_flags()) or 'none'}; {args.rounds} x {args.steps} timed steps\n", flush=True)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            rows[name] = bench(name, device, precisions, args.steps, args.rounds, Path(tmp))
            res = rows[name]
            print(f"{name}: " + ", ".join(f"{q} {res[q]['ms']:.2f} ms/step" for q in precisions)
                  + (f" (fp32/bf16 {ratio(res, 'bf16'):.2f}x)" if ratio(res, "bf16") else ""), flush=True)
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    header = conditions(device, args, (load0, load1))
    table = markdown(rows, precisions)
    print(f"\n{header}\n\n{table}")
    if args.tsv:
        out, head = rows, header
        if args.reference:
            reference = read_reference(args.reference)  # (read before writing: it may be the same file)
            out = scaled(rows, reference)
            head = (f"fp32 times of the previous table (idle machine: {args.reference}), every precision at its "
                    f"ratio to fp32 as measured by {header}")
        D.atomic_write(args.tsv, lambda t: t.write_text(tsv(out, precisions, head)))
    if args.markdown:
        cmd = "python scripts/benchmark.py " + " ".join(
            a for a in (f"--threads {args.threads}" if args.threads else "", f"--steps {args.steps}",
                        f"--rounds {args.rounds}", f"--tsv {args.tsv}" if args.tsv else "",
                        f"--reference {args.reference}" if args.reference else "",
                        f"--markdown {args.markdown}") if a)
        rewrite_marked_block(args.markdown, "benchmark", f"`{cmd}`: {header}.\n\n{table}",
                             "scripts/benchmark.py --markdown")


if __name__ == "__main__":
    main()
