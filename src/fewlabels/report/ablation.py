"""What made each seed's number: the ablation and test-selection tables of the `seeds` preset.

For every claim whose runs are a seed's protocol as published (a variant named
``<prefix>-published``, see presets/seeds.yaml), the ablation table shows the seed's number,
ours as published, each quirk switched off alone and ours corrected (every quirk off):

- a training quirk off alone is a variant of its own, ``<prefix>-no-<quirk>``;
- an evaluation-only quirk off alone is the published runs' own model evaluated with that
  quirk flipped (``eval_<quirk>_<metric>`` columns of metrics.csv, from trainer.eval_variants).

The selection table shows, from each run's history.csv (aggregate.selection), what reading the
curves would have reported: the best test epoch (the seeds printed test accuracy while training),
the test accuracy at the best validation epoch, beside the final epoch that this study reports.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import yaml

from ..data import atomic_write
from .claims import Stats, check_claim, expected_text
from .tables import macro, tex_escape

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
        out.append({"claim": c, "metric": metric, "published": values(df, c, c["run"]["method"], metric),
                    "corrected": values(df, c, prefix + CORRECTED, metric), "alone": alone,
                    "selection": {k: values(df, c, c["run"]["method"], col) for k, col in SELECTION}})
    return out


# (label, metrics.csv column) of the selection table
SELECTION = [("final test", "test_accuracy"), ("best test epoch", "best_test_accuracy"),
             ("test at best val.", "test_at_best_val"), ("final val.", "val_accuracy"),
             ("best val. epoch", "best_val_accuracy")]


def ablation_table(rs: list[dict]) -> str:
    if not rs:
        return r"\textit{No run of a seed's own protocol in this preset (the \texttt{seeds} preset has them).}" + "\n"
    out = [r"\begin{tabular}{p{3.4cm}p{1.5cm}p{2.4cm}p{4.6cm}p{2.4cm}}", r"\toprule",
           r"claim & seed & as published & each quirk off alone & corrected \\", r"\midrule"]
    for r in rs:
        c = r["claim"]
        alone = r" \newline ".join(f"\\texttt{{{tex_escape(q)}}}: {cell(v)}" for q, v in r["alone"]) or "--"
        where = " (val.)" if r["metric"] == "val_accuracy" else ""
        out.append(" & ".join([tex_escape(c["claim"]) + f" [{tex_escape(c['source'].split(' (')[0])}]{where}",
                               expected_text(c["expect"], short=True), cell(r["published"]), alone, cell(r["corrected"])]) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n"


def selection_table(rs: list[dict]) -> str:
    if not rs:
        return r"\textit{No run of a seed's own protocol in this preset.}" + "\n"
    out = [r"\begin{tabular}{p{4.2cm}" + "r" * len(SELECTION) + "}", r"\toprule",
           "claim (as published) & " + " & ".join(lbl for lbl, _ in SELECTION) + r" \\", r"\midrule"]
    for r in rs:
        cells = [cell(r["selection"][lbl]).split(" (")[0] for lbl, _ in SELECTION]
        out.append(tex_escape(r["claim"]["id"]) + " & " + " & ".join(cells) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n"


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


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m fewlabels.report.ablation", description=__doc__)
    p.add_argument("--metrics", required=True, type=Path)
    p.add_argument("--claims", required=True, type=Path)
    p.add_argument("--outdir", required=True, type=Path)
    args = p.parse_args(argv)
    df = pd.read_csv(args.metrics, dtype={"labels": str})
    rs = rows(df, yaml.safe_load(args.claims.read_text())["claims"])
    for name, text in (("tab_ablation.tex", ablation_table(rs)), ("tab_selection.tex", selection_table(rs)),
                       ("macros_ablation.tex", macros(rs))):
        atomic_write(args.outdir / name, lambda tmp, t=text: tmp.write_text(t))


if __name__ == "__main__":
    main()
