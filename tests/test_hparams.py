"""The generated hyperparameter tables (fewlabels.report.hparams) agree with the code, and the
paper names only methods that exist (issue 21, item 4)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from fewlabels.methods import METHODS, PRETRAIN, get
from fewlabels.methods.base import COMMON_DEFAULTS
from fewlabels.report import hparams as H

REPO = Path(__file__).resolve().parents[1]
ALL = [*METHODS, *PRETRAIN]

# Defaults that carry no comment in their DEFAULTS literal today (the table shows them as
# "uncited"; several are cited in their module's docstring instead). A NEW default without a comment
# fails test_no_new_uncited_defaults: cite the seed's file:line beside the key, or write "ours".
KNOWN_UNCITED = {
    ("common", "batch_size"),
    ("supervised", "batch_size"),
    ("aae", "lr_ssl"),
    ("sgan", "steps_per_epoch"), ("sgan", "beta1"),
    *(("sgan-fm", k) for k in ("batch_size", "z_dim", "lr", "beta1", "unlabeled_weight", "d_hidden",
                               "g_hidden", "input_noise", "hidden_noise")),
    *((m, k) for m in ("linear", "conv")
      for k in ("steps_per_epoch", "batch_size", "lr", "min_steps_per_epoch", "library_batch")),
    ("dae-pretrain", "arch"), ("dae-pretrain", "noise"),
}

# `\texttt{...}` tokens of ms.tex that look like method names but are not methods, with the reason.
NOT_METHODS = {
    "stack": "a configuration key (stacked training of many seeds), not a method",
    "tf1": "a value of the data_split key (TF1's read_data_sets cut), not a method",
    "head": "a value of the label_draw key, not a method",
}


def _expected(value) -> str:
    """How a default must read in the LaTeX table (written independently of H.fmt)."""
    text = f'"{value}"' if isinstance(value, str) else repr(value)
    return text.replace("\\", r"\textbackslash ").replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")


def _tables(tex: str) -> dict[str, dict[str, list[str]]]:
    """label (tab:hparams-<name>) -> key -> the row's cells, parsed back from generated LaTeX."""
    out = {}
    for block in tex.split(r"\begin{table}")[1:]:
        label = re.search(r"\\label\{tab:hparams-([^}]*)\}", block).group(1)
        body = block.split(r"\midrule", 1)[1].split(r"\bottomrule", 1)[0]
        rows = {}
        for line in body.strip().splitlines():
            cells = [c.strip() for c in line.rstrip().removesuffix(r"\\").split(" & ")]
            key = re.fullmatch(r"\\texttt\{(.*)\}", cells[0]).group(1).replace(r"\allowbreak{}", "")
            # values are set in typewriter type (its quote is straight); compare what is inside
            cells = [cells[0]] + [re.sub(r"^\\texttt\{(.*)\}$", r"\1", c) for c in cells[1:]]
            rows[key.replace(r"\_", "_")] = cells
        out[label] = rows
    return out


def _check_against_code(tables: dict, names) -> None:
    common = tables["common"]
    assert list(common) == list(COMMON_DEFAULTS)
    for key, value in COMMON_DEFAULTS.items():
        assert common[key][1] == _expected(value), key
    for name in names:
        resolved = {**COMMON_DEFAULTS, **get(name).DEFAULTS}
        table = tables[name]
        assert list(table) == list(resolved), f"{name}: keys differ from its resolved defaults"
        for key, value in resolved.items():
            assert table[key][1] == _expected(value), f"{name}.{key}: table {table[key][1]!r}, code {value!r}"


def test_table_agrees_with_every_default():
    """Every key and every value of every method's resolved defaults is in its generated table."""
    _check_against_code(_tables(H.latex(ALL)), ALL)


def test_generated_file_is_current():
    """A paper/generated/tab_hparams.tex left by the workflow still matches the code (a default
    changed without regenerating fails here; the rule reruns because the sources are its inputs)."""
    path = REPO / "paper" / "generated" / "tab_hparams.tex"
    if not path.exists():
        pytest.skip("no generated table (run: snakemake paper/generated/tab_hparams.tex)")
    tables = _tables(path.read_text())
    _check_against_code(tables, [n for n in tables if n != "common"])


def test_preset_overrides_column():
    tex = H.latex(["supervised", "aae"], {"supervised": {"epochs": 20, "steps_per_epoch": 100}})
    t = _tables(tex)
    assert t["supervised"]["epochs"][1:3] == ["1000", "20"]
    assert t["supervised"]["steps_per_epoch"][1:3] == ["None", "100"]
    assert t["supervised"]["lr"][2] == ""
    assert len(t["aae"]["epochs"]) == 3  # no overrides: no preset column
    with pytest.raises(KeyError, match="unknown keys"):
        H.rows("supervised", {"nonsense": 1})


