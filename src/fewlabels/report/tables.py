"""LaTeX tables and macros from metrics.csv: the results table (with the labels each method
used), the paired differences of each method to its same-architecture baseline, the scorecard,
and ``macros.tex`` with every number the text quotes (``\\fl{mnist10/supervised/1000/mean}``).
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import pandas as pd
import yaml

from ..files import atomic_write
from . import ablation, fidelity
from .claims import NOT_RUN, PROTOCOL_DIFFERS, REFERENCE, PairingError, fmt_p, holm, paired, scorecard, t_quantile
from .latex import fit, macro, styled, tex_escape
from .common import METHOD_ORDER, beyond_budget

TASK_TITLES = {"mnist10": "MNIST, 10 classes", "digits59": "digits 5--9 (transfer target)",
               "digits04": "digits 0--4 (transfer source)"}


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and count of test accuracy (%) per (task, method, labels)."""
    g = df.assign(acc=100 * df["test_accuracy"]).groupby(["task", "method", "labels"], sort=False)
    return g.agg(mean=("acc", "mean"), std=("acc", "std"), n=("acc", "size"),
                 errors=("test_errors", "mean"), wall=("wall_s", "mean")).reset_index()


def cell(mean: float, std: float, n: int) -> str:
    """mean +- sd and, in small type, the 95 % t-interval of the mean (none for one seed)."""
    if n < 2:
        return f"{mean:.2f}"
    half = t_quantile(0.975, int(n) - 1) * std / math.sqrt(n)
    # an accuracy lies in [0, 100]: a wide (e.g. two-seed) interval is cut there, not printed as [-33, 165]
    lo, hi = max(0.0, mean - half), min(100.0, mean + half)
    return f"{mean:.2f} $\\pm$ {std:.2f} {{\\scriptsize[{lo:.1f}, {hi:.1f}]}}"


def budget_key(b) -> tuple:
    """Sort order of label budgets: numbers ascending, then "all" (every pool label)."""
    return (1, 0) if str(b) == "all" else (0, int(b))


def budget_label(b) -> str:
    return "all labels" if str(b) == "all" else f"{b} labels"


MAX_BUDGETS = 4  # label-budget columns in one results table


WHICH500 = r"-from\d+k$"


def results_table(df: pd.DataFrame) -> str:
    """One booktabs table per task (pandas Styler): methods as rows, label budgets as columns ("all"
    last) under the task's title, each shrunk to the text width when wider, with its labels-used note."""
    # the seeds preset's which-500 cells (<name>-from<K>k) have a figure of their own (fig_which500):
    # as rows they made the digits 5-9 table taller than a page
    df = df[~df["method"].astype(str).str.contains(WHICH500)]
    s = summary(df[df["stage"] == "train"].assign(labels=lambda d: d["labels"].astype(str)))
    out = []
    for task in [t for t in TASK_TITLES if t in set(s["task"])]:
        t = s[s["task"] == task]
        runs = df[(df["stage"] == "train") & (df["task"] == task) & (df["labels"].astype(str) != "all")]
        flagged = beyond_budget(runs.assign(labels=lambda d: d["labels"].astype(int)))
        budgets = sorted(t["labels"].unique(), key=budget_key)
        methods = [m for m in METHOD_ORDER if m in set(t["method"])] + \
                  sorted(set(t["method"]) - set(METHOD_ORDER))
        cells = t.assign(cell=[cell(*r) for r in t[["mean", "std", "n"]].itertuples(index=False)])
        grid = cells.pivot(index="method", columns="labels", values="cell").reindex(index=methods, columns=budgets)
        grid = grid.fillna("--").rename(columns=budget_label)
        if len(budgets) > 1 and ((grid != "--").sum(axis=1) <= 1).all():
            # every method at one budget (the seeds preset's variants): one column of numbers, the
            # budget beside each, not a sparse grid with one filled cell a row
            long = cells.set_index("method").reindex(methods)
            table = pd.DataFrame({"method": methods,
                                  "": [r"$^\dagger$" if m in flagged else "" for m in methods],
                                  "labels": [budget_label(b).removesuffix(" labels") for b in long["labels"]],
                                  r"test accuracy (\%)": list(long["cell"])})
            table.columns = pd.MultiIndex.from_tuples([(TASK_TITLES[task], c) for c in table.columns])
            out.append(fit(styled(table, "l@{}lrr", escape=[(TASK_TITLES[task], "method")], multicol_align="l")))
            budgets = []  # nothing left for the grid below
        # at most MAX_BUDGETS columns a table: a grid with more budgets is split, not shrunk to nothing
        for i in range(0, len(budgets), MAX_BUDGETS):
            part = grid.iloc[:, i:i + MAX_BUDGETS]
            keep = (part != "--").any(axis=1).to_numpy()  # a method without a run at these budgets: no row
            names = [m for m, k in zip(methods, keep) if k]
            # the method's name, escaped by Styler; a dagger (LaTeX) after the ones that used more labels
            table = pd.DataFrame({"method": names, "": [r"$^\dagger$" if m in flagged else "" for m in names]})
            table = pd.concat([table, part[keep].reset_index(drop=True)], axis=1)
            title = TASK_TITLES[task] + ("" if i == 0 else " (continued)")
            table.columns = pd.MultiIndex.from_tuples([(title, c) for c in table.columns])
            out.append(fit(styled(table, "l@{}l" + "r" * part.shape[1], escape=[(title, "method")],
                                  multicol_align="l")))
        out += [r"\par", labels_used_note(df, task)]
        if flagged & set(methods):
            out.append(r"{\footnotesize $^\dagger$ used more labels than the budget through its first stage "
                       r"(\texttt{siamese}: same/different targets made from the pool's class labels).}")
        out.append(r"\par\medskip")
    return "\n".join(out) + "\n"


