"""Many runs per process (fewlabels.methods.stacked) against one: steps/s and run-steps/s, eager and captured.

Usage: python scripts/benchmark_batched.py [--device cpu] [--steps 20] [--threads 1] [--runs 1 4 8]
                                           [--methods supervised linear conv aae sgan sgan-fm siamese-pairs]

For each method (its default hyperparameters, a 100-label mnist10 split), times ``--steps`` training
steps of one run alone (the ``Method``'s own ``train_step``, as the trainer runs it) and of N runs
stacked in one process (``stacked.make_stacked``: ``StackedRuns``, or the method's own stacker), after
a short warm-up, the device synchronised around the timed region. A step of N stacked runs is N
run-steps; "vs alone" is the run-step rate over that of one run alone (above 1: the stacked path
trains a group of seeds faster than one process per seed on the same cores), by wall clock and by this process's CPU time (the one to read on a contended
machine). On CUDA each stacked group is also timed with its step recorded in a CUDA graph
(``fewlabels.training.capture.capture_step``, as a stacked group job trains; "captured" rows), so one
invocation gives the batched-vs-one and captured-vs-eager ratios side by side. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from fewlabels import data as D
from fewlabels.training.build import deterministic, device_name, pick_device
from fewlabels.methods.stacked import make_stacked
from fewlabels.training.capture import capture_step
from fewlabels.training.build import build_run

REPO = Path(__file__).resolve().parents[1]
MNIST = REPO / "resources" / "mnist.npz"


def timed(step, steps: int, device: torch.device, warmup: int = 3) -> tuple[float, float]:
    """Seconds per call of ``step``: wall clock, and this process's CPU time (what a step costs on a
    machine whose cores other work also wants: wall time there measures the scheduler)."""
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch (the workflow's runs use 1)")
    p.add_argument("--runs", type=int, nargs="+", default=[1, 4, 8])
    p.add_argument("--methods", nargs="+", default=["supervised", "linear", "conv"],
                   help="methods that need no first stage (a first stage itself, e.g. siamese-pairs, is fine)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    rows = []
    # as the trainer runs them (build.deterministic: on the CPU, deterministic algorithms)
    with tempfile.TemporaryDirectory() as tmp, deterministic(device):
        split = Path(tmp) / "split.npz"
        D.make_split(MNIST, split, "mnist10", 100, seed=0)
        data = D.load_task(MNIST, split, device)  # one split for every seed: the timing does not depend on it
        for method in args.methods:
            m, _ = build_run(method, None, 0, MNIST, split, device, data=data)
            one, one_cpu = timed(m.train_step, args.steps, device)
            rows.append((method, "alone (Method.train_step)", 1, one, one_cpu, 1.0, 1.0))
            for n in args.runs:
                st = make_stacked([build_run(method, None, s, MNIST, split, device, data=data) for s in range(n)])
                dt, cpu = timed(st.train_step, args.steps, device)
                rows.append((method, "stacked", n, dt, cpu, n * one / dt, n * one_cpu / cpu))
                print(f"{method} N={n}: {dt * 1e3:.1f} ms/step, {cpu * 1e3:.1f} CPU ms/step", flush=True)
                if device.type == "cuda":
                    runs = [build_run(method, None, s, MNIST, split, device, data=data) for s in range(n)]
                    st = make_stacked(runs, capturable=True)
                    step, _ = capture_step(st.train_step, device, log=print,
                                           generators=[m.gen for m in st.methods] + list(st.noise))
                    dt, cpu = timed(step, args.steps, device)
                    rows.append((method, "stacked, captured", n, dt, cpu, n * one / dt, n * one_cpu / cpu))
    print(f"\n{device_name(device)}, torch {torch.__version__}, {args.threads} thread(s), {args.steps} timed steps, eager\n")
    print("| method | path | runs | ms/step | steps/s | run-steps/s | vs alone | CPU ms/step | run-steps per CPU s | vs alone |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for method, path, n, dt, cpu, ratio, cpu_ratio in rows:
        print(f"| {method} | {path} | {n} | {dt * 1e3:.1f} | {1 / dt:.1f} | {n / dt:.1f} | {ratio:.2f} "
              f"| {cpu * 1e3:.1f} | {n / cpu:.1f} | {cpu_ratio:.2f} |")


if __name__ == "__main__":
    main()
