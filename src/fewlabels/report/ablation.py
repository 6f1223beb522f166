"""What made each seed's number: the ablation and test-selection tables of the `seeds` preset.

For every claim whose runs are a seed's protocol as published (a variant named
``<prefix>-published``, see presets/seeds.yaml), the ablation table shows the seed's number,
ours as published, each quirk switched off alone and ours corrected (every quirk off):

- a training quirk off alone is a variant of its own, ``<prefix>-no-<quirk>``;
- an evaluation-only quirk off alone is the published runs' own model evaluated with that
  quirk flipped (``eval_<quirk>_<metric>`` columns of metrics.csv, from trainer.eval_variants).

The Siamese steps table walks from Geron's exercise 10 (the design seed 000 copies, run as its
solution does: ``siamese-geron-*``) toward seed 000's tower, one setting at a time: pair accuracy,
the reused tower's and the scratch control's test accuracy, and their paired difference.

The selection table shows, from each run's history.csv (aggregate.selection), what reading the
curves would have reported: the best test epoch (the seeds printed test accuracy while training),
the test accuracy at the best validation epoch, beside the final epoch that this study reports.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import yaml

from ..files import atomic_write
from .claims import Stats, check_claim, expected_text, pair_versions, paired
from .latex import fit, macro, styled, tex_escape

PUBLISHED, CORRECTED, NO = "-published", "-corrected", "-no-"


def seed_claims(claims: list[dict]) -> list[dict]:
    """Claims tested on a seed's protocol as published (their run is a ``-published`` variant)."""
    return [c for c in claims if str(c["run"]["method"]).endswith(PUBLISHED)]


def _baseline_of(c: dict, method: str) -> str:
    """The baseline variant that pairs with ``method`` (same suffix) in a ``beats`` claim."""
    prefix, base_prefix = c["run"]["method"][:-len(PUBLISHED)], c["expect"]["beats"][:-len(PUBLISHED)]
    return base_prefix + method[len(prefix):]


def values(df: pd.DataFrame, c: dict, method: str, column: str) -> pd.Series:
    def pick(m):
        sel = df[(df["task"] == c["run"]["task"]) & (df["method"] == m)
                 & (df["labels"].astype(str) == str(c["run"]["labels"]))]
        if column not in sel or sel.empty:
            return pd.Series(dtype=float)
        return (100 * sel.set_index("seed")[column].astype(float)).dropna()
    a = pick(method)
    if "beats" not in c["expect"]:
        return a
    return (a - pick(_baseline_of(c, method))).dropna()


def versions(df: pd.DataFrame, c: dict, method: str) -> tuple[str, bool]:
    """A ``beats`` claim's cell is a paired difference: which code version and CPU capability its two
    sides (``method`` and its baseline) come from, over the seeds both ran (claims.pair_versions)."""
    def pick(m):
        return df[(df["task"] == c["run"]["task"]) & (df["method"] == m)
                  & (df["labels"].astype(str) == str(c["run"]["labels"]))]
    a, b = pick(method), pick(_baseline_of(c, method))
    both = set(a["seed"]) & set(b["seed"])
    return pair_versions(a[a["seed"].isin(both)], b[b["seed"].isin(both)]) if both else ("", False)


def quirks(df: pd.DataFrame, c: dict) -> tuple[list[str], list[str]]:
    """(training quirks, evaluation quirks) that the runs of claim ``c`` switch off one at a time."""
    prefix = c["run"]["method"][:-len(PUBLISHED)]
    training = sorted(m[len(prefix) + len(NO):] for m in set(df["method"]) if str(m).startswith(prefix + NO))
    metric = c.get("metric", "test_accuracy")
    pub = df[df["method"] == c["run"]["method"]]
    evaluation = sorted(col[len("eval_"):-len(metric) - 1] for col in df.columns
                        if col.startswith("eval_") and col.endswith("_" + metric) and pub[col].notna().any()
                        and col[len("eval_"):-len(metric) - 1] not in ("all_on", "all_off"))
    return training, evaluation


def cell(v: pd.Series) -> str:
    s = Stats.of(v.tolist())
    if s.n == 0:
        return "--"
    return f"{s.mean:.2f}" + (f" $\\pm$ {s.sd:.2f}" if s.n > 1 else "") + f" ({s.n})"


