"""The ``compare`` preset against the published numbers.

From ``metrics.csv`` (one row per run) and ``paper/published.yaml`` (each paper's number per method,
task and budget, with its source and table): ``tab_compare.tex``, our accuracy (mean ± sd, seeds and
the 95 % t-interval of the mean) beside the published number at the same budget, its citation and the
gap in points, with what the public reimplementations report; ``tab_convergence.tex``, the convergence
rule (``report.convergence``) on each run's ``history.csv`` per method and budget (runs that stopped
improving / runs); a table of the methods that stay below their paper after stopping and what was tried;
the status paragraph (runs still improving and what more training would cost; pairs of unequal length);
``macros_compare.tex`` (``\\fl{cmp/...}``) and ``abstract_compare.tex``, the abstract's sentence.

No figure here (``report.figures.compare`` draws the validation curves), so no matplotlib.

``python -m fewlabels.report.compare --metrics results/metrics.csv --published paper/published.yaml
--out-dir paper/generated``
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from ..data import atomic_write
from . import convergence as CV
from .claims import fmt_p, t_quantile
from .common import METHOD_ORDER
from .latex import fit, macro, styled, tex_escape

KINDS = ("paper", "source", "reimplementation")
TASK_ORDER = ("mnist10", "digits59", "digits04")
NO_HISTORY = "no history"


class PublishedError(ValueError):
    """paper/published.yaml has an entry that cannot be compared (says which and why)."""


def budget(value, where: str = "") -> int | str:
    """A label budget as the workflow writes it: a positive multiple of 10 (classes are balanced), or "all"."""
    if isinstance(value, str) and value.strip() == "all":
        return "all"
    try:
        b = int(str(value).strip())
    except ValueError:
        raise PublishedError(f"{where}labels {value!r} is not a number of labels or 'all'") from None
    if str(b) != str(value).strip() or b <= 0 or b % 10:
        raise PublishedError(f"{where}labels {value!r} is not a positive multiple of 10 (balanced classes) or 'all'")
    return b


@dataclass
class Published:
    method: str
    task: str
    labels: int | str
    accuracy: float | None   # test accuracy, %; None: the source gives no number we could read
    std: float | None
    source: str              # the key in `sources`
    kind: str                # KINDS
    relation: str
    verified: bool
    why: str                 # `checked` when verified, else `reason`
    text: str                # the source in words, with its table
    cite: str | None         # BibTeX key
    repository: str | None = None
    same_model: bool = True  # False: not like for like (another model, protocol or length; no gap)
    short: str | None = None # the name in the compare table's narrow column (`text` in the note under it)


@dataclass
class PublishedFile:
    entries: list[Published]
    tried: dict[str, str] = field(default_factory=dict)


def load_published(path: Path) -> PublishedFile:
    """Read and check paper/published.yaml: every entry names a known source, a kind, a budget, and says
    whether its number was verified (and why not)."""
    doc = yaml.safe_load(Path(path).read_text()) or {}
    sources = doc.get("sources") or {}
    out = []
    for i, e in enumerate(doc.get("entries") or []):
        where = f"{path}: entry {i + 1} ({e.get('method')}, {e.get('task')}, {e.get('labels')}): "
        missing = {"method", "task", "labels", "accuracy", "source", "kind", "verified"} - set(e)
        if missing:
            raise PublishedError(where + f"missing key(s) {sorted(missing)}")
        if e["source"] not in sources:
            raise PublishedError(where + f"source {e['source']!r} is not one of sources: {sorted(sources)}")
        if e["kind"] not in KINDS:
            raise PublishedError(where + f"kind {e['kind']!r} is not one of {KINDS}")
        acc = e["accuracy"]
        if acc is not None and not (isinstance(acc, (int, float)) and 0 <= acc <= 100):
            raise PublishedError(where + f"accuracy {acc!r} is not a percentage in [0, 100] (or null)")
        if not isinstance(e["verified"], bool):
            raise PublishedError(where + "verified must be true or false")
        if not isinstance(e.get("same_model", True), bool):
            raise PublishedError(where + "same_model must be true or false (false: not our method's model)")
        why = e.get("checked") if e["verified"] else e.get("reason")
        if not why:
            raise PublishedError(where + ("a verified number says where it was read (checked)" if e["verified"]
                                          else "an unverified number says why (reason)"))
        s = sources[e["source"]]
        out.append(Published(e["method"], e["task"], budget(e["labels"], where), None if acc is None else float(acc),
                             None if e.get("std") is None else float(e["std"]), e["source"], e["kind"],
                             str(e.get("relation", "")), e["verified"], " ".join(str(why).split()), s["text"],
                             s.get("cite"), s.get("repository"), e.get("same_model", True), s.get("short")))
    return PublishedFile(out, dict(doc.get("tried") or {}))


# ------------------------------------------------------------------------------ ours

@dataclass
class Ours:
    task: str
    method: str
    labels: int | str
    mean: float      # test accuracy, %
    sd: float | None
    n: int
    lo: float | None  # 95 % t-interval of the mean
    hi: float | None
    gpus: tuple[str, ...] = ()  # the GPUs its runs trained on (metrics.csv's device "cuda"); () on the CPU alone


def runs(df: pd.DataFrame, first_stages: bool = False) -> pd.DataFrame:
    """Training runs (the rows a table compares; with ``first_stages``, the first stages too), labels as budgets."""
    if "stage" in df and not first_stages:
        df = df[df["stage"] == "train"]
    return df.assign(labels=[budget(b, "metrics.csv: ") for b in df["labels"]])


def gpus(g: pd.DataFrame) -> tuple[str, ...]:
    """The GPUs a cell's runs trained on (their ``device_name`` where ``device`` is cuda), sorted."""
    if "device" not in g:
        return ()
    on = g[g["device"].astype(str) == "cuda"]
    if on.empty:
        return ()
    return tuple(sorted({str(n) for n in on["device_name"]})) if "device_name" in on else ("a GPU",)


