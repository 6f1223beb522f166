"""How a configuration is put together, as the Snakefile does it: config.yaml, then (for the bare command, whose
preset is ``paper``) the layers of the study, then the files given with ``--configfile``, each merged over the
last (nested dicts merged, everything else replaced: Snakemake's semantics).

The ``paper`` preset is the study: every method on the shared protocol with the ``compare`` preset's schedules
(presets/compare.yaml), every source's claim under its own protocol (the ``seeds`` preset's variants,
presets/seeds.yaml), at the budgets and seeds of presets/paper.yaml, which also lists the grid. Other presets
name themselves (``preset: quick`` ...) and never take these layers, so their meaning does not change with
the study's.

Importing this module does not import torch.
"""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
BASE = "config.yaml"
PAPER_LAYERS = ("presets/compare.yaml", "presets/seeds.yaml", "presets/paper.yaml")


def merge(base: dict, over: dict) -> dict:
    """Snakemake's --configfile semantics: nested dicts are merged, everything else replaced."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read(path: Path) -> dict:
    return yaml.safe_load(Path(path).read_text()) or {}


def load(configfiles=(), root: Path = REPO) -> dict:
    """The configuration the workflow resolves for ``snakemake --configfile <configfiles...>`` in ``root``."""
    over = {}
    for f in configfiles:
        over = merge(over, read(f))
    cfg = merge(read(Path(root) / BASE), over)
    if cfg.get("preset") == "paper":
        cfg = read(Path(root) / BASE)
        for layer in PAPER_LAYERS:
            cfg = merge(cfg, read(Path(root) / layer))
        cfg = merge(cfg, over)
    return cfg