@pytest.mark.parametrize("method,key,cited", [
    ("transfer", "lr", "002:37, 120"),                      # inherited through a dict comprehension
    ("scratch", "hidden", "002:31-32, 102-105"),            # **TowerMethod.DEFAULTS
    ("transfer-source", "epochs", "(002:38, 172)"),         # the comment above the DEFAULTS line
    ("transfer", "restore_layers", "002:150-153"),
    ("siamese-scratch", "hidden", "000:88-92"),             # **TOWER_DEFAULTS, another module's name
    ("siamese", "freeze_tower", "Geron ex. 10.4"),
    ("sgan", "z_dim", "001:247, 290"),                      # the comment on the spread's line names it
    ("ae-pretrain", "epochs", "003:307"),
    ("ae-scratch", "sizes", "003:163"),                     # **ARCH_DEFAULTS["fc"]
    ("ae", "lr", "003:681, 1293"),                          # DEFAULTS = EncoderHead.DEFAULTS, imported
    ("vae-scratch", "hidden", "ours"),
    ("aae", "dcat_fake_target_bug", "0aa06dc"),             # the comment block above the key
    ("aae", "momentum_reg", "generator step); None: beta1 (paper: 0.1)"),  # continued under its column
    ("aae", "input_noise", "never at evaluation (seed: none; paper: 0.3)"),
])
def test_citation_comments(method, key, cited):
    row = next(r for r in H.rows(method) if r.key == key)
    assert cited in row.citation
    assert not row.shared


def test_shared_keys_point_to_the_common_table():
    row = next(r for r in H.rows("supervised") if r.key == "label_draw")
    assert row.shared and "000:15-17" in row.citation
    t = _tables(H.latex(["supervised"]))
    assert "tab:hparams-common" in t["supervised"]["label_draw"][-1]


def test_uncited_is_flagged_never_ours():
    """Policy: "ours" appears only where the comment says it; no comment at all reads "uncited"."""
    md = H.markdown(["sgan-fm"])
    assert "| `lr` | 0.003 | **uncited** |" in md
    for name in ALL:
        for r in H.rows(name):
            cell = H.frame(name)["source"][[x.key for x in H.rows(name)].index(r.key)]
            if not r.citation:
                assert "uncited" in cell and "ours" not in cell
            elif not r.shared:
                assert cell == r.citation


def test_no_new_uncited_defaults():
    found = {("common", k) for k, c in H.common_citations().items() if not c}
    found |= {(n, r.key) for n in ALL for r in H.rows(n) if not r.shared and not r.citation}
    new = found - KNOWN_UNCITED
    assert not new, (f"defaults without a citation comment: {sorted(new)}; add the seed's file:line "
                     f"(or 'ours') beside the key in its DEFAULTS")


def test_markdown_cli(capsys):
    assert H.main(["--markdown", "--methods", "transfer",
                   "--overrides", json.dumps({"methods": {"transfer": {"epochs": 3}}})]) == 0
    out = capsys.readouterr().out
    assert "## transfer" in out and "| `epochs` | 100 | 3 |" in out


@pytest.mark.parametrize("archive", ["results/archive-seeds", "results/archive"])
def test_grid_methods_of_the_archived_presets(archive):
    cfg_path = REPO / archive / "config.yaml"
    if not cfg_path.exists():
        pytest.skip(f"no {archive}")
    cfg = yaml.safe_load(cfg_path.read_text())
    names = H.grid_methods(cfg)
    assert "transfer" in names and "transfer-source" in names  # a variant resolves to its method
    assert all(n in METHODS or n in PRETRAIN for n in names)
    for n, o in H.preset_overrides(cfg, names).items():
        H.rows(n, o)  # every override is a known key


def _preset_names_and_variants() -> tuple[set, set]:
    presets, variants = set(), set()
    for f in [REPO / "config.yaml", *sorted((REPO / "presets").glob("*.yaml"))]:
        cfg = yaml.safe_load(f.read_text()) or {}
        if "preset" in cfg:
            presets.add(cfg["preset"])
        variants |= set(cfg.get("variants") or {})
    return presets, variants


def test_paper_names_only_registered_methods():
    r"""Every \texttt{name} of ms.tex that looks like a method name (lowercase letters, digits,
    hyphens) is a registered method, a first stage, a preset's variant, a preset's
    name or a listed non-method token."""
    tex = (REPO / "paper" / "ms.tex").read_text()
    presets, variants = _preset_names_and_variants()
    known = set(METHODS) | set(PRETRAIN) | variants | presets | set(NOT_METHODS)
    tokens = set(re.findall(r"\\texttt\{([a-z0-9-]+)\}", tex))
    unknown = sorted(tokens - known)
    assert not unknown, f"ms.tex names methods that are not registered: {unknown}"
    assert tokens & set(METHODS), "the pattern found no method at all: is it still reading ms.tex?"
