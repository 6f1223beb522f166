"""What bf16 costs (fewlabels.report.precision_cost, issue 25 item 2): the paired difference bf16 - fp32 per
method, its 95 % t-interval, and whether it lies within +-0.5 points, on made-up metrics tables."""

from __future__ import annotations

import pandas as pd
import pytest

from fewlabels.report import precision_cost as PC


def rows(method, name, precision, accs, train_s=10.0):
    return [{"task": "mnist10", "method": name, "base_method": method, "labels": 1000, "seed": s,
             "precision": precision, "test_accuracy": a, "split_sha256": f"split{s}", "train_s": train_s,
             "steps": 1000} for s, a in enumerate(accs)]


def table():
    return pd.DataFrame(
        rows("supervised", "supervised", "fp32", [0.900, 0.910, 0.905], 20.0)
        + rows("supervised", "supervised-bf16", "bf16", [0.901, 0.909, 0.906], 10.0)      # diffs +0.1 -0.1 +0.1
        + rows("aae", "aae", "fp32", [0.95, 0.95, 0.95])
        + rows("aae", "aae-bf16", "bf16", [0.93, 0.929, 0.931])                          # -2 points, tight
        + rows("sgan-fm", "sgan-fm", "fp32", [0.90, 0.92, 0.94])
        + rows("sgan-fm", "sgan-fm-bf16", "bf16", [0.91, 0.90, 0.95])                    # +1 -2 +1: wide
        + rows("linear", "linear", "fp32", [0.9, 0.9, 0.9]))                             # fp32 only: no row


def test_paired_differences_and_verdicts():
    cs = {c.method: c for c in PC.costs(table())}
    assert list(cs) == ["supervised", "aae", "sgan-fm"]
    sup = cs["supervised"]
    assert sup.diff.n == 3 and sup.diff.mean == pytest.approx(0.1 / 3)
    # t(0.975, 2) = 4.303; sd of (+0.1, -0.1, +0.1) = 0.1155
    half = 4.3027 * 0.11547 / 3 ** 0.5
    assert (sup.diff.lo, sup.diff.hi) == pytest.approx((0.1 / 3 - half, 0.1 / 3 + half), abs=1e-3)
    assert sup.verdict == PC.WITHIN
    assert cs["aae"].verdict == PC.OUTSIDE and cs["aae"].diff.mean == pytest.approx(-2.0)
    assert cs["sgan-fm"].verdict == PC.UNDECIDED
    assert sup.fp32_ms == pytest.approx(20.0) and sup.bf16_ms == pytest.approx(10.0)
    assert PC.bf16_methods(list(cs.values())) == ["supervised"]
    md = PC.markdown(list(cs.values()))
    assert "| supervised | 1000 | 3 |" in md and "| within |" in md and "2.00x" in md
    assert "stays fp32: aae, sgan-fm" in PC.summary(list(cs.values()))


def test_one_seed_or_two_variants_of_a_precision():
    one = pd.DataFrame(rows("aae", "aae", "fp32", [0.9]) + rows("aae", "aae-bf16", "bf16", [0.9]))
    [c] = PC.costs(one)
    assert c.verdict == PC.UNDECIDED  # one pair: no interval
    two = pd.DataFrame(rows("aae", "aae", "fp32", [0.9]) + rows("aae", "a", "bf16", [0.9])
                       + rows("aae", "b", "bf16", [0.9]))
    with pytest.raises(ValueError, match="several bf16 runs of one seed"):
        PC.costs(two)
    with pytest.raises(KeyError, match="no precision column"):
        PC.costs(table().drop(columns="precision"))


def test_markdown_block_is_rewritten(tmp_path):
    metrics, page = tmp_path / "metrics.csv", tmp_path / "speed.md"
    table().to_csv(metrics, index=False)
    page.write_text("# Speed\n\n<!-- precision-cost:begin -->\nold\n<!-- precision-cost:end -->\n\nafter\n")
    assert PC.main(["--metrics", str(metrics), "--markdown", str(page)]) == 0
    text = page.read_text()
    assert "old" not in text and "| aae | 1000 | 3 |" in text and text.endswith("\n\nafter\n")


def test_tex_table(tmp_path):
    out = tmp_path / "tab.tex"
    metrics = tmp_path / "metrics.csv"
    table().to_csv(metrics, index=False)
    PC.main(["--metrics", str(metrics), "--tex", str(out)])
    text = out.read_text()
    assert text.startswith(r"\begin{tabular}") and r"\texttt{aae} & 1000 & 3 & 95.00 $\pm$ 0.00 & $-2.00$" in text
    assert text.count(r"\\") == 4  # the header and three methods


def test_grid_pairs_names_methods_trained_in_both_precisions():
    from conftest import REPO
    from fewlabels.report.estimate import load_config

    cfg = load_config([REPO / "presets" / "precision.yaml"])
    assert PC.grid_pairs(cfg) == ["supervised", "aae", "sgan-fm"]
    assert PC.grid_pairs(load_config([REPO / "presets" / "quick.yaml"])) == []  # fp32 only: no table
    cfg["variants"]["aae-bf16"]["hparams"]["precision"] = "auto"  # machine-dependent: not a pair
    assert PC.grid_pairs(cfg) == ["supervised", "sgan-fm"]


def test_seeds_needed():
    from fewlabels.report.claims import Paired, t_quantile

    d = Paired(n=3, mean=0.1, sd=0.3, lo=-0.6, hi=0.8)
    n = PC.seeds_needed(d)
    assert 0.1 + t_quantile(0.975, n - 1) * 0.3 / n ** 0.5 <= 0.5 < 0.1 + t_quantile(0.975, n - 2) * 0.3 / (n - 1) ** 0.5
    assert PC.seeds_needed(Paired(n=3, mean=0.6, sd=0.1, lo=0.4, hi=0.8)) is None  # the mean is outside
    assert PC.seeds_needed(Paired(n=1, mean=0.0)) is None
