"""The findings up front: the abstract's measured sentences (``abstract.tex``) and the summary table
(``tab_summary.tex``), from the same metrics, claims and port-fidelity measurements as the scorecard.

In a preset that tests the sources' claims under their own protocol (``seeds``): which claims held,
which did not, which had their verdict withheld because the port differs from the seed's own code
(fidelity.withhold), the measured numbers behind them, and the largest effect of a single quirk
(ablation.rows: a quirk switched off alone against the runs as published). In any other preset
(``quick``, ``smoke``, a subset): the grid's headline numbers, the baseline and the best method at
each task's largest label budget, and the paired differences to same-architecture baselines.

``python -m fewlabels.report.summary --metrics results/metrics.csv --claims paper/claims.yaml
--originals paper/original_code.yaml --preset seeds --outdir paper/generated``
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from ..files import atomic_write
from . import ablation, fidelity
from .claims import expected_text, fmt_p, scorecard
from .latex import fit, macro, styled, tex_escape
from .common import beyond_budget
from .tables import budget_key, paired_rows, summary as accuracy_summary

HELD, NOT_HELD, WITHHELD, OPEN = "held", "did not hold", "withheld", "inconclusive"


@dataclass
class Finding:
    id: str
    claim: str           # the claim's text
    short: str           # its name, the text before the colon
    expected: str        # LaTeX
    ours: float | None   # mean (%, or points for a paired claim)
    paired: bool
    outcome: str         # HELD, NOT_HELD, WITHHELD, OPEN
    verdict: str         # the scorecard's words
    lo: float | None = None  # the 95 % t-interval of ``ours`` (None for one seed)
    hi: float | None = None
    n: int = 0           # seeds (pairs for a paired claim)
    metric: str = "test_accuracy"  # what the number was measured on (the claim's metric)


def outcome(verdict: str) -> str | None:
    """The scorecard verdict as one of the four outcomes; None for a reference, a run under another
    protocol or a claim without runs (no verdict to report)."""
    if verdict.startswith(fidelity.WITHHELD):
        return WITHHELD
    if verdict.startswith("not reproduced"):
        return NOT_HELD
    if verdict.startswith("reproduced"):
        return HELD
    if verdict.startswith("inconclusive"):
        return OPEN
    return None


def findings(claims: list[dict], df: pd.DataFrame, preset: str, originals: list[dict]) -> list[Finding]:
    """One Finding per (claim, budget) that has a verdict under its own protocol in this preset."""
    verdicts = scorecard(claims, df, preset)
    dfp = df.assign(preset=df["preset"].fillna(preset)) if "preset" in df else df.assign(preset=preset)
    verdicts = fidelity.withhold(verdicts, fidelity.fidelity(claims, dfp, originals))
    by_id = {c["id"]: c for c in claims}
    out = []
    for v in verdicts:
        o = outcome(v.verdict)
        if o is None or v.stats is None or not v.stats.n:
            continue
        c = by_id[v.id]
        out.append(Finding(v.id, v.claim, v.claim.split(":")[0].strip(), expected_text(c["expect"], short=True),
                           v.stats.mean, "beats" in c["expect"], o, v.verdict, v.stats.lo, v.stats.hi,
                           v.stats.n, c.get("metric", "test_accuracy")))
    return out


@dataclass
class QuirkEffect:
    claim: str           # the claim's short name
    quirk: str
    published: float
    alone: float

    @property
    def effect(self) -> float:
        return self.alone - self.published


def quirk_effects(claims: list[dict], df: pd.DataFrame) -> list[QuirkEffect]:
    """Each quirk switched off alone against the runs as published (means over seeds), largest first."""
    out = []
    for r in ablation.rows(df, claims):
        if not len(r["published"]):
            continue
        for q, v in r["alone"]:
            if len(v) and not q.startswith("training quirks"):  # the corrected model: not one quirk
                out.append(QuirkEffect(r["claim"]["claim"].split(":")[0].strip(), q, r["published"].mean(), v.mean()))
    return sorted(out, key=lambda e: -abs(e.effect))


def _ours(f: Finding) -> str:
    return f"${f.ours:+.1f}$ points" if f.paired else f"{f.ours:.1f}\\,\\%"


def _names(fs: list[Finding]) -> str:
    names = [tex_escape(f.short) for f in fs]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def claims_abstract(fs: list[Finding], effects: list[QuirkEffect]) -> str:
    """The abstract's result sentences for a preset with seed claims: counts, the claims by outcome
    with their measured numbers, and the largest single-quirk effect."""
    groups = {o: [f for f in fs if f.outcome == o] for o in (HELD, NOT_HELD, WITHHELD, OPEN)}
    n = len(fs)
    parts = [f"Of the {n} claim{'s' if n != 1 else ''} of the sources that this preset tests under their own "
             f"protocol, {len(groups[HELD])} held, {len(groups[NOT_HELD])} did not"
             + (f", {len(groups[OPEN])} {'was' if len(groups[OPEN]) == 1 else 'were'} inconclusive" if groups[OPEN] else "")
             + f" and {len(groups[WITHHELD])} had {'its' if len(groups[WITHHELD]) == 1 else 'their'} verdict "
             "withheld because our port differs from the source's own code."]

    def listed(fs_):
        return "; ".join(f"{tex_escape(f.short)}, {_ours(f)} against {f.expected}" for f in fs_)
    if groups[HELD]:
        parts.append(f"Held: {listed(groups[HELD])}.")
    if groups[NOT_HELD]:
        parts.append(f"Did not hold: {listed(groups[NOT_HELD])}.")
    if groups[OPEN]:
        parts.append(f"Inconclusive: {listed(groups[OPEN])}.")
    if groups[WITHHELD]:
        parts.append(f"Withheld: {listed(groups[WITHHELD])}.")
    if effects:
        e = effects[0]
        parts.append(f"The largest effect of a single quirk of the sources' code: switching off "
                     f"\\texttt{{{tex_escape(e.quirk)}}} alone in ``{tex_escape(e.claim)}'' moves our number from "
                     f"{e.published:.1f} to {e.alone:.1f} (${e.effect:+.1f}$ points).")
    return " ".join(parts)


def over_budget(df: pd.DataFrame) -> set[str]:
    """Methods whose runs used labels beyond their budget (the Siamese pair targets): not "the best
    method" at a budget, since they saw more labels than it names."""
    runs = df[(df["stage"] == "train") & (df["labels"].astype(str) != "all")]
    return beyond_budget(runs.assign(labels=runs["labels"].astype(int))) if len(runs) else set()