def labels_used_note(df: pd.DataFrame, task: str) -> str:
    """A line under a task's table: which methods used labels beyond their budget, and of what kind."""
    t = df[(df["task"] == task) & (df["stage"] == "train")]
    if "labels_used" not in t or t["labels_used"].isna().all():
        return (r"{\footnotesize Labels used: not recorded by these runs (their metrics files predate "
                r"the count; see the text for what each method used).}")
    extra = []
    for (m, b), g in t.groupby(["method", "labels"], sort=False):
        if str(b) == "all":  # every pool label, by definition
            continue
        used = g["labels_used"].dropna()
        if len(used) and used.max() > int(b):
            kinds = [(c[len("labels_used_"):].replace("_", " "), g[c].max()) for c in sorted(t.columns)
                     if c.startswith("labels_used_") and g[c].notna().any() and g[c].max() > 0]
            extra.append(f"{tex_escape(m)} at {b}: {int(used.max()):,} ("
                         + " + ".join(f"{int(v):,} {k}" for k, v in kinds) + ")")
    if not extra:
        return r"{\footnotesize Labels used: every method used exactly its budget of class labels.}"
    return (r"{\footnotesize Labels used beyond the budget (per run, all kinds): " + "; ".join(extra)
            + r". Every other method used exactly its budget of class labels.}")


# Each semi-supervised or pretrained method and its same-architecture baseline (the "same network,
# no extra signal" control). One line per pair; pairs whose methods are not in the grid are skipped.
# sgan and sgan-fm have no baseline of their own architecture in the grid (their classifiers are
# their discriminators), so they are not paired: comparing them with `supervised` would mix
# architectures.
PAIRS = {
    "aae": "supervised",               # seed 004: both the 784-1000-1000 MLP
    "transfer": "scratch",             # seed 002: the 200-50-50-50 DNN on digits 5-9
    "siamese": "siamese-scratch",      # seed 000: the 5x100 ELU tower (NB: pair targets are labels)
    "ae": "ae-scratch",                # seed 003 autoencoders: encoder vs the same encoder from scratch
    "conv-ae": "conv-ae-scratch",
    "dae": "ae-scratch",
    "vae": "vae-scratch",
}
UNEQUAL = r"$^{\ddagger}$"  # a pair whose two sides trained for different numbers of steps
# A variant name is <method><suffix>, e.g. aae-004-published: paired with supervised-004-published.
VARIANT_SUFFIX = re.compile(r"-\d{3}-[a-z]+$")


def pairs_in(methods) -> list[tuple[str, str]]:
    """(method, baseline) pairs of PAIRS present in ``methods``, variants included."""
    methods = list(methods)
    out = [(a, b) for a, b in PAIRS.items() if a in methods and b in methods]
    for m in methods:
        for a, b in PAIRS.items():
            suffix = m[len(a):]
            if m.startswith(a) and VARIANT_SUFFIX.fullmatch(suffix) and b + suffix in methods:
                out.append((m, b + suffix))
    return out


