"""The scorecard: every number the seeds state, checked against our runs.

``paper/claims.yaml`` lists claims. Each names the runs that test it and what it
expects; ``evaluate`` turns it into (claim, source, expected, ours, verdict).
A claim whose runs are not in metrics.csv is "not run": no value is invented.

Expectation kinds (all in percent of test accuracy):
- ``approx: 87, tol: 2``      reproduced if |mean - 87| <= tol
- ``range: [88, 90]``          reproduced if the mean lies in the range
- ``reference: 98.40, std: 0.08``  a published number shown beside ours; no verdict
- ``beats: <method>``          reproduced if our mean beats that method's mean at every listed budget
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

REPRODUCED, NOT_REPRODUCED, NOT_RUN, REFERENCE = "reproduced", "not reproduced", "not run", "reference"


@dataclass
class Verdict:
    id: str
    claim: str
    source: str
    expected: str
    ours: str
    verdict: str
    mean: float | None = None
    std: float | None = None
    n: int = 0


def select(df: pd.DataFrame, task: str, method: str, labels) -> pd.Series:
    """Test accuracies (in %) of the runs of (task, method, labels), one per seed."""
    sel = df[(df["task"] == task) & (df["method"] == method) & (df["labels"].astype(str) == str(labels))]
    return 100 * sel["test_accuracy"]


def fmt(values: pd.Series) -> str:
    if len(values) == 0:
        return "--"
    if len(values) == 1:
        return f"{values.mean():.2f} (1 seed)"
    return f"{values.mean():.2f} $\\pm$ {values.std(ddof=1):.2f} ({len(values)} seeds)"


def evaluate(claim: dict, df: pd.DataFrame) -> Verdict:
    run, exp = claim["run"], claim["expect"]
    budgets = run["labels"] if isinstance(run["labels"], list) else [run["labels"]]
    base = dict(id=claim["id"], claim=claim["claim"], source=claim["source"])
    if "beats" in exp:
        other = exp["beats"]
        parts, wins, ran = [], [], True
        for b in budgets:
            a, o = select(df, run["task"], run["method"], b), select(df, run["task"], other, b)
            if len(a) == 0 or len(o) == 0:
                ran = False
                continue
            wins.append(a.mean() > o.mean())
            parts.append(f"{b}: {a.mean():.1f} vs {o.mean():.1f}")
        if not ran:
            return Verdict(**base, expected=f"{run['method']} $>$ {other}", ours="--", verdict=NOT_RUN)
        return Verdict(**base, expected=f"{run['method']} $>$ {other}", ours="; ".join(parts),
                       verdict=REPRODUCED if all(wins) else NOT_REPRODUCED, n=len(wins))
    acc = select(df, run["task"], run["method"], budgets[0])
    mean = float(acc.mean()) if len(acc) else None
    std = float(acc.std(ddof=1)) if len(acc) > 1 else None
    if "reference" in exp:
        expected = f"{exp['reference']:.2f}" + (f" $\\pm$ {exp['std']:.2f}" if "std" in exp else "")
        verdict = REFERENCE if len(acc) else NOT_RUN
    elif "approx" in exp:
        expected = f"$\\approx$ {exp['approx']:g} ($\\pm$ {exp['tol']:g})"
        verdict = NOT_RUN if mean is None else (
            REPRODUCED if abs(mean - exp["approx"]) <= exp["tol"] else
            f"{NOT_REPRODUCED} ({'higher' if mean > exp['approx'] else 'lower'})")
    elif "range" in exp:
        lo, hi = exp["range"]
        expected = f"{lo:g}--{hi:g}"
        verdict = NOT_RUN if mean is None else (
            REPRODUCED if lo <= mean <= hi else f"{NOT_REPRODUCED} ({'higher' if mean > hi else 'lower'})")
    else:
        raise ValueError(f"claim {claim['id']}: expect needs one of approx, range, reference, beats")
    return Verdict(**base, expected=expected, ours=fmt(acc), verdict=verdict, mean=mean, std=std, n=len(acc))


def scorecard(claims: list[dict], df: pd.DataFrame) -> list[Verdict]:
    ids = [c["id"] for c in claims]
    if len(ids) != len(set(ids)):
        raise ValueError("paper/claims.yaml: claim ids must be unique")
    return [evaluate(c, df) for c in claims]