def headline(df: pd.DataFrame) -> list[dict]:
    """Per task, at its largest numeric label budget: the baseline (supervised, or scratch on
    digits 5-9) and the best method (mean test accuracy over seeds) among those that used no labels
    beyond the budget; ``above``: the methods that did use more and score higher than that best."""
    s = accuracy_summary(df[df["stage"] == "train"].assign(labels=lambda d: d["labels"].astype(str)))
    over = over_budget(df)
    out = []
    for task, t in s.groupby("task", sort=False):
        numeric = sorted((b for b in set(t["labels"]) if b != "all"), key=budget_key)
        if not numeric:
            continue
        here = t[t["labels"] == numeric[-1]].sort_values("mean", ascending=False)
        at = here[~here["method"].isin(over)]
        if at.empty:
            continue
        base = at[at["method"].isin(["supervised", "scratch"])]
        above = here[here["method"].isin(over) & (here["mean"] > at.iloc[0]["mean"])]
        out.append({"task": task, "labels": numeric[-1], "best": at.iloc[0],
                    "baseline": base.iloc[0] if len(base) else None, "above": list(above.itertuples())})
    return out


def labels_used(df: pd.DataFrame, task: str, method: str, labels: str) -> int | None:
    """The most labels of any kind one run of the cell used (labels_used), if recorded."""
    if "labels_used" not in df.columns:
        return None
    cell = df[(df["stage"] == "train") & (df["task"] == task) & (df["method"] == method)
              & (df["labels"].astype(str) == str(labels))]["labels_used"].dropna()
    return int(cell.max()) if len(cell) else None


# A task in the abstract's words (its name, e.g. mnist10, is the grid's key)
TASK_WORDS = {"mnist10": "MNIST (10 classes)", "digits59": "digits 5--9 (the transfer target)",
              "digits04": "digits 0--4 (the transfer source)"}


# Presets whose schedules are a few per cent of the published ones: their abstract says so, since their
# numbers test that the workflow builds, not how the methods compare (compare and paper train longer).
SHORT_SCHEDULES = ("quick", "smoke")


