"""Pictures of the verdicts (issue 21, item 2).

``fig_forest``: one small forest plot per seed claim (the claims whose run is a ``-published``
variant, paper/claims.yaml): the seed's stated number or band (shaded), the seed's own code's runs
(paper/original_code.yaml, via ``fidelity``), the port as published, each quirk off alone and the
port corrected (``ablation.rows``), each as a mean with its 95 % t interval (``claims.Stats``) and
its seeds as dots. A second panel shows paired differences over seeds (``claims.paired``): transfer -
scratch, the Siamese pretrained tower - scratch, AAE - its baseline, as published and corrected.
In a preset without the seeds' variants (``quick``, ``paper``) each claim's ``run.base`` runs are
drawn instead, marked "protocol differs" (for information, as the scorecard shows them).
Each row's marker is the scorecard's rule (``claims.judge``) applied to that row's interval:
reproduced, not reproduced or inconclusive (for a paired row: the difference above 0, below it,
or containing it); each panel's title gives the as-published verdict as the scorecard words it,
withheld where the port differs from the source's own code (``fidelity``). The figure is drawn at
the paper's text width (FIG_WIDTH) with every font at least 7 pt, so that it prints at that size.

``fig_seed_curves``: learning curves of the as-published variants (their history.csv) against the
points the seeds printed while training (``PRINTED``), so a reader sees where a seed read its number.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .. import ablation, fidelity
from ..claims import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, PairingError, Stats, judge, paired, select
from .common import plt, save, sns

# Paired differences of the second panel: (label, task, labels, a, b, metric). Each is drawn when
# both variants are in the preset; "-published" pairs also draw their "-corrected" twins.
PAIRS = [
    ("transfer − scratch (source 002)", "digits59", "500", "transfer-002-published", "scratch-002-published",
     "test_accuracy"),
    ("Siamese tower − scratch (source 000)", "mnist10", "5000", "siamese-000-published",
     "siamese-scratch-000-published", "test_accuracy"),
    ("Géron ex. 10: frozen − scratch", "mnist10", "5000", "siamese-geron-frozen", "siamese-geron-scratch",
     "test_accuracy"),
    ("Géron ex. 10: fine-tuned − scratch", "mnist10", "5000", "siamese-geron-finetuned", "siamese-geron-scratch",
     "test_accuracy"),
    ("AAE − basic NN (source 004)", "mnist10", "1000", "aae-004-published", "supervised-004-published",
     "val_accuracy"),
]
# The same comparisons between registered methods, for presets without the seeds' variants.
BASE_PAIRS = [
    ("transfer − scratch", "digits59", "transfer", "scratch"),
    ("Siamese tower − scratch", "mnist10", "siamese", "siamese-scratch"),
    ("AAE − supervised", "mnist10", "aae", "supervised"),
]

# A quirk switched off alone, in words (the row reads "<words> off"); a quirk not listed here is
# shown by its name with spaces for underscores.
QUIRK_WORDS = {
    "dropout_at_test": "test-time dropout",
    "d_unshared_weights": "unshared discriminators",
    "argmax_with_fake": "11-way argmax",
    "bn_init_stats_at_test": "never-updated BN stats",
    "bn_params_frozen_at_init": "frozen BN scale, shift",
    "label_draw": "source's label draw",
}

COLORS = {"seed": "#b8e0b8", "original": "#7f5f3f", "published": "#c0392b", "quirk": "#e69f00",
          "corrected": "#1f5fa8", "base": "#666666"}
METRIC_WORDS = {"test_accuracy": "test", "val_accuracy": "validation", "pair_accuracy": "test pairs"}
# Each row's marker: the verdict rule applied to its interval (a row without one keeps the diamond).
OUTCOME_MARKERS = {REPRODUCED: ("o", True), NOT_REPRODUCED: ("X", True), INCONCLUSIVE: ("D", False),
                   None: ("s", True)}
FIG_WIDTH = 6.5   # inches: paper/ms.tex's text width (A4, 2.2 cm margins: 16.6 cm), included at \linewidth
FONT = 7          # points, the smallest size in the figure (printed at this size: the figure is not scaled)


# --------------------------------------------------------------------------------- what is drawn

def _row(label: str, values, kind: str) -> dict:
    v = [float(x) for x in values]
    return {"label": label, "values": v, "stats": Stats.of(v), "kind": kind}


def _original(c: dict, originals: list[dict]) -> dict | None:
    """The original-code measurement fidelity compares with (most seeds, then per-seed values)."""
    mine = [e for e in originals if e.get("claim") == c["id"]]
    if not mine:
        return None
    e = max(enumerate(mine), key=lambda ie: (int(ie[1]["n"]), bool(ie[1].get("values")), ie[0]))[1]
    s = fidelity.original_stats(e)
    row = _row("source's own code", e.get("values") or [], "original")
    row["what"] = str(e["id"])
    row["stats"] = s
    return row


def _quirk_label(q: str) -> str:
    if q.startswith("training quirks"):
        return "corrected, test quirks on"
    return f"{QUIRK_WORDS.get(q, q.replace('_', ' '))} off"


def claim_title(c: dict) -> str:
    """The claim in words: its text before the colon, with thousands separated and LaTeX dashes as
    dashes, and its source ("Basic NN classifier, 1,000 labels (source 004)")."""
    import re

    text = c["claim"].split(":")[0].strip().replace("--", "–")
    text = re.sub(r"(?<![\d.])(\d{1,3})(\d{3})(?![\d.])", r"\1,\2", text)
    m = re.match(r"(?:seed|source) (\d{3})", str(c.get("source", "")))
    return text + (f" (source {m.group(1)})" if m else "")


def claim_groups(df: pd.DataFrame, claims: list[dict], originals: list[dict]) -> list[dict]:
    """One group per seed claim with a stated number or band (``beats`` claims go to the paired
    panel): its band and rows (original code, published, each quirk off, corrected)."""
    groups = []
    have = set(df["method"])
    for r in ablation.rows(df, claims):
        c = r["claim"]
        if "beats" in c["expect"]:
            continue
        rows = []
        o = _original(c, originals)
        if o:
            rows.append(o)
        if len(r["published"]):
            rows.append(_row("as published", r["published"], "published"))
        rows += [_row(_quirk_label(q), v, "quirk") for q, v in r["alone"] if len(v)]
        if len(r["corrected"]):
            rows.append(_row("corrected", r["corrected"], "corrected"))
        if c["run"]["method"] not in have:  # the preset lacks the seed's variants: its base runs, if any
            rows = [x for x in rows if x["kind"] == "original"]
            base_names = c["run"].get("base") or []
            base_names = [base_names] if isinstance(base_names, str) else base_names
            for base in base_names:
                sel = select(df, c["run"]["task"], base, c["run"]["labels"])
                m = r["metric"]
                if m in sel and sel[m].notna().any():
                    # the legend says what a registered method is; its name only where there are several
                    label = "registered method" + (f" {base}" if len(base_names) > 1 else "")
                    rows.append(_row(label, 100 * sel[m].dropna(), "base"))
        for x in rows:
            # the verdict rule on each row's interval; none for runs of another protocol (no verdict, as
            # in the scorecard) or an original measurement with an sd but no values
            ok = x["kind"] != "base" and (x["stats"].n < 2 or x["stats"].lo is not None)
            j = judge(c["expect"], x["stats"]) if ok else None
            x["outcome"] = j.outcome if j else None
        if not any(x["kind"] != "original" for x in rows):
            continue
        groups.append({"claim": c, "metric": r["metric"], "rows": rows})
    return groups


def _diff_row(df, label, task, labels, a, b, metric, kind) -> dict | None:
    ra, rb = select(df, task, a, labels), select(df, task, b, labels)
    if ra.empty or rb.empty or metric not in ra or metric not in rb:
        return None
    try:
        p = paired(ra, rb, label, metric)
    except PairingError:
        return None
    if p.n == 0:
        return None
    j = ra[["seed", metric]].merge(rb[["seed", metric]], on="seed", suffixes=("_a", "_b"))
    row = _row(label, 100 * (j[f"{metric}_a"] - j[f"{metric}_b"]), kind)
    row["stats"], row["p"], row["mixed"] = p, p.p, p.mixed
    # above 0, below it, or containing it; none for runs of another protocol (no verdict)
    row["outcome"] = judge({"beats": b}, p).outcome if kind != "base" else None
    return row


def stated_difference(claims: list[dict], a: str, b: str) -> float | None:
    """The difference of the two methods' stated numbers, when claims state both (e.g. 85 - 72)."""
    def stated(m):
        for c in claims:
            if c["run"]["method"] == m and "approx" in c["expect"]:
                return float(c["expect"]["approx"])
        return None
    sa, sb = stated(a), stated(b)
    return None if sa is None or sb is None else sa - sb


