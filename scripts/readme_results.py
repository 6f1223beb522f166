"""Write the results tables of README.md and docs/results.md from the committed archives (and docs/hparams.md from the code).

Numbers on the front page and the results page are read, never typed: this script computes them
from ``results/archive-seeds/metrics.csv`` (the ``seeds`` preset: the scorecard of the seeds'
claims, with the port-fidelity check of ``paper/original_code.yaml``) and ``results/archive/metrics.csv``
(the ``quick`` preset) and rewrites the blocks between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->``:

    README.md          results       the headline table (scorecard of the seeds preset, quick at a glance)
    docs/results.md    seeds-runs    every cell of the seeds archive
                       seeds-score   the seeds preset's full scorecard, with port fidelity
                       quick-runs    every cell of the quick archive
    docs/hparams.md    hparams       every method's defaults with the citation beside each key in its
                                     source (fewlabels.report.hparams, the paper's tables in Markdown)

    python scripts/readme_results.py           # rewrite the blocks
    python scripts/readme_results.py --check   # exit 1 when a block differs from what it would write
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from fewlabels.report import fidelity  # noqa: E402
from fewlabels.report.claims import NOT_RUN, Stats, Verdict, scorecard  # noqa: E402

SEEDS = ROOT / "results/archive-seeds/metrics.csv"
QUICK = ROOT / "results/archive/metrics.csv"
COMPARE = ROOT / "results/archive-compare/metrics.csv"
PUBLISHED = ROOT / "paper/published.yaml"
CLAIMS = ROOT / "paper/claims.yaml"
ORIGINALS = ROOT / "paper/original_code.yaml"


def plain(tex: str) -> str:
    """LaTeX of the scorecard's cells as Markdown text."""
    s = tex.replace("$\\approx$", "≈").replace("$\\pm$", "±").replace("$\\geq$", "≥").replace("$>$", ">")
    s = re.sub(r"\\hspace\{0pt\}\{\\scriptsize (.*?)\}", r"\1", s)
    s = s.replace("$\\Delta$", "Δ").replace("\\Delta", "Δ").replace("\\,", " ").replace("$", "").replace("--", "–")
    return s.replace("|", "\\|")


def load(path: Path, preset: str) -> pd.DataFrame:
    df = pd.read_csv(path, dtype={"labels": str})
    df["preset"] = df["preset"].fillna(preset).astype(str) if "preset" in df else preset
    return df


def seeds_verdicts() -> tuple[list[dict], list[Verdict], dict[str, fidelity.Fidelity]]:
    claims = yaml.safe_load(CLAIMS.read_text())["claims"]
    df = load(SEEDS, "seeds")
    verdicts = scorecard(claims, df, "seeds")
    fid = fidelity.fidelity(claims, df, fidelity.load(ORIGINALS))
    verdicts = fidelity.withhold(verdicts, fid)
    return claims, verdicts, {f.claim: f for f in fid}


def fid_cell(f: fidelity.Fidelity | None) -> str:
    if f is None:
        return "–"
    if f.diff is None:
        return f.status
    return f"{f.diff:+.1f} [{f.lo:+.1f}, {f.hi:+.1f}]: {fidelity.status_text(f, digits=1)}"


def measured_on(claim: dict, runs: str, variants: dict) -> str:
    """The set a claim's number was measured on, from the claim's metric and the variant's data split
    (the archive's config), so the README says it per row and stays true when a cell is re-run."""
    metric = claim.get("metric", "test_accuracy")
    if metric == "pair_accuracy":
        return "10,000 test pairs"
    if metric != "val_accuracy":
        return "test"
    name = (claim.get("run") or {}).get("method") or runs.split(": ", 1)[-1].strip()
    split = ((variants.get(name) or {}).get("hparams") or {}).get("data_split")
    if split == "tf1":
        return "validation: TF1's (training images 0-4,999), as the source"
    if split:
        return f"validation ({split} split, as the source)"
    return "validation: the protocol's 5,000 (not the source's)"


