"""What every figure family shares: writing a figure (``save``), accuracy against label budget
(``accuracy_vs_labels``, ``training_runs``), MNIST's test images and image mosaics (``tiles``), and
the method order of ``report.common`` (one colour and order per method). The family modules import
this one; it imports none of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ...data import load_mnist  # noqa: E402
from ...files import atomic_write  # noqa: E402
from ..common import AE_METHODS, METHOD_ORDER, OWN_FIGURE, beyond_budget  # noqa: E402,F401 (the families' names)

if TYPE_CHECKING:
    import torch

# Printed sizes. ms.tex includes every figure of these modules at its natural size (scaled down
# only if wider than the text), so a figure drawn at most TEXT_WIDTH wide prints these font sizes.
TEXT_WIDTH = 6.4  # inches: the paper's text width (A4, 2.2 cm margins: 6.52 in) less a margin
FONT, SMALL = 8, 7  # points, as printed
RC = {"font.size": FONT, "axes.titlesize": FONT, "axes.labelsize": FONT, "xtick.labelsize": SMALL,
      "ytick.labelsize": SMALL, "legend.fontsize": SMALL, "legend.title_fontsize": SMALL,
      "figure.titlesize": FONT, "axes.titlelocation": "left"}


def training_runs(metrics: Path, task: str | None = None, full: bool = False) -> pd.DataFrame:
    """Training runs at a label budget (int ``labels``), or with ``full`` the runs with every pool
    label (``labels`` "all", the full-label reference)."""
    df = pd.read_csv(metrics, dtype={"labels": str})
    df = df[(df["stage"] == "train") & ((df["labels"] == "all") == full)].copy()
    if not full:
        df["labels"] = df["labels"].astype(int)
    df["accuracy (%)"] = 100 * df["test_accuracy"]
    return df[df["task"] == task] if task else df


def draw_ceilings(ax, full: pd.DataFrame, colors: dict) -> None:
    """Each method's mean accuracy with all pool labels as a dashed horizontal line."""
    for method, g in full.groupby("method", sort=False):
        acc = g["accuracy (%)"].mean()
        ax.axhline(acc, ls=(0, (4, 2)), lw=1, color=colors.get(method, "0.4"), label=f"{method}, all labels")


def save(fig, out: Path) -> None:
    """Write ``out`` (PDF) and the PNG beside it, each atomically."""
    out = Path(out)
    for path in (out, out.with_suffix(".png")):
        atomic_write(path, lambda tmp, p=path: fig.savefig(tmp, format=p.suffix[1:], dpi=150, bbox_inches="tight"))
    plt.close(fig)


def accuracy_vs_labels(df: pd.DataFrame, methods=None, title: str = "", ax=None, full: pd.DataFrame | None = None):
    """Test accuracy against label budget (log x), mean ± std over seeds, one line per method;
    ``full`` (runs with all labels) adds each method's dashed ceiling in the method's colour."""
    methods = [m for m in METHOD_ORDER if m in set(df["method"])] if methods is None else methods
    df = df[df["method"].isin(methods)]
    extra = [] if full is None else [m for m in METHOD_ORDER if m in set(full["method"]) and m not in methods]
    colors = dict(zip(methods + extra, sns.color_palette(n_colors=len(methods + extra))))
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.6, 3.0))
    # the markers and bars are the measurements; thin dotted lines join them only where three budgets or more
    # show a trend (two budgets joined by lines would draw a crossing between them that nothing measured)
    joined = df["labels"].nunique() >= 3
    sns.lineplot(data=df, x="labels", y="accuracy (%)", hue="method", hue_order=methods, style="method",
                 style_order=methods, markers=True, dashes=False, errorbar="sd", err_style="bars", ax=ax,
                 palette=[colors[m] for m in methods], linestyle=":" if joined else "", linewidth=1.0)
    if full is not None and len(full):
        draw_ceilings(ax, full, colors)
    # the legend beside the axes, where it hides no line; each entry drawn as its line is
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False,
                  handlelength=2.5, borderaxespad=0)
    ax.set_xscale("log")
    budgets = sorted(df["labels"].unique())
    ax.set_xticks(budgets, [str(b) for b in budgets])
    ax.minorticks_off()
    ax.set_xlabel("labeled images")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return fig or ax.figure


def mnist_test_images(mnist: Path) -> tuple[torch.Tensor, np.ndarray]:
    """MNIST's test images as float rows in [0, 1] (a torch tensor) and their labels."""
    import torch

    arrays = load_mnist(mnist)
    x = torch.from_numpy(arrays["x_test"].reshape(len(arrays["x_test"]), -1).astype(np.float32) / 255.0)
    return x, arrays["y_test"]


def tiles(ax, images: np.ndarray, title: str = "") -> None:
    """Draw a rows x cols x 28 x 28 array as one grey mosaic."""
    rows, cols = images.shape[:2]
    mosaic = images.transpose(0, 2, 1, 3).reshape(rows * 28, cols * 28)
    ax.imshow(mosaic, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