def grid_abstract(df: pd.DataFrame, preset: str) -> str:
    """The abstract's result sentences for a preset without seed claims: the headline numbers (and, for a
    preset of SHORT_SCHEDULES, that they are a build check)."""
    parts = []
    for h in headline(df):
        b, base = h["best"], h["baseline"]
        s = (f"On {tex_escape(TASK_WORDS.get(h['task'], h['task']))} with {int(h['labels']):,} labels the best method here that uses only the "
             f"budget's labels, \\texttt{{{tex_escape(b['method'])}}}, "
             f"reaches {b['mean']:.1f}\\,\\% ({int(b['n'])} seed{'s' if b['n'] != 1 else ''})")
        if base is not None and base["method"] != b["method"]:
            s += f", against {base['mean']:.1f}\\,\\% for \\texttt{{{tex_escape(base['method'])}}}"
        for a in h["above"]:  # higher, but not on the budget's labels alone: said, not hidden
            used = labels_used(df, h["task"], a.method, h["labels"])
            seen = f"{used:,} labels of any kind" if used else "more labels than the budget"
            s += (f"; \\texttt{{{tex_escape(a.method)}}} reaches {a.mean:.1f}\\,\\% but is not counted, since its "
                  f"runs used {seen} (same/different targets made from the pool's labels)")
        parts.append(s + ".")
    diffs = [r for r in paired_rows(df) if r["d"] is not None and r["d"].n >= 2]
    # only a difference whose interval excludes 0 and that survives Holm's adjustment over the paired table's
    # tests is a headline (with few seeds most say nothing); one on the budget's labels alone comes first
    resolved = [r for r in diffs if (r["d"].lo > 0 or r["d"].hi < 0) and r.get("p_holm", 1.0) < 0.05]
    if resolved:
        own = [r for r in resolved if r["method"] not in over_budget(df)]
        r = max(own or resolved, key=lambda r: abs(r["d"].mean))
        d = r["d"]
        extra = (f" (\\texttt{{{tex_escape(r['method'])}}} also used labels beyond the budget, as "
                 "same/different targets)") if r["method"] in over_budget(df) else ""
        parts.append(f"The largest paired difference to a same-architecture baseline that survives Holm's adjustment "
                     f"over the paired table's tests is \\texttt{{{tex_escape(r['method'])}}} $-$ "
                     f"\\texttt{{{tex_escape(r['baseline'])}}} at {r['labels']} labels: ${d.mean:+.1f}$ points "
                     f"(${d.lo:+.1f}$ to ${d.hi:+.1f}$, {d.n} seeds, Holm's $p={fmt_p(r['p_holm'])}$){extra}.")
    elif diffs:
        n = max(r["d"].n for r in diffs)
        parts.append(f"With {n} seeds no paired difference to a same-architecture baseline survives Holm's "
                     "adjustment over the paired table's tests.")
    if not parts:
        return "This preset has no labeled-budget run to summarise."
    if preset in SHORT_SCHEDULES:
        n = df[df["stage"] == "train"]["seed"].nunique()
        parts.append(f"These runs use the preset's short schedules (a few per cent of each published one) and {n} "
                     f"seed{'s' * (n != 1)}: they check that every table and figure builds, they do not compare the methods or "
                     "test the sources' claims (the \\texttt{compare} and \\texttt{seeds} presets do).")
    return " ".join(parts)


# What a claim's number is measured on, in the summary table's words
MEASURED_ON = {"test_accuracy": "test", "val_accuracy": "validation", "pair_accuracy": "test pairs"}


def _interval(f: Finding) -> str:
    """ours with its 95 % interval and the seeds (pairs) behind it, as the summary table prints it."""
    if f.lo is None or f.hi is None:
        return _ours(f) + f" ({f.n} seed{'s' * (f.n != 1)})"
    if f.paired:
        return f"${f.ours:+.1f}$ [${f.lo:+.1f}$, ${f.hi:+.1f}$] ({f.n} pairs)"
    return f"{f.ours:.1f} [{f.lo:.1f}, {f.hi:.1f}] ({f.n} seeds)"


