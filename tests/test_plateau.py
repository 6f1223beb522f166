"""The plateau rule (fewlabels.report.plateau, issue 25 item 3) on made-up histories: the mean validation
accuracy of the last 10 % of evaluations within 0.3 points of the 10 % before them, no verdict under 20."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fewlabels.report import plateau as PL


def history(values) -> pd.DataFrame:
    """A history as the trainer writes it (val_accuracy a fraction, one row per evaluation)."""
    v = np.asarray(values, dtype=float)
    return pd.DataFrame({"epoch": np.arange(1, len(v) + 1), "val_accuracy": v, "test_accuracy": v - 0.01})


def test_a_rising_curve_has_not_plateaued():
    # 1 - exp(-t/30) over 50 evaluations: still gaining about 1.5 points between the last two windows
    h = history(0.5 + 0.45 * (1 - np.exp(-np.arange(50) / 30)))
    r = PL.plateau(h)
    assert (r.status, r.plateaued, r.window) == (PL.RISING, False, 5)
    assert r.difference > 0.3
    # the two means are those of rows 45-49 and 40-44, in points
    assert r.last_mean == pytest.approx(100 * h["val_accuracy"].iloc[45:].mean())
    assert r.before_mean == pytest.approx(100 * h["val_accuracy"].iloc[40:45].mean())


def test_a_flat_curve_has_plateaued():
    r = PL.plateau(history(np.r_[np.linspace(0.6, 0.95, 20), np.full(30, 0.95)]))
    assert r.plateaued and r.difference == pytest.approx(0.0) and r.window == 5


def test_a_noisy_flat_curve_has_plateaued():
    # 0.4-point noise on every evaluation, 200 of them: windows of 20 average it down to ~0.13 points
    rng = np.random.default_rng(0)
    h = history(0.97 + rng.normal(0, 0.004, 200))
    r = PL.plateau(h)
    assert r.window == 20 and r.plateaued
    assert abs(r.difference) <= 0.3
    # a single evaluation's noise is larger than the tolerance: the windows are what make the rule work
    assert 100 * h["val_accuracy"].diff().abs().max() > 0.3


def test_too_few_evaluations_decide_nothing():
    for n in (0, 1, 19):
        r = PL.plateau(history(np.full(n, 0.9)))
        assert (r.status, r.plateaued, r.n_evals, r.last_mean) == (PL.TOO_FEW, False, n, None)
        assert "too few evaluations" in r.text()
    assert PL.plateau(history(np.full(20, 0.9))).status == PL.PLATEAUED  # 20: windows of 2


def test_the_boundary_and_a_fall():
    base = np.full(30, 0.90)
    at = base.copy()
    at[-3:] += 0.003  # exactly 0.3 points up: "within" includes the boundary
    assert PL.plateau(history(at)).plateaued
    above = base.copy()
    above[-3:] += 0.0031
    assert PL.plateau(history(above)).status == PL.RISING
    fall = base.copy()
    fall[-3:] -= 0.01
    r = PL.plateau(history(fall))
    assert r.status == PL.FALLING and not r.plateaued and r.difference == pytest.approx(-1.0)


def test_window_is_a_tenth_rounded_down():
    assert PL.plateau(history(np.full(29, 0.9))).window == 2
    assert PL.plateau(history(np.full(30, 0.9))).window == 3


def test_bad_histories_are_clear_errors(tmp_path):
    with pytest.raises(KeyError, match="no 'val_accuracy' column"):
        PL.plateau(pd.DataFrame({"epoch": range(30), "accuracy": 0.9}))
    h = history(np.full(30, 0.9))
    h.loc[7, "val_accuracy"] = np.nan
    with pytest.raises(ValueError, match=r"missing or non-numeric values \(rows \[7\]\)"):
        PL.plateau(h)


def test_cli_reads_a_trainer_history(tmp_path, capsys):
    path = tmp_path / "history.csv"
    history(np.full(40, 0.93)).to_csv(path, index=False)
    assert PL.main([str(path)]) == 0
    assert "plateaued: last 4 evaluations 93.00 %" in capsys.readouterr().out
    (tmp_path / "bad.csv").write_text("epoch,loss\n1,0.5\n")
    assert PL.main([str(tmp_path / "bad.csv")]) == 1


def test_the_noise_is_what_a_flat_curves_windows_would_differ_by():
    """On a flat curve with independent evaluation noise of sd 1 point, two means of k evaluations differ
    with sd sqrt(2/k) points: the estimate from the run's second half comes close (2,000 evaluations,
    k = 200: 0.1), and it does not grow with a slow trend (successive differences cancel it)."""
    rng = np.random.default_rng(0)
    flat = 0.9 + 0.01 * rng.standard_normal(2000)
    r = PL.plateau(history(flat))
    assert r.window == 200 and r.noise == pytest.approx(np.sqrt(2 / 200), rel=0.1)
    trend = flat + np.linspace(0, 0.05, 2000)  # +5 points over the run
    assert PL.plateau(history(trend)).noise == pytest.approx(r.noise, rel=0.02)
    assert PL.plateau(history(trend)).status == "rising"


def test_the_swing_sees_a_slow_wander_that_the_noise_misses():
    """A curve that wanders slowly (a square wave of +-0.5 points, each level held for 100 evaluations) has
    successive evaluations alike, so its noise is ~0, yet its adjacent windows of 100 differ by 1 point each
    time: the swing says so (rms of the four earlier pairs' differences), and it is the size of the rule's
    own difference. On a steady rise every pair differs by the same amount."""
    n, k = 1000, 100
    wave = 0.8 + 0.005 * np.where((np.arange(n) // k) % 2 == 0, 1.0, -1.0)
    r = PL.plateau(history(wave))
    assert r.window == k and r.noise < 0.01
    assert r.swing == pytest.approx(1.0) and abs(r.difference) == pytest.approx(1.0)
    assert r.status != PL.PLATEAUED
    ramp = PL.plateau(history(np.linspace(0.5, 0.9, n)))  # +40 points over 1,000: +4 between windows of 100
    assert ramp.swing == pytest.approx(4.0, rel=0.01) and ramp.difference == pytest.approx(4.0, rel=0.01)
    assert "earlier adjacent windows differed by 1.00 rms" in r.text()
