"""Port fidelity (fewlabels.report.fidelity): the seeds' own code against the port, and the scorecard
withholding a verdict where the port differs; the Siamese steps and which-500 summaries (ablation)."""

from __future__ import annotations

import pandas as pd
import pytest
from scipy import stats

from fewlabels.report import ablation, fidelity
from fewlabels.report.claims import Stats, scorecard
from fewlabels.report.figures.transfer import which500_runs

CLAIM = {"id": "scratch500", "claim": "about 72", "source": "seed 002", "protocol": {"preset": "seeds"},
         "run": {"task": "digits59", "method": "scratch-002-published", "labels": 500}, "expect": {"approx": 72, "tol": 2}}


def runs(method, accs, task="digits59", labels="500", **cols):
    return pd.DataFrame({"preset": "seeds", "task": task, "method": method, "labels": labels, "stage": "train",
                         "seed": range(len(accs)), "test_accuracy": [a / 100 for a in accs],
                         "split_sha256": [f"s{i}" for i in range(len(accs))], **cols})


def test_welch_interval_is_scipys():
    a, b = [87.0, 88.5, 86.9, 88.1], [74.0, 71.5, 76.2, 73.9, 72.8, 75.0]
    d, lo, hi = fidelity.welch(Stats.of(a), Stats.of(b))
    want = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (lo, hi) == pytest.approx((want.low, want.high)) and d == pytest.approx(sum(a) / 4 - sum(b) / 6)


ORIGINAL = [74.0, 71.5, 76.2, 73.9, 72.8, 75.0]  # mean 73.9, sd 1.6


@pytest.mark.parametrize("port,status", [([73.0, 75.5, 72.0, 74.4, 71.9], fidelity.NO_DIFFERENCE),
                                         ([87.0, 88.5, 86.9, 88.1, 87.5], fidelity.DIFFERS),
                                         ([87.0], fidelity.TOO_FEW)])
def test_a_port_that_differs_has_its_verdict_withheld(port, status):
    originals = [{"id": "002-scratch500", "claim": "scratch500", "n": 3, "mean": 99.0, "sd": 0.1},  # fewer seeds
                 {"id": "002-scratch500-here", "claim": "scratch500", "n": 6, "mean": 0, "values": ORIGINAL},
                 {"id": "other", "claim": "nothing-here", "n": 3, "mean": 50.0, "sd": 1.0}]
    df = runs("scratch-002-published", port)
    rows = fidelity.fidelity([CLAIM], df, originals)
    assert [f.what for f in rows] == ["002-scratch500-here"] and rows[0].status == status
    assert rows[0].original.mean == pytest.approx(73.9)  # from its values, not its typed mean
    verdicts = fidelity.withhold(scorecard([CLAIM], df, "seeds"), rows)
    assert verdicts[0].verdict.startswith(fidelity.WITHHELD) == (status == fidelity.DIFFERS)
    tex = fidelity.table(rows, [CLAIM])
    # the claim in its words, as the scorecard names it, not by its id
    assert status in tex and r"\toprule" in tex and CLAIM["claim"].split(":")[0] in tex and "scratch500" not in tex
    assert f"margin $\\pm${fidelity.MARGIN:g}" in tex  # the table states its margin


def test_fidelity_three_outcomes_on_the_margin():
    m = fidelity.MARGIN
    assert fidelity.status_of(-0.6 * m, 0.6 * m) == fidelity.MATCHES       # inside the margin
    assert fidelity.status_of(0.2 * m, 0.8 * m) == fidelity.MATCHES        # excludes 0 but immaterially
    assert fidelity.status_of(0.5 * m, 2.0 * m) == fidelity.DIFFERS        # excludes 0, leaves the margin
    assert fidelity.status_of(-3.0 * m, -1.5 * m) == fidelity.DIFFERS
    assert fidelity.status_of(-0.5 * m, 1.5 * m) == fidelity.NO_DIFFERENCE  # contains 0, reaches past it
    assert fidelity.status_of(-m, m) == fidelity.MATCHES                   # the margin's edges count as inside


