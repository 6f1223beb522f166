"""How long a configuration's training takes on this machine, before it starts.

``python -m fewlabels.report.estimate [--configfile presets/quick.yaml] [--jobs N]``

Sums, over every training run and first stage of the resolved config (config.yaml with the
given files merged over it, as Snakemake does), its steps (epochs x steps per epoch) times the
method's milliseconds per step in ``scripts/benchmark_cpu.tsv`` (measured by
``scripts/benchmark.py`` on one CPU thread), plus its evaluations (one per epoch, one at the end
and one per evaluation-only quirk: the table's ``eval_ms`` each, where it has that column) and a
fixed start-up cost per job, and divides by the jobs that run at once. Methods missing from the table get a conservative
default (the slowest measured method) and the estimate says so. The table has a row per method and
precision (a table without the ``precision`` column is fp32 throughout); a run whose ``precision``
resolves to bf16 on this machine takes the bf16 row where there is one, else the fp32 one. The table
is a CPU table: on a GPU the estimate is an upper bound. On a machine without CUDA the `paper` preset gets a warning.

``--gpu`` (and, by default, a machine with CUDA) adds what the preset costs on one GPU, the way the
workflow runs it there (``group_runs: auto``: each cell's seeds stacked in one job, its step in a CUDA
graph, ``plan.GPU_SLOTS`` jobs sharing the GPU): every run's steps times its method's milliseconds per
run-step in ``scripts/benchmark_gpu.tsv`` (measured on an H200: sgan, sgan-fm), or, for a method the
table lacks, extrapolated from its CPU step time times the larger of the measured GPU-to-CPU ratios (never
below ``GPU_FLOOR_MS``); its evaluations; a start-up per job; and the sharing gain measured on that GPU
(``GPU_SHARING``). It says which rates are measured and which extrapolated.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path


from .. import config as flconfig
from .. import presets
from ..config import POOL_SIZES, resolve

REPO = Path(__file__).resolve().parents[3]  # src/fewlabels/report/estimate.py -> the checkout
TABLE = REPO / "scripts" / "benchmark_cpu.tsv"
GPU_TABLE = REPO / "scripts" / "benchmark_gpu.tsv"
GPU_JOB_OVERHEAD_S = 15.0  # a group job's start-up on the H200 (sgan-fm's 142 s wall less training and evaluations)
GPU_FLOOR_MS = 0.2         # assumed: the least a stacked, captured run-step costs (a graph replay of a few kernels)
# Four sgan-fm/sgan groups at once took 2.35 ms a run-step where one alone took 0.81: four jobs did 4 x 0.81 / 2.35
# = 1.38 times the work of one in the same time (docs/speed.md). Measured with 4 jobs; the profile runs up to 8.
GPU_SHARING = 4 * 0.81 / 2.35
JOB_OVERHEAD_S = 10.0  # python + torch start-up, data loading, writing the run's files, per job
FINAL_EVALS = 2  # after the last epoch: the reported test accuracy and (about) the eval_variants pass


def load_config(configfiles: list[Path]) -> dict:
    """The configuration the workflow resolves for these --configfile files (fewlabels.presets: the bare
    command's paper preset takes the study's layers)."""
    return presets.load(configfiles)


def _rows(path: Path) -> list[dict[str, str]]:
    rows = [line.split("\t") for line in Path(path).read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    return [dict(zip(rows[0], r)) for r in rows[1:]]


def load_table(path: Path = TABLE, precision: str = "fp32") -> dict[str, float]:
    """Milliseconds per training step, by method, in ``precision`` (rows without one are fp32)."""
    return {r["method"]: float(r["ms_per_step"]) for r in _rows(path) if r.get("precision", "fp32") == precision}


def load_eval_table(path: Path = TABLE, precision: str = "fp32") -> dict[str, float]:
    """Milliseconds per evaluation (validation + test), by method; empty for a table without them."""
    return {r["method"]: float(r["eval_ms"]) for r in _rows(path)
            if r.get("eval_ms") and r.get("precision", "fp32") == precision}


def run_precision(cfg: dict, name: str) -> str:
    """What a run's ``precision`` resolves to on this machine's CPU ("fp32" or "bf16")."""
    import torch

    from ..methods import get
    from ..methods.base import resolve_hparams
    from ..precision import resolve as resolve_precision

    r = resolve(cfg, name)
    return resolve_precision(resolve_hparams(get(r.method), r.overrides)["precision"], torch.device("cpu"))


def run_steps(cfg: dict, name: str, labels: int | None, task: str) -> tuple[int, int]:
    """(epochs, epochs x steps per epoch) of one run; a null steps_per_epoch is one pass over the
    method's data (the pool for methods that override Method.steps_per_epoch, else the labeled images)."""
    from ..methods import get
    from ..methods.base import Method, resolve_hparams

    r = resolve(cfg, name)
    cls = get(r.method)
    hp = resolve_hparams(cls, r.overrides)
    spe = hp["steps_per_epoch"]
    if not spe:
        pool = min(POOL_SIZES[task], (cfg.get("data") or {}).get("pool_limit") or POOL_SIZES[task])
        n = POOL_SIZES[task] if labels is None else labels  # a first stage's labeled set is its whole pool
        if cls.steps_per_epoch is not Method.steps_per_epoch:
            n = pool
        spe = max(1, n // hp["batch_size"])
    return int(hp["epochs"]), int(hp["epochs"]) * int(spe)


def run_jobs(cfg: dict) -> tuple[list[tuple], list]:
    """Every run and first stage of ``cfg`` as (name, labels, task, job), runs of one group job sharing its key
    (``group_runs``) and any other run a job of its own; and the (stage, seed) first stages."""
    flconfig.check_names(cfg)
    methods, grouped_stages = flconfig.grouped(cfg)
    items = [(r["method"], r["labels"], r["task"],
              (r["task"], r["method"], r["labels"]) if r["method"] in methods else (r["task"], r["method"], r["labels"], r["seed"]))
             for r in flconfig.runs(cfg)]
    stages = flconfig.pretrain_stages(cfg)
    items += [(stage, None, resolve(cfg, stage).task, ("pretrain", stage) if stage in grouped_stages else ("pretrain", stage, seed))
              for stage, seed in stages]
    return items, stages


def estimate(cfg: dict, table: dict[str, float], jobs: int, eval_ms: dict[str, float] | None = None,
             bf16: tuple[dict, dict] | None = None) -> dict:
    """Training time of a grid: every run's steps x ms/step, its evaluations, and a start-up per job.
    ``bf16``: the (ms/step, eval ms) tables of bf16, for the runs that train in it (else they use fp32's).
    With ``group_runs`` a grouped (task, method, budget) or first stage is one job whose runs go one
    after another (as on a CPU): one start-up for the group, and the wall time is at least the
    longest job's."""
    items, stages = run_jobs(cfg)
    default_ms = max(table.values())
    unknown, total_s, by_method, job_s = set(), 0.0, {}, {}
    for name, labels, task, job in items:
        base = resolve(cfg, name).method
        steps_t, eval_t = table, eval_ms or {}
        if bf16 and base in bf16[0] and run_precision(cfg, name) == "bf16":
            steps_t, eval_t = bf16[0], {**eval_t, **bf16[1]}
        ms = steps_t.get(name, steps_t.get(base))
        if ms is None:
            unknown.add(base)
            ms = default_ms
        epochs, steps = run_steps(cfg, name, labels, task)
        ev = eval_t.get(name, eval_t.get(base, 0.0))
        s = steps * ms / 1000 + (epochs + FINAL_EVALS) * ev / 1000
        if job not in job_s:
            s += JOB_OVERHEAD_S
        job_s[job] = job_s.get(job, 0.0) + s
        total_s += s
        by_method[name] = by_method.get(name, 0.0) + s
    return {"jobs": len(job_s), "runs": len(items) - len(stages), "first_stages": len(stages),
            "cpu_s": total_s, "wall_s": max(total_s / max(1, jobs), max(job_s.values(), default=0.0)),
            "parallel": jobs, "unknown": sorted(unknown), "default_ms": default_ms, "by_method": by_method}


def load_gpu_table(path: Path = GPU_TABLE) -> dict[str, dict]:
    """Measured GPU rates by method: ms per run-step, ms per run-evaluation, where measured."""
    return {r["method"]: {"ms": float(r["ms_per_run_step"]), "eval_ms": float(r["eval_ms"]), "where": r["measured"]}
            for r in _rows(path)}


def gpu_rates(gpu: dict[str, dict], cpu: dict[str, float]) -> tuple[float, str]:
    """The ratio that turns a CPU ms/step into a GPU ms/run-step for methods without a GPU measurement: the
    largest measured GPU/CPU ratio (a conservative choice), and which method gave it."""
    ratios = {m: g["ms"] / cpu[m] for m, g in gpu.items() if cpu.get(m)}
    if not ratios:
        raise ValueError("no method has both a GPU and a CPU rate: the GPU estimate has nothing to extrapolate from")
    m = max(ratios, key=ratios.get)
    return ratios[m], m


def gpu_estimate(cfg: dict, gpu: dict[str, dict], cpu: dict[str, float]) -> dict:
    """One GPU's time for a preset as the workflow runs it there (grouped, stacked, captured, shared)."""
    from .. import plan

    items, _ = run_jobs({**cfg, "group_runs": True})  # group_runs: auto on CUDA
    ratio, ratio_from = gpu_rates(gpu, cpu)
    eval_ms = max(g["eval_ms"] for g in gpu.values())
    measured, extrapolated, job_s, by_method = set(), set(), {}, {}
    for name, labels, task, job in items:
        base = resolve(cfg, name).method
        if base in gpu:
            ms = gpu[base]["ms"]
            measured.add(base)
        else:
            ms = max(GPU_FLOOR_MS, cpu.get(base, max(cpu.values())) * ratio)
            extrapolated.add(base)
        epochs, steps = run_steps(cfg, name, labels, task)
        s = steps * ms / 1000 + (epochs + FINAL_EVALS) * eval_ms / 1000 + (0.0 if job in job_s else GPU_JOB_OVERHEAD_S)
        job_s[job] = job_s.get(job, 0.0) + s
        by_method[name] = by_method.get(name, 0.0) + s
    total = sum(job_s.values())
    return {"jobs": len(job_s), "alone_s": total, "wall_s": max(total / GPU_SHARING, max(job_s.values(), default=0.0)),
            "measured": sorted(measured), "extrapolated": sorted(extrapolated), "ratio": ratio,
            "ratio_from": ratio_from, "by_method": by_method, "slots": plan.GPU_SLOTS}


def gpu_report(est: dict, preset: str) -> str:
    slow = sorted(est["by_method"].items(), key=lambda kv: -kv[1])[:3]
    lines = [f"preset {preset} on one GPU: {est['jobs']} jobs (each cell's seeds stacked in one, its step in a CUDA graph, "
             f"up to {est['slots']} sharing the GPU): about {human(est['wall_s'])} "
             f"({human(est['alone_s'])} of jobs one at a time, over the {GPU_SHARING:.2f}x that sharing measured)",
             "  largest shares: " + ", ".join(f"{m} {human(s)}" for m, s in slow),
             f"  measured on an H200 ({GPU_TABLE.relative_to(REPO)}): {', '.join(est['measured']) or 'none of its methods'}",
             f"  extrapolated (CPU ms/step x {est['ratio']:.3f}, {est['ratio_from']}'s GPU/CPU ratio, at least "
             f"{GPU_FLOOR_MS} ms a run-step): {', '.join(est['extrapolated']) or 'none'}"]
    return "\n".join(lines)


def human(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def report(est: dict, preset: str, cuda: bool) -> str:
    lines = [f"preset {preset}: {est['jobs']} training jobs ({est['runs']} runs, {est['first_stages']} first stages); "
             f"estimated {human(est['wall_s'])} of training with {est['parallel']} job(s) at a time "
             f"({human(est['cpu_s'])} of one CPU thread, from {TABLE.relative_to(REPO)})"]
    slow = sorted(est["by_method"].items(), key=lambda kv: -kv[1])[:3]
    lines.append("  largest shares: " + ", ".join(f"{m} {human(s)}" for m, s in slow))
    if est["unknown"]:
        lines.append(f"  not in the benchmark table: {', '.join(est['unknown'])}; assumed {est['default_ms']:.0f} ms/step "
                     "(the slowest measured method), so the estimate is conservative for them")
    if cuda:
        lines.append("  CUDA is available: the table is a CPU table, so this is an upper bound")
    elif preset == "paper":
        lines.append(f"WARNING: no CUDA GPU here, and the paper preset would take about {human(est['wall_s'])} on "
                     "this CPU. Consider `bash scripts/reproduce.sh quick` (every figure, short schedules), "
                     "`bash scripts/reproduce.sh seeds` (the seeds' own protocols) or rebuilding the paper from "
                     "the archive without training: `snakemake --cores all --configfile results/archive/config.yaml`.")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m fewlabels.report.estimate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configfile", nargs="*", type=Path, default=[], help="presets merged over config.yaml")
    p.add_argument("--jobs", type=int, default=None, help="jobs at a time (default: CPU cores; 1 with CUDA)")
    p.add_argument("--table", type=Path, default=TABLE)
    p.add_argument("--cuda", choices=("auto", "yes", "no"), default="auto", help="whether this machine has CUDA")
    p.add_argument("--gpu", action="store_true",
                   help="also estimate one GPU's time (the default on a machine with CUDA)")
    p.add_argument("--gpu-table", type=Path, default=GPU_TABLE)
    args = p.parse_args(argv)
    cfg = load_config(args.configfile)
    if args.cuda == "auto":
        import torch
        cuda = torch.cuda.is_available()
    else:
        cuda = args.cuda == "yes"
    # the local profile runs one GPU job at a time; CPU jobs take one thread each
    jobs = args.jobs or (1 if cuda else os.cpu_count() or 1)
    try:
        est = estimate(cfg, load_table(args.table), jobs, load_eval_table(args.table),
                       bf16=(load_table(args.table, "bf16"), load_eval_table(args.table, "bf16")))
    except (flconfig.ConfigError, KeyError, ValueError) as e:
        sys.exit(f"error: {e}")
    print(report(est, cfg.get("preset", "?"), cuda))
    if args.gpu or cuda:
        try:
            gest = gpu_estimate(cfg, load_gpu_table(args.gpu_table), load_table(args.table))
        except (flconfig.ConfigError, KeyError, ValueError) as e:
            sys.exit(f"error: {e}")
        print(gpu_report(gest, cfg.get("preset", "?")))


if __name__ == "__main__":
    main()
