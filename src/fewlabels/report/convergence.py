"""The convergence rule: would more of the same training still raise a run's validation accuracy?

Read from a run's ``history.csv`` (one row per evaluation, ``val_accuracy`` a fraction) and the epochs after
which its learning rate dropped (``lr_decay_epochs``). By hand:

1. **Stretches.** Cut the evaluations where the learning rate changes. The *end* is the last constant-rate
   stretch; a run with a drop also has the stretch *before its last drop*.
2. **Trend of a stretch.** Take the last half of the stretch (at least ``MIN_EVALS`` evaluations, else the
   rule says "too few evaluations"), cut it into ``BLOCKS`` consecutive blocks of (nearly) equal length and
   average validation accuracy in each. Evaluations close in time are alike (the curve wanders), so the
   block means, not the evaluations, are the data. Fit a straight line through the block means against
   the blocks' mid-points; its **rise** is the line's change across the half-stretch, in points, with a 95 %
   t-interval from the residuals (``BLOCKS`` - 2 degrees of freedom). The half-stretch is *rising* when the
   interval lies above 0 and the rise is at least ``MIN_RISE`` points, *falling* when the interval lies below
   0 and the fall is at least ``MIN_RISE``, and *flat* otherwise (no trend the blocks can tell from a
   wander, or one too small to matter).
3. **Verdict.** *Still improving* when the end is rising; *still improving at its drop* when the stretch
   before the last drop was rising (a smaller rate freezes a rising curve: it does not converge it, and the
   windows after the drop agree by construction); *past its best* when the end is falling (validation got
   worse: more of the same would not help); otherwise *converged*. "Converged" and "past its best" both
   mean the run has stopped improving.

``MIN_RISE`` is half a point over the last half of a stretch: doubling that half at the same slope would add
less than that, below the seed-to-seed spread of every comparison the study makes.

``python -m fewlabels.report.convergence RUN_DIR_OR_HISTORY ...`` prints each run's verdict and its numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

COLUMN = "val_accuracy"  # the trainer's name (training.trainer.Run.end_epoch)
BLOCKS = 5               # block means per judged half-stretch
MIN_EVALS = BLOCKS       # evaluations in a judged half-stretch: one per block at least
MIN_RISE = 0.5           # points across the judged half-stretch

RISING, FLAT, FALLING = "rising", "flat", "falling"
CONVERGED, PAST_BEST = "converged", "past its best"
IMPROVING, IMPROVING_AT_DROP = "still improving", "still improving at its drop"
TOO_FEW = "too few evaluations"
STOPPED = (CONVERGED, PAST_BEST)  # the verdicts that say "stopped improving"


@dataclass(frozen=True)
class Trend:
    """The trend of one judged half-stretch: evaluations ``first``..``last`` (1-based, inclusive)."""
    first: int
    last: int
    blocks: tuple[float, ...]  # block means, points
    rise: float                # the fitted line's change across the half-stretch, points
    low: float                 # its 95 % interval
    high: float

    @property
    def direction(self) -> str:
        if self.low > 0 and self.rise >= MIN_RISE:
            return RISING
        if self.high < 0 and self.rise <= -MIN_RISE:
            return FALLING
        return FLAT

    def text(self) -> str:
        return (f"evaluations {self.first}-{self.last}: block means "
                + " ".join(f"{b:.2f}" for b in self.blocks)
                + f", rise {self.rise:+.2f} points [{self.low:+.2f}, {self.high:+.2f}] ({self.direction})")


@dataclass(frozen=True)
class Convergence:
    """The rule's answer for one run."""
    status: str                       # CONVERGED, PAST_BEST, IMPROVING, IMPROVING_AT_DROP or TOO_FEW
    n_evals: int
    end: Trend | None = None          # the last constant-rate stretch's last half
    before_drop: Trend | None = None  # the stretch before the last learning-rate drop (its last half), if any

    @property
    def converged(self) -> bool:
        """Stopped improving: converged or past its best."""
        return self.status in STOPPED

    @property
    def rise(self) -> float | None:
        """The rise that decided the verdict (the stretch before the drop when that decided it), points."""
        t = self.before_drop if self.status == IMPROVING_AT_DROP else self.end
        return None if t is None else t.rise

    def text(self) -> str:
        parts = [f"{self.status} ({self.n_evals} evaluations)"]
        if self.end is not None:
            parts.append("end: " + self.end.text())
        if self.before_drop is not None:
            parts.append("before the last drop: " + self.before_drop.text())
        if self.end is None:
            parts.append(f"the last half of a stretch needs {MIN_EVALS} evaluations")
        return "; ".join(parts)


