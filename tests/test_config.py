"""The config schema and the hyperparameter checks reject bad input with messages that name the key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from fewlabels import config as C
from fewlabels.methods import METHODS, PRETRAIN

from conftest import REPO, snakemake

SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")


def merged(*presets: str) -> dict:
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    for p in presets:
        cfg.update(yaml.safe_load((REPO / "presets" / f"{p}.yaml").read_text()))
    return cfg


def deep_update(d, u):
    for k, v in u.items():
        d[k] = deep_update(d.get(k, {}), v) if isinstance(v, dict) and isinstance(d.get(k), dict) else v
    return d


@pytest.fixture
def cfg():
    return copy.deepcopy(merged())


def test_the_paper_preset_is_the_study():
    """The bare command's configuration: the compare preset's schedules and variants, every source claim of the
    seeds preset (its grid blocks, unchanged), the literature's budgets, 5 seeds; valid as a whole."""
    from fewlabels import presets

    cfg = presets.load()
    compare, seeds = (yaml.safe_load((REPO / "presets" / f"{p}.yaml").read_text()) for p in ("compare", "seeds"))
    assert cfg["preset"] == "paper" and cfg["seeds"] == [0, 1, 2, 3, 4]
    for name, over in compare["methods"].items():
        assert {k: cfg["methods"][name][k] for k in over} == over, name
    assert set(compare["variants"]) | set(seeds["variants"]) <= set(cfg["variants"])
    assert cfg["grid"][-len(seeds["grid"]):] == seeds["grid"]
    budgets = {b["task"]: b["labels"] for b in cfg["grid"][:2]}
    assert budgets == {"mnist10": [100, 600, 1000, 3000], "digits59": [50, 100, 500, 1000]}
    study = set(cfg["grid"][0]["methods"]) | set(cfg["grid"][1]["methods"])
    assert {m for b in compare["grid"] for m in b["methods"]} <= study
    validate(cfg, SCHEMA)
    C.check(cfg)
    # a preset that names itself takes none of the study's layers
    quick = presets.load([REPO / "presets" / "quick.yaml"])
    assert quick["preset"] == "quick" and "aae-makhzani" not in (quick.get("variants") or {})
    assert quick["methods"]["aae"] == deep_update(copy.deepcopy(merged()["methods"]["aae"]),
                                                  yaml.safe_load((REPO / "presets" / "quick.yaml").read_text())["methods"]["aae"])


@pytest.mark.parametrize("preset", [[], ["quick"], ["smoke"], ["seeds"]])
def test_every_preset_is_valid(preset):
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    for p in preset:
        deep_update(cfg, yaml.safe_load((REPO / "presets" / f"{p}.yaml").read_text()))
    validate(cfg, SCHEMA)
    C.check(cfg)


def test_schema_names_only_registered_methods_and_config_rejects_the_rest():
    """The registry (fewlabels.methods) is the one list of names: the schema describes some of them and
    names no other, and fewlabels.config rejects an unregistered name in either section, so a new method
    needs no schema entry."""
    schema = yaml.safe_load(Path(SCHEMA).read_text())
    # grid names are checked by fewlabels.config (they may be variants)
    assert set(schema["properties"]["methods"]["properties"]) <= set(METHODS)
    assert set(schema["properties"]["pretrain"]["properties"]) <= set(PRETRAIN)
    for section, table, other in (("methods", METHODS, "siamese-pairs"), ("pretrain", PRETRAIN, "supervised")):
        for name in (other, "resnet"):
            with pytest.raises(C.ConfigError, match=rf"{section}\.{name}: unknown name"):
                C.check_names({**merged(), section: {name: {}}})
        C.check_names({**merged(), section: {n: {} for n in table}})  # every registered name passes


def _error(cfg) -> str:
    with pytest.raises((WorkflowError, C.ConfigError)) as e:
        validate(cfg, SCHEMA)
        C.check(cfg)
    return str(e.value)


def test_unknown_top_level_key(cfg):
    cfg["sedes"] = [0]
    assert "sedes" in _error(cfg)


def test_unknown_method_in_grid(cfg):
    cfg["grid"][0]["methods"].append("resnet")
    assert "resnet" in _error(cfg)


def test_unknown_method_section(cfg):
    cfg["methods"]["resnet"] = {"epochs": 1}
    assert "resnet" in _error(cfg)


@pytest.mark.parametrize("labels", [105, 0, 60000])
def test_bad_budget(cfg, labels):
    cfg["grid"][0]["labels"] = [labels]
    msg = _error(cfg)
    assert str(labels) in msg and "labels" in msg


def test_budget_larger_than_the_task_pool(cfg, monkeypatch):
    # the schema caps budgets at the 55,000-image pool; smaller task pools are checked in Python
    monkeypatch.setitem(C.POOL_SIZES, "mnist10", 800)
    cfg["grid"][0]["labels"] = [1000]
    msg = _error(cfg)
    assert "grid[0].labels" in msg and "1000" in msg and "800" in msg


def test_non_integer_seed(cfg):
    cfg["seeds"] = [0, 1.5]
    assert "1.5" in _error(cfg)