def ours(df: pd.DataFrame) -> list[Ours]:
    out = []
    for (task, method, labels), g in runs(df).groupby(["task", "method", "labels"], sort=False):
        acc = 100 * g["test_accuracy"].astype(float)
        n = len(acc)
        mean = float(acc.mean())
        if n >= 2:
            sd = float(acc.std())
            half = t_quantile(0.975, n - 1) * sd / math.sqrt(n)
            # cut at 0 and 100 %, the range an accuracy can take (as the other tables do)
            out.append(Ours(task, method, labels, mean, sd, n, max(0.0, mean - half), min(100.0, mean + half), gpus(g)))
        else:
            out.append(Ours(task, method, labels, mean, None, n, None, None, gpus(g)))
    return sorted(out, key=order)


def order(o) -> tuple:
    """Tables' order: by task, method (the registry's order; first stages after the methods) and budget."""
    t = TASK_ORDER.index(o.task) if o.task in TASK_ORDER else len(TASK_ORDER)
    m = METHOD_ORDER.index(o.method) if o.method in METHOD_ORDER else len(METHOD_ORDER)
    return (t, o.task, m, o.method, (1, 0) if o.labels == "all" else (0, o.labels))


# ------------------------------------------------------------------------------ comparison

@dataclass
class Row:
    ours: Ours
    paper: Published | None          # the method's paper (or the closest published model) at this budget
    sources: list[Published]         # the source documents' own numbers at this budget
    reimpl: list[Published]          # public reimplementations at this budget

    @property
    def gap(self) -> float | None:
        """Ours minus the paper's number, in points (None without a paper number, or where the paper's model
        is not ours: a gap to a different model measures nothing about the replication)."""
        if self.paper is None or self.paper.accuracy is None or not self.paper.same_model:
            return None
        return self.ours.mean - self.paper.accuracy


def compare(df: pd.DataFrame, published: list[Published]) -> list[Row]:
    """One row per (task, method, budget) we ran, with the published numbers at the same budget."""
    rows = []
    for o in ours(df):
        at = [p for p in published if (p.task, p.method, p.labels) == (o.task, o.method, o.labels)]
        papers = [p for p in at if p.kind == "paper"]
        rows.append(Row(o, papers[0] if papers else None, [p for p in at if p.kind == "source"],
                        [p for p in at if p.kind == "reimplementation"]))
    return rows


def other_budgets(df: pd.DataFrame, published: list[Published]) -> list[Published]:
    """Published numbers of methods we ran, at budgets we did not run (listed, not compared)."""
    r = runs(df)
    ran = set(zip(r["task"], r["method"], r["labels"]))
    methods = set(zip(r["task"], r["method"]))
    return [p for p in published if (p.task, p.method) in methods and (p.task, p.method, p.labels) not in ran
            and p.accuracy is not None]


# ------------------------------------------------------------------------------ convergence

@dataclass
class RunVerdict:
    task: str
    method: str
    labels: int | str
    seed: int
    history: Path
    status: str                  # the convergence rule's verdict, or NO_HISTORY
    result: CV.Convergence | None
    steps: int | None = None     # training steps (metrics.csv)
    train_s: float | None = None  # training time, seconds
    gpu: bool = False            # trained on a GPU
    first_stage: bool = False    # a first stage (metrics.csv's stage "pretrain")


def history_path(metrics_json: str, root: Path) -> Path:
    p = Path(str(metrics_json))
    return (p if p.is_absolute() else Path(root) / p).with_name("history.csv")