def claims_table(fs: list[Finding], effects: list[QuirkEffect]) -> str:
    largest = {}
    for e in effects:  # effects are sorted: the first per claim is its largest
        largest.setdefault(e.claim, e)
    rows = [{"claim": f.claim, "source states": f.expected,
             "ours as published, [95\\,\\% CI]": _interval(f),
             "measured on": ("paired test accuracy" if f.paired and f.metric == "test_accuracy"
                             else MEASURED_ON.get(f.metric, f.metric.replace("_", " "))),
             "outcome": f.outcome,
             "largest quirk (off alone)": (f"{quirk_words(largest[f.short].quirk)}: "
                                           f"${largest[f.short].effect:+.1f}$") if f.short in largest else "--"}
            for f in fs]
    # ragged right: narrow justified columns spread a line's words across the column
    columns = "".join(r">{\raggedright\arraybackslash}p{%s}" % w
                      for w in ("3.9cm", "1.3cm", "2.6cm", "1.6cm", "1.9cm", "2.7cm"))
    return fit(styled(pd.DataFrame(rows), columns, escape=["claim", "outcome", "measured on"]))


# A quirk in the summary table's words (the switch's name is in Table ablation and the appendix).
QUIRK_WORDS = {
    "dropout_at_test": "test-time dropout",
    "d_unshared_weights": "unshared discriminators",
    "argmax_with_fake": "11-way argmax",
    "bn_init_stats_at_test": "never-updated BN statistics",
    "bn_params_frozen_at_init": "frozen BN scale and shift",
    "label_draw": "the source's label draw",
}


def quirk_words(q: str) -> str:
    return tex_escape(QUIRK_WORDS.get(q, q.replace("_", " ")))


def grid_table(df: pd.DataFrame) -> str:
    rows = []
    for h in headline(df):
        for who, r in (("baseline", h["baseline"]), ("best", h["best"])):
            if r is not None and not (who == "best" and h["baseline"] is not None and r["method"] == h["baseline"]["method"]):
                rows.append({"task": tex_escape(TASK_WORDS.get(h["task"], h["task"])), "labels": h["labels"], "": who, "method": r["method"],
                             "test accuracy (\\%)": f"{r['mean']:.2f}" + (f" $\\pm$ {r['std']:.2f}" if r["n"] > 1 else ""),
                             "seeds": str(int(r["n"]))})
    if not rows:
        return ""
    return fit(styled(pd.DataFrame(rows), "llllrr", escape=["labels", "", "method"]))


def write(df: pd.DataFrame, claims: list[dict], preset: str, originals: list[dict]) -> tuple[str, str]:
    """(abstract.tex, tab_summary.tex)."""
    fs = findings(claims, df, preset, originals)
    effects = quirk_effects(claims, df)
    if fs:
        text = claims_abstract(fs, effects)
        tab = claims_table(fs, effects)
        caption = ("The findings: each claim of the sources tested under its own protocol, the source's number, "
                   "ours as published (mean over seeds with its 95\\,\\% $t$-interval; points for a paired "
                   "claim), the set it was measured on (the claim's own: a source that reports validation accuracy "
                   "is compared on validation, so a number here can differ from the test accuracy of the same "
                   "runs in Table~\\ref{tab:results}), the outcome (``withheld'': the port differs from the "
                   "source's own code) and the quirk whose switching off alone moves the number most (points).")
    else:
        text, tab = grid_abstract(df, preset), grid_table(df)
        caption = ("The headline numbers: at each task's largest label budget, the baseline and the best method "
                   "of this preset (mean $\\pm$ sd over seeds).")
    abstract = "% Generated by fewlabels.report.summary; do not edit.\n" + text + "\n"
    if not tab:
        return abstract, "% Generated by fewlabels.report.summary: nothing to summarise in this preset.\n"
    table = ("% Generated by fewlabels.report.summary; do not edit.\n\\begin{table}[H]\n\\centering\n\\small\n"
             + tab + f"\\caption{{{caption}}}\n\\label{{tab:summary}}\n\\end{{table}}\n")
    return abstract, table


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m fewlabels.report.summary", description=__doc__)
    p.add_argument("--metrics", required=True, type=Path)
    p.add_argument("--claims", required=True, type=Path)
    p.add_argument("--originals", type=Path, default=None)
    p.add_argument("--preset", required=True)
    p.add_argument("--outdir", required=True, type=Path)
    args = p.parse_args(argv)
    df = pd.read_csv(args.metrics, dtype={"labels": str})
    claims = yaml.safe_load(args.claims.read_text())["claims"]
    abstract, table = write(df, claims, args.preset, fidelity.load(args.originals) if args.originals else [])
    for name, text in (("abstract.tex", abstract), ("tab_summary.tex", table)):
        atomic_write(args.outdir / name, lambda tmp, t=text: tmp.write_text(t))


if __name__ == "__main__":
    main()
