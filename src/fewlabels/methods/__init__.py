"""The one registry of methods: name -> everything the rest of the code needs to know about it.

Each entry (``Spec``) says where the method's class lives, its task, its first stage, its stacked
form (``methods/stacked/``), the figure family that draws it, the figures its runs appear in, its
place in tables and figures and its same-architecture baseline. Every other list of method names
(the stackable methods, the table order, the autoencoder families, the figure requirements, the
baseline pairs, a run's source files) is computed from these two tables, so a new method is its
own file(s) and one entry here (docs/code.md).

Importing this module does not import torch, so the Snakefile can read the table
cheaply; ``get(name)`` imports the method's file when a run needs it.
"""

from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass
from pathlib import Path

# The stacked form of the one-network classifiers (methods/stacked/classifiers.py).
RUNS_STACKER = "classifiers.StackedRuns"


@dataclass(frozen=True)
class Spec:
    module: str            # file in this package
    cls: str               # class in that file
    task: str = "mnist10"  # the task its stage-2 runs belong to
    pretrain: str | None = None  # name in PRETRAIN of the stage it needs first
    stacked: str | None = RUNS_STACKER  # "<module>.<class>" in methods/stacked/ that stacks its runs; None: none
    family: str = "accuracy"  # the report/figures module that draws its own figures (accuracy: fig_accuracy only)
    figures: tuple[str, ...] = ()  # the figures (paper/generated/<name>.pdf) that need a run of it
    order: int | None = None  # its place in tables and figures (smallest first); None: after the ordered ones
    baseline: str | None = None  # the method of the same network without its extra signal (paired tables)


_AE = ("fig_ae_recon", "fig_ae_accuracy")  # seed 003's pretrained autoencoder heads
_AE_SCRATCH = ("fig_ae_accuracy",)
_GAN = ("fig_gan_samples", "fig_gan_curves")

# Every method of the study, in the order the paper lists them (the hyperparameter tables' order).
METHODS: dict[str, Spec] = {
    "supervised": Spec("supervised", "Supervised", order=0),
    "aae": Spec("aae", "AAE", stacked="aae.StackedAAE", family="aae",
                figures=("fig_aae_latent", "fig_aae_style", "fig_aae_recon"), order=3, baseline="supervised"),
    "sgan": Spec("sgan", "SGAN", stacked="gan.StackedSGAN", family="gan", figures=_GAN, order=4),
    "sgan-fm": Spec("sgan_fm", "SGANFM", stacked="gan.StackedSGANFM", family="gan", figures=_GAN, order=5),
    "siamese": Spec("siamese", "Siamese", pretrain="siamese-pairs", family="transfer",
                    figures=("fig_siamese", "fig_siamese_embedding"), order=6, baseline="siamese-scratch"),
    "siamese-scratch": Spec("siamese", "SiameseScratch", family="transfer", figures=("fig_siamese",), order=7),
    "transfer": Spec("transfer", "Transfer", task="digits59", pretrain="transfer-source", family="transfer",
                     figures=("fig_transfer",), order=15, baseline="scratch"),
    "scratch": Spec("transfer", "Scratch", task="digits59", family="transfer", figures=("fig_transfer",), order=16),
    # seed 003: autoencoder pretraining (ae-scratch is the twin of ae and of dae with arch fc)
    "ae": Spec("ae", "AE", pretrain="ae-pretrain", family="ae", figures=_AE, order=8, baseline="ae-scratch"),
    "dae": Spec("dae", "DAE", pretrain="dae-pretrain", family="ae", figures=_AE, order=9, baseline="ae-scratch"),
    "ae-scratch": Spec("ae", "AEScratch", family="ae", figures=_AE_SCRATCH, order=10),
    "conv-ae": Spec("conv_ae", "ConvAE", pretrain="conv-ae-pretrain", family="ae", figures=_AE, order=11,
                    baseline="conv-ae-scratch"),
    "conv-ae-scratch": Spec("conv_ae", "ConvAEScratch", family="ae", figures=_AE_SCRATCH, order=12),
    "vae": Spec("vae", "VAEClassifier", pretrain="vae-pretrain", family="ae", figures=(*_AE, "fig_vae_latent"),
                order=13, baseline="vae-scratch"),
    "vae-scratch": Spec("vae", "VAEScratch", family="ae", figures=_AE_SCRATCH, order=14),
    # seed 003's supervised classifiers
    "linear": Spec("classifiers", "Linear", order=1),
    "conv": Spec("classifiers", "Conv", order=2),
}