def paired_rows(df: pd.DataFrame) -> list[dict]:
    """Mean difference (percentage points) method - baseline per task and budget, paired on seed."""
    t = df[df["stage"] == "train"].assign(labels=lambda d: d["labels"].astype(str))
    rows = []
    for task in [x for x in TASK_TITLES if x in set(t["task"])]:
        tt = t[t["task"] == task]
        for a, b in pairs_in(sorted(set(tt["method"]))):
            for lab in sorted(set(tt[tt["method"] == a]["labels"]) & set(tt[tt["method"] == b]["labels"]),
                              key=budget_key):
                sel = tt[tt["labels"] == lab]
                try:
                    d = paired(sel[sel["method"] == a], sel[sel["method"] == b], f"{a} - {b}, {task}, {lab} labels")
                except PairingError as e:
                    print(f"warning: {e}")
                    d = None
                steps = {m: int(sel[sel["method"] == m]["steps"].max()) if "steps" in sel else None for m in (a, b)}
                rows.append(dict(task=task, method=a, baseline=b, labels=lab, d=d, steps=steps))
    tested = [r for r in rows if r["d"] is not None and r["d"].n >= 2 and r["d"].p is not None]
    for r, adj in zip(tested, holm([r["d"].p for r in tested])):
        r["p_holm"] = adj  # adjusted over every paired test of the table (one family)
    return rows


def diff_cell(d) -> str:
    if d is None:
        return "split differs"
    if d.n < 2:
        return f"{d.mean:+.2f} (1 seed)"
    return f"{d.mean:+.2f} [{d.lo:+.2f}, {d.hi:+.2f}]"


def paired_table(df: pd.DataFrame) -> str:
    """Each method minus its same-architecture baseline per budget: mean difference [95 % interval]
    (pandas Styler, shrunk to the text width when wider)."""
    rows = paired_rows(df)
    if not rows:
        return r"\textit{No method and its baseline were both run in this preset.}" + "\n"
    def extra(r):
        d = r["d"]
        if d is None or d.n < 2:
            return ""
        holm_p = r.get("p_holm")
        return (f", $p{'' if d.p < 0.001 else '='}{fmt_p(d.p)}$"
                + ("" if holm_p is None else f", Holm ${'' if holm_p < 0.001 else '='}{fmt_p(holm_p)}$")
                + f", {d.n} ({d.n - 1} df)")

    def length(r):
        """A mark where the two sides trained for different numbers of steps (the pair then compares schedules too)."""
        sa, sb = (r.get("steps") or {}).get(r["method"]), (r.get("steps") or {}).get(r["baseline"])
        return "" if sa is None or sb is None or sa == sb else f" {UNEQUAL}"
    unequal = [r for r in rows if length(r)]
    table = pd.DataFrame({"task": [r["task"] for r in rows], "method": [r["method"] for r in rows],
                          "$-$ baseline": [r["baseline"] for r in rows], "labels": [str(r["labels"]) for r in rows],
                          r"difference (points) [95\,\% CI], $p$, Holm's $p$, pairs (df)":
                              [diff_cell(r["d"]) + extra(r) + length(r) for r in rows],
                          # which code and CPU the two sides ran on (claims.pair_versions); a mixed pair in bold
                          "runs' code, CPU": [versions_cell(r["d"]) for r in rows]})
    # the last two columns wrap (ragged right): as one-line cells they made the seeds preset's table
    # twice the text width, and shrunk to fit it printed at 4 pt
    wrap = "".join(r">{\raggedright\arraybackslash}p{%s}" % w for w in ("3.2cm", "4.6cm"))
    note = (r"{\footnotesize\raggedright Holm's $p$: the paired $t$-test's $p$ adjusted by Holm's step-down method "
            r"over the table's paired tests, one family. " + (
                f"{UNEQUAL}: the two sides trained for different numbers of steps ("
                + "; ".join(f"{tex_escape(r['method'])} {r['steps'][r['method']]:,}, {tex_escape(r['baseline'])} "
                            f"{r['steps'][r['baseline']]:,} at {r['labels']} labels" for r in unequal)
                + "), so the difference measures the schedules too." if unequal else "") + r"\par}" + "\n")
    return fit(styled(table, "lllr" + wrap, escape=["task", "method", "$-$ baseline"])) + "\\par\n" + note


def versions_cell(d) -> str:
    if d is None or not d.versions:
        return "--"
    return f"\\textbf{{{tex_escape(d.versions)}}}" if d.mixed else tex_escape(d.versions)


