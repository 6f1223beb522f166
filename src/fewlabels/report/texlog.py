"""Read a LaTeX log: the boxes TeX could not fit (``Overfull \\hbox (12.3pt too wide)``) and the
numbers the text asked for that the preset did not make (``fewlabels warning: number ... undefined``).

``python -m fewlabels.report.texlog paper/ms.log --max-pt 10`` lists them and exits 1 when a box is
wider (or taller) than the limit or a number is undefined; the tests read the smoke build's log
with the same functions.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

OVERFULL = re.compile(r"^Overfull \\([hv])box \((\d+(?:\.\d+)?)pt too (wide|high)\)(.*)$", re.M)
UNDEFINED = re.compile(r"fewlabels warning: number (\S+) undefined")


@dataclass
class Box:
    kind: str        # "hbox" (too wide) or "vbox" (too high)
    pt: float        # by how much
    where: str       # the rest of TeX's line ("in paragraph at lines 1--23", "has occurred while \output is active")
    context: str     # the log's next line: what was typeset there


def overfull_boxes(log: str) -> list[Box]:
    """Every overfull box of a LaTeX log, in order (TeX wraps log lines at 79 characters; a box's
    line is short enough not to be wrapped)."""
    out = []
    for m in OVERFULL.finditer(log):
        rest = log[m.end():].lstrip("\n").split("\n", 1)[0]
        out.append(Box(m.group(1) + "box", float(m.group(2)), m.group(4).strip(), rest.strip()))
    return out


def too_large(log: str, max_pt: float = 10.0) -> list[Box]:
    """The overfull boxes (wide or high) beyond ``max_pt`` points."""
    return [b for b in overfull_boxes(log) if b.pt > max_pt]


def undefined_numbers(log: str) -> list[str]:
    """The ``\\fl{key}`` numbers the text typeset although the preset did not define them."""
    return UNDEFINED.findall(log.replace("\n", ""))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m fewlabels.report.texlog", description=__doc__)
    p.add_argument("log", type=Path)
    p.add_argument("--max-pt", type=float, default=10.0)
    args = p.parse_args(argv)
    log = args.log.read_text(errors="replace")
    boxes, missing = overfull_boxes(log), undefined_numbers(log)
    for b in boxes:
        print(f"overfull {b.kind} {b.pt:.1f} pt {b.where}: {b.context[:60]}")
    for key in missing:
        print(f"undefined number: {key}")
    bad = [b for b in boxes if b.pt > args.max_pt]
    if bad or missing:
        sys.exit(f"{args.log}: {len(bad)} overfull box(es) over {args.max_pt:g} pt, {len(missing)} undefined number(s)")


if __name__ == "__main__":
    main()
