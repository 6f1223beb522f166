"""The ``compare`` preset's validation curves: one small panel per method (a line per label budget, the
mean over seeds against the training step), with a marker where the convergence rule's judged stretch
starts on the mean curve (``report.convergence``: the last half of the last constant-rate stretch), filled
when the mean curve has stopped improving by the rule and open when it is still improving. Drawn at the paper's text width (6.5 in) with fonts of
at least 7 pt, so it prints unscaled.

``python -m fewlabels.report.figures compare-curves --metrics results/metrics.csv --out fig_compare.pdf``
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import FuncFormatter

import json

from .. import convergence as CV
from ..compare import drops_from_config, history_path, runs
from ...data import atomic_write
from .common import METHOD_ORDER

FIG_WIDTH = 6.5  # inches: paper/ms.tex's text width, included at \linewidth
FONT = 7         # points, the smallest text in the figure
NCOL = 4
ROW_H = 1.45     # inches per row of panels (axes, title, tick labels)
TASK_WORDS = {"mnist10": "MNIST", "digits59": "digits 5-9", "digits04": "digits 0-4"}
# Methods in words (no code names on the page)
METHOD_WORDS = {"supervised": "MLP on labels only", "linear": "softmax regression", "conv": "conv. classifier",
                "aae": "adversarial autoencoder", "aae-makhzani": "adv. autoencoder, paper's recipe", "sgan": "semi-supervised GAN", "sgan-fm": "feature-matching GAN",
                "siamese": "Siamese tower", "siamese-scratch": "Siamese tower, scratch",
                "ae": "autoencoder", "dae": "denoising autoencoder", "ae-scratch": "autoencoder net, scratch",
                "conv-ae": "conv. autoencoder", "conv-ae-scratch": "conv. autoencoder net, scratch",
                "vae": "variational autoencoder", "vae-scratch": "VAE encoder, scratch",
                "transfer": "transfer 0-4 to 5-9", "scratch": "5-9 net, scratch"}


def curves(df: pd.DataFrame, root: Path = Path(".")) -> pd.DataFrame:
    """One row per (run, evaluation): task, method, labels, seed, step, val (%); runs without a history
    are left out."""
    frames = []
    for _, r in runs(df).iterrows():
        h = history_path(r["path"], root)
        if not h.exists():
            continue
        hist = pd.read_csv(h)
        if "val_accuracy" not in hist or "step" not in hist:
            raise ValueError(f"{h}: a history needs step and val_accuracy columns (it has {list(hist.columns)})")
        frames.append(pd.DataFrame({"task": r["task"], "method": r["method"], "labels": r["labels"],
                                    "seed": r["seed"], "step": hist["step"], "val": 100 * hist["val_accuracy"]}))
    if not frames:
        raise ValueError("no run in the metrics has a history.csv beside its metrics.json")
    return pd.concat(frames, ignore_index=True)


def panels(c: pd.DataFrame) -> list[tuple[str, str]]:
    keys = set(zip(c["task"], c["method"]))
    tasks = [t for t in TASK_WORDS if t in {k[0] for k in keys}] + sorted({k[0] for k in keys} - set(TASK_WORDS))
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    return [k for t in tasks for k in sorted((k for k in keys if k[0] == t), key=lambda k: (order.get(k[1], 99), k[1]))]


def _budget(b) -> str:
    return "all labels" if b == "all" else f"{b:,} labels"


def draw(df: pd.DataFrame, root: Path = Path("."), drops: dict[str, list[int]] | None = None):
    """The figure (not saved); ``drops``: method -> epochs after which its learning rate dropped."""
    c = curves(df, root)
    keys = panels(c)
    nrow = -(-len(keys) // NCOL)
    legend_h = 0.45
    fig, axes = plt.subplots(nrow, NCOL, figsize=(FIG_WIDTH, nrow * ROW_H + legend_h), squeeze=False)
    budgets = sorted(set(c["labels"]), key=lambda b: (1, 0) if b == "all" else (0, b))
    colors = dict(zip(budgets, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for ax, (task, method) in zip(axes.flat, keys):
        g = c[(c["task"] == task) & (c["method"] == method)]
        for b in budgets:
            gb = g[g["labels"] == b]
            if gb.empty:
                continue
            mean = gb.groupby("step")["val"].mean()
            ax.plot(mean.index, mean.values, lw=1, color=colors[b])
            res = CV.convergence(pd.DataFrame({CV.COLUMN: mean.values / 100}), (drops or {}).get(method, ()))
            judged = res.before_drop if res.status == CV.IMPROVING_AT_DROP else res.end
            if judged is not None:
                i = judged.first - 1  # where the judged stretch starts
                ax.plot([mean.index[i]], [mean.values[i]], marker="o", ms=4, color=colors[b],
                        mfc=colors[b] if res.converged else "white", zorder=5)
        seeds = g["seed"].nunique()
        # two lines: a quarter of the text width holds about 30 characters at 7 pt
        ax.set_title(f"{METHOD_WORDS.get(method, method.replace('-', ' '))}\n{TASK_WORDS.get(task, task)}, "
                     f"{seeds} seed{'s' if seeds != 1 else ''}", fontsize=FONT, loc="left", linespacing=1.1)
        ax.tick_params(labelsize=FONT, length=2, pad=1.5)
        # steps in thousands ("10k"): five-digit labels crowd the next panel at this width
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:g}k" if v >= 1000 else f"{v:g}"))
        ax.xaxis.get_offset_text().set_fontsize(FONT)
        ax.yaxis.get_offset_text().set_fontsize(FONT)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(keys):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("validation accuracy (%)", fontsize=FONT)
    for i, ax in enumerate(axes.flat[:len(keys)]):  # the lowest panel of each column, a short last row included
        if i + NCOL >= len(keys):
            ax.set_xlabel("training step", fontsize=FONT)
    handles = [plt.Line2D([], [], color=colors[b], lw=1.2, label=_budget(b)) for b in budgets]
    handles += [plt.Line2D([], [], ls="", marker="o", ms=4, color="0.3", label="judged from here: stopped"),
                plt.Line2D([], [], ls="", marker="o", ms=4, color="0.3", mfc="white", label="still improving")]
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=FONT, frameon=False,
               bbox_to_anchor=(0.5, 1.0), handlelength=1.4, columnspacing=1.0)
    fig.tight_layout(rect=(0, 0, 1, 1 - legend_h / fig.get_figheight()), h_pad=0.6, w_pad=0.4)
    return fig


def fig_compare(metrics: Path, out: Path, root: Path = Path("."), config_json: str | None = None) -> None:
    df = pd.read_csv(metrics, dtype={"labels": str})
    drops = drops_from_config(json.loads(config_json), sorted(set(df["method"]))) if config_json else None
    fig = draw(df, root, drops)
    # saved at its own size (no tight bounding box), so the PDF is the text width and prints unscaled
    for path in (Path(out), Path(out).with_suffix(".png")):
        atomic_write(path, lambda tmp, p=path: fig.savefig(tmp, format=p.suffix[1:], dpi=150))
    plt.close(fig)


def add_parser(sub) -> None:
    """Register ``compare-curves`` on the figures CLI."""
    c = sub.add_parser("compare-curves", help="every method's validation curve and its convergence (compare preset)")
    c.add_argument("--metrics", required=True, type=Path)
    c.add_argument("--out", required=True, type=Path)
    c.add_argument("--root", type=Path, default=Path("."), help="where the metrics' paths start (default: here)")
    c.add_argument("--config-json", default=None,
                   help="the preset's configuration as JSON (the workflow's), for the runs' learning-rate drops")
    c.set_defaults(run=lambda a: fig_compare(a.metrics, a.out, a.root, a.config_json))
