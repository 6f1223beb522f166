"""The scorecard: every number the sources state, checked against our runs, with its uncertainty.

``paper/claims.yaml`` lists claims (its header documents the schema). Each names the runs
that test it (task, method, label budgets), the protocol (preset) under which those runs can
test it, and what it expects. ``scorecard`` turns each (claim, budget) into one ``Verdict``.

Statistics over seeds (test accuracy in %): mean, sample sd and the 95 % t-interval
mean +- t(0.975, n-1) sd / sqrt(n). Rules (n = number of seeds):
- protocol: runs of a preset the claim does not name never give a verdict: the row reads
  "protocol differs (preset X)" and shows their numbers for information only.
Every judged claim gets one of three outcomes, as an equivalence test gives them (the claim's
set is its band, the region above its bound, or the positive paired differences):
- ``approx: c, tol: t`` and ``range: [lo, hi]``: the claim is the band [c-t, c+t] or [lo, hi].
  Reproduced when the whole interval lies inside the band; "not reproduced (higher|lower)" when
  interval and band are disjoint; "inconclusive" when the interval straddles an edge.
- ``at_least: b`` ("crossed b %"): reproduced when the interval's lower end is >= b;
  "not reproduced (lower)" when its upper end is < b; "inconclusive" when it contains b.
- ``beats: m``: PAIRED over seeds. Runs of the two methods are joined on seed (same task and
  budget); both must have been trained on the same split file (equal ``split_sha256``), else
  the pair is refused. Mean difference d (ours - m) with its 95 % t-interval and the two-sided
  paired t-test p-value. Reproduced when the interval lies above 0, "not reproduced" when it
  lies below 0, "inconclusive" when it contains 0 (a tie always does). The runs' column says
  which code version (``code_git``) and CPU capability the two methods' runs come from and
  flags a pair whose two sides differ in either.
- An inconclusive claim says how many seeds would decide it (``seeds_to_decide``): the smallest
  n whose half-width t(0.975, n-1) sd / sqrt(n) is below the distance from the mean to the
  nearest edge (or bound), if mean and sd stayed as observed; "more seeds cannot decide" when
  the mean sits on the edge, "more than MAX_SEEDS" beyond that.
- ``reference: v (std: s)``: a published number shown beside ours; no verdict.
- One seed gives no interval and no sd: every kind reads "inconclusive (1 seed)".
- No runs: "not run"; no value is invented. A variant that a preset does not have is
  replaced, for information only, by the runs of ``run.base`` (its registered method).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd
from scipy import stats

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"
NOT_RUN, REFERENCE, PROTOCOL_DIFFERS = "not run", "reference", "protocol differs"
KINDS = ("approx", "range", "at_least", "reference", "beats")


# ---- Student's t distribution (scipy.stats)
def t_pvalue(t: float, df: int) -> float:
    """Two-sided p-value of a t statistic with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError(f"df must be positive, got {df}")
    return float(2 * stats.t.sf(abs(t), df))


def t_quantile(p: float, df: int) -> float:
    """The p-quantile (p >= 0.5) of Student's t with ``df`` degrees of freedom."""
    if not 0.5 <= p < 1:
        raise ValueError(f"p must be in [0.5, 1), got {p}")
    if df < 1:
        raise ValueError(f"df must be positive, got {df}")
    return float(stats.t.ppf(p, df))


@dataclass
class Stats:
    """Mean, sd and 95 % t-interval of a sample (interval None for fewer than 2 values)."""
    n: int
    mean: float | None = None
    sd: float | None = None
    lo: float | None = None
    hi: float | None = None

    @classmethod
    def of(cls, values) -> "Stats":
        v = [float(x) for x in values]
        n = len(v)
        if n == 0:
            return cls(0)
        mean = sum(v) / n
        if n == 1:
            return cls(1, mean)
        sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (n - 1))
        half = t_quantile(0.975, n - 1) * sd / math.sqrt(n)
        return cls(n, mean, sd, mean - half, mean + half)

    def tex(self) -> str:
        if self.n == 0:
            return "--"
        if self.n == 1:
            return f"{self.mean:.2f} (1 seed)"
        return f"{self.mean:.2f} $\\pm$ {self.sd:.2f} [{self.lo:.2f}, {self.hi:.2f}] ({self.n} seeds)"