def paired_rows(df: pd.DataFrame, claims: list[dict]) -> list[dict]:
    out = []
    for label, task, labels, a, b, metric in PAIRS:
        published = a.endswith("-published") and b.endswith("-published")
        pub = _diff_row(df, f"{label}, as published" if published else label, task, labels, a, b, metric, "published")
        if pub is None:
            continue
        pub["stated"] = stated_difference(claims, a, b)
        pub["metric"] = metric
        out.append(pub)
        if published:
            ca, cb = a.replace("-published", "-corrected"), b.replace("-published", "-corrected")
            cor = _diff_row(df, f"{label}, corrected", task, labels, ca, cb, metric, "corrected")
            if cor is not None:
                cor["stated"], cor["metric"] = None, metric
                out.append(cor)
    if out:
        return out
    # no seed variants in this preset: the registered methods, at every budget they share
    for label, task, a, b in BASE_PAIRS:
        both = set(df.loc[(df["method"] == a) & (df["task"] == task), "labels"].astype(str)) & \
            set(df.loc[(df["method"] == b) & (df["task"] == task), "labels"].astype(str))
        for labels in sorted((x for x in both if x != "all"), key=int):
            row = _diff_row(df, f"{label}, {int(labels):,} labels", task, labels, a, b, "test_accuracy", "base")
            if row is not None:
                row["stated"], row["metric"] = None, "test_accuracy"
                out.append(row)
    return out


