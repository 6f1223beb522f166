"""The scorecard's statistics and verdict rules (fewlabels.report.claims), on small synthetic metrics tables."""

import math

import pandas as pd
import pytest

from fewlabels.report import claims, tables
from fewlabels.report.claims import paired, scorecard, t_pvalue, t_quantile


def runs(method, accs, labels=1000, task="mnist10", split=None, preset=None):
    """Rows of metrics.csv: one run per seed 0, 1, ... with these test accuracies (in %)."""
    rows = [dict(task=task, method=method, labels=str(labels), seed=i, stage="train",
                 test_accuracy=a / 100, val_accuracy=a / 100, test_errors=round(10000 - 100 * a), wall_s=1.0,
                 split_sha256=(split or {}).get(i, f"split{i}"))
            for i, a in enumerate(accs)]
    df = pd.DataFrame(rows)
    return df.assign(preset=preset) if preset else df


def claim(expect, method="m", labels=1000, preset="seeds", **kw):
    return dict(id="c", claim="a claim", source="seed 999", run=dict(task="mnist10", method=method, labels=labels),
                protocol=dict(preset=preset), expect=expect, **kw)


def verdicts(c, df, preset="seeds"):
    return [v.verdict for v in scorecard([c], df, preset)]


# ---- t distribution against published table values
@pytest.mark.parametrize("df,q", [(1, 12.7062), (2, 4.3027), (3, 3.1824), (4, 2.7764), (9, 2.2622),
                                  (10, 2.2281), (30, 2.0423), (120, 1.9799)])
def test_t_quantile_matches_tables(df, q):
    assert t_quantile(0.975, df) == pytest.approx(q, abs=1e-4)


def test_t_quantile_tends_to_normal_and_pvalues():
    assert t_quantile(0.975, 5000) == pytest.approx(1.95996, abs=1e-3)
    assert t_quantile(0.95, 1) == pytest.approx(6.3138, abs=1e-4)
    assert t_pvalue(1.0, 1) == pytest.approx(0.5)          # Cauchy: P(|T| > 1) = 1/2
    assert t_pvalue(2.0, 5) == pytest.approx(0.10194, abs=1e-5)
    assert t_pvalue(3.0, 4) == pytest.approx(0.03994, abs=1e-5)
    assert t_pvalue(0.0, 7) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        t_quantile(0.975, 0)


def test_stats_interval():
    s = claims.Stats.of([90.0, 92.0, 94.0])
    assert (s.mean, s.sd) == (92.0, 2.0)
    half = 4.3027 * 2 / math.sqrt(3)
    assert s.lo == pytest.approx(92 - half, abs=1e-3) and s.hi == pytest.approx(92 + half, abs=1e-3)
    one = claims.Stats.of([90.0])
    assert one.n == 1 and one.lo is None and "1 seed" in one.tex()


# ---- approx / range: inside / disjoint / straddling
def test_approx_reproduced_only_when_the_whole_interval_lies_inside_the_band():
    # mean 87, sd 0.5, 3 seeds: interval 87 +- 1.24 lies inside [85, 89]
    assert verdicts(claim({"approx": 87, "tol": 2}), runs("m", [86.5, 87.0, 87.5])) == ["reproduced"]


def test_an_interval_that_only_overlaps_the_band_is_inconclusive_not_reproduced():
    # the case: seeds 84.99, 87.31, 90.83, none in 88-90; the interval [80.4, 95.0] covers the band
    [v] = scorecard([claim({"range": [88, 90]}, labels=900)], runs("m", [84.99, 87.31, 90.83], labels=900), "seeds")
    assert v.outcome == claims.INCONCLUSIVE and v.verdict.startswith("inconclusive")
    # all three seeds above the band, the interval's lower end inside it: inconclusive, and the seeds
    # that would decide it are counted at the observed sd
    [v] = scorecard([claim({"approx": 87, "tol": 2})], runs("m", [89.18, 89.40, 89.82]), "seeds")
    assert v.outcome == claims.INCONCLUSIVE and v.stats.lo < 89 < v.stats.mean
    assert v.needed is not None and v.needed > 3 and v.verdict == f"inconclusive ({v.needed} seeds would decide)"