@dataclass
class Paired(Stats):
    """Stats of per-seed differences a - b, plus the paired t-test's two-sided p-value."""
    p: float | None = None
    seeds: list = field(default_factory=list)
    versions: str = ""     # which code version and CPU capability each side's runs come from
    mixed: bool = False    # the two sides (or one side's seeds) differ in either

    def tex(self) -> str:
        if self.n == 0:
            return "--"
        if self.n == 1:
            return f"$\\Delta$ {self.mean:+.2f} (1 seed)"
        return (f"$\\Delta$ {self.mean:+.2f} [{self.lo:+.2f}, {self.hi:+.2f}], "
                f"$p{'' if self.p < 0.001 else '='}{fmt_p(self.p)}$ ({self.n} pairs)")


def fmt_p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.2g}"


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (Holm 1979), in the given order: the i-th smallest
    p (from 0) times (m - i), made monotone and capped at 1. Rejecting where the adjusted p is below alpha
    keeps the chance of any false rejection in the family below alpha."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    out, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


class PairingError(ValueError):
    """Two methods' runs of one seed were trained on different split files."""


def _side(runs: pd.DataFrame, col: str) -> list[str]:
    """The distinct values of a provenance column (``code_git`` shortened to 7 characters)."""
    if col not in runs:
        return []
    out = set()
    for v in runs[col]:
        if pd.isna(v):
            out.add("not recorded")
        elif col == "code_git":
            out.add(str(v)[:7] + ("-dirty" if str(v).endswith("-dirty") else ""))
        else:
            out.add(str(v))
    return sorted(out)


def pair_versions(a: pd.DataFrame, b: pd.DataFrame) -> tuple[str, bool]:
    """(text, mixed): the code versions (metrics.csv ``code_git``) and CPU capabilities
    (``cpu_capability``) of the two sides of a paired comparison, and whether they differ (or one
    side mixes several, so that some pairs may straddle two). ("", False) without those columns."""
    parts, mixed = [], False
    for col, word in (("code_git", "code"), ("cpu_capability", "CPU")):
        va, vb = _side(a, col), _side(b, col)
        if not va and not vb:
            continue
        if va == vb:
            parts.append(f"{word} {', '.join(va)}")
            mixed |= len(va) > 1
        else:
            parts.append(f"{word} {', '.join(va) or 'not recorded'} vs {', '.join(vb) or 'not recorded'}")
            mixed = True
    if not parts:
        return "", False
    return ", ".join(parts) + (": the two sides differ" if mixed else " (both sides)"), mixed


def paired(a: pd.DataFrame, b: pd.DataFrame, what: str = "", metric: str = "test_accuracy") -> Paired:
    """Per-seed differences of ``metric`` (%, test accuracy by default) a - b over the seeds both have run.

    Refuses (PairingError) to pair runs of one seed whose split files differ.
    """
    cols = ["seed", metric] + (["split_sha256"] if "split_sha256" in a and "split_sha256" in b else [])
    j = a[cols].merge(b[cols], on="seed", suffixes=("_a", "_b"))
    if "split_sha256" in cols:
        bad = j[j["split_sha256_a"] != j["split_sha256_b"]]
        if len(bad):
            raise PairingError(f"{what}: cannot pair runs trained on different split files "
                               f"(seed {', '.join(str(s) for s in sorted(bad['seed']))}); a paired "
                               "comparison needs both methods on the same labeled images")
    d = (100 * (j[f"{metric}_a"] - j[f"{metric}_b"])).tolist()
    s = Stats.of(d)
    p = None
    if s.n >= 2:
        if s.sd == 0:
            p = 1.0 if s.mean == 0 else 0.0
        else:
            p = t_pvalue(s.mean / (s.sd / math.sqrt(s.n)), s.n - 1)
    both = set(j["seed"])
    text, mixed = pair_versions(a[a["seed"].isin(both)], b[b["seed"].isin(both)])
    return Paired(**vars(s), p=p, seeds=sorted(j["seed"].tolist()), versions=text, mixed=mixed)