# ------------------------------------------------------------------------------------- drawing

def _draw_rows(ax, rows: list[dict]) -> None:
    """Rows top to bottom: mean with its 95 % interval (a bar), the seeds as dots; the mean's marker
    is the row's outcome under the verdict rule (OUTCOME_MARKERS)."""
    n = len(rows)
    for i, r in enumerate(rows):
        y = n - 1 - i
        color = COLORS[r["kind"]]
        s = r["stats"]
        if r["values"]:
            jitter = np.linspace(-0.12, 0.12, len(r["values"])) if len(r["values"]) > 1 else [0.0]
            ax.scatter(r["values"], y + np.asarray(jitter), s=7, color=color, alpha=0.5, linewidths=0, zorder=3)
        if s.n >= 2 and s.lo is not None:
            ax.plot([s.lo, s.hi], [y, y], color=color, lw=2.0, solid_capstyle="butt", zorder=4)
        elif s.n >= 2 and s.sd is not None:  # an original measurement with mean and sd only
            ax.plot([s.mean - s.sd, s.mean + s.sd], [y, y], color=color, lw=1, ls=":", zorder=4)
        if s.mean is not None:
            marker, filled = OUTCOME_MARKERS[r.get("outcome")]
            ax.plot([s.mean], [y], marker=marker, ms=5, color=color, mfc=color if filled else "white",
                    mec=color if not filled else "white", mew=1.0 if not filled else 0.6, zorder=5)
    ax.set_yticks(range(n))
    ax.set_yticklabels([f"{r['label']} ({r['stats'].n})" for r in reversed(rows)], fontsize=FONT)
    ax.set_ylim(-0.6, n - 0.4)
    ax.tick_params(axis="both", labelsize=FONT, length=2, pad=1.5)
    ax.grid(axis="x", alpha=0.3)


