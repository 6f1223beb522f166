"""Configuration checks that JSON schema cannot express.

The Snakefile validates the merged config against workflow/schemas/config.schema.yaml
(structure, names, budgets that are multiples of 10) and then calls ``check``,
which resolves every method's hyperparameters (unknown keys and wrong types are
errors) and checks budgets against the size of each task's pool.

It is the layer above the methods: it reads the registry (``fewlabels.methods``) at import, and
the methods never import it (tests/test_layers.py). Importing it does not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from .methods import METHODS, PRETRAIN, get

# Images of each task in the 55,000-image pool (the fixed validation set removed), and of
# its rarest class there (a budget takes labels / n_classes images of every class).
POOL_SIZES = {"mnist10": 55000, "digits04": 28096, "digits59": 26904}
MIN_CLASS_SIZES = {"mnist10": 4921, "digits04": 5342, "digits59": 4921}
N_CLASSES = {"mnist10": 10, "digits04": 5, "digits59": 5}  # as data.TASKS (kept torch- and numpy-free)


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Resolved:
    """What a name in the grid (or a first stage) stands for: a registered method, or a named
    variant of one (a preset's ``variants:``, e.g. a seed's protocol as published)."""
    name: str            # the run's name: its directory, its rows in metrics.csv, the claims
    method: str          # the registered method or first stage that trains it
    task: str            # the task its runs belong to
    pretrain: str | None  # the first stage (registered or variant name) it needs
    overrides: dict      # hyperparameter overrides of the method's defaults
    split_labels: int | None = None  # a first stage's split: this budget's (None: every pool image)


def resolve(config: dict, name: str) -> Resolved:
    """Resolve ``name``; variants take their overrides from ``variants.<name>.hparams`` alone
    (not from ``methods:``), so a seed's protocol does not change with a preset's schedules."""
    v = (config.get("variants") or {}).get(name)
    if v is not None:
        spec = METHODS.get(v["method"]) or PRETRAIN.get(v["method"])
        if spec is None:
            raise ConfigError(f"variants.{name}.method: unknown method {v['method']!r}; expected one of "
                              f"{sorted(METHODS)} or a first stage {sorted(PRETRAIN)}")
        return Resolved(name, v["method"], spec.task, v.get("pretrain", spec.pretrain), dict(v.get("hparams") or {}),
                        v.get("split_labels"))
    spec = METHODS.get(name) or PRETRAIN.get(name)
    if spec is None:
        raise ConfigError(f"unknown method {name!r}: not registered ({sorted(METHODS)}, first stages "
                          f"{sorted(PRETRAIN)}) and not defined under `variants:`")
    section = "pretrain" if name in PRETRAIN else "methods"
    return Resolved(name, name, spec.task, spec.pretrain, dict((config.get(section) or {}).get(name) or {}))


def runs(config: dict) -> list[dict]:
    """Every training run the grid asks for, once each, in grid order (``labels`` an int or "all")."""
    seen, out = set(), []
    for block in config["grid"]:
        for method in block["methods"]:
            for labels in block["labels"]:
                for seed in block.get("seeds", config["seeds"]):
                    key = (block["task"], method, labels, seed)
                    if key not in seen:
                        seen.add(key)
                        out.append(dict(zip(("task", "method", "labels", "seed"), key)))
    return out


def pretrain_stages(config: dict) -> list[tuple[str, int]]:
    """(stage, seed) pairs the grid needs: each first stage once per seed, whatever the budgets."""
    need = {(resolve(config, r["method"]).pretrain, r["seed"]) for r in runs(config)
            if resolve(config, r["method"]).pretrain}
    return sorted(need)


def grouped(config: dict) -> tuple[list[str], list[str]]:
    """With ``group_runs``: the grid names and the first stages that train as one job per
    (task, budget) or per stage, all seeds in one process. A name qualifies when every one of its
    (task, budget) cells runs exactly the top-level seeds (a block with its own ``seeds:`` keeps one
    job per run); a stage when it is needed for exactly those seeds. ([], []) without group_runs."""
    if not config.get("group_runs"):
        return [], []
    top = set(config["seeds"])
    cells: dict[tuple, set] = {}
    for r in runs(config):
        cells.setdefault((r["task"], r["method"], r["labels"]), set()).add(r["seed"])
    odd = {m for (_, m, _), s in cells.items() if s != top}
    stages: dict[str, set] = {}
    for stage, seed in pretrain_stages(config):
        stages.setdefault(stage, set()).add(seed)
    return (sorted({m for (_, m, _) in cells} - odd), sorted(st for st, s in stages.items() if s == top))


def check_names(config: dict) -> None:
    """The checks that need no torch: names, method/task pairs, variants, budgets."""
    for name, v in (config.get("variants") or {}).items():
        if name in METHODS or name in PRETRAIN:
            raise ConfigError(f"variants.{name}: a variant cannot take the name of a registered method")
        r = resolve(config, name)
        if r.split_labels is not None and r.method not in PRETRAIN:
            raise ConfigError(f"variants.{name}.split_labels: only a first stage takes a budget's split")
        if r.pretrain is not None:
            stage = resolve(config, r.pretrain)
            if stage.method not in PRETRAIN:
                raise ConfigError(f"variants.{name}.pretrain: {r.pretrain!r} is not a first stage "
                                  f"({sorted(PRETRAIN)} or a variant of one)")
            # a stage-2 method loads only its own first stage's model (e.g. transfer: transfer-source)
            own = (METHODS.get(r.method) or PRETRAIN[r.method]).pretrain
            if own is None:
                raise ConfigError(f"variants.{name}.pretrain: method {r.method!r} starts from no first stage")
            if stage.method != own:
                raise ConfigError(f"variants.{name}.pretrain: method {r.method!r} starts from a {own!r} model, "
                                  f"but {r.pretrain!r} is a {stage.method!r} stage")
    for i, block in enumerate(config["grid"]):
        task = block["task"]
        for method in block["methods"]:
            try:
                r = resolve(config, method)
            except ConfigError as e:
                raise ConfigError(f"grid[{i}].methods: {e}") from e
            if r.method in PRETRAIN:
                raise ConfigError(f"grid[{i}].methods: {method!r} is a first stage; list the method that uses it")
            if r.task != task:
                raise ConfigError(f"grid[{i}]: method {method!r} runs on task {r.task!r}, not {task!r}")
        for labels in block["labels"]:
            if labels == "all":  # every pool image of the task, labeled (the full-label reference)
                continue
            if labels > POOL_SIZES[task]:
                raise ConfigError(f"grid[{i}].labels: {labels} is larger than the {task} pool "
                                  f"({POOL_SIZES[task]} images)")
            n_classes = N_CLASSES[task]
            if labels // n_classes > MIN_CLASS_SIZES[task]:
                raise ConfigError(f"grid[{i}].labels: {labels} needs {labels // n_classes} images of every "
                                  f"class, but the {task} pool has only {MIN_CLASS_SIZES[task]} of its rarest "
                                  f"class; use at most {MIN_CLASS_SIZES[task] * n_classes}")
    for section, table in (("methods", METHODS), ("pretrain", PRETRAIN)):
        for name in (config.get(section) or {}):
            if name not in table:
                raise ConfigError(f"{section}.{name}: unknown name; expected one of {sorted(table)}")


def check(config: dict) -> None:
    """Raise ConfigError with a message that names the offending key. Needs torch (the methods'
    hyperparameters are resolved); ``check_names`` is the part that does not."""
    # torch is imported here, not at module level, so the Snakefile can import this module
    # in an environment without torch (e.g. --use-conda) and leave the check to the jobs.
    from .methods.base import HParamError, resolve_hparams

    check_names(config)
    for section, table in (("methods", METHODS), ("pretrain", PRETRAIN)):
        for name, overrides in (config.get(section) or {}).items():
            try:
                resolve_hparams(get(name), overrides)
            except HParamError as e:
                raise ConfigError(f"{section}.{name}: {e}") from e
    for name, v in (config.get("variants") or {}).items():
        try:
            resolve_hparams(get(v["method"]), v.get("hparams") or {})
        except HParamError as e:
            raise ConfigError(f"variants.{name}.hparams: {e}") from e


def hparams(config: dict, name: str) -> dict:
    """The overrides the config gives for method, first stage or variant ``name`` (may be empty)."""
    return resolve(config, name).overrides