def scored(verdicts) -> list:
    """The scorecard's rows that have runs in this preset: a claim that was not run is left out, and
    so is a reference whose method this preset has no run of (a row of dashes)."""
    def empty(v):  # shown for information only, and nothing to show: a row of dashes
        return v.ours == "--" and v.verdict.startswith((REFERENCE, PROTOCOL_DIFFERS))
    return [v for v in verdicts if v.verdict != NOT_RUN and (v.stats is None or v.stats.n > 0) and not empty(v)]


def source_words(source: str) -> str:
    """A claim's source as the text names it: "source 004 (004_e9283f98c02d3284.txt:78)" (or the older
    "seed 004 (...)") is "source 004, line 78" (the file names are hashes; the number says which); a
    paper stays as it is."""
    def lines(m):
        where = m["lines"].replace("-", "--")
        return f"source {m['n']}, line{'s' if re.search(r'[-,]', m['lines']) else ''} {where}"
    return re.sub(r"(?:seed|source) (?P<n>\d{3}) \((?P=n)_[0-9a-f]+\.txt:(?P<lines>[^)]*)\)", lines, source)


SCORECARD_CAPTION = r"Scorecard: the sources' claims against our runs (preset \texttt{\fl{preset}})."
# ragged right (array's >{...}): narrow justified columns hyphenate ("not repro- duced")
SCORECARD_COLUMNS = "".join(r">{\raggedright\arraybackslash}p{%s}" % w for w in
                            ("3.1cm", "1.6cm", "0.9cm", "0.8cm", "1.6cm", "4.2cm", "2.4cm"))  # 16.1 cm with 3pt gaps


def scorecard_table(verdicts, caption: str | None = None) -> str:
    """The scorecard as a longtable (pandas Styler; it breaks across pages), one row per claim and
    budget with runs in this preset; ``caption``: LaTeX for the table's caption (and its label
    tab:scorecard), since a longtable is not put in a float."""
    rows, last = [], None
    for v in scored(verdicts):
        first = v.id != last
        last = v.id
        ours = f"{v.ours} \\newline {{\\scriptsize from {tex_escape(v.runs)}}}"
        if v.compare:
            ours += f" \\newline {{\\scriptsize {tex_escape(v.compare)}}}"
        # small type, breakable after an underscore and a colon (Styler's escaping cannot add the
        # break points, so this column is escaped here); "--" is LaTeX's en dash of a line range
        source = (tex_escape(source_words(v.source)).replace(r"\_", r"\_\allowbreak ").replace(":", r":\allowbreak ")
                  .replace("/", r"/\allowbreak "))  # ageron/handson-ml is wider than the column
        source = re.sub(r"\.(?=[a-z])", r".\\allowbreak ", source)  # and so is 11_deep_learning.ipynb
        source = source.replace(r"{-}{-}", "--")
        rows.append({"claim": v.claim if first else "", "source": r"{\scriptsize " + source + "}" if first else "",
                     "preset": v.protocol, "labels": v.labels, "expected": v.expected,
                     r"ours: mean $\pm$ sd [95\,\% CI] (runs)": ours, "verdict": v.verdict})
    if not rows:
        return r"\textit{No claim of the sources was run in this preset.}" + "\n"
    table = styled(pd.DataFrame(rows), SCORECARD_COLUMNS, escape=["claim", "preset", "labels", "verdict"],
                   environment="longtable", caption=caption, label="tab:scorecard" if caption else None)
    return "{\\setlength{\\tabcolsep}{3pt}\n" + table + "}\n"


def device_words(name: str) -> str:
    """A run's device as the text says it: "cpu (x86_64, 1 threads)" is "one thread of an x86-64 CPU";
    a GPU's name (e.g. "NVIDIA H200") is kept as it is."""
    m = re.fullmatch(r"cpu \((?P<arch>[^,]+), (?P<n>\d+) threads?\)", str(name).strip())
    if not m:
        return str(name)
    n = int(m["n"])
    arch = m["arch"].replace("_", "-")
    return f"one thread of an {arch} CPU" if n == 1 else f"{n} threads of an {arch} CPU"