def test_approx_not_reproduced_higher_and_lower_when_disjoint():
    assert verdicts(claim({"approx": 87, "tol": 2}), runs("m", [95.0, 95.2, 95.1])) == ["not reproduced (higher)"]
    assert verdicts(claim({"approx": 87, "tol": 2}), runs("m", [70.0, 70.2, 70.1])) == ["not reproduced (lower)"]


def test_band_edges_inclusive_inside_strict_outside():
    s = claims.Stats(3, 88.0, 1.0, 86.0, 89.0)  # the interval touches the upper edge from inside
    assert claims.judge_band(s, 85, 89).outcome == claims.REPRODUCED
    s = claims.Stats(3, 90.0, 1.0, 89.0, 91.0)  # touches it from outside: still meets the band
    assert claims.judge_band(s, 85, 89).outcome == claims.INCONCLUSIVE
    with pytest.raises(ValueError, match="lo <= hi"):
        claims.judge_band(s, 89, 85)


def test_one_seed_is_inconclusive_for_every_kind():
    assert verdicts(claim({"approx": 87, "tol": 2}), runs("m", [87.0])) == ["inconclusive (1 seed)"]
    assert verdicts(claim({"range": [88, 90]}), runs("m", [50.0])) == ["inconclusive (1 seed)"]


def test_range():
    c = claim({"range": [88, 90]}, labels=900)
    assert verdicts(c, runs("m", [88.9, 89.0, 89.1], labels=900)) == ["reproduced"]
    assert verdicts(c, runs("m", [87.5, 87.9, 87.7], labels=900))[0].startswith("inconclusive")  # reaches 88
    assert verdicts(c, runs("m", [92.0, 92.1, 92.2], labels=900)) == ["not reproduced (higher)"]


# ---- the seeds that would decide an inconclusive claim
def test_seeds_to_decide_is_the_smallest_n_whose_half_width_fits():
    sd, dist = 2.0, 1.0
    n = claims.seeds_to_decide(sd, dist)
    half = lambda k: t_quantile(0.975, k - 1) * sd / math.sqrt(k)  # noqa: E731
    assert half(n) < dist <= half(n - 1)
    assert claims.seeds_to_decide(0.0, 0.5) == 2          # no spread: two seeds give a point interval
    assert claims.seeds_to_decide(1.0, 0.0) is None       # the mean on the edge: no n decides
    assert claims.seeds_to_decide(10.0, 0.01) is None     # beyond the cap


def test_inconclusive_says_when_more_seeds_cannot_decide():
    # mean exactly on the band's edge (89): no number of seeds moves the interval off it
    j = claims.judge_band(claims.Stats.of([88.0, 90.0]), 85, 89)
    assert j.outcome == claims.INCONCLUSIVE and j.needed is None and "more seeds cannot decide" in j.text
    # far too noisy to decide within MAX_SEEDS
    j = claims.judge_band(claims.Stats.of([70.0, 89.2, 108.0]), 85, 89)
    assert j.needed is None and f"more than {claims.MAX_SEEDS} seeds" in j.text


# ---- at_least
def test_at_least_three_ways():
    c = claim({"at_least": 95})
    assert verdicts(c, runs("m", [98.3, 98.4, 98.5])) == ["reproduced"]
    assert verdicts(c, runs("m", [91.0, 91.1, 91.2])) == ["not reproduced (lower)"]
    [v] = scorecard([c], runs("m", [94.0, 96.5]), "seeds")      # interval contains 95
    assert v.outcome == claims.INCONCLUSIVE and v.needed == claims.seeds_to_decide(v.stats.sd, v.stats.mean - 95)
    assert verdicts(c, runs("m", [97.0])) == ["inconclusive (1 seed)"]


# ---- beats (paired)
def test_beats_paired_reproduced_even_when_unpaired_spread_is_large():
    # large seed-to-seed spread, but a consistent per-seed gain of ~1 point: the paired test sees it
    a = runs("a", [80.0, 90.0, 70.0, 85.0])
    b = runs("b", [79.0, 89.1, 68.9, 84.0])
    d = paired(a, b)
    assert d.n == 4 and d.mean == pytest.approx(1.0, abs=1e-9) and d.lo > 0 and d.p < 0.001
    assert verdicts(claim({"beats": "b"}, method="a"), pd.concat([a, b])) == ["reproduced"]