# ---- claims
@dataclass
class Verdict:
    id: str
    claim: str
    source: str
    labels: str
    protocol: str      # the preset(s) the claim names
    runs: str          # where the numbers come from: "<preset>: <method>"
    expected: str
    ours: str
    verdict: str
    compare: str = ""  # the compared variants' numbers (no verdict)
    stats: Stats | None = None
    outcome: str | None = None   # REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE; None: no verdict
    needed: int | None = None    # inconclusive: the seeds that would decide it (None: none would)


def _as_list(x) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def select(df: pd.DataFrame, task: str, method: str, labels, presets=None) -> pd.DataFrame:
    """Runs of (task, method, labels), optionally only those of the given presets."""
    sel = df[(df["task"] == task) & (df["method"] == method) & (df["labels"].astype(str) == str(labels))]
    return sel[sel["preset"].isin(presets)] if presets is not None else sel


# An inconclusive claim names the seeds that would decide it up to this many; beyond, "more than".
MAX_SEEDS = 100


def seeds_to_decide(sd: float, distance: float, cap: int = MAX_SEEDS) -> int | None:
    """Smallest n >= 2 whose 95 % half-width t(0.975, n-1) sd / sqrt(n) is below ``distance`` (from
    the mean to the nearest edge of the claim's set): the seeds that would decide the claim if its
    mean and sd stayed as observed. None when no n up to ``cap`` does (always for distance 0)."""
    if distance <= 0:
        return None
    if sd == 0:
        return 2
    for n in range(2, cap + 1):
        if t_quantile(0.975, n - 1) * sd / math.sqrt(n) < distance:
            return n
    return None


@dataclass
class Judgement:
    """One claim's outcome (REPRODUCED, NOT_REPRODUCED or INCONCLUSIVE), its scorecard words and,
    for an inconclusive claim with an sd, the seeds that would decide it (None: none would)."""
    outcome: str
    text: str
    needed: int | None = None


def _inconclusive(s: Stats, distance: float) -> Judgement:
    if s.n < 2:
        return Judgement(INCONCLUSIVE, f"{INCONCLUSIVE} (1 seed)")
    if distance <= 0:
        return Judgement(INCONCLUSIVE, f"{INCONCLUSIVE} (mean on the edge: more seeds cannot decide)")
    n = seeds_to_decide(s.sd, distance)
    if n is None:
        return Judgement(INCONCLUSIVE, f"{INCONCLUSIVE} (more than {MAX_SEEDS} seeds needed)")
    return Judgement(INCONCLUSIVE, f"{INCONCLUSIVE} ({n} seeds would decide)", n)


def judge_band(s: Stats, lo: float, hi: float) -> Judgement:
    """approx / range: the interval inside [lo, hi], disjoint from it, or straddling an edge."""
    if lo > hi:
        raise ValueError(f"a band needs lo <= hi, got [{lo}, {hi}]")
    if s.n >= 2:
        if lo <= s.lo and s.hi <= hi:
            return Judgement(REPRODUCED, REPRODUCED)
        if s.lo > hi or s.hi < lo:
            return Judgement(NOT_REPRODUCED, f"{NOT_REPRODUCED} ({'higher' if s.lo > hi else 'lower'})")
    # distance from the mean to the nearest edge, inside or outside the band
    return _inconclusive(s, min(abs(s.mean - lo), abs(s.mean - hi)))


def judge_at_least(s: Stats, bound: float) -> Judgement:
    if s.n >= 2:
        if s.lo >= bound:
            return Judgement(REPRODUCED, REPRODUCED)
        if s.hi < bound:
            return Judgement(NOT_REPRODUCED, f"{NOT_REPRODUCED} (lower)")
    return _inconclusive(s, abs(s.mean - bound))


