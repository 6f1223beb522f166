# Shared helpers: the package on the path, the run list, hyperparameters as rule params.
import functools
import json
import os
import re
import shlex
import shutil
import sys

SRC = os.path.join(workflow.basedir, "src")
sys.path.insert(0, SRC)
# Every job imports the package from this checkout, whatever environment runs it
# (a venv, --use-conda, a SLURM node).
shell.prefix(f"set -euo pipefail; export PYTHONPATH={shlex.quote(SRC)}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; ")

from fewlabels import config as flconfig
from fewlabels import methods as methods_registry
from fewlabels import plan as flplan
from fewlabels.config import resolve

flconfig.check_names(config)  # names, tasks, variants and budgets: no torch needed
try:  # hyperparameters are checked here when torch is importable, else by each job
    import torch  # noqa: F401
except ImportError:
    pass
else:
    flconfig.check(config)

ENV = "../envs/fewlabels.yaml"
MNIST = "resources/mnist.npz"
RUNS = flconfig.runs(config)


def run_dir(r):
    return f"results/runs/{r['task']}/{r['method']}/n{r['labels']}/seed{r['seed']}"


def pretrain_stages():
    """(stage, seed) pairs the grid needs: each once per seed, whatever the budgets."""
    return flconfig.pretrain_stages(config)


def hparams_arg(name):
    return shlex.quote(json.dumps(flconfig.hparams(config, name), sort_keys=True))


def pool_limit_arg():
    limit = config["data"].get("pool_limit")
    return f"--pool-limit {limit}" if limit else ""


def idx_dir_arg():
    d = config["data"].get("idx_dir")
    return f"--idx-dir {shlex.quote(d)}" if d else ""


def pretrained_input(wc):
    stage = resolve(config, wc.method).pretrain
    return {"pretrained": f"results/pretrain/{stage}/seed{wc.seed}/model.pt"} if stage else {}


def pretrained_arg(wc, input):
    return f"--pretrained {input.pretrained}" if "pretrained" in input.keys() else ""


# ---- group_runs: one job per method x task x budget, all its seeds in one process (train.smk) ----
SEEDS = list(config["seeds"])


def name_regex(names):
    return "|".join(re.escape(n) for n in names) or "(?!)"  # (?!): matches nothing


# group_runs: auto (the default) groups exactly when the jobs train on CUDA (fewlabels.plan): the fast path
# on a GPU without a profile to name, and one process per run on the CPU, where stacking measured slower.
ON_CUDA, _CUDA_WHY = flplan.on_cuda(config["device"], workflow.local_exec)
config["group_runs"], _GROUP_WHY = flplan.group_runs(config["group_runs"], config["device"], workflow.local_exec)
from snakemake_interface_executor_plugins.settings import ExecMode as _ExecMode

if workflow.exec_mode == _ExecMode.DEFAULT and not config.get("archive"):
    print(flplan.describe(config["group_runs"], ON_CUDA, _GROUP_WHY), file=sys.stderr)
GROUPED_METHODS, GROUPED_STAGES = flconfig.grouped(config)  # empty without group_runs


def group_pretrained_input(wc):
    stage = resolve(config, wc.method).pretrain
    return {"pretrained": [f"results/pretrain/{stage}/seed{s}/model.pt" for s in SEEDS]} if stage else {}


def group_pretrained_arg(wc, input):
    return f"--pretrained {' '.join(input.pretrained)}" if "pretrained" in input.keys() else ""


ALL_METRICS = [f"{run_dir(r)}/metrics.json" for r in RUNS]
ALL_PRETRAIN = [f"results/pretrain/{s}/seed{seed}/metrics.json" for s, seed in pretrain_stages()]


def method_file(name):
    """The file that defines a method, first stage or variant (its registered method's module): what
    the hyperparameter tables read (hparams.smk)."""
    return f"src/fewlabels/methods/{methods_registry.spec(resolve(config, name).method).module}.py"


