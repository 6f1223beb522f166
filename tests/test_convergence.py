"""The convergence rule (report.convergence) on made-up histories whose answer is known, and on the compare
preset's committed archive."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fewlabels.report import convergence as CV

ARCHIVE = Path(__file__).resolve().parents[1] / "results" / "archive-compare"


def hist(values) -> pd.DataFrame:
    return pd.DataFrame({"epoch": np.arange(1, len(values) + 1), "val_accuracy": np.asarray(values) / 100})


def ar1(n, sd, rho, seed):
    """A wander: an AR(1) series of stationary sd ``sd`` points whose successive values correlate by ``rho``."""
    g = np.random.default_rng(seed)
    x = np.zeros(n)
    for i in range(1, n):
        x[i] = rho * x[i - 1] + np.sqrt(1 - rho ** 2) * sd * g.standard_normal()
    return x


@pytest.mark.parametrize("seed", range(10))
def test_a_flat_wander_of_a_point_has_converged(seed):
    """Flat on average, wandering by about a point over hundreds of evaluations (strongly autocorrelated),
    plus evaluation noise: no trend, so converged (ten different wanders)."""
    g = np.random.default_rng(100 + seed)
    v = 80 + ar1(2000, 0.5, 0.995, seed) + g.normal(0, 0.1, 2000)
    r = CV.convergence(hist(v))
    assert r.status in CV.STOPPED and r.converged, r.text()


@pytest.mark.parametrize("seed", range(10))
def test_a_rise_of_one_point_over_the_last_half_under_evaluation_noise_is_still_improving(seed):
    g = np.random.default_rng(seed)
    n = 600
    v = np.r_[np.linspace(90, 95, n // 2), 95 + np.linspace(0, 1, n // 2)] + g.normal(0, 0.5, n)
    r = CV.convergence(hist(v))
    assert r.status == CV.IMPROVING, r.text()
    assert r.end.rise == pytest.approx(1.0, abs=0.3) and r.end.low > 0


def test_a_rise_cut_by_a_step_decay_is_still_improving_at_its_drop():
    """Rising by a point per tenth until the rate drops at 76 % of the run, then flat at the level the drop
    froze (the windows after the drop agree by construction): not converged."""
    g = np.random.default_rng(1)
    rise = np.linspace(85, 93, 76) + g.normal(0, 0.3, 76)
    after = 94 + g.normal(0, 0.05, 24)
    h = hist(np.r_[rise, after])
    cut = CV.convergence(h, drops=[76])
    assert cut.status == CV.IMPROVING_AT_DROP and not cut.converged, cut.text()
    assert cut.end.direction == CV.FLAT and cut.before_drop.direction == CV.RISING
    assert cut.before_drop.first == 39 and cut.before_drop.last == 76  # the last half of evaluations 1-76
    # what fooled a rule of two adjacent windows of 10 %: after the drop they agree to a few hundredths
    v = 100 * h["val_accuracy"].to_numpy()
    assert abs(v[-10:].mean() - v[-20:-10].mean()) < 0.1
    # a drop after the last evaluation changes nothing the history shows
    flat = hist(np.r_[np.linspace(85, 93, 40), np.full(60, 93.0)])
    assert CV.convergence(flat, drops=[100, 1000]).status == CV.CONVERGED


def test_a_plateau_reached_before_the_drop_has_converged():
    g = np.random.default_rng(2)
    v = np.r_[np.linspace(80, 92, 20), np.full(56, 92.0), np.full(24, 92.5)] + g.normal(0, 0.2, 100)
    assert CV.convergence(hist(v), drops=[76]).status == CV.CONVERGED


def test_a_peak_then_a_fall_is_past_its_best_and_counts_as_stopped():
    g = np.random.default_rng(3)
    v = np.r_[np.linspace(70, 85, 50), np.linspace(85, 82, 50)] + g.normal(0, 0.2, 100)
    r = CV.convergence(hist(v))
    assert r.status == CV.PAST_BEST and r.converged and r.end.rise < -CV.MIN_RISE


def test_a_significant_rise_smaller_than_the_margin_has_converged():
    """A curve creeping up by 0.2 points over its last half, with no noise: a real trend, too small to matter."""
    v = np.r_[np.linspace(90, 95, 50), 95 + np.linspace(0, 0.2, 50)]
    r = CV.convergence(hist(v))
    assert r.end.low > 0 and r.status == CV.CONVERGED


def test_too_few_evaluations_decide_nothing():
    r = CV.convergence(hist(np.linspace(50, 90, 9)))
    assert r.status == CV.TOO_FEW and not r.converged and r.end is None and "too few" in r.text()


def test_block_means_and_rise_are_what_a_reader_computes_by_hand():
    """20 evaluations: the last half (11-20) in 5 blocks of 2; a straight line 0, 1, ..., 9 points over it."""
    v = np.r_[np.zeros(10), np.arange(10.0)] + 50
    t = CV.convergence(hist(v)).end
    assert (t.first, t.last) == (11, 20)
    assert t.blocks == pytest.approx((50.5, 52.5, 54.5, 56.5, 58.5))
    assert t.rise == pytest.approx(10.0) and t.low == pytest.approx(10.0) and t.high == pytest.approx(10.0)


def test_bad_histories_are_clear_errors():
    with pytest.raises(KeyError, match="val_accuracy"):
        CV.convergence(pd.DataFrame({"epoch": [1, 2]}))
    with pytest.raises(ValueError, match="missing or non-numeric"):
        CV.convergence(pd.DataFrame({"val_accuracy": [0.5, None, 0.6]}))


# ---------------------------------------------------------------------------- the committed archive

def verdict(path: str, drops=()) -> CV.Convergence:
    return CV.convergence(pd.read_csv(ARCHIVE / "runs" / path / "history.csv"), drops)


@pytest.mark.skipif(not (ARCHIVE / "runs").exists(), reason="the compare archive is not in this checkout")
def test_the_archive_verdicts():
    """Source 004's AAE recipe (lr / 10 after epoch 19 of 25): no run has converged (two still rising at their
    drop; the others too short after it to judge); the FM-GAN at 100 labels seed 0 and the SGAN at 100 labels
    seed 0 still rise; scratch's 50-label seeds 0 and 2 wander and have converged, as have the supervised MLP
    at 1,000 labels and the 500-label transfer-scratch twin."""
    for s in (0, 2):
        assert verdict(f"mnist10/aae/n100/seed{s}", [19]).status == CV.IMPROVING_AT_DROP
    for s in (0, 1, 2):
        assert not verdict(f"mnist10/aae/n1000/seed{s}", [19]).converged
        assert verdict(f"mnist10/supervised/n1000/seed{s}").converged
        assert verdict(f"digits59/scratch/n500/seed{s}").converged
    assert verdict("mnist10/sgan-fm/n100/seed0").status == CV.IMPROVING
    assert verdict("mnist10/sgan/n100/seed0").status == CV.IMPROVING
    for s in (0, 2):
        assert verdict(f"digits59/scratch/n50/seed{s}").status == CV.CONVERGED


def test_the_cli_prints_each_runs_verdict(tmp_path, capsys):
    d = tmp_path / "run"
    d.mkdir()
    hist(np.r_[np.linspace(80, 90, 40), np.full(40, 90.0)]).to_csv(d / "history.csv", index=False)
    (d / "metrics.json").write_text('{"hparams": {"lr_decay_epochs": [40]}}')
    assert CV.main([str(d)]) == 0
    assert "still improving at its drop" in capsys.readouterr().out
    assert CV.main([str(tmp_path / "missing")]) == 1