def _stated(exp: dict) -> str:
    if "approx" in exp:
        return f"about {exp['approx']:g} % (band ±{exp.get('tol', 0):g})"
    if "range" in exp:
        return f"{exp['range'][0]:g}–{exp['range'][1]:g} %"
    return f"crossed {exp['at_least']:g} %"


def _draw_claim(ax, g: dict) -> None:
    exp = g["claim"]["expect"]
    _draw_rows(ax, g["rows"])
    vals = [v for r in g["rows"] for v in r["values"]] + [x for r in g["rows"] for x in
                                                          (r["stats"].lo, r["stats"].hi, r["stats"].mean)
                                                          if x is not None]
    if "approx" in exp:
        lo, hi = exp["approx"] - exp.get("tol", 0), exp["approx"] + exp.get("tol", 0)
        ax.axvline(exp["approx"], color="#3a8a3a", lw=0.8, ls="--", zorder=1)
    elif "range" in exp:
        lo, hi = exp["range"]
    else:  # at_least
        lo = exp["at_least"]
        hi = max(vals + [lo]) + 1
        ax.axvline(lo, color="#3a8a3a", lw=0.8, ls="--", zorder=1)
    ax.axvspan(lo, hi, color=COLORS["seed"], alpha=0.6, lw=0, zorder=0)
    left, right = min(vals + [lo]), max(vals + [hi])
    pad = 0.06 * (right - left or 1)
    ax.set_xlim(left - pad, right + pad)
    ax.xaxis.set_major_locator(plt.MaxNLocator(4))


def _title(g: dict) -> str:
    """Three lines: the claim in words; the source's number and the set it is on; the as-published
    verdict (or why there is none)."""
    c = g["claim"]
    where = METRIC_WORDS.get(g["metric"], g["metric"])
    line2 = f"source: {_stated(c['expect'])}; {where} accuracy (%)"
    if g.get("verdict"):
        line3 = f"as published: {g['verdict']}"
    elif any(r["kind"] == "base" for r in g["rows"]):
        line3 = "protocol differs: no verdict"
    else:
        line3 = "not run as published"
    return f"{claim_title(c)}\n{line2}\n{line3}"


def _verdict(g: dict, fid: dict) -> str | None:
    """The scorecard's words for the as-published row, withheld where the port differs."""
    pub = next((r for r in g["rows"] if r["kind"] == "published"), None)
    if pub is None or pub.get("outcome") is None:
        return None
    j = judge(g["claim"]["expect"], pub["stats"])
    if fid.get(g["claim"]["id"]) == fidelity.DIFFERS:
        return f"withheld (port differs; ours: {j.outcome})"
    return j.text


# Layout in inches: a claim panel is its label column then its axes; two panels a row.
LABEL_W, AXES_W, GAP = 1.62, 1.36, 0.16
ROW_H, TITLE_H, TICKS_H, TOP_H = 0.165, 0.40, 0.22, 0.50
PAIR_LABEL_W, PAIR_AXES_W = 2.85, 2.25