def _num(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def verdict_runs(df: pd.DataFrame, root: Path = Path("."), drops: dict[str, list[int]] | None = None) -> list[RunVerdict]:
    """The convergence rule on each run's history.csv (beside its metrics.json, the table's ``path``), first stages
    included (they are judged too: a head starts from what its first stage learned); ``drops``: method name ->
    the epochs after which its learning rate dropped (``CV.drops_of`` of its hyperparameters)."""
    drops = drops or {}
    out = []
    for _, r in runs(df, first_stages=True).iterrows():
        h = history_path(r["path"], root)
        extra = {"steps": None if _num(r.get("steps")) is None else int(_num(r.get("steps"))),
                 "train_s": _num(r.get("train_s")), "gpu": str(r.get("device", "")) == "cuda",
                 "first_stage": str(r.get("stage", "")) == "pretrain"}
        if not h.exists():
            out.append(RunVerdict(r["task"], r["method"], r["labels"], int(r["seed"]), h, NO_HISTORY, None, **extra))
            continue
        try:
            res = CV.convergence(pd.read_csv(h), drops.get(r["method"], ()))
        except (KeyError, ValueError) as e:  # a history the trainer did not write: say which
            raise ValueError(f"{h}: {e}") from None
        out.append(RunVerdict(r["task"], r["method"], r["labels"], int(r["seed"]), h, res.status, res, **extra))
    return out


@dataclass
class CellVerdict:
    task: str
    method: str
    labels: int | str
    n: int
    converged: int              # runs that stopped improving (converged or past their best)
    counts: dict[str, int]      # verdict -> runs
    rise: float | None          # mean over runs of the rise that decided each verdict, points
    evaluations: int            # fewest evaluations of any run with a history
    steps: int | None = None    # training steps of its runs (the largest, should they differ)
    hours: float | None = None  # training hours of its runs, summed
    gpu: bool = False           # some of its runs trained on a GPU
    first_stage: bool = False   # a first stage's runs

    @property
    def all_converged(self) -> bool:
        return self.n > 0 and self.converged == self.n

    @property
    def improving(self) -> int:
        return sum(v for k, v in self.counts.items() if k in (CV.IMPROVING, CV.IMPROVING_AT_DROP))


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def verdict_by_cell(rv: list[RunVerdict]) -> list[CellVerdict]:
    groups: dict[tuple, list[RunVerdict]] = {}
    for r in rv:
        groups.setdefault((r.task, r.method, r.labels), []).append(r)
    out = []
    for (task, method, labels), g in groups.items():
        counts: dict[str, int] = {}
        for r in g:
            counts[r.status] = counts.get(r.status, 0) + 1
        rises = [r.result.rise for r in g if r.result is not None and r.result.rise is not None]
        evals = [r.result.n_evals for r in g if r.result is not None]
        steps = [r.steps for r in g if r.steps is not None]
        secs = [r.train_s for r in g if r.train_s is not None]
        out.append(CellVerdict(task, method, labels, len(g), sum(counts.get(k, 0) for k in CV.STOPPED), counts,
                               mean(rises), min(evals) if evals else 0, max(steps) if steps else None,
                               sum(secs) / 3600 if secs else None, any(r.gpu for r in g),
                               any(r.first_stage for r in g)))
    return sorted(out, key=order)


def drops_from_config(config: dict, names) -> dict[str, list[int]]:
    """Method name -> the epochs after which its runs' learning rate dropped, from the preset's configuration
    (its overrides over the method's defaults)."""
    from ..config import resolve
    from ..methods import get
    from ..methods.base import resolve_hparams
    out = {}
    for name in names:
        try:
            r = resolve(config, name)
        except ValueError:
            continue
        out[name] = CV.drops_of(resolve_hparams(get(r.method), r.overrides))
    return out


# ------------------------------------------------------------------------------ LaTeX

def _acc(v: float | None, std: float | None = None) -> str:
    if v is None:
        return "--"
    return f"{v:.2f}" + ("" if std is None else f" $\\pm$ {std:.2f}")


ON_GPU = r"$^{\mathrm{G}}$"


def ours_cell(o: Ours, seeds: int | None = None) -> str:
    """Mean, sd and interval; the number of seeds too unless it is ``seeds``, the one the header names."""
    mark = ON_GPU if o.gpus else ""
    if o.n < 2:
        return f"{o.mean:.2f}{mark} (1 seed)"
    n = "" if o.n == seeds else f", {o.n}"
    return f"{o.mean:.2f}{mark} $\\pm$ {o.sd:.2f}{n} {{\\scriptsize[{o.lo:.1f}, {o.hi:.1f}]}}"


# a task other than MNIST's 10 digits: its mark after the method's name in the compare tables, and its words
TASK_SHORT = {"digits59": ("5--9", "digits 5--9, the transfer target"),
              "digits04": ("0--4", "digits 0--4, the transfer source")}


def method_cell(task: str, method: str) -> str:
    """A method's name in the compare tables, its task after it unless it is MNIST's 10 digits."""
    if task == "mnist10":
        return tex_escape(method)
    return f"{tex_escape(method)} ({TASK_SHORT[task][0] if task in TASK_SHORT else tex_escape(task)})"


def task_note(tasks) -> str:
    """The sentence under a compare table that says what its tasks' marks mean ('' when every row is MNIST's)."""
    marked = [t for t in TASK_SHORT if t in set(tasks)]
    if not marked:
        return ""
    return " " + "; ".join(f"({TASK_SHORT[t][0]}): {TASK_SHORT[t][1]}" for t in marked) + \
        "; every other row is MNIST's 10 digits."


def breakable(s: str) -> str:
    """Text escaped for LaTeX that may break after a slash or an underscore (repository and file names in a
    narrow column)."""
    return tex_escape(s).replace("/", "/\\allowbreak{}").replace(r"\_", r"\_\allowbreak{}")


def where_trained(rows) -> str:
    """In words, which cells trained on a GPU (the others on the CPU); '' when none did."""
    on = {}
    for o in rows:
        for name in o.gpus:
            on.setdefault(name, []).append(o.method)
    if not on:
        return ""
    return "; ".join(f"{', '.join(dict.fromkeys(tex_escape(m) for m in ms))} on an {tex_escape(name)}"
                     for name, ms in on.items())


def cite(p: Published) -> str:
    """The source in words; \\citet for a paper with a BibTeX key, the table after it."""
    if p.cite:
        table = p.text.split(",", 1)[1].strip() if "," in p.text else ""
        return f"\\citet{{{p.cite}}}" + (f", {tex_escape(table)}" if table else "")
    return tex_escape(p.text)


UNVERIFIED = r"$^{\ast}$"
RAGGED = r">{\raggedright\arraybackslash}p"  # a paragraph column set ragged right (names, not justified prose)
OTHER_MODEL = r"$^{\dagger}$"


def published_cell(p: Published | None) -> str:
    if p is None or p.accuracy is None:
        return "--"
    return _acc(p.accuracy, p.std) + ("" if p.verified else UNVERIFIED) + ("" if p.same_model else OTHER_MODEL)


def _label(b) -> str:
    return "all" if b == "all" else f"{b:,}"


def _stacked(*lines: str) -> str:
    """A column header set on several lines, right-aligned (the columns it heads are numbers); a line may
    start with a bracket (the ``{}`` keeps ``\\\\`` from reading it as a length)."""
    return r"\shortstack[r]{" + r"\\{}".join(lines) + "}"


def _named(rows: list[Row]) -> str:
    """The sentence under the compare table that names in full the sources its last column names short."""
    named = dict.fromkeys(p.text if p.short in p.text else f"{p.short}: {p.text}"
                          for r in rows for p in r.sources + r.reimpl if p.short and p.accuracy is not None)
    return f" The last column's sources: {'; '.join(tex_escape(t) for t in named)}." if named else ""


def compare_table(rows: list[Row], others: list[Published]) -> str:
    if not rows:
        return r"\textit{No run in these metrics.}" + "\n"
    # the most common number of seeds goes into the header, a cell with another number says it; the task
    # follows the method's name; narrow paragraph columns, two-line headers and tighter column gaps keep the
    # table at the text width at its own type size instead of shrunk to fit
    counts = Counter(r.ours.n for r in rows)
    seeds = max(counts, key=lambda n: (counts[n], n))   # a tie: the larger number
    body = []
    for r in rows:
        extra = r.sources + r.reimpl
        body.append({
            "method": method_cell(r.ours.task, r.ours.method),
            "labels": _label(r.ours.labels),
            _stacked(r"ours: mean $\pm$ sd", f"[95\\,\\% CI], {seeds} seeds"): ours_cell(r.ours, seeds),
            "published": published_cell(r.paper),
            "source": cite(r.paper) if r.paper is not None and r.paper.accuracy is not None else "--",
            _stacked("gap", "(points)"): "--" if r.gap is None else f"${r.gap:+.2f}$",
            "sources' own, reimplementations": "; ".join(
                f"{_acc(p.accuracy)}{'' if p.verified else UNVERIFIED} ({breakable(p.short or p.text)})"
                for p in extra if p.accuracy is not None) or "--"})
    tex = fit("\\setlength{\\tabcolsep}{4pt}\n" + styled(
        pd.DataFrame(body), f"llrr{RAGGED}{{2.7cm}}r{RAGGED}{{3.0cm}}", escape=["labels"]))
    notes = [r"{\footnotesize\raggedright Test accuracy in \%. Gap: ours minus the published number at the same "
             r"budget. "
             r"Published numbers are those of the method's paper (or, where marked in paper/published.yaml, the "
             r"closest published model at that budget); the sources' own numbers were measured under their own "
             r"protocols." + (f" {UNVERIFIED}: not yet checked against the paper's table in a stored copy "
                              r"(paper/published.yaml gives the reason)." if any(
                                  p is not None and not p.verified for r in rows for p in [r.paper] + r.sources + r.reimpl)
                              else "")
             + (f" {OTHER_MODEL}: a different setup, not like for like: another model (the closest published one at "
                r"that budget) or ours under another protocol or training length (paper/published.yaml says what "
                r"differs); no gap is computed." if any(
                    r.paper is not None and not r.paper.same_model for r in rows) else "")
             + (f" {ON_GPU}: trained on a GPU ({where_trained([r.ours for r in rows])}: each budget's seeds "
                r"stacked in one process); every other cell on a CPU." if any(r.ours.gpus for r in rows) else "")
             + task_note(r.ours.task for r in rows)
             + _named(rows)
             + r"\par}"]
    if others:
        notes.append(r"{\footnotesize\raggedright Published at budgets this preset does not run: " + "; ".join(
            f"{tex_escape(p.method)} at {_label(p.labels)} labels {_acc(p.accuracy)}{'' if p.verified else UNVERIFIED} "
            f"({cite(p)})" for p in others) + r".\par}")
    return tex + "\\par\n" + "\n\\par\n".join(notes) + "\n"


def status_cell(m: CellVerdict) -> str:
    rest = [f"{v} {k}" for k, v in sorted(m.counts.items()) if k not in (CV.CONVERGED,)]
    return ", ".join(rest) if rest else "--"


def _steps(n: int | None) -> str:
    return "--" if n is None else f"{n:,}"


RULE_WORDS = (f"A run has stopped improving when the last half of its last constant-rate stretch (at least "
              f"{CV.MIN_EVALS} evaluations) shows no rise: cut into {CV.BLOCKS} blocks, the straight line through "
              f"the blocks' mean validation accuracies rises by less than {CV.MIN_RISE} points across it, or its 95\\,\\% "
              f"interval ({CV.BLOCKS - 2} degrees of freedom) includes 0. A run with a learning-rate drop is also "
              "judged on the stretch before its last drop: rising there, it was still improving when the drop froze "
              "it. Falling at the end: past its best (it stopped improving).")


def convergence_table(cells: list[CellVerdict]) -> str:
    if not cells:
        return r"\textit{No run in these metrics.}" + "\n"
    # headers of two lines, so that the table fits the text width at its own type size instead of being shrunk
    body = [{"method": method_cell(m.task, m.method), "labels": _label(m.labels),
             _stacked("stopped", "/ runs"): f"{m.converged} / {m.n}",
             "the others": status_cell(m),
             _stacked("rise", "(points)"): "--" if m.rise is None else f"${m.rise:+.2f}$",
             _stacked("steps", "a run"): _steps(m.steps),
             "evaluations": f"{m.evaluations:,}" if m.evaluations else "--"} for m in cells]
    return (fit(styled(pd.DataFrame(body), f"llr{RAGGED}{{3.2cm}}rrr", escape=["labels", "the others"]))
            + "\\par\n{\\footnotesize\\raggedright" + task_note(m.task for m in cells)
            + " Stopped: converged or past its best. " + RULE_WORDS
            + " Rise: the line's change across the judged half-stretch, mean over the cell's runs (for a run still "
              "improving at its drop, the stretch before the drop).\\par}\n")


def below(rows: list[Row], cells: list[CellVerdict]) -> list[tuple[Row, CellVerdict]]:
    """Methods whose every run stopped improving and whose 95 % interval lies wholly below the paper's number
    (a single seed: its mean below it)."""
    by = {(m.task, m.method, m.labels): m for m in cells}
    out = []
    for r in rows:
        m = by.get((r.ours.task, r.ours.method, r.ours.labels))
        if r.gap is None or m is None or not m.all_converged:
            continue
        top = r.ours.hi if r.ours.hi is not None else r.ours.mean
        if top < r.paper.accuracy:
            out.append((r, m))
    return out


def below_table(pairs: list[tuple[Row, CellVerdict]], tried: dict[str, str]) -> str:
    if not pairs:
        return r"{\footnotesize No method whose runs stopped improving stays below its paper's number.}" + "\n"
    body = [{"method": method_cell(r.ours.task, r.ours.method), "labels": _label(r.ours.labels),
             "gap (points)": f"${r.gap:+.2f}$",
             "stopped": f"{m.converged} / {m.n}",
             "what was tried": tried.get(r.ours.method, "not yet recorded (paper/published.yaml, tried)")}
            for r, m in pairs]
    return fit(styled(pd.DataFrame(body), f"llrr{RAGGED}{{8cm}}", escape=["labels", "what was tried"]))


def key(task, method, labels) -> str:
    return f"cmp/{task}/{method}/{labels}"


def macros(rows: list[Row], cells: list[CellVerdict]) -> str:
    lines = [r"% Generated by fewlabels.report.compare; do not edit.", r"\makeatletter"]
    for r in rows:
        k = key(r.ours.task, r.ours.method, r.ours.labels)
        lines += [macro(f"{k}/mean", f"{r.ours.mean:.2f}"), macro(f"{k}/n", r.ours.n),
                  macro(f"{k}/sd", "--" if r.ours.sd is None else f"{r.ours.sd:.2f}")]
        if r.gap is not None:
            lines += [macro(f"{k}/published", f"{r.paper.accuracy:.2f}"), macro(f"{k}/gap", f"{r.gap:+.2f}"),
                      macro(f"{k}/source", cite(r.paper))]
    for m in cells:
        k = key(m.task, m.method, m.labels)
        lines += [macro(f"{k}/stopped", f"{m.converged}/{m.n}")]
    total = sum(m.n for m in cells)
    lines += [macro("cmp/runs", total), macro("cmp/stopped", sum(m.converged for m in cells)),
              macro("cmp/withpaper", sum(r.gap is not None for r in rows))]
    if rows:
        lines.append(macro("has/compare", 1))
    lines.append(r"\makeatother")
    return "\n".join(lines) + "\n"


CLOSE = 1.0  # points: what the abstract calls "close to its paper" (stated where it is used)


def abstract(rows: list[Row], cells: list[CellVerdict], within: float = CLOSE) -> str:
    """The abstract's sentence: how many runs stopped improving, and each method beside its paper at the same
    budget where the comparison is like for like (``same_model``) and the paper's number was verified in a
    stored copy; how many of those lie within ``within`` points of it."""
    total, flat = sum(m.n for m in cells), sum(m.converged for m in cells)
    parts = [f"Trained until validation accuracy stops improving where the runs allowed ({flat} of {total} runs, "
             "first stages included, meet the convergence rule; the others are named with what they would cost), "]
    cmp = [r for r in rows if r.gap is not None and r.paper.verified]
    if not cmp:
        return parts[0] + ("no method of this preset has a verified, like-for-like published number at the same "
                           "label budget.")
    by = {(m.task, m.method, m.labels): m for m in cells}

    def unsettled(r: Row) -> str:
        """Where not every run of the cell stopped improving, say how many did (its number may still move)."""
        m = by.get((r.ours.task, r.ours.method, r.ours.labels))
        return "" if m is None or m.all_converged else f"; {m.converged} of {m.n} runs stopped improving"
    items = [f"\\texttt{{{tex_escape(r.ours.method)}}} reaches {r.ours.mean:.1f}\\,\\% at {_label(r.ours.labels)} labels "
             f"against {r.paper.accuracy:.2f}\\,\\% in {cite(r.paper)} (${r.gap:+.1f}$ points{unsettled(r)})" for r in cmp]
    close = sum(abs(r.gap) <= within for r in cmp)
    return (parts[0] + "; ".join(items) + f". Of these verified, like-for-like comparisons, {close} of {len(cmp)} "
            f"{'lies' if close == 1 else 'lie'} within {within:g} point{'' if within == 1 else 's'} of the published "
            "number (the margin we call close).")


def _where(m: CellVerdict) -> str:
    """A cell in words: the method at its budget, or a first stage."""
    if m.first_stage:
        return f"\\texttt{{{tex_escape(m.method)}}} (a first stage)"
    return f"\\texttt{{{tex_escape(m.method)}}} at {_label(m.labels)} labels"


def _cells(ms: list[CellVerdict], states: tuple[str, ...]) -> str:
    return "; ".join(f"{_where(m)} ({sum(m.counts.get(s, 0) for s in states)} of {m.n})" for m in ms)


def cell_cost(m: CellVerdict) -> str:
    """What training a cell's runs again as long costs, from their own training time ('' without it)."""
    if m.hours is None:
        return ""
    kind = "GPU" if m.gpu else "CPU"
    minutes = max(1, round(60 * m.hours))
    cost = f"{m.hours:.1f} {kind}-hours" if m.hours >= 1 else f"{minutes} {kind}-minute{'s' if minutes > 1 else ''}"
    return f"about {cost} for the cell"


def extension_cost(m: CellVerdict) -> str:
    """What training a cell's runs for as long again would cost, from their own training time."""
    return f"another {_steps(m.steps)} steps a run, {cell_cost(m)}" if cell_cost(m) else ""


def status(cells: list[CellVerdict], pending: list[str] = (), tried: dict[str, str] | None = None,
           pairs: list[str] = ()) -> str:
    """In words, what the convergence table means for the comparison: the cells with runs still improving at
    their end or at their learning-rate drop (with what longer training would cost), those past their best,
    what was tried for each method with such a cell (``tried``: paper/published.yaml's, by method), the
    paired comparisons' training lengths (``pairs``, from ``pair_lengths``) and the preset's cells the
    archive does not hold yet (``pending``, from the config)."""
    improving = [m for m in cells if m.improving]
    past = [m for m in cells if m.counts.get(CV.PAST_BEST)]
    few = [m for m in cells if m.counts.get(CV.TOO_FEW)]
    parts = []
    if improving:
        parts.append("Runs still improving on validation (by the rule, their schedule was too short; a longer one "
                     "might score higher), with what training them as long again would cost (from the runs' own "
                     "training time): " + "; ".join(
                         f"{_cells([m], (CV.IMPROVING, CV.IMPROVING_AT_DROP))}, {extension_cost(m)}"
                         if extension_cost(m) else _cells([m], (CV.IMPROVING, CV.IMPROVING_AT_DROP))
                         for m in improving) + ".")
    at_drop = [m for m in cells if m.counts.get(CV.IMPROVING_AT_DROP)]
    if at_drop:
        parts.append("Of these, rising until their learning rate dropped (the drop froze them): "
                     + _cells(at_drop, (CV.IMPROVING_AT_DROP,)) + ".")
    if past:
        parts.append("Runs past their best on validation at their end (falling, so a longer schedule is not "
                     "expected to raise them): " + _cells(past, (CV.PAST_BEST,)) + ".")
    if few:
        parts.append("Runs with too few evaluations for the rule to judge (the same training evaluated more often "
                     "would let it), with what training them again costs: " + "; ".join(
                         _cells([m], (CV.TOO_FEW,)) + (f", {cell_cost(m)}" if cell_cost(m) else "") for m in few) + ".")
    unsettled = dict.fromkeys(m.method for m in cells if not m.all_converged)  # (in table order, once each)
    said = [f"\\texttt{{{tex_escape(m)}}}: {tex_escape(' '.join(tried[m].split()))}" for m in unsettled
            if tried and m in tried]
    if said:
        parts.append("What was tried where a run is still improving --- " + " ".join(
            t if t.endswith(".") else t + "." for t in said))
    if not parts and cells:
        parts.append("Every run stopped improving by the rule.")
    parts += list(pairs)
    if pending:
        parts.append("Not in this archive yet: " + "; ".join(tex_escape(p.rstrip(".")) for p in pending) + ".")
    return " ".join(parts)


# ------------------------------------------------------------------------------ pairs at equal length

def _at_step(history: Path, step: int) -> float | None:
    """Test accuracy (%) of a run's evaluation at ``step``, from its history, or None without one there."""
    if not history.exists():
        return None
    h = pd.read_csv(history)
    at = h[h["step"] == step] if "step" in h else h.iloc[0:0]
    return None if at.empty else 100 * float(at["test_accuracy"].iloc[-1])


def pair_lengths(df: pd.DataFrame, root: Path = Path("."), drops: dict[str, list[int]] | None = None) -> list[str]:
    """Sentences on each method-baseline pair (the registry's baselines) that trained for different lengths: the
    pair compares schedules as well as methods. Where the longer side trains at a constant rate and was evaluated
    at the shorter side's last step, its test accuracy there is the shorter schedule's (an evaluation draws no
    random number), and the paired difference at equal length is given (mean over seeds and 95 % t-interval)."""
    from ..methods import baseline_pairs
    drops = drops or {}
    r = runs(df)
    out = []
    for method, base in baseline_pairs().items():
        a, b = r[r["method"] == method], r[r["method"] == base]
        for labels in sorted(set(a["labels"]) & set(b["labels"]), key=lambda v: (isinstance(v, str), v)):
            ra, rb = a[a["labels"] == labels], b[b["labels"] == labels]
            sa, sb = int(ra["steps"].max()), int(rb["steps"].max())
            if sa == sb:
                continue
            (short, s_rows, s_n), (long_, l_rows, l_n) = sorted([(method, ra, sa), (base, rb, sb)], key=lambda t: t[2])
            text = (f"\\texttt{{{tex_escape(method)}}} and its baseline \\texttt{{{tex_escape(base)}}} at "
                    f"{_label(labels)} labels trained {_steps(sa)} and {_steps(sb)} steps")
            diffs = []
            if not drops.get(long_):
                for _, row in s_rows.iterrows():
                    twin = l_rows[l_rows["seed"] == row["seed"]]
                    acc = None if twin.empty else _at_step(history_path(twin["path"].iloc[0], root), s_n)
                    if acc is not None:
                        mine = 100 * float(row["test_accuracy"])
                        diffs.append(mine - acc if short == method else acc - mine)
            if len(diffs) >= 2 and len(diffs) == len(s_rows):
                d = pd.Series(diffs)
                half = t_quantile(0.975, len(d) - 1) * float(d.std()) / math.sqrt(len(d))
                text += (f"; at equal length ({_steps(s_n)} steps, \\texttt{{{tex_escape(long_)}}} read from its "
                         f"constant-rate history there) the paired difference {tex_escape(method)} $-$ "
                         f"{tex_escape(base)} is ${d.mean():+.2f}$ points [${d.mean() - half:+.2f}$, ${d.mean() + half:+.2f}$] "
                         f"({len(d)} seeds, {len(d) - 1} degrees of freedom)")
            else:
                text += "; no equal-length reading exists, so their difference also measures the schedules"
            out.append(text + ".")
    return out


# ------------------------------------------------------------------------------ the answer

def _pair_targets(df: pd.DataFrame, method: str, labels) -> int:
    """Pair targets (same/different labels) a method's runs used beyond their class labels (0 for most)."""
    if "labels_used_pair_targets" not in df:
        return 0
    r = runs(df)
    v = pd.to_numeric(r[(r["method"] == method) & (r["labels"] == labels)]["labels_used_pair_targets"],
                      errors="coerce").max()
    return 0 if pd.isna(v) else int(v)


def conclusion(df: pd.DataFrame, alpha: float = 0.05) -> tuple[str, str]:
    """What each method gains over the same network trained on its labels alone, budget by budget, from the
    paired table's rows (report.tables: mean difference, 95 % interval, Holm's p over the table's family).
    A gain or a loss is named only where the interval excludes 0 and Holm's p is below ``alpha``; otherwise
    the runs show no difference. Returns (the section's paragraph, the abstract's sentence)."""
    from .tables import paired_rows

    rows = [r for r in paired_rows(df.assign(labels=df["labels"].astype(str)))
            if r["d"] is not None and r["d"].n >= 2]
    if not rows:
        return "", ""
    said, shown = [], []
    for r in rows:
        d, adj = r["d"], r.get("p_holm", 1.0)
        steps = r.get("steps") or {}
        sa, sb = steps.get(r["method"]), steps.get(r["baseline"])
        notes = []
        if sa is not None and sb is not None and sa != sb:
            notes.append(f"trained {sa:,} and {sb:,} steps: the schedules differ too")
        labels = budget(r["labels"], "metrics.csv: ")
        targets = _pair_targets(df, r["method"], labels)
        if targets:
            notes.append(f"with {targets:,} pair targets, labels too")
        what = (f"\\texttt{{{tex_escape(r['method'])}}} against \\texttt{{{tex_escape(r['baseline'])}}} at "
                f"{_label(labels)} labels")
        numbers = f"${d.mean:+.1f}$ points [${d.lo:+.1f}$, ${d.hi:+.1f}$], Holm's $p={fmt_p(adj)}$, {d.n} seeds"
        extra = f"; {'; '.join(notes)}" if notes else ""
        if d.lo > 0 and adj < alpha:
            said.append(f"{what} gains {numbers}{extra}")
            shown.append((r, "gains"))
        elif d.hi < 0 and adj < alpha:
            said.append(f"{what} loses {numbers}{extra}")
            shown.append((r, "loses"))
        elif d.lo > 0 or d.hi < 0:
            said.append(f"{what}: a difference that does not survive Holm's adjustment ({numbers}{extra})")
        else:
            said.append(f"{what}: no difference the runs can show ({numbers}{extra})")
    text = ("Against the same network trained on its labels alone (Table~\\ref{tab:paired}), a method is said "
            f"to gain or lose only where the paired interval excludes 0 and Holm's adjusted $p$ is below {alpha:g}. "
            + "; ".join(said) + ".")
    if shown:
        sentence = (f"Against the same network trained on its labels alone, {len(shown)} of {len(rows)} "
                    "method-and-budget comparisons show a difference that survives Holm's adjustment: "
                    + "; ".join(f"\\texttt{{{tex_escape(r['method'])}}} {verb} "
                                f"{abs(r['d'].mean):.1f} points at {_label(budget(r['labels'], ''))} labels"
                                for r, verb in shown) + ".")
    else:
        sentence = (f"Against the same network trained on its labels alone, none of {len(rows)} method-and-budget "
                    "comparisons shows a difference that survives Holm's adjustment at these seeds.")
    return text, sentence


def write(df: pd.DataFrame, published: PublishedFile, out_dir: Path, root: Path = Path("."),
          pending: list[str] = (), drops: dict[str, list[int]] | None = None) -> dict[str, str]:
    rows = compare(df, published.entries)
    cells = verdict_by_cell(verdict_runs(df, root, drops))
    pairs = pair_lengths(df, root, drops)
    answer = conclusion(df)
    texts = {"compare_status.tex": "% Generated by fewlabels.report.compare; do not edit.\n"
                                   + status(cells, pending, published.tried, pairs) + "\n",
             "tab_compare.tex": compare_table(rows, other_budgets(df, published.entries)),
             "tab_convergence.tex": convergence_table(cells),
             "tab_below.tex": below_table(below(rows, cells), published.tried),
             "macros_compare.tex": macros(rows, cells),
             "abstract_compare.tex": "% Generated by fewlabels.report.compare; do not edit.\n" + abstract(rows, cells)
                                     + (" " + answer[1] if answer[1] else "") + "\n",
             "conclusion_compare.tex": "% Generated by fewlabels.report.compare; do not edit.\n" + answer[0] + "\n"}
    for name, text in texts.items():
        atomic_write(Path(out_dir) / name, lambda tmp, t=text: tmp.write_text(t))
    return texts


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m fewlabels.report.compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--metrics", required=True, type=Path)
    p.add_argument("--published", required=True, type=Path)
    p.add_argument("--out-dir", required=True, type=Path)
    p.add_argument("--pending", nargs="*", default=[],
                   help="cells of the preset that this archive does not hold yet, each in words with why")
    p.add_argument("--root", type=Path, default=Path("."),
                   help="where the metrics' paths (results/runs/...) start: the checkout (default: here)")
    p.add_argument("--config-json", default=None,
                   help="the preset's configuration as JSON (the workflow's), for the runs' learning-rate drops")
    args = p.parse_args(argv)
    try:
        published = load_published(args.published)
        df = pd.read_csv(args.metrics, dtype={"labels": str})
        drops = None
        if args.config_json:
            drops = drops_from_config(json.loads(args.config_json), sorted(set(df["method"])))
        write(df, published, args.out_dir, args.root, args.pending, drops)
    except (PublishedError, KeyError, ValueError, OSError) as e:
        raise SystemExit(f"error: {e}")


if __name__ == "__main__":
    main()
