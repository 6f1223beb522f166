"""The one registry of methods: name -> where its class lives.

Importing this module does not import torch, so the Snakefile can read the table
cheaply; ``get(name)`` imports the method's file when a run needs it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Spec:
    module: str            # file in this package
    cls: str               # class in that file
    task: str = "mnist10"  # the task its stage-2 runs belong to
    pretrain: str | None = None  # name in PRETRAIN of the stage it needs first


# Every method of the study, in the order the paper lists them.
METHODS: dict[str, Spec] = {
    "supervised": Spec("supervised", "Supervised"),
    "aae": Spec("aae", "AAE"),
    "sgan": Spec("sgan", "SGAN"),
    "sgan-fm": Spec("sgan_fm", "SGANFM"),
    "siamese": Spec("siamese", "Siamese", pretrain="siamese-pairs"),
    "siamese-scratch": Spec("siamese", "SiameseScratch"),
    "transfer": Spec("transfer", "Transfer", task="digits59", pretrain="transfer-source"),
    "scratch": Spec("transfer", "Scratch", task="digits59"),
    # seed 003: autoencoder pretraining (ae-scratch is the twin of ae and of dae with arch fc)
    "ae": Spec("ae", "AE", pretrain="ae-pretrain"),
    "dae": Spec("dae", "DAE", pretrain="dae-pretrain"),
    "ae-scratch": Spec("ae", "AEScratch"),
    "conv-ae": Spec("conv_ae", "ConvAE", pretrain="conv-ae-pretrain"),
    "conv-ae-scratch": Spec("conv_ae", "ConvAEScratch"),
    "vae": Spec("vae", "VAEClassifier", pretrain="vae-pretrain"),
    "vae-scratch": Spec("vae", "VAEScratch"),
    # seed 003's supervised classifiers
    "linear": Spec("classifiers", "Linear"),
    "conv": Spec("classifiers", "Conv"),
}

# First stages (run once per seed, reused by every budget of that seed).
PRETRAIN: dict[str, Spec] = {
    "transfer-source": Spec("transfer", "TransferSource", task="digits04"),
    "siamese-pairs": Spec("siamese", "SiamesePairs"),
    "ae-pretrain": Spec("ae", "AEPretrain"),
    "conv-ae-pretrain": Spec("conv_ae", "ConvAEPretrain"),
    "dae-pretrain": Spec("dae", "DAEPretrain"),
    "vae-pretrain": Spec("vae", "VAEPretrain"),
}


def get(name: str):
    """The method class registered as ``name`` (a first stage if ``name`` is in PRETRAIN)."""
    spec = METHODS.get(name) or PRETRAIN.get(name)
    if spec is None:
        raise KeyError(f"unknown method {name!r}; registered: {sorted(METHODS)} (first stages: {sorted(PRETRAIN)})")
    return getattr(importlib.import_module(f"{__name__}.{spec.module}"), spec.cls)