def rows(df: pd.DataFrame, claims: list[dict]) -> list[dict]:
    out = []
    for c in seed_claims(claims):
        check_claim(c)
        prefix, metric = c["run"]["method"][:-len(PUBLISHED)], c.get("metric", "test_accuracy")
        training, evaluation = quirks(df, c)
        alone = [(q, values(df, c, f"{prefix}{NO}{q}", metric)) for q in training]
        alone += [(q, values(df, c, c["run"]["method"], f"eval_{q}_{metric}")) for q in evaluation]
        if evaluation:
            # the corrected model evaluated with the seed's test-time quirks on: every training quirk
            # off at once (the only one, for a protocol with a single training quirk)
            alone.append(("training quirks (corrected model, test-time quirks on)",
                          values(df, c, prefix + CORRECTED, f"eval_all_on_{metric}")))
        # the paired cells' code and CPU (beats claims only): published, each quirk off, corrected
        notes = {}
        if "beats" in c["expect"]:
            notes = {"published": versions(df, c, c["run"]["method"]), "corrected": versions(df, c, prefix + CORRECTED)}
            notes.update({q: versions(df, c, f"{prefix}{NO}{q}") for q in training})
            notes.update({q: versions(df, c, c["run"]["method"]) for q in evaluation})
            if evaluation:
                notes[alone[-1][0]] = versions(df, c, prefix + CORRECTED)
        out.append({"claim": c, "metric": metric, "versions": notes,
                    "published": values(df, c, c["run"]["method"], metric),
                    "corrected": values(df, c, prefix + CORRECTED, metric), "alone": alone,
                    "selection": {k: values(df, c, c["run"]["method"], col) for k, col in SELECTION}})
    return out


# (label, metrics.csv column) of the selection table
SELECTION = [("final test", "test_accuracy"), ("best test epoch", "best_test_accuracy"),
             ("test at best val.", "test_at_best_val"), ("final val.", "val_accuracy"),
             ("best val. epoch", "best_val_accuracy")]


def _note(r: dict, name: str) -> str:
    """The paired cell's code and CPU in small type (bold when its two sides differ); '' for a claim
    that is not paired or runs without provenance columns."""
    text, mixed = r.get("versions", {}).get(name, ("", False))
    if not text:
        return ""
    text = f"\\textbf{{{tex_escape(text)}}}" if mixed else tex_escape(text)
    return f" \\newline {{\\scriptsize {text}}}"


def ablation_table(rs: list[dict]) -> str:
    """Per seed claim: the seed's number, ours as published, each quirk off alone, corrected (pandas
    Styler; p-columns that sum to less than the text width)."""
    if not rs:
        return r"\textit{No run of a seed's own protocol in this preset (the \texttt{seeds} preset has them).}" + "\n"
    table = pd.DataFrame([{
        # the claim and its source are plain text (escaped by Styler); the quirk names are LaTeX here
        "claim": f"{r['claim']['claim']} [{r['claim']['source'].split(' (')[0]}]"
                 + (" (val.)" if r["metric"] == "val_accuracy" else ""),
        "source": expected_text(r["claim"]["expect"], short=True), "as published": cell(r["published"]) + _note(r, "published"),
        "each quirk off alone": r" \newline ".join(f"\\texttt{{{tex_escape(q)}}}: {cell(v)}{_note(r, q)}"
                                                    for q, v in r["alone"]) or "--",
        "corrected": cell(r["corrected"]) + _note(r, "corrected")} for r in rs])
    return styled(table, "p{3.4cm}p{1.5cm}p{2.4cm}p{4.6cm}p{2.4cm}", escape=["claim"])


def selection_table(rs: list[dict]) -> str:
    """Per seed claim (as published): the final epoch against the epochs a reader of the curves would pick."""
    if not rs:
        return r"\textit{No run of a seed's own protocol in this preset.}" + "\n"
    # the claim's name in words (its text before the colon), not its id
    table = pd.DataFrame([{"claim (as published)": r["claim"]["claim"].split(":")[0].strip(),
                           **{lbl: cell(r["selection"][lbl]).split(" (")[0] for lbl, _ in SELECTION}} for r in rs])
    return fit(styled(table, r">{\raggedright\arraybackslash}p{4.4cm}" + "r" * len(SELECTION),
                      escape=["claim (as published)"]))