def fig_forest(metrics: Path, claims_path: Path, originals_path: Path, out: Path) -> None:
    df = pd.read_csv(metrics, dtype={"labels": str})
    df = df[df["stage"].isin(["train", "pretrain"])] if "stage" in df else df
    claims = yaml.safe_load(Path(claims_path).read_text())["claims"]
    originals = fidelity.load(originals_path)
    groups = claim_groups(df, claims, originals)
    pairs = paired_rows(df, claims)
    if not groups and not pairs:  # FIGURE_NEEDS names methods, not budgets: say so rather than fail the build
        fig, ax = plt.subplots(figsize=(FIG_WIDTH, 1.0))
        ax.axis("off")
        ax.text(0.5, 0.5, "no run of this preset tests a source's claim at the claim's budget", ha="center",
                va="center", fontsize=FONT + 1)
        save(fig, out)
        return
    # the port's fidelity per claim, under the claim's own protocol (its preset)
    fid = {}
    for g in groups:
        c = g["claim"]
        preset = c["protocol"]["preset"]
        preset = preset[0] if isinstance(preset, list) else preset
        for f in fidelity.fidelity([c], df.assign(preset=str(preset)), originals):
            fid[f.claim] = f.status
        g["verdict"] = _verdict(g, fid)
    sns.set_theme(style="ticks")
    # heights (inches) of each row of panels: title, axes, tick labels
    ncol = 2
    bands = [groups[i:i + ncol] for i in range(0, len(groups), ncol)]
    axes_h = [max(len(g["rows"]) for g in band) * ROW_H + 0.12 for band in bands]
    pair_h = len(pairs) * ROW_H + 0.12 if pairs else 0
    pair_title = TITLE_H - 0.12 + (0.12 if any(r.get("mixed") for r in pairs) else 0)
    height = TOP_H + sum(TITLE_H + h + TICKS_H for h in axes_h) + (pair_title + pair_h + TICKS_H if pairs else 0)
    fig = plt.figure(figsize=(FIG_WIDTH, height))

    def box(x, y_top, w, h):  # inches from the top-left corner -> figure fraction
        return [x / FIG_WIDTH, 1 - (y_top + h) / height, w / FIG_WIDTH, h / height]

    y = TOP_H
    for band, h in zip(bands, axes_h):
        for k, g in enumerate(band):
            x0 = k * (LABEL_W + AXES_W + GAP)
            ax = fig.add_axes(box(x0 + LABEL_W, y + TITLE_H, AXES_W, h))
            _draw_claim(ax, g)
            fig.text(x0 / FIG_WIDTH, 1 - y / height, _title(g), ha="left", va="top", fontsize=FONT, linespacing=1.15)
        y += TITLE_H + h + TICKS_H
    if pairs:
        ax = fig.add_axes(box(PAIR_LABEL_W, y + pair_title, PAIR_AXES_W, pair_h))
        _draw_rows(ax, pairs)
        ax.axvline(0, color="black", lw=0.8)
        ax.xaxis.set_major_locator(plt.MaxNLocator(6))
        n = len(pairs)
        for i, r in enumerate(pairs):
            if r.get("stated") is not None:
                ax.plot([r["stated"]], [n - 1 - i], marker="*", ms=7, color="#3a8a3a", zorder=6)
            where = METRIC_WORDS.get(r.get("metric"), r.get("metric"))
            p = "" if r.get("p") is None else (f"p={r['p']:.2g}" if r["p"] >= 0.001 else "p<0.001")
            # a dagger: the two sides ran different code versions or CPUs (claims.pair_versions)
            text = (f"{p}, {where}" if p else where) + (" †" if r.get("mixed") else "")
            ax.text(1.02, n - 1 - i, text, transform=ax.get_yaxis_transform(), fontsize=FONT, va="center")
        fig.text(0, 1 - y / height, "Paired differences over seeds (same labeled images per seed), percentage "
                 "points, with the paired t-test's p and the set they are\nmeasured on; marker: the interval above 0, "
                 "below it or containing it"
                 + ("; star: the difference of the numbers the source states"
                    if any(r.get("stated") is not None for r in pairs) else "")
                 + ("\n†: the two sides' runs come from different code versions or CPU capabilities (metrics.csv)"
                    if any(r.get("mixed") for r in pairs) else ""),
                 ha="left", va="top", fontsize=FONT, linespacing=1.15)
    kinds = [("original", "source's own code"), ("published", "port as published"), ("quirk", "one quirk off"),
             ("corrected", "port corrected"), ("base", "registered method (protocol differs)")]
    handles = [plt.Line2D([], [], color=COLORS[k], lw=2, label=t) for k, t in kinds
               if any(r["kind"] == k for g in groups for r in g["rows"]) or any(r["kind"] == k for r in pairs)]
    handles.append(plt.Rectangle((0, 0), 1, 1, color=COLORS["seed"], label="what the source states"))
    outcomes = [(REPRODUCED, f"{REPRODUCED}: inside"), (NOT_REPRODUCED, f"{NOT_REPRODUCED}: clear of it"),
                (INCONCLUSIVE, f"{INCONCLUSIVE}: straddles its edge")]
    if any(r.get("outcome") is None for g in groups for r in g["rows"]) or any(r.get("outcome") is None for r in pairs):
        outcomes.append((None, "no verdict"))
    marks = []
    for o, words in outcomes:
        marker, filled = OUTCOME_MARKERS[o]
        marks.append(plt.Line2D([], [], ls="", marker=marker, ms=5, color="#333333", mfc="#333333" if filled else "white",
                                label=words))
    fig.legend(handles=handles, loc="upper left", ncol=len(handles), fontsize=FONT, frameon=False,
               bbox_to_anchor=(0, 1.0), handlelength=1.4, columnspacing=1.0, borderaxespad=0, borderpad=0)
    fig.legend(handles=marks, loc="upper left", ncol=len(marks), fontsize=FONT, frameon=False, handlelength=1.0,
               bbox_to_anchor=(0, 1 - 0.16 / height), columnspacing=1.0, borderaxespad=0, borderpad=0)
    fig.text(0, 1 - 0.30 / height, "Each row: mean, 95 % t interval (bar) and seeds (dots); (n): seeds; marker: the "
             "verdict rule on that interval", ha="left", va="top", fontsize=FONT)
    save(fig, out)