def test_a_precise_port_matches_and_a_noisy_one_has_a_detectable_difference():
    originals = [{"id": "o", "claim": "scratch500", "n": 6, "mean": 0, "values": ORIGINAL}]
    close = [o + 0.05 * (-1) ** i for i, o in enumerate(ORIGINAL)]  # the same numbers, nudged: well inside 1 point
    tight = [{"id": "o", "claim": "scratch500", "n": 6, "mean": 0, "values": [73.9, 74.0, 73.8, 73.9, 74.0, 73.8]}]
    [f] = fidelity.fidelity([CLAIM], runs("scratch-002-published", [73.85, 73.95, 73.9, 73.8, 74.0]), tight)
    assert f.status == fidelity.MATCHES and -fidelity.MARGIN <= f.lo and f.hi <= fidelity.MARGIN
    [f] = fidelity.fidelity([CLAIM], runs("scratch-002-published", close), originals)
    assert f.status == fidelity.NO_DIFFERENCE  # sd 1.6 with six seeds a side cannot show a 1-point match
    # the detectable difference is the 80 %-power one: larger than the interval's half-width (which a
    # true difference of that size would clear only half the time), and Welch's formula
    half = (f.hi - f.lo) / 2
    assert f.detectable > half
    a, b = Stats.of(close), Stats.of(ORIGINAL)
    va, vb = a.sd ** 2 / a.n, b.sd ** 2 / b.n
    df = (va + vb) ** 2 / (va ** 2 / (a.n - 1) + vb ** 2 / (b.n - 1))
    want = (stats.t.ppf(0.975, df) + stats.t.ppf(0.8, df)) * (va + vb) ** 0.5
    assert f.detectable == pytest.approx(want)
    assert fidelity.status_text(f) == f"no detectable difference (detectable: {want:.2f} points)"
    assert "fid/scratch500/detectable" in "\n".join(fidelity.macros([f]))
    # more seeds on the port side shrink what the runs can detect
    assert fidelity.detectable(Stats.of(close * 4), b) < f.detectable


def test_which500_reads_the_set_from_the_variant_name():
    df = pd.concat([runs("scratch-002-published", [72.0, 74.0]), runs("scratch-002-published-from30k", [88.0, 89.0]),
                    runs("transfer-002-published-from30k", [80.0, 81.0]), runs("scratch-002-corrected", [92.0])])
    got = which500_runs(df)
    assert sorted(set(zip(got["method"], got["start"]))) == [("scratch", 5), ("scratch", 30), ("transfer", 30)]
    tex = "\n".join(ablation.which500_macros(df))
    assert "w500/scratch/min" in tex and "{88.5}" in tex and "w500/scratchwins\\endcsname{1 of 1}" in tex


def test_siamese_steps_pair_reused_with_their_scratch_control():
    df = pd.concat([runs("siamese-geron-frozen", [96.0, 96.5, 96.2], task="mnist10", labels="5000"),
                    runs("siamese-geron-scratch", [94.0, 94.5, 94.6], task="mnist10", labels="5000"),
                    runs("siamese-geron-shared-frozen", [95.0, 95.5, 95.1], task="mnist10", labels="5000"),
                    runs("siamese-geron-pairs", [50.0, 50.0, 50.0], task="mnist10", labels="all", stage="pretrain",
                         pair_accuracy=[0.976, 0.977, 0.975])])
    rows = ablation.siamese_steps(df)
    assert [r["key"] for r in rows] == ["siamese-geron-frozen", "siamese-geron-shared-frozen"]
    assert rows[0]["pairs"].mean == pytest.approx(97.6) and rows[1]["pairs"].n == 0
    assert rows[0]["diff"].mean == pytest.approx(96.2333 - 94.3667, abs=1e-3)
    assert rows[1]["diff"].mean == pytest.approx(95.2 - 94.3667, abs=1e-3)  # against Geron's scratch control
    assert r"\quad one shared tower" in ablation.siamese_steps_table(rows)