def test_beats_not_reproduced_and_inconclusive():
    a, b = runs("a", [80.0, 81.0, 82.0]), runs("b", [85.0, 86.5, 87.0])
    assert verdicts(claim({"beats": "b"}, method="a"), pd.concat([a, b])) == ["not reproduced"]
    a, b = runs("a", [80.0, 82.5, 81.0]), runs("b", [81.0, 81.0, 81.0])
    [v] = scorecard([claim({"beats": "b"}, method="a")], pd.concat([a, b]), "seeds")
    assert v.outcome == claims.INCONCLUSIVE and v.needed == claims.seeds_to_decide(v.stats.sd, abs(v.stats.mean))


def test_beats_tie_is_inconclusive_with_p_one():
    a, b = runs("a", [80.0, 81.0]), runs("b", [80.0, 81.0])
    d = paired(a, b)
    assert (d.mean, d.lo, d.hi, d.p) == (0.0, 0.0, 0.0, 1.0)
    assert verdicts(claim({"beats": "b"}, method="a"), pd.concat([a, b])) == [
        "inconclusive (mean on the edge: more seeds cannot decide)"]


def test_beats_one_seed_is_inconclusive():
    a, b = runs("a", [90.0]), runs("b", [80.0])
    assert verdicts(claim({"beats": "b"}, method="a"), pd.concat([a, b])) == ["inconclusive (1 seed)"]


def test_beats_pairs_only_common_seeds():
    a, b = runs("a", [90.0, 91.0, 92.0]), runs("b", [80.0, 81.5])
    assert paired(a, b).seeds == [0, 1]


def test_beats_refuses_runs_on_different_splits():
    a, b = runs("a", [90.0, 91.0]), runs("b", [80.0, 81.0], split={1: "another"})
    with pytest.raises(claims.PairingError, match="different split files.*seed 1"):
        paired(a, b)
    [v] = scorecard([claim({"beats": "b"}, method="a")], pd.concat([a, b]), "seeds")
    assert v.verdict.startswith("not paired") and "seed 1" in v.verdict


# ---- budgets, protocol, reference, not run
def test_every_listed_budget_gets_a_verdict():
    df = pd.concat([runs("m", [87.0, 87.2], labels=100), runs("m", [95.0, 95.1], labels=1000)])  # sd 0.14, 0.07
    vs = scorecard([claim({"approx": 87, "tol": 2}, labels=[100, 1000, 3000])], df, "seeds")
    assert [(v.labels, v.verdict) for v in vs] == [("100", "reproduced"), ("1000", "not reproduced (higher)"),
                                                   ("3000", "not run")]


def test_other_preset_gives_protocol_differs_never_a_verdict():
    df = runs("m", [50.0, 50.1])  # far from the claim, but made under another protocol
    [v] = scorecard([claim({"approx": 87, "tol": 2})], df, "quick")
    assert v.verdict == "protocol differs (preset quick)" and "50.05" in v.ours and v.runs == "quick: m"
    # the preset column of metrics.csv wins over the default
    [v] = scorecard([claim({"approx": 87, "tol": 2})], runs("m", [50.0, 50.1], preset="quick"), "seeds")
    assert v.verdict == "protocol differs (preset quick)"


def test_variant_claim_shows_base_method_elsewhere_and_compare_beside():
    c = claim({"approx": 87, "tol": 2}, method="m-004-published", compare=["m-004-corrected"])
    c["run"]["base"] = "m"
    [v] = scorecard([c], runs("m", [91.0, 91.2]), "quick")
    assert v.verdict == "protocol differs (preset quick)" and v.ours.startswith("91.10")
    df = pd.concat([runs("m-004-published", [86.0, 86.1, 86.2]), runs("m-004-corrected", [91.0, 91.2])])
    [v] = scorecard([c], df, "seeds")
    assert v.verdict == "reproduced" and v.ours.startswith("86.10") and v.compare.startswith("m-004-corrected: 91.10")