def method_source(name):
    """Every file whose code decides what a run of a method, first stage or variant computes (its
    method's module, its stacked form and what they import: methods.sources): an input of its
    train/pretrain jobs, so that editing one of them makes exactly the runs it decides out of date.
    The shared trainer (fewlabels.training) is not among them: a checkpoint's fingerprint covers it."""
    return [str(f) for f in methods_registry.sources(resolve(config, name).method)]


# ---- which figures this grid can draw (the paper, `rule all` and the report take only these) ----
# FIGURE_NEEDS: figure (its PDF's name in paper/generated/, without .pdf) -> what it draws, a list
# of requirements that must ALL hold for the figure to be made:
#   "aae"             a run of that grid name (method or variant) is in the grid
#   "sgan|sgan-fm"    a run of at least one of them
#   "@mnist10"        any training run on that task
# A figure whose requirements fail is not asked for, and paper/ms.tex leaves it out of the document
# (\flfigif, from paper/generated/grid.tex). A new figure needs its rule (figures.smk, input
# functions that raise for absent methods are fine: they are only evaluated for wanted figures) and
# ONE entry here; ms.tex includes it with \flfigif{fig_name}{...a figure environment...}.
# The figures of a method's own (the registry's Spec.figures) come from the registry:
# figure -> ["a|b"], a run of one of the methods that name it.
METHOD_FIGURES = methods_registry.figure_needs()
FIGURE_NEEDS = {
    "fig_accuracy": ["@mnist10"],
    **{f: METHOD_FIGURES[f] for f in ("fig_aae_latent", "fig_aae_style", "fig_aae_recon", "fig_transfer")},
    # seed 002 as published on other sets of 500 images (presets/seeds.yaml)
    "fig_which500": ["transfer-002-published-from10k|scratch-002-published-from10k"],
    **{f: METHOD_FIGURES[f] for f in ("fig_siamese", "fig_siamese_embedding", "fig_gan_samples", "fig_gan_curves")},
    # seed 003's figures: figures.smk; fig_forest and fig_seed_curves: figures.smk (the forest's
    # needs depend on the grid)
}


def grid_has(requirement):
    if requirement.startswith("@"):
        return any(r["task"] == requirement[1:] for r in RUNS)
    return any(r["method"] in requirement.split("|") for r in RUNS)


def wanted_figures():
    """Names of the figures whose runs are all in the grid (a function: figures.smk may add entries);
    in archive mode, only those whose run files the archive holds (archive_lacks)."""
    names = [name for name, needs in FIGURE_NEEDS.items() if all(grid_has(n) for n in needs)]
    if config["archive"]:
        names = [name for name in names if not archive_lacks(name)]
    return names


@functools.lru_cache(maxsize=None)  # asked by every input function that lists the figures: look once, say once
def archive_lacks(figure):
    """The run files (checkpoints) that the figure's job reads and the archive does not hold (an archive merged
    cell by cell, scripts/archive_update.sh, from runs whose checkpoints stayed on another machine, say).
    Such a figure is left out of an archive-mode build, with one line on stderr, instead of failing the
    build in restore."""
    pdf = f"paper/generated/{figure}.pdf"
    lacking = ()
    for r in workflow.rules:
        if pdf in {str(f) for f in r.output}:
            lacking = tuple(f for f in rule_inputs(r) if archivable(f)
                            and not os.path.exists(os.path.join(ARCHIVE, f[len("results/"):])))
            break
    if lacking:
        print(f"archive mode: {figure} left out, {ARCHIVE} does not hold {', '.join(lacking)}", file=sys.stderr)
    return lacking


def wanted_figure_files(wc=None):
    return [f"paper/generated/{name}.pdf" for name in wanted_figures()]


def grid_methods():
    """Grid names with at least one run, in grid order (ms.tex's \\flran{name})."""
    return list(dict.fromkeys(r["method"] for r in RUNS))


# ---- the paper (workflow/rules/paper.smk) ----
def grid_bases():
    """The registered methods the grid's names run (a variant's method), for ms.tex's \\flifmethod."""
    return list(dict.fromkeys(resolve(config, n).method for n in grid_methods()))


