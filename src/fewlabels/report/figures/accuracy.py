"""The headline figure: test accuracy against label budget on mnist10, for the methods that use no
labels beyond their budget (``python -m fewlabels.report.figures accuracy``).
"""

from __future__ import annotations

from pathlib import Path

import seaborn as sns

from .common import RC, AE_METHODS, METHOD_ORDER, accuracy_vs_labels, beyond_budget, save, training_runs


def fig_accuracy(metrics: Path, out: Path) -> None:
    """The headline figure: only methods that used no labels beyond the budget."""
    sns.set_theme(style="ticks", rc=RC)
    df, full = training_runs(metrics, "mnist10"), training_runs(metrics, "mnist10", full=True)
    df = df[~df["method"].isin(beyond_budget(df))]
    methods = [m for m in METHOD_ORDER if m in set(df["method"]) and m not in AE_METHODS]
    full = full[~full["method"].isin(AE_METHODS)]
    title = "MNIST, 10 classes: methods that use only the budget's\nlabels"
    if len(full):  # the dashed lines are drawn only where the grid has full-label runs
        title += " (dashed: all 55,000 pool labels)"
    save(accuracy_vs_labels(df, methods, title=title, full=full), out)


def add_parser(sub) -> None:
    """Register ``accuracy`` on the figures CLI."""
    a = sub.add_parser("accuracy", help="test accuracy vs label budget on mnist10")
    a.add_argument("--metrics", required=True, type=Path)
    a.add_argument("--out", required=True, type=Path)
    a.set_defaults(run=lambda args: fig_accuracy(args.metrics, args.out))