def test_reference_has_no_verdict_and_missing_runs_are_not_run():
    c = claim({"reference": 98.4, "std": 0.08}, preset="paper")
    assert verdicts(c, runs("m", [91.0, 92.0]), "paper") == ["reference"]
    assert verdicts(c, runs("m", [91.0, 92.0]), "quick") == ["reference; protocol differs (preset quick)"]
    assert verdicts(claim({"approx": 87, "tol": 2}), runs("other", [87.0, 87.0])) == ["not run"]


def test_bad_claims_are_errors():
    with pytest.raises(ValueError, match="exactly one of"):
        scorecard([claim({"approx": 87, "tol": 2, "range": [1, 2]})], runs("m", [1.0]), "seeds")
    c = claim({"approx": 87, "tol": 2})
    del c["protocol"]
    with pytest.raises(ValueError, match="protocol"):
        scorecard([c], runs("m", [1.0]), "seeds")


def test_repo_claims_file_parses_and_every_seed_claim_differs_under_quick():
    import yaml

    from conftest import REPO
    cs = yaml.safe_load((REPO / "paper/claims.yaml").read_text())["claims"]
    vs = scorecard(cs, runs("supervised", [91.0, 92.0]), "quick")
    assert len(vs) == len(cs)
    assert all("protocol differs (preset quick)" in v.verdict for v in vs)


# ---- the paired table
def test_paired_table_pairs_same_architecture_and_variants_only():
    df = pd.concat([runs("aae", [82.0, 80.0]), runs("supervised", [78.0, 77.0]), runs("sgan", [85.0, 84.0]),
                    runs("aae-004-published", [90.0, 91.0]), runs("supervised-004-published", [87.0, 87.5])])
    rows = tables.paired_rows(df)
    assert [(r["method"], r["baseline"]) for r in rows] == [("aae", "supervised"),
                                                             ("aae-004-published", "supervised-004-published")]
    assert rows[0]["d"].mean == pytest.approx(3.5)
    tex = tables.paired_table(df)
    assert "aae & supervised & 1000 & +3.50" in tex and "sgan" not in tex


def test_holm_adjusts_a_family_of_p_values_step_down():
    from fewlabels.report.claims import holm
    # sorted 0.01, 0.03, 0.04, 0.5: x4, x3, x2, x1, kept monotone, capped at 1
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.6, 0.9]) == pytest.approx([1.0, 1.0]) and holm([]) == []


def test_paired_table_prints_holms_p_the_degrees_of_freedom_and_marks_unequal_training():
    """Every paired test of the table is one family: each row carries its p, Holm's adjusted p and its pairs
    with the degrees of freedom; a pair whose two sides trained for different numbers of steps is marked and
    the note says how many."""
    df = pd.concat([runs("aae", [82.0, 80.0, 81.0]), runs("supervised", [78.0, 77.0, 78.5]),
                    runs("transfer", [85.0, 84.0, 86.0], task="digits59"),
                    runs("scratch", [80.0, 81.0, 80.5], task="digits59")], ignore_index=True)
    df["steps"] = [10000] * 6 + [5000] * 3 + [150000] * 3
    rows = tables.paired_rows(df)
    ps = [r["d"].p for r in rows]
    from fewlabels.report.claims import fmt_p, holm
    assert [r["p_holm"] for r in rows] == pytest.approx(holm(ps))
    tex = tables.paired_table(df)
    assert f"Holm $={fmt_p(rows[0]['p_holm'])}$, 3 (2 df)" in tex
    assert tex.count(tables.UNEQUAL) == 2  # the transfer row and the note
    assert "transfer 5,000, scratch 150,000 at 1000 labels" in tex


