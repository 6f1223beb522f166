"""Configuration checks that JSON schema cannot express.

The Snakefile validates the merged config against workflow/schemas/config.schema.yaml
(structure, names, budgets that are multiples of 10) and then calls ``check``,
which resolves every method's hyperparameters (unknown keys and wrong types are
errors) and checks budgets against the size of each task's pool.
"""

from __future__ import annotations

from .methods import METHODS, PRETRAIN, get

# Images of each task in the 55,000-image pool (the fixed validation set removed), and of
# its rarest class there (a budget takes labels / n_classes images of every class).
POOL_SIZES = {"mnist10": 55000, "digits04": 28096, "digits59": 26904}
MIN_CLASS_SIZES = {"mnist10": 4921, "digits04": 5342, "digits59": 4921}
N_CLASSES = {"mnist10": 10, "digits04": 5, "digits59": 5}  # as data.TASKS (kept torch- and numpy-free)


class ConfigError(ValueError):
    pass


def runs(config: dict) -> list[dict]:
    """Every training run the grid asks for, once each, in grid order (``labels`` an int or "all")."""
    seen, out = set(), []
    for block in config["grid"]:
        for method in block["methods"]:
            for labels in block["labels"]:
                for seed in config["seeds"]:
                    key = (block["task"], method, labels, seed)
                    if key not in seen:
                        seen.add(key)
                        out.append(dict(zip(("task", "method", "labels", "seed"), key)))
    return out


def check(config: dict) -> None:
    """Raise ConfigError with a message that names the offending key."""
    # torch is imported here, not at module level, so the Snakefile can import this module
    # in an environment without torch (e.g. --use-conda) and leave the check to the jobs.
    from .methods.base import HParamError, resolve_hparams

    for i, block in enumerate(config["grid"]):
        task = block["task"]
        for method in block["methods"]:
            want = METHODS[method].task
            if want != task:
                raise ConfigError(f"grid[{i}]: method {method!r} runs on task {want!r}, not {task!r}")
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
        for name, overrides in (config.get(section) or {}).items():
            if name not in table:
                raise ConfigError(f"{section}.{name}: unknown name; expected one of {sorted(table)}")
            try:
                resolve_hparams(get(name), overrides)
            except HParamError as e:
                raise ConfigError(f"{section}.{name}: {e}") from e


def hparams(config: dict, name: str) -> dict:
    """The overrides the config gives for method or first stage ``name`` (may be empty)."""
    section = "pretrain" if name in PRETRAIN else "methods"
    return dict((config.get(section) or {}).get(name) or {})