def made_in_generated(names):
    """Which of these paper/generated/ names some output of this configuration makes."""
    made = {str(f) for r in workflow.rules for f in r.output}
    return {n for n in names if f"paper/generated/{n}" in made}


def generated_if_made(*names):
    """paper/generated/<name> for the names the workflow makes (a piece another file may add later;
    ms.tex includes it only when it exists)."""
    def inputs(wc):
        made = made_in_generated(names)
        return [f"paper/generated/{n}" for n in names if n in made]
    return inputs


def generated_not_made(*names):
    """The names among these that nothing in this configuration makes: left out of the PDF's build even
    when an earlier build of another preset left them in paper/generated/ (report.paper --exclude)."""
    made = made_in_generated(names)
    return [n for n in names if n not in made]


def figure_run(method, task="mnist10"):
    """The run whose checkpoint a method's figures are drawn from: the first seed at the
    largest budget of the grid for that method (figures never train anything themselves)."""
    budgets = [r["labels"] for r in RUNS if r["method"] == method and r["task"] == task]
    if not budgets:
        raise ValueError(f"the grid has no {task} run of {method!r}, which its figures need")
    numeric = [b for b in budgets if b != "all"]  # a budget, not the full-label reference, when there is one
    return run_dir({"task": task, "method": method, "labels": max(numeric) if numeric else "all",
                    "seed": config["seeds"][0]})


def train_gpus():
    """GPU slots one training job asks for (the `gpu` resource: locally a count of jobs sharing the GPU,
    profiles/default's gpu=8; `sbatch --gpus` on SLURM). None for `device: cpu`; none for `device: auto`
    when running locally on a machine without CUDA (so CPU runs are not serialised by the GPU limit)."""
    return int(ON_CUDA)


# ---- cost table and archive (workflow/rules/benchmarks.smk, archive.smk) ----
ARCHIVE = config.get("archive_dir", "results/archive")  # presets/seeds.yaml keeps its own
# What the archive may hold, relative to results/ (splits are cheap and are recomputed).
ARCHIVED = r"(runs|pretrain)/.+|metrics\.csv|benchmarks\.csv"


def archivable(path):
    """Whether a workflow path (results/...) is one an archive may hold (ARCHIVED)."""
    return path.startswith("results/") and re.fullmatch(ARCHIVED, path[len("results/"):]) is not None


def benchmark_pairs():
    """(metrics.json, benchmark .tsv) of every training and first-stage run, flattened: a grouped run
    (group_runs) is paired with its group's file, which `benchmarks collect` shares out."""
    pairs = [(f"{run_dir(r)}/metrics.json",
              f"benchmarks/train_group/{r['task']}/{r['method']}/n{r['labels']}.tsv" if r["method"] in GROUPED_METHODS
              else f"benchmarks/train/{r['task']}/{r['method']}/n{r['labels']}/seed{r['seed']}.tsv") for r in RUNS]
    pairs += [(f"results/pretrain/{s}/seed{seed}/metrics.json",
               f"benchmarks/pretrain_group/{s}.tsv" if s in GROUPED_STAGES else f"benchmarks/pretrain/{s}/seed{seed}.tsv")
              for s, seed in pretrain_stages()]
    return [f for pair in pairs for f in pair]


def rule_inputs(r):
    """The input files of a rule without wildcards, input functions included."""
    from snakemake.iocontainers import Wildcards

    for f in r.input:
        if callable(f):
            if r.has_wildcards():
                continue  # cannot be evaluated without a job; no figure rule has wildcards
            try:
                f = f(Wildcards())
            except Exception:  # e.g. figure_run() of a method the grid lacks: not buildable anyway
                continue
        if isinstance(f, dict):
            f = list(f.values())
        yield from (map(str, f) if isinstance(f, (list, tuple)) else [str(f)])