# ------------------------------------------------------------------------- learning curves

# What the seeds printed while training, cited by file:line of /work/shared/seeds (shared/seeds/).
# x: epochs completed (a seed's "Epoch e" is printed after e + 1 passes) or training steps (seed 001
# prints its iteration counter); y: accuracy in %. "level" is a statement without an epoch, drawn as
# a horizontal line from "from" on.
PRINTED = {
    # seed 002, "Epoch e, Test accuracy: a" every 10 epochs (002:184 prints it)
    "source04": {"cite": "002:268-270", "x": [1, 11, 21], "y": [95.8, 98.5, 98.3]},
    "transfer500": {"cite": "002:283-292", "x": [1, 11, 21, 31, 41, 51, 61, 71, 81, 91],
                    "y": [56.1, 78.4, 83.7, 83.2, 87.3, 84.7, 85.3, 83.9, 83.7, 85.1]},
    "scratch500": {"cite": "002:309-318", "x": [1, 11, 21, 31, 41, 51, 61, 71, 81, 91],
                   "y": [57.4, 68.4, 71.2, 70.1, 73.2, 70.6, 70.9, 71.7, 71.2, 72.3]},
    # seed 001, "i . Training Acc t	Test Acc a" every 200 iterations (001:317 prints it)
    "sgan900": {"cite": "001:333-352", "x": list(range(0, 4000, 200)),
                "y": [15.9, 63.12, 67.51, 67.51, 84.03, 81.04, 83.8, 79.19, 87.92, 84.46, 88.88, 86.51, 88.85,
                      88.35, 90.48, 83.66, 81.42, 90.0, 88.22, 86.08]},
    # seed 004: "after about 50 epochs ... the testing accuracy has saturated at 87%" (its plot is
    # validation accuracy, basic_nn_classifier.py)
    "baseline1000": {"cite": "004:77-78", "level": 87.0, "from": 50},
    # seed 004: "we crossed the 95% accuracy mark" (no epoch given)
    "aae1000": {"cite": "004:255", "level": 95.0, "from": 0},
}