# First stages (run once per seed, reused by every budget of that seed).
PRETRAIN: dict[str, Spec] = {
    "transfer-source": Spec("transfer", "TransferSource", task="digits04", family="transfer"),
    "siamese-pairs": Spec("siamese", "SiamesePairs", stacked="siamese.StackedSiamesePairs", family="transfer"),
    "ae-pretrain": Spec("ae", "AEPretrain", stacked="autoencoders.StackedAEPretrain", family="ae"),
    "conv-ae-pretrain": Spec("conv_ae", "ConvAEPretrain", stacked="autoencoders.StackedAEPretrain", family="ae"),
    "dae-pretrain": Spec("dae", "DAEPretrain", stacked="autoencoders.StackedAEPretrain", family="ae"),
    "vae-pretrain": Spec("vae", "VAEPretrain", stacked="autoencoders.StackedAEPretrain", family="ae"),
}


def spec(name: str) -> Spec:
    """The registry entry of ``name`` (a method or a first stage)."""
    found = METHODS.get(name) or PRETRAIN.get(name)
    if found is None:
        raise KeyError(f"unknown method {name!r}; registered: {sorted(METHODS)} (first stages: {sorted(PRETRAIN)})")
    return found


def get(name: str):
    """The method class registered as ``name`` (a first stage if ``name`` is in PRETRAIN)."""
    s = spec(name)
    return getattr(importlib.import_module(f"{__name__}.{s.module}"), s.cls)


# ---- what the other lists were, computed from the tables

def method_order() -> list[str]:
    """The methods in the order tables and figures list them (``order``; unordered ones after, by name)."""
    ordered = sorted((s.order, n) for n, s in METHODS.items() if s.order is not None)
    return [n for _, n in ordered] + sorted(n for n, s in METHODS.items() if s.order is None)


def family(name: str) -> list[str]:
    """The methods of figure family ``name`` (``Spec.family``), in the registry's order."""
    return [n for n, s in METHODS.items() if s.family == name]


def first_stages(methods) -> list[str]:
    """The first stages of ``methods`` (in their order, each once)."""
    return list(dict.fromkeys(METHODS[m].pretrain for m in methods if METHODS[m].pretrain))


def figure_needs() -> dict[str, list[str]]:
    """Figure -> its requirement in the workflow's FIGURE_NEEDS form: a run of one of these methods
    ("a|b"), for every figure a registry entry names (``Spec.figures``)."""
    needs: dict[str, list[str]] = {}
    for n, s in METHODS.items():
        for fig in s.figures:
            needs.setdefault(fig, []).append(n)
    return {fig: ["|".join(names)] for fig, names in needs.items()}


def baseline_pairs() -> dict[str, str]:
    """Method -> its same-architecture baseline (``Spec.baseline``), in table order."""
    return {n: METHODS[n].baseline for n in method_order() if METHODS[n].baseline}


def stackers() -> dict[str, str]:
    """Every method and first stage whose runs stack -> its stacked form ("<module>.<class>" in methods/stacked/)."""
    return {n: s.stacked for n, s in {**METHODS, **PRETRAIN}.items() if s.stacked}


# ---- the files a run's numbers depend on (the workflow's inputs of a train job)

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent


def _local_imports(path: Path) -> set[Path]:
    """The package's modules (not packages: their __init__ is the registry) that ``path`` imports."""
    here = path.parent.relative_to(PACKAGE.parent).parts  # e.g. ("fewlabels", "methods")
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.ImportFrom) or not node.level:
            continue
        base = list(here[:len(here) - (node.level - 1)]) + (node.module.split(".") if node.module else [])
        for alias in node.names:
            for parts in (base + [alias.name], base):  # `from . import x` (a module) or `from .x import y`
                f = PACKAGE.parent.joinpath(*parts).with_suffix(".py")
                if f.is_file():
                    found.add(f)
                    break
    return found


def sources(name: str) -> list[Path]:
    """The files whose code decides what a run of ``name`` computes: its method's module, its stacked
    form, and every module of the package those import, directly or not (base.py, nets.py, data.py,
    the stacked forms' shared parts); not the registries (package ``__init__`` files) nor the shared
    trainer (``fewlabels.training``, which a checkpoint's fingerprint covers: provenance.RUN_CODE).
    Sorted, relative to the checkout (src/fewlabels/...)."""
    s = spec(name)
    todo = [HERE / f"{s.module}.py"] + ([HERE / "stacked" / f"{s.stacked.split('.')[0]}.py"] if s.stacked else [])
    seen: set[Path] = set()
    while todo:
        f = todo.pop()
        if f not in seen:
            seen.add(f)
            todo += _local_imports(f)
    return sorted(f.relative_to(PACKAGE.parent.parent) for f in seen)