def macros(rs: list[dict]) -> str:
    """\\fl{abl/<claim>/published|corrected|<quirk>} and \\fl{sel/<claim>/<column>} (means, %)."""
    lines = [r"\makeatletter"]
    for r in rs:
        cid = r["claim"]["id"]
        for name, v in [("published", r["published"]), ("corrected", r["corrected"]), *r["alone"]]:
            if len(v):
                lines.append(macro(f"abl/{cid}/{name}", f"{v.mean():.2f}"))
        for lbl, col in SELECTION:
            v = r["selection"][lbl]
            if len(v):
                lines.append(macro(f"sel/{cid}/{col}", f"{v.mean():.2f}"))
    lines.append(r"\makeatother")
    return "\n".join(lines) + "\n"


# From Geron's exercise 10 to seed 000's tower, one setting at a time (presets/seeds.yaml): each row is
# (label, pair stage, reused tower's classifier, scratch control); a step that changes only the pair stage
# keeps Geron's scratch control; a label indented by two spaces is one step away from Geron's protocol.
SIAMESE_STEPS = [
    ("Geron's exercise 10 (DNN A and B, frozen)", "siamese-geron-pairs", "siamese-geron-frozen", "siamese-geron-scratch"),
    ("  fine-tuned instead of frozen", "siamese-geron-pairs", "siamese-geron-finetuned", "siamese-geron-scratch"),
    ("  one shared tower", "siamese-geron-shared-pairs", "siamese-geron-shared-frozen", "siamese-geron-scratch"),
    ("  + dropout 0.5 (000:79, 88-92)", "siamese-geron-dropout-pairs", "siamese-geron-dropout-frozen",
     "siamese-geron-dropout-scratch"),
    ("  + batch norm (000:84-87)", "siamese-geron-bn-pairs", "siamese-geron-bn-frozen", "siamese-geron-bn-scratch"),
    ("  pair stage 5,000 x 200 pairs", "siamese-geron-pairsched-pairs", "siamese-geron-pairsched-frozen",
     "siamese-geron-scratch"),
    ("  Adam 1e-3 (000:102)", "siamese-geron-adam-pairs", "siamese-geron-adam-frozen", "siamese-geron-adam-scratch"),
    ("source 000's tower, corrected", "siamese-pairs-000-corrected", "siamese-000-corrected", "siamese-scratch-000-corrected"),
    ("source 000's tower, as published", "siamese-pairs-000-published", "siamese-000-published",
     "siamese-scratch-000-published"),
]


def siamese_steps(df: pd.DataFrame, labels: str = "5000") -> list[dict]:
    """The rows of SIAMESE_STEPS that have runs: pair accuracy (%, test pairs), the reused tower's and the
    scratch control's test accuracy, and their paired difference (reused - scratch) with its interval."""
    def acc(method, lab=labels):
        return df[(df["task"] == "mnist10") & (df["method"] == method) & (df["labels"].astype(str) == lab)]
    out = []
    for label, pairs, reused, scratch in SIAMESE_STEPS:
        a, b = acc(reused), acc(scratch)
        if a.empty:
            continue
        p = acc(pairs, lab="all")
        pair = Stats.of(100 * p["pair_accuracy"].dropna()) if "pair_accuracy" in p else Stats(0)
        out.append({"step": label, "key": reused, "pairs": pair, "reused": Stats.of(100 * a["test_accuracy"]),
                    "scratch": Stats.of(100 * b["test_accuracy"]),
                    "diff": paired(a, b, f"{reused} vs {scratch}") if not b.empty else None})
    return out


def siamese_steps_table(rows: list[dict]) -> str:
    if not rows:
        return r"\textit{No run of Geron's exercise in this preset (the \texttt{seeds} preset has them).}" + "\n"
    def dtext(d):
        return "--" if d is None or not d.n else (f"{d.mean:+.2f}" + (f" [{d.lo:+.2f}, {d.hi:+.2f}]" if d.n > 1 else "")
                                                  + f" ({d.n})")
    def vtext(d):  # which code and CPU the two sides ran on; a mixed pair in bold
        if d is None or not d.versions:
            return "--"
        return f"\\textbf{{{tex_escape(d.versions)}}}" if d.mixed else tex_escape(d.versions)
    table = pd.DataFrame([{"protocol": r["step"], "pair acc.": short(r["pairs"]), "reused": short(r["reused"]),
                           "scratch": short(r["scratch"]), r"reused $-$ scratch [95\,\% CI]": dtext(r["diff"]),
                           "runs' code, CPU": vtext(r["diff"])}
                          for r in rows])
    # an indented step (one setting away from Geron's protocol) keeps its indent after Styler's escaping
    # (Styler escapes the text first, then the formatter turns the two leading spaces into a \quad)
    st = table.style.hide(axis="index").format(
        lambda v: r"\quad " + v.strip() if v.startswith("  ") else v, subset=["protocol"], escape="latex")
    # the runs' column wraps: one line of it made the table half again the text width (printed at 5 pt)
    return fit(st.to_latex(column_format=r"lrrrr>{\raggedright\arraybackslash}p{2.8cm}", hrules=True))