def judge_beats(d: Paired) -> Judgement:
    if d.n >= 2:
        if d.lo > 0:
            return Judgement(REPRODUCED, REPRODUCED)
        if d.hi < 0:
            return Judgement(NOT_REPRODUCED, NOT_REPRODUCED)
    return _inconclusive(d, abs(d.mean))


def judge(exp: dict, s: Stats) -> Judgement | None:
    """The outcome of a claim's ``expect`` on its numbers (Stats, or Paired for ``beats``); None for
    a reference (no verdict) or no runs."""
    if "reference" in exp or not s.n:
        return None
    if "approx" in exp:
        return judge_band(s, exp["approx"] - exp["tol"], exp["approx"] + exp["tol"])
    if "range" in exp:
        return judge_band(s, *exp["range"])
    if "at_least" in exp:
        return judge_at_least(s, exp["at_least"])
    return judge_beats(s)


def band_verdict(s: Stats, lo: float, hi: float) -> str:
    return judge_band(s, lo, hi).text


def at_least_verdict(s: Stats, bound: float) -> str:
    return judge_at_least(s, bound).text


def beats_verdict(d: Paired) -> str:
    return judge_beats(d).text


def expected_text(exp: dict, short: bool = False) -> str:
    """The claim's expected number as LaTeX; ``short`` leaves out the tolerance (the ablation table's
    "seed's number" column)."""
    if "approx" in exp:
        return f"$\\approx$ {exp['approx']:g}" + ("" if short else f" ($\\pm$ {exp['tol']:g})")
    if "range" in exp:
        return f"{exp['range'][0]:g}--{exp['range'][1]:g}"
    if "at_least" in exp:
        return f"$\\geq$ {exp['at_least']:g}"
    if "reference" in exp:
        return f"{exp['reference']:.2f}" + (f" $\\pm$ {exp['std']:.2f}" if "std" in exp else "")
    if short:
        return "$>$ 0 (paired)"
    return f"$>$ \\hspace{{0pt}}{{\\scriptsize {exp['beats']}}}"  # the runs' column names the method


# What a claim's number is measured on: the test set (default), the validation set where the seed
# measured there (seed 004's code evaluates on mnist.validation), or a pair stage's test pairs.
METRICS = {"test_accuracy": "test", "val_accuracy": "validation", "pair_accuracy": "test pairs"}


def check_claim(c: dict) -> None:
    for key in ("id", "claim", "source", "run", "protocol", "expect"):
        if key not in c:
            raise ValueError(f"claim {c.get('id', '?')}: missing key {key!r}")
    kinds = [k for k in KINDS if k in c["expect"]]
    if len(kinds) != 1:
        raise ValueError(f"claim {c['id']}: expect needs exactly one of {', '.join(KINDS)}, got {sorted(c['expect'])}")
    if "approx" in c["expect"] and "tol" not in c["expect"]:
        raise ValueError(f"claim {c['id']}: approx needs tol")
    if "preset" not in c["protocol"]:
        raise ValueError(f"claim {c['id']}: protocol needs preset")
    if c.get("metric", "test_accuracy") not in METRICS:
        raise ValueError(f"claim {c['id']}: metric must be one of {sorted(METRICS)}, got {c['metric']!r}")


def _numbers(c: dict, df: pd.DataFrame, method: str, other: str | None, labels, presets) -> tuple[Stats, str]:
    """(stats, text) of the claim's quantity: accuracies of ``method``, or (beats) its paired
    differences to ``other``."""
    metric = c.get("metric", "test_accuracy")
    a = select(df, c["run"]["task"], method, labels, presets)
    if other is None:
        s = Stats.of(100 * a[metric].dropna()) if metric in a else Stats(0)  # a table without the column: no runs
        return s, s.tex()
    b = select(df, c["run"]["task"], other, labels, presets)
    d = paired(a, b, f"claim {c['id']} ({method} vs {other}, {labels} labels)", metric)
    return d, d.tex()