def archive_inputs():
    """results/metrics.csv, results/benchmarks.csv and every run file that a rule other than
    training and aggregation reads (the figures' checkpoints and histories)."""
    skip = {"train", "pretrain", "train_group", "pretrain_group", "aggregate", "benchmarks", "archive"}
    files = {"results/metrics.csv", "results/benchmarks.csv"}
    # every run's history.csv (small): the learning curves of an archive, e.g. the port beside the
    # sources' own code in fig_seed_curves, stay drawable without training
    files.update(f"{run_dir(r)}/history.csv" for r in RUNS)
    files.update(f"results/pretrain/{s}/seed{seed}/history.csv" for s, seed in pretrain_stages())
    for r in workflow.rules:
        if r.name not in skip:
            files.update(f for f in rule_inputs(r) if archivable(f))
    return sorted(files)


def siamese_pairs_model(wc):
    """The first seed's siamese-pairs model (a function: a grid without siamese fails only here)."""
    if not any(r["method"] == "siamese" for r in RUNS):
        raise ValueError("the grid has no siamese run, whose pair-stage model the embedding figure needs")
    return f"results/pretrain/siamese-pairs/seed{config['seeds'][0]}/model.pt"


def gan_sample_models(wc=None):
    """model.pt of the GANs the grid has (sgan and/or sgan-fm), one per GAN."""
    return [f"{figure_run(m)}/model.pt" for m in ("sgan", "sgan-fm") if grid_has(m)]


def gan_curve_runs(wc=None):
    """Run dirs of the GAN accuracy curves: supervised, sgan and sgan-fm at the smallest mnist10
    budget the GANs run, every seed (a function: a grid without GANs fails only here)."""
    gans = [r for r in RUNS if r["task"] == "mnist10" and r["method"] in ("sgan", "sgan-fm")]
    if not gans:
        raise ValueError("the grid has no mnist10 run of sgan or sgan-fm, which the GAN figures need")
    budget = min(r["labels"] for r in gans)
    return [run_dir(r) for r in RUNS if r["task"] == "mnist10" and r["labels"] == budget
            and r["method"] in ("supervised", "sgan", "sgan-fm")]


# ---- seed 003 figures (workflow/rules/figures.smk): functions, so a grid without them fails only there ----
AE_STAGES = methods_registry.first_stages(methods_registry.family("ae"))  # the autoencoder families' first stages


def ae_stage_models(wc=None):
    """First-seed model.pt of every autoencoder first stage the grid needs (the reconstruction figure)."""
    stages = {s for s, _ in pretrain_stages()}
    found = [f"results/pretrain/{s}/seed{config['seeds'][0]}/model.pt" for s in AE_STAGES if s in stages]
    if not found:
        raise ValueError("the grid has no run of ae, dae, conv-ae or vae, whose first stages the figure needs")
    return found


def vae_model(wc=None):
    """First-seed vae-pretrain model.pt (the VAE latent figure)."""
    if not any(r["method"] == "vae" for r in RUNS):
        raise ValueError("the grid has no vae run, whose first stage the latent figure needs")
    return f"results/pretrain/vae-pretrain/seed{config['seeds'][0]}/model.pt"


def seed_curve_files(wc=None):
    """history.csv and metrics.json of the grid's as-published runs that fig_seed_curves draws
    (figures/verdicts.py SEED_CURVE_RUNS). In archive mode only those the archive holds (an archive
    made before it kept every history.csv lacks them: the figure then shows the sources' own code and
    their prints alone); `snakemake archive` collects them."""
    from fewlabels.report.figures.verdicts import SEED_CURVE_RUNS

    dirs = [run_dir(r) for r in RUNS if r["method"] in SEED_CURVE_RUNS]
    dirs += [f"results/pretrain/{s}/seed{seed}" for s, seed in pretrain_stages() if s in SEED_CURVE_RUNS]
    files = [f"{d}/{name}" for d in dirs for name in ("history.csv", "metrics.json")]
    if config["archive"]:
        files = [f for f in files if os.path.exists(f"{ARCHIVE}/{f[len('results/'):]}")]
    return files