def hardware(df: pd.DataFrame) -> str:
    """Which runs used which device and PyTorch, in words (LaTeX): every run alike in one clause, else each
    device and version with the methods it trained, the largest group last as 'every other run'."""
    groups = {}
    for (dev, torch_v), g in df.groupby([df["device_name"].map(device_words), df["torch"].astype(str)], sort=False):
        groups[(dev, torch_v)] = [m for m in METHOD_ORDER if m in set(g["method"])] + sorted(
            set(g["method"]) - set(METHOD_ORDER))
    if len(groups) == 1:
        (dev, torch_v), _ = next(iter(groups.items()))
        return f"Every run used {tex_escape(dev)} with PyTorch {tex_escape(torch_v)}"
    order = sorted(groups, key=lambda k: len(df[(df["device_name"].map(device_words) == k[0])
                                                & (df["torch"].astype(str) == k[1])]))
    def n_runs(k):
        return int(((df["device_name"].map(device_words) == k[0]) & (df["torch"].astype(str) == k[1])).sum())
    parts = [f"{', '.join(tex_escape(m) for m in groups[k])} ({n_runs(k)} run{'s' if n_runs(k) != 1 else ''}) "
             f"on {tex_escape(k[0])} with PyTorch {tex_escape(k[1])}" for k in order[:-1]]
    dev, torch_v = order[-1]
    return "; ".join(parts) + f"; every other run on {tex_escape(dev)} with PyTorch {tex_escape(torch_v)}"


def effect_macros(df: pd.DataFrame, claims: list[dict]) -> list[str]:
    """\\fl{eff/<claim>/<quirk>} and \\fl{eff/<claim>/corrected}: how far switching one quirk off alone
    (or all of them: corrected) moves a source claim's number from the runs as published, in points
    (difference of the means over seeds, in the claim's metric), so that the text states an effect
    from the runs and not from a reading of them."""
    out = []
    for r in ablation.rows(df, claims):
        pub = r["published"]
        if not len(pub):
            continue
        cid = r["claim"]["id"]
        for name, v in [("corrected", r["corrected"]), *r["alone"]]:
            if len(v) and not name.startswith("training quirks"):  # that one is not a single switch
                out.append(macro(f"eff/{cid}/{name}", f"{v.mean() - pub.mean():+.2f}"))
    return out


def spread_macros(rows: list, claims: list[dict]) -> list[str]:
    """\\fl{fid/spread/max} (points) and \\fl{fid/spread/claim} (its claim's name): the widest
    seed-to-seed sd of the sources' own code among the port-fidelity measurements."""
    with_sd = [f for f in rows if f.original.sd is not None]
    if not with_sd:
        return []
    f = max(with_sd, key=lambda f: f.original.sd)
    name = next((c["claim"].split(":")[0].strip() for c in claims if c["id"] == f.claim), f.claim)
    return [macro("fid/spread/max", f"{f.original.sd:.1f}"), macro("fid/spread/claim", tex_escape(name))]