def test_claim_measured_on_validation_reads_that_column():
    import pandas as pd
    from fewlabels.report.claims import scorecard
    df = pd.DataFrame({"task": "mnist10", "method": "m", "labels": "1000", "seed": [0, 1, 2],
                       "test_accuracy": [0.50, 0.51, 0.52], "val_accuracy": [0.870, 0.872, 0.868],
                       "split_sha256": "x", "preset": "seeds"})
    claim = {"id": "c", "claim": "t", "source": "s", "run": {"task": "mnist10", "method": "m", "labels": 1000},
             "protocol": {"preset": "seeds"}, "expect": {"approx": 87, "tol": 1}}
    on_test = scorecard([claim], df, "seeds")[0]
    on_val = scorecard([dict(claim, metric="val_accuracy")], df, "seeds")[0]
    assert on_test.verdict.startswith("not reproduced") and on_val.verdict == "reproduced"
    assert "validation" in on_val.runs
    with pytest.raises(ValueError, match="metric"):
        scorecard([dict(claim, metric="train_accuracy")], df, "seeds")


# ---- which code version and CPU each side of a paired comparison comes from
def test_paired_names_code_and_cpu_and_flags_sides_that_differ():
    a = runs("a", [90.0, 91.0, 92.0]).assign(code_git="a" * 40, cpu_capability="AVX2")
    b = runs("b", [80.0, 81.0, 82.5]).assign(code_git="a" * 40, cpu_capability="AVX2")
    d = paired(a, b)
    assert not d.mixed and d.versions == "code aaaaaaa, CPU AVX2 (both sides)"
    d = paired(a, b.assign(code_git="b" * 39 + "-dirty", cpu_capability="AVX512"))
    assert d.mixed and d.versions == "code aaaaaaa vs bbbbbbb-dirty, CPU AVX2 vs AVX512: the two sides differ"
    # only the seeds that are paired count: an unpaired seed of another version does not mix the pair
    extra = runs("a", [1.0, 2.0, 3.0, 4.0]).iloc[[3]].assign(code_git="c" * 40, cpu_capability="AVX2")
    assert not paired(pd.concat([a, extra]), b).mixed
    # one side mixing two versions over its seeds: some pairs may straddle them
    a2 = a.assign(code_git=["a" * 40, "a" * 40, "c" * 40])
    assert paired(a2, a2.assign(method="b")).mixed
    # no provenance columns (old metrics): nothing to say
    assert paired(runs("a", [1.0, 2.0]), runs("b", [1.0, 3.0])).versions == ""


def test_a_beats_claim_says_in_its_runs_which_code_each_side_ran():
    a = runs("a", [90.0, 91.0, 92.0]).assign(code_git="a" * 40, cpu_capability="AVX2")
    b = runs("b", [80.0, 81.0, 82.5]).assign(code_git="b" * 40, cpu_capability="AVX2")
    [v] = scorecard([claim({"beats": "b"}, method="a")], pd.concat([a, b]), "seeds")
    assert v.verdict == "reproduced" and v.runs == "seeds: a; code aaaaaaa vs bbbbbbb, CPU AVX2: the two sides differ"


def test_paired_table_names_each_pairs_code_and_cpu():
    df = pd.concat([runs("aae", [82.0, 80.0]).assign(code_git="a" * 40, cpu_capability="AVX2"),
                    runs("supervised", [78.0, 77.0]).assign(code_git="b" * 40, cpu_capability="AVX512")])
    tex = tables.paired_table(df.assign(stage="train"))
    assert "\\textbf{code aaaaaaa vs bbbbbbb, CPU AVX2 vs AVX512: the two sides differ}" in tex
    same = df.assign(code_git="a" * 40, cpu_capability="AVX2", stage="train")
    assert "code aaaaaaa, CPU AVX2 (both sides)" in tables.paired_table(same) and "textbf" not in tables.paired_table(same)


def test_the_hardware_sentence_says_which_runs_used_which_device():
    df = pd.DataFrame({"method": ["sgan", "sgan-fm", "aae", "supervised", "ae"],
                       "device_name": ["NVIDIA H200", "NVIDIA H200"] + ["cpu (x86_64, 1 threads)"] * 3,
                       "torch": ["2.11.0+cu130"] * 2 + ["2.13.0+cpu"] * 3})
    assert tables.hardware(df) == ("sgan, sgan-fm (2 runs) on NVIDIA H200 with PyTorch 2.11.0+cu130; every other run "
                                   "on one thread of an x86-64 CPU with PyTorch 2.13.0+cpu")
    assert tables.hardware(df.iloc[2:]) == "Every run used one thread of an x86-64 CPU with PyTorch 2.13.0+cpu"
