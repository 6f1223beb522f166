"""Port fidelity: the seeds' own code against the port as published, claim by claim.

``paper/original_code.yaml`` lists measurements of the seeds' own code (TensorFlow through
``tensorflow.compat.v1``, run on this project's CPU machines; ``originals/`` says how). An entry that
names a claim (``claim: <id>``) measures that claim's quantity under the seed's own protocol. For
each such claim the port's as-published runs (the claim's run and metric) are set against the
entry with the most seeds (on a tie, one with per-seed values): the difference port - original with
its Welch 95 % interval (Student's t with the Welch-Satterthwaite degrees of freedom,
``scipy.stats.t``), judged as an equivalence test against the margin MARGIN (points):

- "port matches" when the whole interval lies inside [-MARGIN, +MARGIN];
- "port differs" when it excludes 0 (and leaves the margin);
- "no detectable difference" otherwise (it contains 0 but reaches past the margin), with the
  smallest difference the runs could have detected: ``detectable``, the difference a two-sided
  Welch test at the 5 % level finds with 80 % power, (t(0.975, df) + t(0.80, df)) * SE;
- "too few seeds" when either side has fewer than two.

MARGIN is 1 point: the narrowest band a source states is +-1 point (source 002's "about 98 %",
source 003's classifiers; source 001's 88--90 % is two points wide), so a port within a point of the
seed's own code cannot by itself move a number by more than the precision the sources state
theirs to. A claim whose port differs keeps its numbers but has its verdict withheld in the
scorecard: a verdict from a port that does not do what the seed's code does would be the port's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml
from scipy import stats

from .ablation import short
from .claims import Stats, Verdict, select
from .latex import macro, tex_escape

MATCHES, DIFFERS, TOO_FEW = "port matches", "port differs", "too few seeds"
NO_DIFFERENCE = "no detectable difference"
WITHHELD = "port differs: verdict withheld"
MARGIN = 1.0   # points: the equivalence margin (module docstring says why)
POWER = 0.80   # of the detectable difference


@dataclass
class Fidelity:
    """One claim: the original code's measurement, the port's as-published runs, their difference."""
    claim: str
    what: str            # the original measurement's id
    code: str            # where the original code came from
    original: Stats
    port: Stats
    diff: float | None = None
    lo: float | None = None
    hi: float | None = None
    status: str = TOO_FEW
    detectable: float | None = None  # the difference the runs detect with 80 % power (points)


def _welch_se_df(a: Stats, b: Stats) -> tuple[float, float]:
    """Standard error of a - b and the Welch-Satterthwaite degrees of freedom (both n >= 2)."""
    va, vb = a.sd ** 2 / a.n, b.sd ** 2 / b.n
    if va + vb == 0:
        return 0.0, float(a.n + b.n - 2)
    return math.sqrt(va + vb), (va + vb) ** 2 / (va ** 2 / (a.n - 1) + vb ** 2 / (b.n - 1))


def welch(a: Stats, b: Stats) -> tuple[float, float, float]:
    """Mean difference a - b and its Welch 95 % interval (both samples need n >= 2)."""
    se, df = _welch_se_df(a, b)
    d = a.mean - b.mean
    half = stats.t.ppf(0.975, df) * se
    return d, d - half, d + half


def detectable(a: Stats, b: Stats, power: float = POWER) -> float:
    """The smallest true difference a - b that a two-sided Welch test at the 5 % level detects with
    probability ``power``, at the observed sds and seed counts: (t(0.975, df) + t(power, df)) * SE."""
    se, df = _welch_se_df(a, b)
    return float((stats.t.ppf(0.975, df) + stats.t.ppf(power, df)) * se)


def status_of(lo: float, hi: float, margin: float = MARGIN) -> str:
    """The equivalence test's outcome for the interval [lo, hi] of port - original."""
    if -margin <= lo and hi <= margin:
        return MATCHES
    if lo > 0 or hi < 0:
        return DIFFERS
    return NO_DIFFERENCE


def status_text(f: "Fidelity", digits: int = 2) -> str:
    """The status, with the detectable difference where the runs found none."""
    if f.status == NO_DIFFERENCE and f.detectable is not None:
        return f"{f.status} (detectable: {f.detectable:.{digits}f} points)"
    return f.status


def load(path: Path) -> list[dict]:
    """The measurements of ``paper/original_code.yaml`` (an empty list when the file is absent)."""
    path = Path(path)
    if not path.exists():
        return []
    entries = (yaml.safe_load(path.read_text()) or {}).get("measurements") or []
    for e in entries:
        if "id" not in e or "mean" not in e or "n" not in e:
            raise ValueError(f"{path}: a measurement needs id, mean and n; got {sorted(e)}")
    return entries