def short(s: Stats) -> str:
    """mean $\\pm$ sd (n) of a sample; no sd for one value, or for a typed mean whose sd is unknown."""
    return "--" if not s.n else f"{s.mean:.2f}" + (f" $\\pm$ {s.sd:.2f}" if s.n > 1 and s.sd is not None else "") + f" ({s.n})"


def steps_macros(rows: list[dict]) -> list[str]:
    """\\fl{steps/<reused variant>/pairs|reused|scratch|diff|lo|hi} (means, %; differences in points)."""
    out = []
    for r in rows:
        key = f"steps/{r['key']}"
        for name in ("pairs", "reused", "scratch"):
            if r[name].n:
                out.append(macro(f"{key}/{name}", f"{r[name].mean:.2f}"))
        d = r["diff"]
        if d is not None and d.n:
            out.append(macro(f"{key}/diff", f"{d.mean:+.2f}"))
            if d.n > 1:
                out += [macro(f"{key}/lo", f"{d.lo:+.2f}"), macro(f"{key}/hi", f"{d.hi:+.2f}")]
    return out


def which500_macros(df: pd.DataFrame) -> list[str]:
    """Seed 002 as published on the other sets of 500 images (``-from<K>k`` variants): the range of
    the set means, \\fl{w500/<transfer|scratch>/min|max|sets}, and the share of sets where scratch
    beats transfer, \\fl{w500/scratchwins}."""
    import re
    rows = []
    for _, r in df[(df["task"] == "digits59") & (df["labels"].astype(str) == "500")].iterrows():
        m = re.fullmatch(r"(transfer|scratch)-002-published-from(\d+)k", str(r["method"]))
        if m:
            rows.append((m.group(1), int(m.group(2)), 100 * r["test_accuracy"]))
    if not rows:
        return []
    means = pd.DataFrame(rows, columns=["method", "start", "acc"]).groupby(["method", "start"])["acc"].mean().unstack(0)
    out = []
    for method in means.columns:
        out += [macro(f"w500/{method}/min", f"{means[method].min():.1f}"),
                macro(f"w500/{method}/max", f"{means[method].max():.1f}"),
                macro(f"w500/{method}/sets", int(means[method].notna().sum()))]
    if {"transfer", "scratch"} <= set(means.columns):
        both = means.dropna()
        out.append(macro("w500/scratchwins", f"{int((both['scratch'] > both['transfer']).sum())} of {len(both)}"))
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m fewlabels.report.ablation", description=__doc__)
    p.add_argument("--metrics", required=True, type=Path)
    p.add_argument("--claims", required=True, type=Path)
    p.add_argument("--outdir", required=True, type=Path)
    args = p.parse_args(argv)
    df = pd.read_csv(args.metrics, dtype={"labels": str})
    rs = rows(df, yaml.safe_load(args.claims.read_text())["claims"])
    steps = siamese_steps(df)
    # what this preset has, for ms.tex's \\flifkey{has/...}: the section and tables are left out without it
    has = [macro("has/ablation", 1)] if any(len(r["published"]) for r in rs) else []
    has += [macro("has/siamesesteps", 1)] if steps else []
    more = "\n".join([r"\makeatletter", *steps_macros(steps), *which500_macros(df), *has, r"\makeatother"]) + "\n"
    for name, text in (("tab_ablation.tex", ablation_table(rs)), ("tab_selection.tex", selection_table(rs)),
                       ("tab_siamese_steps.tex", siamese_steps_table(steps)), ("macros_ablation.tex", macros(rs) + more)):
        atomic_write(args.outdir / name, lambda tmp, t=text: tmp.write_text(t))


if __name__ == "__main__":
    main()
