"""One registry entry per method (issue 27): every list of method names the code and the workflow use
is computed from ``fewlabels.methods``, and each entry is consistent with the classes it names. (The
config schema's method names are checked against it in tests/test_config.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from fewlabels import methods as M
from fewlabels.methods import METHODS, PRETRAIN

from conftest import REPO


def test_every_entry_names_its_class_and_its_first_stage_and_baseline_exist():
    for name, spec in {**METHODS, **PRETRAIN}.items():
        assert M.get(name).NAME == name, name  # the trainer and the stackers go by NAME
        assert spec.pretrain is None or spec.pretrain in PRETRAIN, name
        assert spec.baseline is None or spec.baseline in METHODS, name
        assert (REPO / "src/fewlabels/report/figures" / f"{spec.family}.py").is_file(), (name, spec.family)
    assert not set(METHODS) & set(PRETRAIN)


def test_the_lists_computed_from_the_registry():
    order = M.method_order()
    assert sorted(order) == sorted(METHODS) and len(order) == len(set(order))
    assert order[0] == "supervised" and order[-2:] == ["transfer", "scratch"]
    assert M.family("ae") == ["ae", "dae", "ae-scratch", "conv-ae", "conv-ae-scratch", "vae", "vae-scratch"]
    assert M.first_stages(M.family("ae")) == ["ae-pretrain", "dae-pretrain", "conv-ae-pretrain", "vae-pretrain"]
    needs = M.figure_needs()
    assert needs["fig_siamese"] == ["siamese|siamese-scratch"] and needs["fig_siamese_embedding"] == ["siamese"]
    assert set(needs["fig_ae_accuracy"][0].split("|")) == set(M.family("ae"))


def test_the_paired_tables_baselines_are_the_registrys():
    """report/tables.py keeps PAIRS (its order is the paired table's row order); the pairs are the registry's."""
    from fewlabels.report.tables import PAIRS

    assert PAIRS == M.baseline_pairs()


def test_each_stacked_form_stacks_its_method():
    from fewlabels.methods.stacked import OWN_STACKER, STACKABLE, stacker
    from fewlabels.methods.stacked.classifiers import SUPPORTED, StackedRuns

    assert set(STACKABLE) == set(SUPPORTED) | set(OWN_STACKER)
    assert not set(SUPPORTED) & set(OWN_STACKER)
    for name in OWN_STACKER:
        assert issubclass(M.get(name), stacker(name).METHOD), name
    for name in SUPPORTED:
        assert stacker(name) is StackedRuns
    with pytest.raises(NotImplementedError, match="no stacked form"):
        stacker("no-such-method")


@pytest.mark.parametrize("name,expect", [
    ("aae", {"methods/aae.py", "methods/base.py", "methods/stacked/aae.py", "methods/stacked/nets.py", "nets.py"}),
    ("ae", {"methods/ae.py", "methods/autoencoders.py", "methods/stacked/classifiers.py"}),
    ("sgan-fm", {"methods/sgan_fm.py", "methods/sgan.py", "methods/gan.py", "methods/stacked/gan.py"}),
])
def test_a_runs_sources_are_its_method_its_stacked_form_and_what_they_import(name, expect):
    got = {Path(p).relative_to("src/fewlabels").as_posix() for p in M.sources(name)}
    assert expect <= got, expect - got
    # not the registries, not the trainer, not another method's files
    assert not {p for p in got if p.endswith("__init__.py") or p.startswith("training/")}
    assert "methods/supervised.py" not in got
    assert all((REPO / p).is_file() for p in M.sources(name))


def test_an_unknown_method_is_a_clear_error():
    with pytest.raises(KeyError, match="unknown method 'nope'"):
        M.sources("nope")