# One panel per seed claim: (claim, the port's as-published run, its task and budget, the history
# column and x column, the original-code curve's stage (nb002's curve.csv), x and y columns, x offset).
CURVE_PANELS = [
    ("source04", "transfer-source-002-published", "digits04", "all", "test_accuracy", "epoch",
     "source04", "epoch", "test_accuracy", 1),
    ("transfer500", "transfer-002-published", "digits59", "500", "test_accuracy", "epoch",
     "transfer500", "epoch", "test_accuracy", 1),
    ("scratch500", "scratch-002-published", "digits59", "500", "test_accuracy", "epoch",
     "scratch500", "epoch", "test_accuracy", 1),
    ("sgan900", "sgan-001-published", "mnist10", "900", "test_accuracy", "step",
     None, "iteration", "test_accuracy", 0),
    ("baseline1000", "supervised-004-published", "mnist10", "1000", "val_accuracy", "epoch",
     None, "epoch", "validation_accuracy", 1),
    ("aae1000", "aae-004-published", "mnist10", "1000", "val_accuracy", "epoch",
     None, "epoch", "validation_accuracy", 1),
]
# Where a port epoch is not a source epoch: draw the port against the source's unit. Source 004's epoch is
# 10 batches (1,000 epochs = 10,000 steps); the port evaluates every 200 steps, so its x is step / 10.
PORT_STEPS_PER_SOURCE_EPOCH = {"baseline1000": 10, "aae1000": 10}
SEED_CURVE_RUNS = tuple(p[1] for p in CURVE_PANELS)  # the runs whose history.csv the figure reads


def original_curves(originals: list[dict], claim: str, stage: str | None, root: Path) -> list[pd.DataFrame]:
    """The seed's own code's per-seed curves of ``claim`` (paper/original_code/*/seed*/curve.csv)."""
    out = []
    for e in originals:
        if e.get("claim") != claim or not e.get("curves"):
            continue
        for path in e["curves"]:
            f = root / path
            if f.exists():
                df = pd.read_csv(f)
                out.append(df[df["stage"] == stage] if stage and "stage" in df else df)
        if out:
            break
    return out


