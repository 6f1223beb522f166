"""What bf16 costs in accuracy (issue 25, item 2): for every method trained in both precisions, the paired
difference of test accuracy bf16 - fp32 over the seeds (the same split and initialisation per seed), in
points, with its 95 % t-interval, and whether that interval lies within +-0.5 points (``MARGIN``): a preset
may use bf16 only for the methods where it does (``bf16_methods``).

Runs are told apart by the ``precision`` column of metrics.csv (what each run trained in, resolved) and
grouped by ``base_method``, task and budget, so a variant named ``aae-bf16`` pairs with ``aae``.
The table also gives the training time per step of each precision (the median over the seeds of
``train_s / steps``, as the runs measured it, on whatever load the machine had).

``python -m fewlabels.report.precision_cost --metrics results/metrics.csv [--markdown docs/speed.md]
[--tex paper/generated/tab_precision.tex]`` prints the table (and rewrites that page's block between
``<!-- precision-cost:begin -->`` and ``<!-- precision-cost:end -->``; the workflow makes the LaTeX table
for a preset whose grid trains a method in both precisions: ``grid_pairs``). Importing this module
imports neither torch nor pandas (the Snakefile calls ``grid_pairs`` while it parses).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..files import rewrite_marked_block

if TYPE_CHECKING:
    import pandas as pd

    from .claims import Paired, Stats

MARGIN = 0.5  # points of test accuracy bf16 may cost (or gain) for a preset to use it

WITHIN, OUTSIDE, UNDECIDED = "within", "outside", "not shown within"


@dataclass
class Cost:
    task: str
    method: str
    labels: str
    fp32: Stats
    bf16: Stats
    diff: Paired             # bf16 - fp32, points
    fp32_ms: float | None    # median training ms/step over the seeds
    bf16_ms: float | None

    @property
    def verdict(self) -> str:
        """WITHIN when the whole 95 % interval lies in [-MARGIN, +MARGIN]; OUTSIDE when it lies clear of
        that band; otherwise UNDECIDED (too few seeds, or too much spread, to say)."""
        d = self.diff
        if d.lo is None:
            return UNDECIDED
        if -MARGIN <= d.lo and d.hi <= MARGIN:
            return WITHIN
        if d.hi < -MARGIN or d.lo > MARGIN:
            return OUTSIDE
        return UNDECIDED


def seeds_needed(d: Paired, limit: int = 100) -> int | None:
    """Pairs that would put the interval within +-MARGIN if the mean and sd of the differences stayed
    as measured (the smallest n with |mean| + t(0.975, n-1) sd / sqrt(n) <= MARGIN); None when the mean
    itself is outside the band, there is no sd, or it takes more than ``limit``."""
    from .claims import t_quantile

    if d.sd is None or abs(d.mean) >= MARGIN:
        return None
    for n in range(2, limit + 1):
        if abs(d.mean) + t_quantile(0.975, n - 1) * d.sd / n ** 0.5 <= MARGIN:
            return n
    return None


def grid_pairs(config: dict) -> list[str]:
    """Methods the preset's grid trains both in fp32 and in bf16 (as asked: ``auto`` depends on the
    machine and counts as neither), by registered method, in grid order."""
    from ..config import resolve, runs

    seen: dict[str, set] = {}
    for r in runs(config):
        res = resolve(config, r["method"])
        seen.setdefault(res.method, set()).add(res.overrides.get("precision", "fp32"))
    return [m for m, ps in seen.items() if {"fp32", "bf16"} <= ps]


def _ms(df: pd.DataFrame) -> float | None:
    if "train_s" not in df or "steps" not in df or df.empty:
        return None
    return float((1000 * df["train_s"] / df["steps"]).median())


def costs(df: pd.DataFrame) -> list[Cost]:
    """One Cost per (task, base method, budget) that has runs in both precisions."""
    from .claims import Stats, paired

    if "precision" not in df:
        raise KeyError("metrics.csv has no precision column (aggregate it with this version of "
                       "fewlabels.report.aggregate)")
    out = []
    df = df.copy()
    df["labels"] = df["labels"].astype(str)
    for (task, method, labels), g in df.groupby(["task", "base_method", "labels"], sort=False):
        a, b = g[g["precision"] == "bf16"], g[g["precision"] == "fp32"]
        if a.empty or b.empty:
            continue
        for name, part in (("bf16", a), ("fp32", b)):
            if part["seed"].duplicated().any():
                raise ValueError(f"{task} {method} n{labels}: several {name} runs of one seed "
                                 f"({sorted(part['method'].unique())}); pair one variant per precision")
        out.append(Cost(task, method, labels, Stats.of(100 * b["test_accuracy"]), Stats.of(100 * a["test_accuracy"]),
                        paired(a, b, f"{method} bf16 - fp32"), _ms(b), _ms(a)))
    return out


def bf16_methods(cs: list[Cost]) -> list[str]:
    """Methods whose bf16 cost was shown to lie within +-MARGIN (at every budget measured)."""
    by = {}
    for c in cs:
        by.setdefault(c.method, []).append(c.verdict == WITHIN)
    return [m for m, ok in by.items() if all(ok)]


def _stats(s: Stats) -> str:
    return f"{s.mean:.2f} ± {s.sd:.2f}" if s.sd is not None else (f"{s.mean:.2f}" if s.n else "–")


def markdown(cs: list[Cost]) -> str:
    lines = ["| method | labels | seeds | fp32 test acc. (%) | bf16 test acc. (%) | bf16 − fp32, points [95 % CI] "
             f"| within ±{MARGIN} | seeds that would decide | fp32 ms/step | bf16 ms/step | fp32/bf16 |",
             "|---|---:|---:|---:|---:|---|---|---:|---:|---:|---:|"]
    for c in cs:
        d = c.diff
        ci = f"{d.mean:+.2f} [{d.lo:+.2f}, {d.hi:+.2f}]" if d.lo is not None else (f"{d.mean:+.2f}" if d.n else "–")
        speed = f"{c.fp32_ms / c.bf16_ms:.2f}x" if c.fp32_ms and c.bf16_ms else ""
        ms = [f"{x:.1f}" if x else "" for x in (c.fp32_ms, c.bf16_ms)]
        need = seeds_needed(d) if c.verdict == UNDECIDED else None
        lines.append(f"| {c.method} | {c.labels} | {d.n} | {_stats(c.fp32)} | {_stats(c.bf16)} | {ci} | {c.verdict} "
                     f"| {need or ''} | {ms[0]} | {ms[1]} | {speed} |")
    return "\n".join(lines)


def summary(cs: list[Cost]) -> str:
    ok = bf16_methods(cs)
    rest = [m for m in dict.fromkeys(c.method for c in cs) if m not in ok]
    return (f"bf16 within ±{MARGIN} points: {', '.join(ok) or 'none'}; "
            f"stays fp32: {', '.join(rest) or 'none'}")


def tex(cs: list[Cost]) -> str:
    """The table as a LaTeX tabular (booktabs) for the paper: ``--tex paper/generated/tab_precision.tex``."""
    eol = " \\\\"
    lines = ["\\begin{tabular}{lrrrrl}", "\\toprule",
             "method & labels & seeds & fp32 (\\%) & bf16 $-$ fp32, points [95\\,\\% CI] & within $\\pm$"
             f"{MARGIN}{eol}", "\\midrule"]
    for c in cs:
        d = c.diff
        ci = f"${d.mean:+.2f}$ [${d.lo:+.2f}$, ${d.hi:+.2f}$]" if d.lo is not None else "--"
        fp32 = _stats(c.fp32).replace("±", "$\\pm$")
        lines.append(f"\\texttt{{{c.method}}} & {c.labels} & {d.n} & {fp32} & {ci} & {c.verdict}{eol}")
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m fewlabels.report.precision_cost", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--metrics", required=True, type=Path)
    p.add_argument("--markdown", type=Path, default=None, help="rewrite this page's precision-cost block")
    p.add_argument("--tex", type=Path, default=None, help="also write the table as LaTeX here")
    args = p.parse_args(argv)
    import pandas as pd

    from ..data import atomic_write

    try:
        cs = costs(pd.read_csv(args.metrics))
    except (OSError, KeyError, ValueError) as e:
        sys.exit(f"error: {e}")
    if not cs:
        sys.exit(f"error: {args.metrics} has no method trained in both fp32 and bf16")
    body = f"{markdown(cs)}\n\n{summary(cs)}."
    print(body)
    if args.markdown:
        rewrite_marked_block(args.markdown, "precision-cost", body, "python -m fewlabels.report.precision_cost")
    if args.tex:
        args.tex.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(args.tex, lambda t: t.write_text(tex(cs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
