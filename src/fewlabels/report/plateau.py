"""The plateau rule: has a run stopped improving on validation? (issue 25, item 3; the ``compare`` preset
trains every method until it has.)

From a run's ``history.csv`` (one row per evaluation; the trainer writes ``val_accuracy`` as a fraction):
with ``n`` evaluations and a window of ``k = n // 10`` (10 %), the mean validation accuracy over the last
``k`` evaluations is compared with the mean over the ``k`` before them. The run has plateaued when the two
are within 0.3 points (percentage points of accuracy) of each other. With fewer than 20 evaluations the
windows would be one evaluation each, a comparison of two noisy numbers: the rule then says "too few
evaluations" and decides nothing. A curve whose last window is more than 0.3 points below the one before
is not plateaued either (it reads "falling": validation says the run got worse, not that it settled).

``python -m fewlabels.report.plateau results/runs/.../history.csv ...`` prints the verdict of each.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

COLUMN = "val_accuracy"  # the trainer's name (training.trainer.Run.end_epoch)
FRACTION = 0.10          # each window: the last 10 % of the evaluations, and the 10 % before them
TOLERANCE = 0.3          # points of accuracy between the two windows' means
MIN_EVALS = 20           # fewer: each window would hold a single evaluation

PLATEAUED, RISING, FALLING, TOO_FEW = "plateaued", "rising", "falling", "too few evaluations"


@dataclass(frozen=True)
class Plateau:
    """The rule's answer for one history. Means and difference are in points (per cent), None when too few."""
    status: str                  # PLATEAUED, RISING, FALLING or TOO_FEW
    n_evals: int
    window: int                  # evaluations per window (0 when too few)
    last_mean: float | None = None
    before_mean: float | None = None
    difference: float | None = None  # last_mean - before_mean
    noise: float | None = None       # sd the difference would have on a flat curve (evaluation noise alone)
    swing: float | None = None       # rms of the differences between the earlier adjacent windows (earlier_swing)

    @property
    def plateaued(self) -> bool:
        return self.status == PLATEAUED

    def text(self) -> str:
        if self.status == TOO_FEW:
            return f"{TOO_FEW} ({self.n_evals} < {MIN_EVALS}): no verdict"
        return (f"{self.status}: last {self.window} evaluations {self.last_mean:.2f} %, the {self.window} before "
                f"{self.before_mean:.2f} %, difference {self.difference:+.2f} points (tolerance {TOLERANCE}; "
                f"a flat curve with this run's evaluation noise: sd {self.noise:.2f}; its earlier adjacent windows "
                f"differed by {self.swing:.2f} rms)")


def plateau(history: pd.DataFrame, column: str = COLUMN, fraction: float = FRACTION, tolerance: float = TOLERANCE,
            min_evals: int = MIN_EVALS) -> Plateau:
    """The plateau rule on ``history`` (rows in evaluation order; ``column`` a fraction in [0, 1])."""
    if column not in history:
        raise KeyError(f"the history has no {column!r} column (it has {list(history.columns)}); "
                       "histories the trainer writes have one per evaluation")
    acc = pd.to_numeric(history[column], errors="coerce")
    if acc.isna().any():
        bad = [int(i) for i in acc[acc.isna()].index[:5]]
        raise ValueError(f"the history's {column!r} has missing or non-numeric values (rows {bad})")
    n = len(acc)
    if n < min_evals:
        return Plateau(TOO_FEW, n, 0)
    k = max(1, math.floor(n * fraction + 1e-9))  # (the epsilon: 0.1 * 30 is 3.0000000000000004)
    last = 100 * float(acc.iloc[n - k:].mean())
    before = 100 * float(acc.iloc[n - 2 * k:n - k].mean())
    diff = last - before
    if abs(diff) <= tolerance + 1e-9:  # "within 0.3 points", the boundary included
        status = PLATEAUED
    else:
        status = RISING if diff > 0 else FALLING
    return Plateau(status, n, k, last, before, diff, evaluation_noise(acc, k), earlier_swing(acc, k))


SWING_PAIRS = 4  # earlier pairs of adjacent windows (with the rule's pair: the last 60 % of the run)


def earlier_swing(acc: pd.Series, k: int, pairs: int = SWING_PAIRS) -> float:
    """How far apart (rms, points) this run's adjacent windows of ``k`` evaluations were before the rule's
    pair: the windows W1..W5 before the last one (W0), differences mean(Wj) - mean(Wj+1) for j = 1..4.
    Successive evaluations can be alike while the curve still wanders over many of them (evaluation_noise
    misses that); a last difference no larger than these, with signs that alternate, is such wander, not a
    trend. Early in a short run these windows may still hold its rise."""
    n = len(acc)
    means = [float(acc.iloc[n - (j + 1) * k:n - j * k].mean()) for j in range(1, pairs + 2)]
    diffs = [100 * (means[j] - means[j + 1]) for j in range(pairs)]
    return math.sqrt(sum(d * d for d in diffs) / len(diffs))


def evaluation_noise(acc: pd.Series, k: int) -> float:
    """How far apart (sd, points) the rule's two windows of ``k`` evaluations would be on a flat curve:
    with independent evaluation noise of sd s, successive evaluations differ with sd s*sqrt(2) and two
    k-evaluation means with sd s*sqrt(2/k), i.e. sd(successive differences) / sqrt(k). Measured over the
    second half of the run (where a schedule long enough is flat); successive differences cancel a slow
    trend. Near the tolerance, the rule cannot tell a flat curve's noise from a trend."""
    half = acc.iloc[len(acc) // 2:].to_numpy(dtype=float)
    return 100 * float(pd.Series(half).diff().dropna().std(ddof=1)) / math.sqrt(k)


def from_csv(path: Path, **kw) -> Plateau:
    return plateau(pd.read_csv(path), **kw)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m fewlabels.report.plateau", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("histories", nargs="+", type=Path, help="history.csv files written by the trainer")
    args = p.parse_args(argv)
    for path in args.histories:
        try:
            print(f"{path}: {from_csv(path).text()}")
        except (OSError, KeyError, ValueError, pd.errors.ParserError) as e:
            print(f"error: {path}: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