def load_port_histories(histories: list[Path]) -> pd.DataFrame:
    """One row per (run, epoch) of the given history.csv files; which run each is comes from the
    metrics.json beside it (``run``), or from its path (results/runs/<task>/<method>/n<labels>/seed<s>,
    results/pretrain/<stage>/seed<s>) when that file is absent."""
    import json

    frames = []
    for h in map(Path, histories):
        meta_file = h.parent / "metrics.json"
        if meta_file.exists():
            run = json.loads(meta_file.read_text())["run"]
            method, labels, seed = run["method"], str(run.get("labels", "all")), run["seed"]
        else:
            parts = h.parent.parts
            seed = int(parts[-1].removeprefix("seed"))
            method, labels = (parts[-2], "all") if "pretrain" in parts else (parts[-3], parts[-2].removeprefix("n"))
        frames.append(pd.read_csv(h).assign(method=method, labels=labels, seed=seed))
    cols = ["method", "labels", "seed", "epoch", "step"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


TITLE_CHARS = 32  # characters of a panel title's line at FONT pt in a third of FIG_WIDTH


def cite_words(cite: str) -> str:
    """A PRINTED entry's "002:283-292" as the paper says it: "source 002, lines 283–292"."""
    n, _, where = cite.partition(":")
    return f"source {n}, line{'s' if '-' in where or ',' in where else ''} {where.replace('-', '–')}"


def panel_title(claim: str, claims: dict[str, dict]) -> str:
    """A panel's title: the claim in words (``claim_title``) and where the source printed its number."""
    import textwrap

    pr = PRINTED.get(claim)
    name = claim_title({k: v for k, v in claims[claim].items() if k != "source"}) if claim in claims else claim
    # wrapped to a third of the figure: a longer line ran past the figure's edge, and the tight
    # bounding box then made the page wider than the text (printed smaller than drawn)
    return textwrap.fill(name, TITLE_CHARS) + f"\n({cite_words(pr['cite']) if pr else 'no printed points'})"


def fig_seed_curves(originals_path: Path, histories: list[Path], out: Path, root: Path = Path("."),
                    claims_path: Path | None = None) -> None:
    """``claims_path``: paper/claims.yaml, whose claims name the panels (default: under ``root``;
    without it a panel is named by its claim's id)."""
    originals = fidelity.load(originals_path)
    claims_path = Path(claims_path) if claims_path else root / "paper" / "claims.yaml"
    claims = ({c["id"]: c for c in yaml.safe_load(claims_path.read_text())["claims"]}
              if claims_path.exists() else {})
    port = load_port_histories(histories)
    sns.set_theme(style="ticks")
    panels = [p for p in CURVE_PANELS
              if original_curves(originals, p[0], p[6], root) or (port["method"] == p[1]).any()]
    if not panels:
        raise ValueError("no curve of the seeds' own code and no as-published history to draw")
    ncol = 3 if len(panels) > 4 else 2
    nrow = -(-len(panels) // ncol)
    # drawn at the text width, so that it prints at the size drawn (FONT pt at least)
    fig, axes = plt.subplots(nrow, ncol, figsize=(FIG_WIDTH, 2.4 * nrow + 0.5), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (claim, method, _task, labels, hcol, hx, stage, ox, oy, off) in zip(axes.flat, panels):
        for k, df in enumerate(original_curves(originals, claim, stage, root)):
            ax.plot(df[ox] + off, 100 * df[oy], color=COLORS["original"], lw=0.7, alpha=0.45,
                    label="source's own code (per seed)" if k == 0 else None)
        runs = port[port["method"] == method]
        if labels != "all":  # a first stage's budget is whatever its run records
            runs = runs[runs["labels"].astype(str) == str(labels)]
        per = PORT_STEPS_PER_SOURCE_EPOCH.get(claim)
        for k, (_, g) in enumerate(runs.groupby("seed")):
            g = g.sort_values(hx)
            x = g["step"] / per if per and "step" in g else g[hx]
            ax.plot(x, 100 * g[hcol], color=COLORS["published"], lw=0.8, alpha=0.7,
                    label="port as published (per seed)" if k == 0 else None)
        pr = PRINTED.get(claim)
        if pr and "x" in pr:
            ax.plot(pr["x"], pr["y"], "x", color="black", ms=4.5, mew=1.2, label="printed by the source", zorder=5)
        elif pr:
            ax.axhline(pr["level"], xmin=0, color="black", lw=1, ls="--", label="stated by the source", zorder=5)
            if pr["from"]:
                ax.axvline(pr["from"], color="black", lw=0.6, ls=":")
        ax.set_title(panel_title(claim, claims), fontsize=FONT, loc="left", linespacing=1.15)
        ax.set_xlabel("training step" if hx == "step" else "epochs completed", fontsize=FONT)
        ax.set_ylabel(f"{METRIC_WORDS.get(hcol, hcol)} accuracy (%)", fontsize=FONT)
        ax.tick_params(labelsize=FONT)
        ax.grid(alpha=0.3)
        lo = [v for line in ax.get_lines() for v in np.asarray(line.get_ydata(), dtype=float).ravel()
              if np.isfinite(v)]
        if lo:  # the interesting part: from a little below the printed points (skip the first epochs)
            ref = (pr["y"][1:] if pr and "y" in pr else [pr["level"]] if pr else lo)
            ax.set_ylim(max(min(lo), min(ref) - 12), min(100, max(lo) + 1))
    handles, labels_ = {}, {}
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), loc="upper center", ncol=len(handles), fontsize=FONT,
               frameon=False, bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    save(fig, out)


def add_parser(sub) -> None:
    """Register ``forest`` (and ``seed-curves``) on the figures CLI."""
    f = sub.add_parser("forest", help="forest plot of the seed claims and the paired differences")
    f.add_argument("--metrics", required=True, type=Path)
    f.add_argument("--claims", required=True, type=Path)
    f.add_argument("--originals", required=True, type=Path)
    f.add_argument("--out", required=True, type=Path)
    f.set_defaults(run=lambda a: fig_forest(a.metrics, a.claims, a.originals, a.out))
    c = sub.add_parser("seed-curves", help="learning curves of the as-published variants against the seeds' prints")
    c.add_argument("--originals", required=True, type=Path)
    c.add_argument("--history", type=Path, nargs="*", default=[], help="history.csv of as-published runs")
    c.add_argument("--claims", type=Path, default=None, help="paper/claims.yaml (names the panels)")
    c.add_argument("--out", required=True, type=Path)
    c.set_defaults(run=lambda a: fig_seed_curves(a.originals, a.history, a.out, claims_path=a.claims))