def headline() -> str:
    """README: the seeds preset's claims that ran under their own protocol, and the quick preset at a glance."""
    claims, verdicts, fid = seeds_verdicts()
    text = {c["id"]: c["claim"] for c in claims}
    by_id = {c["id"]: c for c in claims}
    variants = (yaml.safe_load((SEEDS.parent / "config.yaml").read_text()) or {}).get("variants") or {}
    rows = ["| claim (source's words) | source's number | ours, as published: mean ± sd [95 % CI] (seeds) "
            "| measured on | port − source's own code | verdict |", "|---|---|---|---|---|---|"]
    not_run = []
    for v in verdicts:
        if v.verdict == NOT_RUN:
            not_run.append(v.id)
            continue
        if v.verdict.startswith("reference"):
            continue  # a published paper's number, tested by the paper preset (not run)
        source = re.sub(r"^seed (\d{3})", r"source \1", v.source.split(' (')[0])
        rows.append(f"| {source}: {plain(text[v.id])} | {plain(v.expected)} | {plain(v.ours)} "
                    f"| {measured_on(by_id[v.id], v.runs, variants)} | {fid_cell(fid.get(v.id))} "
                    f"| **{plain(v.verdict)}** |")
    out = ["Each source's claims under its own protocol, as published (`results/archive-seeds/`, the `seeds` "
           "preset; accuracies in %, on the set named in each row; Δ: paired difference):", "", *rows]
    if not_run:
        out += ["", "Not in the archive yet: " + ", ".join(f"`{c}`" for c in not_run) + "."]
    if COMPARE.exists():
        out += ["", compare_glance()]
    else:
        out += ["", "Every method on the shared protocol with 1–10 % of each published schedule and 2 seeds (`results/archive/`, the `quick` preset, a check that everything builds, not a comparison; "
                "test accuracy in %, mean ± sd over its seeds):", "", quick_glance()]
    return "\n".join(out)


# the convergence rule's verdicts of runs that did not stop improving, in the README's narrow column
SHORT = {"still improving": "improving", "still improving at its drop": "rising at its drop",
         "too few evaluations": "too short to judge"}

# a task other than MNIST's 10 digits, as the compare table marks its rows
TASK_WORDS = {"digits59": "digits 5–9", "digits04": "digits 0–4"}


def compare_glance() -> str:
    """README: the compare archive's cells (every method on the shared protocol, trained until validation
    stops improving where the runs allowed), each with the convergence rule's verdicts and its paper's number at
    the same budget; the preset's methods not in the archive yet are named."""
    from fewlabels.report import compare as C

    df = load(COMPARE, "compare")
    # the archive holds each run's history.csv under its own folder (results/ stripped)
    df["path"] = [str(COMPARE.parent / str(p).removeprefix("results/")) for p in df["path"]]
    rows = C.compare(df, C.load_published(PUBLISHED).entries)
    config = yaml.safe_load((ROOT / "presets/compare.yaml").read_text())
    drops = C.drops_from_config(yaml.safe_load((COMPARE.parent / "config.yaml").read_text()), sorted(set(df["method"])))
    verdicts = {(m.task, m.method, m.labels): m for m in C.verdict_by_cell(C.verdict_runs(df, drops=drops))}
    seeds = len(config["seeds"])
    table = ["| method | labels | ours: test accuracy, mean ± sd | stopped improving / runs "
             "| published at this budget | ours − published |", "|---|---:|---|---|---|---:|"]
    unverified = other = False
    gpu_names: set[str] = set()
    for r in rows:
        o, m = r.ours, verdicts[(r.ours.task, r.ours.method, r.ours.labels)]
        ours = f"{o.mean:.2f}" + (f" ± {o.sd:.2f}" if o.sd is not None else "") + (f" ({o.n} seeds)" if o.n != seeds else "")
        ours += " (GPU)" if o.gpus else ""
        gpu_names.update(o.gpus)
        paper = "–"
        if r.paper is not None and r.paper.accuracy is not None:
            paper = f"{r.paper.accuracy:.2f}" + ("" if r.paper.verified else "*") + f" ({r.paper.short or r.paper.text}"
            if not r.paper.same_model:  # the closest published number, not our method's paper: no gap
                paper += "; different setup"
            paper += ")"
            unverified |= not r.paper.verified
            other |= not r.paper.same_model
        gap = "–" if r.gap is None else f"{r.gap:+.1f}".replace("-", "−")
        method = o.method + ("" if o.task == "mnist10" else f" ({TASK_WORDS.get(o.task, o.task)})")
        others = ", ".join(f"{v} {SHORT.get(k, k)}" for k, v in sorted(m.counts.items()) if k not in C.CV.STOPPED)
        table.append(f"| {method} | {o.labels} | {ours} | {m.converged}/{m.n}{f' ({others})' if others else ''} "
                     f"| {plain(paper)} | {gap} |")
    notes = (["*: not yet checked in a stored copy of the paper (paper/published.yaml says why)."] if unverified else []) + (
        ["Different setup: another model, protocol or length (no gap)."] if other else []) + (
        [f"GPU: trained on an {' / '.join(sorted(gpu_names))} (each budget's seeds stacked); every other "
         "cell on a 2-core CPU."] if gpu_names else [])
    wanted = [m for g in config["grid"] for m in g["methods"]]
    have = set(df["method"])
    missing = [m for m in wanted if m not in have]
    head = ("Every method on one shared protocol, trained until validation stops improving (`results/archive-compare/`, "
            f"the `compare` preset: {seeds} seeds unless marked; test accuracy in %; MNIST unless marked; "
            "stopped improving: by the [convergence rule](docs/scorecard.md#convergence)):")
    out = [head, "", *table] + (["", " ".join(notes)] if notes else [])
    quick_seeds = len(yaml.safe_load((ROOT / "presets/quick.yaml").read_text())["seeds"])
    out += ["", ("Not in the archive yet: " + ", ".join(f"`{m}`" for m in missing) + ". " if missing else "")
            + f"The `quick` preset's table ({quick_seeds} seeds, 1–10 % of each published schedule: a check that every figure "
            "builds, not a comparison) is in [docs/results.md](docs/results.md#the-quick-preset)."]
    return "\n".join(out)