def evaluate(c: dict, df: pd.DataFrame, labels) -> Verdict:
    """One claim at one budget. ``df`` must have a ``preset`` column (see ``scorecard``)."""
    run, exp = c["run"], c["expect"]
    presets = [str(p) for p in _as_list(c["protocol"]["preset"])]
    method, other = run["method"], exp.get("beats")
    base = dict(id=c["id"], claim=c["claim"], source=c["source"], labels=str(labels),
                protocol=", ".join(presets), expected=expected_text(exp))
    mine = select(df, run["task"], method, labels)
    other_presets = sorted(set(mine["preset"]) - set(presets))
    # Any run under the claim's protocol gives the verdict; runs of other presets only inform.
    if len(select(df, run["task"], method, labels, presets)) == 0:
        shown = other_presets or sorted(set(df["preset"]) - set(presets))
        if not shown:
            return Verdict(**base, runs=f"{', '.join(presets)}: {method}", ours="--", verdict=NOT_RUN)
        if not other_presets and "base" in run:
            # the variant is not in this grid: show the registered method's runs instead
            method, *rest = _as_list(run["base"])
            other = rest[0] if rest else None
        try:
            s, text = _numbers(c, df, method, other, labels, shown)
            s, text = (s, text) if s.n else (None, "--")
        except PairingError as e:
            s, text = None, f"not paired: {e}"
        note = f"{PROTOCOL_DIFFERS} (preset {', '.join(shown)})"
        return Verdict(**base, runs=f"{', '.join(shown)}: {method}", ours=text, stats=s,
                       verdict=f"{REFERENCE}; {note}" if "reference" in exp else note)
    compare = []
    for m in c.get("compare", []):
        try:
            compare.append(f"{m}: {_numbers(c, df, m, c['_beats_compare'].get(m) if other else None, labels, presets)[1]}")
        except PairingError as e:
            compare.append(f"{m}: not paired ({e})")
    where = "" if c.get("metric", "test_accuracy") == "test_accuracy" else f" ({METRICS[c['metric']]})"
    base.update(runs=f"{', '.join(presets)}: {method}{where}", compare="; ".join(compare))
    try:
        s, text = _numbers(c, df, method, other, labels, presets)
    except PairingError as e:
        return Verdict(**base, ours="--", verdict=f"not paired: {e}")
    j = judge(exp, s)
    v = REFERENCE if "reference" in exp else (j.text if j else NOT_RUN)
    if getattr(s, "versions", ""):  # a paired claim: which code and CPU each side comes from
        base["runs"] += f"; {s.versions}"
    return Verdict(**base, ours=text, verdict=v, stats=s, outcome=j.outcome if j else None,
                   needed=j.needed if j else None)


def scorecard(claims: list[dict], df: pd.DataFrame, preset: str) -> list[Verdict]:
    """One Verdict per (claim, listed budget). Runs without a ``preset`` column belong to ``preset``."""
    ids = [c["id"] for c in claims]
    if len(ids) != len(set(ids)):
        raise ValueError("paper/claims.yaml: claim ids must be unique")
    df = df.copy()
    df["preset"] = df["preset"].fillna(preset).astype(str) if "preset" in df else str(preset)
    out = []
    for c in claims:
        check_claim(c)
        c = dict(c, _beats_compare={})
        if "beats" in c["expect"]:
            # compare entries of a paired claim are "variant > variant" pairs
            pairs = [tuple(x) for x in c.get("compare", [])]
            if any(len(p) != 2 for p in pairs):
                raise ValueError(f"claim {c['id']}: compare entries of a beats claim are [method, baseline] pairs")
            c["compare"] = [a for a, _ in pairs]
            c["_beats_compare"] = dict(pairs)
        for labels in _as_list(c["run"]["labels"]):
            out.append(evaluate(c, df, labels))
    return out