def macros(df: pd.DataFrame, verdicts, preset: str, extra: list[str] | None = None) -> str:
    """Every number of the paper's text as a ``\\fl{key}`` macro; ``extra``: more definitions (port fidelity)."""
    lines = [r"% Generated by fewlabels.report.tables from results/metrics.csv; do not edit.",
             r"\makeatletter",
             # a number the text asks for that this preset did not make: "??" and a warning in the log
             # (ms.tex guards every sentence with \\flifkey, so none should be typeset)
             r"\providecommand{\fl}[1]{\ifcsname fl@#1\endcsname\csname fl@#1\endcsname\else"
             r"\textbf{??}\GenericWarning{}{fewlabels warning: number #1 undefined}\fi}",
             r"\providecommand{\flp}[1]{\ifcsname fl@#1\endcsname\csname fl@#1\endcsname\,\%\else\fl{#1}\fi}",
             macro("preset", preset), macro("nruns", int((df["stage"] == "train").sum())),
             macro("nstages", int((df["stage"] == "pretrain").sum())),
             macro("nseeds", df["seed"].nunique())]
    devices = sorted({device_words(d) for d in df["device_name"]})
    lines.append(macro("devices", tex_escape("; ".join(devices))))
    lines.append(macro("torch", tex_escape("; ".join(sorted(set(df["torch"].astype(str)))))))
    lines.append(macro("hardware", hardware(df)))
    for _, r in summary(df).iterrows():
        key = f"{r['task']}/{r['method']}/{r['labels']}"
        lines.append(macro(f"{key}/mean", f"{r['mean']:.2f}"))
        lines.append(macro(f"{key}/std", "--" if pd.isna(r["std"]) else f"{r['std']:.2f}"))
        lines.append(macro(f"{key}/n", int(r["n"])))
        lines.append(macro(f"{key}/errors", f"{r['errors']:.0f}"))
        lines.append(macro(f"{key}/wall", f"{r['wall']:.0f}"))
    if "pair_accuracy" in df.columns:  # the Siamese pair stage's own metric, in %
        pairs = df.dropna(subset=["pair_accuracy"]).groupby(["task", "method", "labels"], sort=False)
        for (task, method, labels), g in pairs:
            lines.append(macro(f"{task}/{method}/{labels}/pair", f"{100 * g['pair_accuracy'].mean():.2f}"))
    # labels of every kind a run used (mean over its seeds); "not recorded" for runs made before
    # the trainer counted them
    used_cols = ["labels_used", "labels_used_class", "labels_used_pair_targets"]
    used_cols += sorted(c for c in df.columns if c.startswith("labels_used_") and c not in used_cols)
    df = df.assign(**{c: float("nan") for c in used_cols if c not in df.columns})
    for (task, method, labels), g in df.groupby(["task", "method", "labels"], sort=False):
        for c in used_cols:
            v = g[c].mean()
            if pd.isna(v) and c != "labels_used" and g["labels_used"].notna().any():
                v = 0  # counted, but none of this kind
            lines.append(macro(f"{task}/{method}/{labels}/{c}", "not recorded" if pd.isna(v) else f"{v:,.0f}"))
    for r in paired_rows(df):
        d, key = r["d"], f"diff/{r['task']}/{r['method']}/{r['labels']}"
        if d is not None and d.n:
            lines.append(macro(f"{key}/mean", f"{d.mean:+.2f}"))
            if d.n >= 2:
                lines += [macro(f"{key}/lo", f"{d.lo:+.2f}"), macro(f"{key}/hi", f"{d.hi:+.2f}"),
                          macro(f"{key}/p", fmt_p(d.p))]
    # what this preset has, for ms.tex's \\flifkey{has/...}: a section without it is left out
    if (df["stage"] == "train").any():
        lines.append(macro("has/results", 1))
    if any(r["d"] is not None for r in paired_rows(df)):
        lines.append(macro("has/paired", 1))
    if scored(verdicts):
        lines.append(macro("has/scorecard", 1))
    seen = set()
    for v in verdicts:
        keys = [f"claim/{v.id}/{v.labels}"] + ([f"claim/{v.id}"] if v.id not in seen else [])
        seen.add(v.id)
        for k in keys:
            lines.append(macro(f"{k}/ours", v.ours))
            lines.append(macro(f"{k}/expected", v.expected))  # the claimed number, from paper/claims.yaml
            lines.append(macro(f"{k}/verdict", tex_escape(v.verdict)))
            # the outcome in one word group, for a sentence that names it (withheld: the port differs)
            outcome = "withheld" if v.verdict.startswith(fidelity.WITHHELD) else v.outcome
            if outcome:
                lines.append(macro(f"{k}/outcome", outcome))
    lines += extra or []
    lines.append(r"\makeatother")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m fewlabels.report.tables", description=__doc__)
    p.add_argument("--metrics", required=True, type=Path)
    p.add_argument("--claims", required=True, type=Path)
    p.add_argument("--originals", type=Path, default=None,
                   help="paper/original_code.yaml: measurements of the seeds' own code (the port-fidelity table)")
    p.add_argument("--preset", required=True,
                   help="the preset of the runs in --metrics (rows without a `preset` column belong to it)")
    p.add_argument("--outdir", required=True, type=Path)
    args = p.parse_args(argv)
    df = pd.read_csv(args.metrics, dtype={"labels": str})
    claims = yaml.safe_load(args.claims.read_text())["claims"]
    verdicts = scorecard(claims, df, args.preset)
    fid = fidelity.fidelity(claims, df.assign(preset=df["preset"].fillna(args.preset)) if "preset" in df
                            else df.assign(preset=args.preset), fidelity.load(args.originals) if args.originals else [])
    verdicts = fidelity.withhold(verdicts, fid)
    extra = fidelity.macros(fid) + spread_macros(fid, claims) + effect_macros(df, claims)
    tex = macros(df, verdicts, args.preset, extra + ([macro("has/fidelity", 1)] if fid else []))
    for name, text in (("tab_results.tex", results_table(df)), ("tab_scorecard.tex", scorecard_table(verdicts, SCORECARD_CAPTION)),
                       ("tab_paired.tex", paired_table(df)), ("tab_fidelity.tex", fidelity.table(fid, claims)),
                       ("macros.tex", tex)):
        atomic_write(args.outdir / name, lambda tmp, t=text: tmp.write_text(t))


if __name__ == "__main__":
    main()