def test_missing_key(cfg):
    del cfg["seeds"]
    assert "seeds" in _error(cfg)


def test_unknown_hyperparameter_names_method_and_key(cfg):
    cfg["methods"]["supervised"]["learning_rate"] = 0.1
    msg = _error(cfg)
    assert "methods.supervised" in msg and "learning_rate" in msg


def test_wrong_hyperparameter_type(cfg):
    cfg["methods"]["supervised"]["epochs"] = "ten"
    msg = _error(cfg)
    assert "epochs" in msg and "ten" in msg


def test_runs_expand_the_grid_once_per_run():
    cfg = {"seeds": [3, 4], "grid": [{"task": "mnist10", "labels": [20, 40], "methods": ["supervised"]},
                                     {"task": "mnist10", "labels": [40], "methods": ["supervised"]}]}
    runs = C.runs(cfg)
    assert len(runs) == 4 and {(r["labels"], r["seed"]) for r in runs} == {(20, 3), (20, 4), (40, 3), (40, 4)}


def test_snakemake_reports_a_bad_config_by_key(sandbox):
    bad = sandbox / "bad.yaml"
    bad.write_text("grid:\n  - {task: mnist10, labels: [15], methods: [supervised]}\n")
    proc = snakemake(sandbox, "-n", "--configfile", str(bad), check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "15" in out and "multipleOf" in out


def test_budget_beyond_the_rarest_class(cfg):
    # 26,900 fits in the 26,904-image digits 5-9 pool, but not 5,380 of each digit
    cfg["grid"].append({"task": "digits59", "labels": [26900], "methods": ["scratch"]})
    msg = _error(cfg)
    assert "grid[" in msg and "26900" in msg and "rarest class" in msg


def test_pool_sizes_match_the_data(mnist_path):
    from fewlabels import data as D
    y = D.load_mnist(mnist_path)["y_train"]
    pool = D.pool_indices(y, D.validation_indices(y))
    for task, (classes, _) in D.TASKS.items():
        counts = [int((y[pool] == c).sum()) for c in classes]
        assert (sum(counts), min(counts), len(classes)) == \
            (C.POOL_SIZES[task], C.MIN_CLASS_SIZES[task], C.N_CLASSES[task])


def test_config_module_imports_without_torch():
    import subprocess
    import sys
    code = ("import sys; sys.modules['torch'] = None; sys.modules['numpy'] = None\n"
            "from fewlabels import config, methods; print(len(config.runs({'seeds': [0], 'grid': []})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_every_registered_class_carries_its_registry_name():
    # model.pt records the class's NAME; a second stage checks it against the registry name
    from fewlabels.methods import get
    for name in [*METHODS, *PRETRAIN]:
        assert get(name).NAME == name


def _variant_cfg(cfg, **variant):
    cfg["variants"] = {"supervised-as-seed": {"method": "supervised", **variant}}
    cfg["grid"] = [{"task": "mnist10", "labels": [100], "methods": ["supervised-as-seed"]}]
    return cfg


def test_variant_resolves_to_its_method_and_own_overrides(cfg):
    cfg = _variant_cfg(cfg, hparams={"epochs": 3, "label_draw": "random"})
    cfg["methods"]["supervised"] = {"epochs": 100}
    validate(cfg, SCHEMA)
    C.check(cfg)
    r = C.resolve(cfg, "supervised-as-seed")
    assert (r.method, r.task, r.pretrain) == ("supervised", "mnist10", None)
    # a variant is the method's defaults plus its own hparams: the preset's `methods:` does not leak in
    assert C.hparams(cfg, "supervised-as-seed") == {"epochs": 3, "label_draw": "random"}
    assert C.hparams(cfg, "supervised") == {"epochs": 100}


@pytest.mark.parametrize("variant, needle", [
    ({"method": "resnet"}, "resnet"),
    ({"method": "supervised", "hparams": {"label_draw": "stratified"}}, "label_draw"),
    ({"method": "supervised", "hparams": {"epoch": 3}}, "epoch"),
    ({"method": "supervised", "pretrain": "supervised"}, "first stage"),
    ({"method": "supervised", "pretrain": "transfer-source"}, "starts from no first stage"),
    ({"method": "transfer", "pretrain": "siamese-pairs"}, "'transfer-source' model"),
])
def test_bad_variant_is_named(cfg, variant, needle):
    cfg = _variant_cfg(cfg, **{k: v for k, v in variant.items() if k != "method"})
    cfg["variants"]["supervised-as-seed"]["method"] = variant["method"]
    msg = _error(cfg)
    assert needle in msg and "supervised-as-seed" in msg


def test_grid_name_that_is_neither_method_nor_variant(cfg):
    cfg["grid"][0]["methods"] = ["supervised-as-seed"]
    msg = _error(cfg)
    assert "supervised-as-seed" in msg and "variants" in msg


def test_variant_on_the_wrong_task(cfg):
    cfg["variants"] = {"transfer-x": {"method": "transfer"}}
    cfg["grid"] = [{"task": "mnist10", "labels": [100], "methods": ["transfer-x"]}]
    assert "digits59" in _error(cfg)
