"""The figures CLI, ``python -m fewlabels.report.figures <name> ...``: one subcommand per figure (or
set of figures), registered by its family module; every figure is written as PDF and PNG.
"""

from __future__ import annotations

import argparse

import torch

from . import aae, accuracy, ae, compare, gan, transfer, verdicts

FAMILIES = (accuracy, aae, transfer, gan, ae, verdicts, compare)  # each registers its subcommands (add_parser)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m fewlabels.report.figures", description=__doc__)
    sub = p.add_subparsers(dest="name", required=True)
    for family in FAMILIES:
        family.add_parser(sub)
    args = p.parse_args(argv)
    # A figure job is one of several at once (its rule has threads: 1): torch must not take every core.
    # Back to what it was afterwards, for a caller in the same process (a test).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        args.run(args)
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    main()