def trend(acc: np.ndarray, first: int) -> Trend | None:
    """The trend of the last half of ``acc`` (points; evaluation ``first`` is acc[0], 1-based), or None when
    that half holds fewer than MIN_EVALS evaluations."""
    n = len(acc)
    half = acc[n - n // 2:] if n // 2 >= MIN_EVALS else None
    if half is None:
        return None
    start = first + n - len(half)
    idx = np.array_split(np.arange(len(half)), BLOCKS)
    x = np.array([i.mean() for i in idx])
    y = np.array([half[i].mean() for i in idx])
    xc = x - x.mean()
    slope = float((xc * (y - y.mean())).sum() / (xc * xc).sum())
    resid = y - (y.mean() + slope * xc)
    df = BLOCKS - 2
    se = math.sqrt(float((resid * resid).sum()) / df / float((xc * xc).sum()))
    span = len(half)  # the line's change across the half-stretch: slope x its length in evaluations
    t = float(stats.t.ppf(0.975, df))
    rise = slope * span
    return Trend(start, start + len(half) - 1, tuple(float(v) for v in y), rise, rise - t * se * span,
                 rise + t * se * span)


def convergence(history: pd.DataFrame, drops: list[int] | tuple[int, ...] = (), column: str = COLUMN) -> Convergence:
    """The rule on ``history`` (rows in evaluation order, one per epoch; ``column`` a fraction in [0, 1]).
    ``drops``: the epochs after which the learning rate dropped (the method's ``lr_decay_epochs``); drops at
    or after the last evaluation change nothing the history shows and are ignored."""
    if column not in history:
        raise KeyError(f"the history has no {column!r} column (it has {list(history.columns)}); "
                       "histories the trainer writes have one per evaluation")
    acc = pd.to_numeric(history[column], errors="coerce")
    if acc.isna().any():
        bad = [int(i) for i in acc[acc.isna()].index[:5]]
        raise ValueError(f"the history's {column!r} has missing or non-numeric values (rows {bad})")
    a = 100 * acc.to_numpy(dtype=float)
    n = len(a)
    # evaluations are per epoch: a drop after epoch e falls between evaluation e and e + 1
    cuts = sorted({int(e) for e in drops if 1 <= int(e) < n})
    last = cuts[-1] if cuts else 0
    end = trend(a[last:], last + 1)
    before = None
    if cuts:
        prev = cuts[-2] if len(cuts) > 1 else 0
        before = trend(a[prev:last], prev + 1)
    if end is not None and end.direction == RISING:
        status = IMPROVING
    elif before is not None and before.direction == RISING:
        status = IMPROVING_AT_DROP
    elif end is None:
        status = TOO_FEW
    elif end.direction == FALLING:
        status = PAST_BEST
    else:
        status = CONVERGED
    return Convergence(status, n, end, before)


def drops_of(hparams: dict | None) -> list[int]:
    """The epochs after which a run's learning rate dropped, from its resolved hyperparameters."""
    return [int(e) for e in ((hparams or {}).get("lr_decay_epochs") or [])]


def of_run(run_dir: Path) -> Convergence:
    """The rule on a run's folder (history.csv, and metrics.json for its learning-rate drops)."""
    run_dir = Path(run_dir)
    metrics = run_dir / "metrics.json"
    hp = json.loads(metrics.read_text()).get("hparams") if metrics.exists() else None
    return convergence(pd.read_csv(run_dir / "history.csv"), drops_of(hp))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m fewlabels.report.convergence", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="run folders (history.csv + metrics.json) or history.csv files")
    args = p.parse_args(argv)
    for path in args.runs:
        try:
            print(f"{path}: {of_run(path.parent if path.name == 'history.csv' else path).text()}")
        except (OSError, KeyError, ValueError, pd.errors.ParserError) as e:
            print(f"error: {path}: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