def original_stats(e: dict) -> Stats:
    """Mean, sd and n of a measurement: from its per-seed values when it lists them."""
    if e.get("values"):
        return Stats.of(e["values"])
    return Stats(int(e["n"]), float(e["mean"]), float(e["sd"]) if e.get("sd") is not None else None)


def fidelity(claims: list[dict], df: pd.DataFrame, originals: list[dict]) -> list[Fidelity]:
    """One row per claim that an original-code measurement names (the one with the most seeds)."""
    out = []
    for c in claims:
        mine = [e for e in originals if e.get("claim") == c["id"]]
        if not mine:
            continue
        # the most seeds; on a tie, one that lists its per-seed values, then the last listed
        e = max(enumerate(mine), key=lambda ie: (int(ie[1]["n"]), bool(ie[1].get("values")), ie[0]))[1]
        presets = c["protocol"]["preset"]
        presets = [str(p) for p in (presets if isinstance(presets, list) else [presets])]
        metric = c.get("metric", "test_accuracy")
        labels = c["run"]["labels"]
        labels = labels[0] if isinstance(labels, list) else labels
        runs = select(df, c["run"]["task"], c["run"]["method"], labels, presets)
        port = Stats.of(100 * runs[metric].dropna()) if metric in runs else Stats(0)
        orig = original_stats(e)
        f = Fidelity(c["id"], str(e["id"]), str(e.get("code", "")), orig, port)
        if orig.n >= 2 and port.n >= 2 and orig.sd is not None:
            f.diff, f.lo, f.hi = welch(port, orig)
            f.status = status_of(f.lo, f.hi)
            f.detectable = detectable(port, orig)
        out.append(f)
    return out


def withhold(verdicts: list[Verdict], rows: list[Fidelity]) -> list[Verdict]:
    """The scorecard's verdicts, each claim whose port differs from its seed's code withheld."""
    differs = {f.claim for f in rows if f.status == DIFFERS}
    for v in verdicts:
        if v.id in differs and not v.verdict.startswith("protocol differs"):
            v.verdict = f"{WITHHELD} (ours: {v.verdict})"
    return verdicts


def table(rows: list[Fidelity], claims: list[dict]) -> str:
    """The port-fidelity table (LaTeX): per claim, the original code's mean +- sd (n), the port as
    published, the Welch interval of the difference, the difference the runs detect with 80 % power
    and the status under the margin (named in the status column's head)."""
    if not rows:
        return r"\textit{No measurement of the seeds' own code names a claim of this preset.}" + "\n"
    text = {c["id"]: c["claim"] for c in claims}
    df = pd.DataFrame([{
        "claim": text.get(f.claim, f.claim),  # the claim in words, as the scorecard names it
        "source's own code": short(f.original),
        "port as published": short(f.port),
        "port $-$ original [95\\,\\% CI]": "--" if f.diff is None else f"${f.diff:+.2f}$ [${f.lo:+.2f}$, ${f.hi:+.2f}$]",
        "detectable (80\\,\\% power)": "--" if f.detectable is None else f"{f.detectable:.2f}",
        f"status (margin $\\pm${MARGIN:g} point{'s' * (MARGIN != 1)})": f.status} for f in rows])
    df["claim"] = df["claim"].map(tex_escape)
    styler = df.style.hide(axis="index")
    # ragged right: justified narrow columns spread "88.89 $\pm$ 0.70" across the column
    columns = "".join(r">{\raggedright\arraybackslash}p{%s}" % w for w in ("3.7cm", "1.9cm", "1.9cm", "2.8cm", "1.4cm", "2.0cm"))
    return styler.to_latex(column_format=columns, hrules=True)


def macros(rows: list[Fidelity]) -> list[str]:
    """\\fl{fid/<claim>/original|port|diff|lo|hi|detectable|status} (means in %) and \\fl{fid/margin}."""
    out = [macro("fid/margin", f"{MARGIN:g}")] if rows else []
    for f in rows:
        key = f"fid/{f.claim}"
        for name, v in (("original", f.original.mean), ("original_sd", f.original.sd), ("port", f.port.mean),
                        ("diff", f.diff), ("lo", f.lo), ("hi", f.hi), ("detectable", f.detectable)):
            if v is not None:
                out.append(macro(f"{key}/{name}", f"{v:+.2f}" if name in ("diff", "lo", "hi") else f"{v:.2f}"))
        out.append(macro(f"{key}/n", f.original.n))
        out.append(macro(f"{key}/status", f.status))
    return out