def quick_glance() -> str:
    """Methods × (smaller, larger budget) of the quick archive's second-stage runs."""
    df = load(QUICK, "quick")
    df = df[(df["labels"] != "all") & (df.get("stage", "train") != "pretrain")]
    rows = ["| task | method | fewer labels | more labels |", "|---|---|---:|---:|"]
    for (task, method), g in df.groupby(["task", "method"], sort=False):
        cells = []
        for labels in sorted(g["labels"].unique(), key=int):
            s = Stats.of(100 * g[g["labels"] == labels]["test_accuracy"])
            cells.append(f"{s.mean:.1f}" + (f" ± {s.sd:.1f}" if s.n > 1 else "") + f" ({labels})")
        rows.append(f"| {task} | {method} | " + " | ".join(cells[:2]) + " |")
    return "\n".join(rows)


def runs_table(df: pd.DataFrame) -> str:
    rows = ["| task | method | labels | seeds | test accuracy (%) | validation (%) | wall per run (s) |",
            "|---|---|---:|---:|---:|---:|---:|"]
    for (task, method, labels), g in df.groupby(["task", "method", "labels"], sort=False):
        t, v = Stats.of((100 * g["test_accuracy"]).tolist()), Stats.of((100 * g["val_accuracy"]).tolist())

        def fmt(s: Stats) -> str:
            return "–" if not s.n else f"{s.mean:.2f}" + (f" ± {s.sd:.2f}" if s.n > 1 else "")
        rows.append(f"| {task} | {method} | {labels} | {t.n} | {fmt(t)} | {fmt(v)} | {g['wall_s'].mean():.0f} |")
    return "\n".join(rows)


def seeds_score() -> str:
    _, verdicts, fid = seeds_verdicts()
    rows = ["| claim | labels | runs | expected | ours | port − source's own code [95 % CI] | verdict |",
            "|---|---|---|---|---|---|---|"]
    for v in verdicts:
        rows.append(f"| {v.id} | {v.labels} | {plain(v.runs)} | {plain(v.expected)} | {plain(v.ours)} "
                    f"| {fid_cell(fid.get(v.id))} | {plain(v.verdict)} |")
    return "\n".join(rows)


def hparams() -> str:
    from fewlabels.report.hparams import METHODS, PRETRAIN, markdown

    return markdown([*METHODS, *PRETRAIN]).rstrip("\n")


BLOCKS = {
    ROOT / "README.md": {"results": headline},
    ROOT / "docs/results.md": {"seeds-runs": lambda: runs_table(load(SEEDS, "seeds")),
                               "seeds-score": seeds_score,
                               "quick-runs": lambda: runs_table(load(QUICK, "quick"))},
    ROOT / "docs/hparams.md": {"hparams": hparams},
}


def rewrite(text: str, name: str, body: str) -> str:
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    if text.count(begin) != 1 or text.count(end) != 1:
        raise SystemExit(f"error: expected one {begin} and one {end}")
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    return f"{head}{begin}\n<!-- written by scripts/readme_results.py from the archives: do not edit -->\n{body}\n{end}{tail}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="exit 1 when a block differs from what it would write")
    a = p.parse_args(argv)
    stale = []
    for path, blocks in BLOCKS.items():
        old = path.read_text()
        new = old
        for name, make in blocks.items():
            new = rewrite(new, name, make())
        if new != old:
            stale.append(path.relative_to(ROOT))
            if not a.check:
                path.write_text(new)
    if a.check and stale:
        print("out of date with the archives: " + ", ".join(map(str, stale))
              + " (run python scripts/readme_results.py)", file=sys.stderr)
        return 1
    if not a.check:
        print("rewrote " + (", ".join(map(str, stale)) if stale else "nothing (up to date)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
