"""report.compare and report.figures.compare on made-up metrics and histories: the gap to the published
number, a method without one, an unknown budget, the convergence counts and what more training would cost,
pairs of unequal length, the figure's size and fonts."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fewlabels.report import compare as C
from fewlabels.report import convergence as CV

PUBLISHED = textwrap.dedent("""
    sources:
      paperA: {cite: keyA, text: "Author et al. 2015, Table 2"}
      port: {cite: null, text: "someone/port, README", repository: https://example.org/port}
    entries:
      - {method: aae, task: mnist10, labels: 1000, accuracy: 98.40, std: 0.08, source: paperA, kind: paper,
         relation: r, verified: true, checked: "Table 2 of a stored copy"}
      - {method: aae, task: mnist10, labels: 3000, accuracy: 99.0, std: null, source: paperA, kind: paper,
         relation: r, verified: false, reason: "not found"}
      - {method: aae, task: mnist10, labels: 1000, accuracy: 93.5, std: null, source: port, kind: reimplementation,
         relation: r, verified: false, reason: "from an issue"}
    tried: {aae: "longer schedules and beta1 0.5"}
""")


def history(path: Path, values) -> None:
    v = np.asarray(values, dtype=float)
    pd.DataFrame({"epoch": np.arange(1, len(v) + 1), "step": 100 * np.arange(1, len(v) + 1),
                  "val_accuracy": v, "test_accuracy": v}).to_csv(path, index=False)


FLAT = np.r_[np.linspace(0.8, 0.95, 20), np.full(30, 0.95)]      # 50 evaluations, flat at the end
RISING = 0.5 + 0.45 * (1 - np.exp(-np.arange(50) / 30))          # still ~10 points up over its last half


@pytest.fixture
def grid(tmp_path):
    """metrics.csv of aae (3 seeds, 1,000 labels; two flat, one still rising), supervised (2 seeds, 100
    labels: no published number; one history too short for the rule) and a run without a history."""
    rows = []

    def run(method, labels, seed, acc, curve):
        d = tmp_path / "results" / "runs" / "mnist10" / method / f"n{labels}" / f"seed{seed}"
        d.mkdir(parents=True)
        if curve is not None:
            history(d / "history.csv", curve)
        rows.append({"preset": "compare", "task": "mnist10", "method": method, "labels": str(labels), "seed": seed,
                     "stage": "train", "test_accuracy": acc, "val_accuracy": acc,
                     "path": str((d / "metrics.json").relative_to(tmp_path))})
    run("aae", 1000, 0, 0.960, FLAT)
    run("aae", 1000, 1, 0.962, FLAT)
    run("aae", 1000, 2, 0.958, RISING)
    run("supervised", 100, 0, 0.75, FLAT[:8])
    run("supervised", 100, 1, 0.77, None)
    metrics = tmp_path / "metrics.csv"
    pd.DataFrame(rows).to_csv(metrics, index=False)
    pub = tmp_path / "published.yaml"
    pub.write_text(PUBLISHED)
    return tmp_path, metrics, pub


def test_gap_is_ours_minus_the_paper_at_the_same_budget(grid):
    root, metrics, pub = grid
    df = pd.read_csv(metrics, dtype={"labels": str})
    rows = {(r.ours.method, r.ours.labels): r for r in C.compare(df, C.load_published(pub).entries)}
    r = rows[("aae", 1000)]
    assert r.ours.mean == pytest.approx(96.0) and r.ours.n == 3
    assert r.gap == pytest.approx(96.0 - 98.40)
    # the 95 % t-interval of the mean: t(0.975, 2) = 4.303, sd 0.2 points
    assert r.ours.hi - r.ours.mean == pytest.approx(4.303 * 0.2 / np.sqrt(3), abs=1e-3)
    # the reimplementation is listed beside it, never taken as the paper's number
    assert [p.source for p in r.reimpl] == ["port"] and r.paper.source == "paperA"
    tex = C.compare_table(list(rows.values()), [])
    assert "$-2.40$" in tex and r"\citet{keyA}, Table 2" in tex


def test_a_method_without_a_published_number_has_no_gap(grid):
    root, metrics, pub = grid
    df = pd.read_csv(metrics, dtype={"labels": str})
    rows = C.compare(df, C.load_published(pub).entries)
    sup = [r for r in rows if r.ours.method == "supervised"][0]
    assert sup.paper is None and sup.gap is None
    line = [l for l in C.compare_table(rows, []).splitlines() if l.startswith("supervised & 100")][0]
    assert line.count("--") == 4   # published, source, gap, reimplementations
    texts = C.write(df, C.load_published(pub), root / "out", root)
    assert "cmp/mnist10/supervised/100/gap" not in texts["macros_compare.tex"]
    assert "cmp/mnist10/aae/1000/gap" in texts["macros_compare.tex"]
    assert "like-for-like comparisons, 0 of 1 lie within 1 point" in texts["abstract_compare.tex"]
    # one aae run still rises: the abstract says the cell is not settled
    assert "points; 2 of 3 runs stopped improving)" in texts["abstract_compare.tex"]
    # an unverified number never enters the abstract, though its gap is printed in the table
    pub.write_text(PUBLISHED.replace('verified: true, checked: "Table 2 of a stored copy"',
                                     'verified: false, reason: "not in a stored copy"'))
    texts = C.write(df, C.load_published(pub), root / "out", root)
    assert "cmp/mnist10/aae/1000/gap" in texts["macros_compare.tex"]
    assert "keyA" not in texts["abstract_compare.tex"] and "no method of this preset has a verified" in \
        texts["abstract_compare.tex"]


def test_the_compare_table_is_narrow_enough_to_print_at_its_own_size(grid):
    """The table fits the text width unshrunk only if its cells stay short: the usual number of seeds goes in
    the header (a cell with another number says it), the task follows the method's name, a source with a
    short name is named in full once under the table, and long names may break after a slash or underscore."""
    root, metrics, pub = grid
    pub.write_text(PUBLISHED.replace('port: {cite: null,', 'port: {cite: null, short: "a port",'))
    df = pd.read_csv(metrics, dtype={"labels": str})
    extra = df[df.method == "supervised"].assign(task="digits59", method="scratch")
    rows = C.compare(pd.concat([df, df[df.method == "aae"].assign(labels="100"), extra]),
                     C.load_published(pub).entries)
    tex = C.compare_table(rows, [])
    assert "[95\\,\\% CI], 3 seeds}" in tex and "\\\\[" not in tex   # 3 is the usual count; no \\[ (a length)
    aae = [l for l in tex.splitlines() if l.startswith("aae & 1,000")][0]
    sup = [l for l in tex.splitlines() if l.startswith("supervised & 100")][0]
    assert "96.00 $\\pm$ 0.20 {" in aae and ", 2 {" in sup          # 3 seeds unsaid, 2 said
    assert any(l.startswith("scratch (5--9) & 100") for l in tex.splitlines())
    assert "(5--9): digits 5--9, the transfer target" in tex
    assert "93.50$^{\\ast}$ (a port)" in aae and "The last column's sources: a port: someone/port, README." in tex
    assert C.breakable("a/b_c") == "a/\\allowbreak{}b\\_\\allowbreak{}c"


def test_a_published_budget_we_did_not_run_is_listed_not_compared(grid):
    root, metrics, pub = grid
    df = pd.read_csv(metrics, dtype={"labels": str})
    entries = C.load_published(pub).entries
    others = C.other_budgets(df, entries)
    assert [(p.method, p.labels) for p in others] == [("aae", 3000)]
    assert all(r.ours.labels != 3000 for r in C.compare(df, entries))
    assert "aae at 3,000 labels 99.00$^{\\ast}$" in C.compare_table(C.compare(df, entries), others)


@pytest.mark.parametrize("labels", ["105", "0", "many", "-100"])
def test_an_impossible_budget_is_an_error_that_names_the_entry(grid, labels):
    root, metrics, pub = grid
    pub.write_text(PUBLISHED.replace("labels: 3000", f"labels: {labels}"))
    with pytest.raises(C.PublishedError, match=r"entry 2 \(aae, mnist10"):
        C.load_published(pub)


def test_an_unverified_number_must_say_why(grid):
    root, metrics, pub = grid
    pub.write_text(PUBLISHED.replace(', reason: "not found"', ""))
    with pytest.raises(C.PublishedError, match="says why"):
        C.load_published(pub)


def test_convergence_counts_per_cell(grid):
    root, metrics, pub = grid
    df = pd.read_csv(metrics, dtype={"labels": str})
    cells = {(m.method, m.labels): m for m in C.verdict_by_cell(C.verdict_runs(df, root))}
    aae = cells[("aae", 1000)]
    assert (aae.converged, aae.n, aae.counts) == (2, 3, {CV.CONVERGED: 2, CV.IMPROVING: 1})
    assert not aae.all_converged and aae.improving == 1
    sup = cells[("supervised", 100)]
    assert (sup.converged, sup.n, sup.counts) == (0, 2, {CV.TOO_FEW: 1, C.NO_HISTORY: 1})
    tex = C.convergence_table(list(cells.values()))
    assert "2 / 3" in tex and "1 still improving" in tex and "5 blocks" in tex


def test_first_stages_are_judged_and_named_as_first_stages(grid):
    root, metrics, pub = grid
    d = root / "results" / "pretrain" / "ae-pretrain" / "seed0"
    d.mkdir(parents=True)
    history(d / "history.csv", np.linspace(0.5, 0.9, 5))  # five passes, one evaluation each
    df = pd.read_csv(metrics, dtype={"labels": str})
    df = pd.concat([df, pd.DataFrame([{"task": "mnist10", "method": "ae-pretrain", "labels": "all", "seed": 0,
                                       "stage": "pretrain", "test_accuracy": 0.9, "train_s": 120.0,
                                       "path": "results/pretrain/ae-pretrain/seed0/metrics.json"}])])
    cells = {m.method: m for m in C.verdict_by_cell(C.verdict_runs(df, root))}
    assert cells["ae-pretrain"].counts == {CV.TOO_FEW: 1}
    text = C.status(list(cells.values()))
    assert r"\texttt{ae-pretrain} (a first stage) (1 of 1), about 2 CPU-minutes for the cell" in text
    assert "ae-pretrain" not in C.compare_table(C.compare(df, C.load_published(pub).entries), [])


def test_a_learning_rate_drop_from_the_config_reaches_the_rule(grid):
    """A run rising until its drop and flat after it: without the drop the rule sees a rise then a flat end;
    with it (the config's lr_decay_epochs), 'still improving at its drop'."""
    root, metrics, pub = grid
    d = root / "results" / "runs" / "mnist10" / "aae" / "n1000" / "seed0"
    history(d / "history.csv", np.r_[np.linspace(0.80, 0.90, 40), np.full(40, 0.93)])
    df = pd.read_csv(metrics, dtype={"labels": str})
    drops = C.drops_from_config({"methods": {"aae": {"lr_decay_epochs": [40]}}}, ["aae", "supervised"])
    assert drops == {"aae": [40], "supervised": []}
    seed0 = lambda rv: next(r for r in rv if r.method == "aae" and r.seed == 0)  # noqa: E731
    assert seed0(C.verdict_runs(df, root)).status == CV.CONVERGED
    assert seed0(C.verdict_runs(df, root, drops)).status == CV.IMPROVING_AT_DROP


def test_a_method_below_its_paper_after_stopping_is_listed_with_what_was_tried(grid):
    root, metrics, pub = grid
    df = pd.read_csv(metrics, dtype={"labels": str})
    published = C.load_published(pub)
    rows = C.compare(df, published.entries)
    runs = C.verdict_runs(df, root)
    assert C.below(rows, C.verdict_by_cell(runs)) == []   # one aae run still improving: not "after stopping"
    flat = [r if r.status != CV.IMPROVING else C.RunVerdict(r.task, r.method, r.labels, r.seed, r.history,
                                                            CV.CONVERGED, r.result) for r in runs]
    pairs = C.below(rows, C.verdict_by_cell(flat))
    assert [(r.ours.method, m.converged) for r, m in pairs] == [("aae", 3)]
    assert "longer schedules and beta1 0.5" in C.below_table(pairs, published.tried)


def test_the_cli_writes_every_file(grid):
    root, metrics, pub = grid
    out = root / "gen"
    C.main(["--metrics", str(metrics), "--published", str(pub), "--out-dir", str(out), "--root", str(root),
            "--config-json", '{"methods": {}}'])
    assert {p.name for p in out.iterdir()} == {"tab_compare.tex", "tab_convergence.tex", "tab_below.tex",
                                               "macros_compare.tex", "abstract_compare.tex", "compare_status.tex",
                                               "conclusion_compare.tex"}
    assert r"\def\csname fl@cmp/mnist10/aae/1000/stopped\endcsname{2/3}" in (out / "macros_compare.tex").read_text()


def test_the_project_file_loads_and_every_unverified_number_says_why():
    pub = C.load_published(Path(__file__).resolve().parents[1] / "paper" / "published.yaml")
    assert pub.entries and all(p.why for p in pub.entries)


def test_the_figure_is_the_text_width_with_fonts_of_7_pt_and_words(grid):
    import matplotlib.text

    from fewlabels.report.figures import compare as FC

    root, metrics, pub = grid
    out = root / "fig_compare.pdf"
    FC.fig_compare(metrics, out, root)
    width = float(re.search(rb"MediaBox \[ *[\d.]+ +[\d.]+ +([\d.]+)", out.read_bytes()).group(1))
    assert width == pytest.approx(6.5 * 72, abs=1)
    fig = FC.draw(pd.read_csv(metrics, dtype={"labels": str}), root)
    texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]
    assert texts and min(t.get_fontsize() for t in texts) >= 7
    words = " ".join(t.get_text() for t in texts)
    assert "adversarial autoencoder" in words and "sgan" not in words and "_" not in words
    # every column's lowest panel labels its x axis, also where the last row is short
    labelled = [a for a in fig.axes if a.get_visible() and a.get_xlabel() == "training step"]
    assert len(labelled) == min(FC.NCOL, len([a for a in fig.axes if a.get_visible()]))
    # one marker per budget curve with enough evaluations: aae's mean curve (50 evaluations) has one, where
    # the rule's judged stretch (its last half) starts: evaluation 26, step 2,600
    aae_ax = [a for a in fig.axes if a.get_title(loc="left").startswith("adversarial autoencoder")][0]
    markers = [l for l in aae_ax.get_lines() if l.get_marker() == "o"]
    assert len(markers) == 1 and markers[0].get_xdata()[0] == 100 * 26


def test_a_different_model_is_marked_and_gets_no_gap_or_abstract_mention(grid):
    """A published number of another model (Kingma's M1+M2 beside our vae) is printed with a dagger, but
    a gap to it would measure nothing about the replication: no gap, no 'below its paper', no abstract."""
    root, metrics, pub = grid
    pub.write_text(PUBLISHED.replace("relation: r, verified: true", "relation: r, same_model: false, verified: true"))
    df = pd.read_csv(metrics, dtype={"labels": str})
    published = C.load_published(pub)
    rows = C.compare(df, published.entries)
    aae = [r for r in rows if r.ours.method == "aae"][0]
    assert aae.paper.accuracy == pytest.approx(98.40) and aae.gap is None
    tex = C.compare_table(rows, [])
    assert "98.40 $\\pm$ 0.08" + C.OTHER_MODEL in tex and "a different setup" in tex
    texts = C.write(df, published, root / "out", root)
    assert "keyA" not in texts["abstract_compare.tex"] and "no method of this preset" in texts["abstract_compare.tex"]
    flat = [C.RunVerdict(r.task, r.method, r.labels, r.seed, r.history, CV.CONVERGED, r.result)
            for r in C.verdict_runs(df, root)]
    assert C.below(rows, C.verdict_by_cell(flat)) == []
    pub.write_text(PUBLISHED.replace("relation: r, verified: true", "relation: r, same_model: 'no', verified: true"))
    with pytest.raises(C.PublishedError, match="same_model must be true or false"):
        C.load_published(pub)


def cell(method, labels, counts, steps=1000, hours=None, gpu=False):
    converged = sum(v for k, v in counts.items() if k in CV.STOPPED)
    return C.CellVerdict("mnist10", method, labels, sum(counts.values()), converged, counts, 0.0, 50, steps, hours, gpu)


def test_the_status_names_improving_and_past_cells_with_the_cost_of_more_and_what_is_pending(grid):
    """The section's words for the convergence table: a cell with a run still improving is named as too short
    with what training it as long again would cost (from its runs' own training time), one falling as past
    its best, and the config's pending cells are listed; a grid where every run stopped improving says so."""
    root, metrics, pub = grid
    df = pd.read_csv(metrics, dtype={"labels": str})
    cells = C.verdict_by_cell(C.verdict_runs(df, root))
    text = C.status(cells, ["sgan-fm at 1,000 labels: 50,000 steps a run, not affordable here."])
    assert "still improving" in text and r"\texttt{aae} at 1,000 labels (1 of 3)" in text
    assert "past their best" not in text
    assert text.endswith("Not in this archive yet: sgan-fm at 1,000 labels: 50,000 steps a run, not affordable here.")
    costly = cell("sgan", 100, {CV.CONVERGED: 1, CV.IMPROVING: 2}, steps=60000, hours=2.25)
    cheap = cell("aae", 100, {CV.IMPROVING_AT_DROP: 3}, steps=10000, hours=0.05, gpu=True)
    text = C.status([costly, cheap])
    assert "another 60,000 steps a run, about 2.2 CPU-hours for the cell" in text
    assert "another 10,000 steps a run, about 3 GPU-minutes for the cell" in text
    assert r"until their learning rate dropped (the drop froze them): \texttt{aae} at 100 labels (3 of 3)" in text
    past = cell("aae", 1000, {CV.CONVERGED: 2, CV.PAST_BEST: 1})
    assert "past their best" in C.status([past]) and "improving on" not in C.status([past])
    flat = cell("aae", 1000, {CV.CONVERGED: 3})
    assert C.status([flat]) == "Every run stopped improving by the rule."


def test_the_status_says_what_was_tried_only_for_methods_with_a_run_still_improving():
    """published.yaml's `tried` text of a method with a run still improving follows the status (once, however
    many of its cells are), escaped for LaTeX; a method whose runs all stopped improving gets none."""
    rising = cell("sgan", 100, {CV.CONVERGED: 1, CV.IMPROVING: 2})
    few = cell("sgan", 1000, {CV.CONVERGED: 2, CV.TOO_FEW: 1})
    flat = cell("aae", 1000, {CV.CONVERGED: 3})
    tried = {"sgan": "60,000 steps\n  at 100 % of the rate", "aae": "the paper's decay"}
    text = C.status([rising, few, flat], tried=tried)
    assert text.count(r"\texttt{sgan}: 60,000 steps at 100 \% of the rate.") == 1
    assert "decay" not in text and r"again costs: \texttt{sgan} at 1,000 labels (1 of 3)." in text
    assert "was tried" not in C.status([flat], tried=tried)


def test_pairs_of_unequal_length_are_named_and_compared_at_equal_length_from_the_history(grid):
    """transfer (1,000 steps) against scratch (3,000 steps, evaluated every 100): the pair compares schedules
    too, so the status reads scratch's test accuracy at transfer's last step from its history and gives the
    paired difference there with its interval and degrees of freedom; with no evaluation at that step, it says
    no equal-length reading exists."""
    root, metrics, pub = grid
    rows = []
    for method, steps, n_evals in (("transfer", 1000, 10), ("scratch", 3000, 30)):
        for seed, acc in enumerate((0.80, 0.82, 0.85)):
            d = root / "results" / "runs" / "digits59" / method / "n50" / f"seed{seed}"
            d.mkdir(parents=True)
            # scratch's history: test accuracy 0.70 + seed/100 at step 1,000 (its 10th evaluation)
            curve = np.full(n_evals, acc) if method == "transfer" else np.r_[np.full(10, 0.70 + seed / 100),
                                                                              np.full(20, 0.9)]
            history(d / "history.csv", curve)
            rows.append({"task": "digits59", "method": method, "labels": "50", "seed": seed, "stage": "train",
                         "test_accuracy": acc if method == "transfer" else 0.9, "steps": steps,
                         "path": str((d / "metrics.json").relative_to(root))})
    df = pd.DataFrame(rows)
    (text,) = C.pair_lengths(df, root)
    assert r"\texttt{transfer} and its baseline \texttt{scratch} at 50 labels trained 1,000 and 3,000 steps" in text
    # differences 10, 11, 13 points: mean 11.33, sd 1.53, t(0.975, 2) = 4.30 -> half-width 3.79
    assert "is $+11.33$ points [$+7.54$, $+15.13$] (3 seeds, 2 degrees of freedom)" in text
    df.loc[df["method"] == "transfer", "steps"] = 1050  # no scratch evaluation at step 1,050
    (text,) = C.pair_lengths(df, root)
    assert "no equal-length reading exists" in text
    df.loc[df["method"] == "transfer", "steps"] = 3000
    assert C.pair_lengths(df, root) == []


def test_cells_trained_on_a_gpu_are_marked_and_the_note_names_the_gpu(grid):
    """A cell whose runs trained on a GPU (metrics.csv's device cuda) carries the G mark in the comparison
    table, and the table's note names the GPU and the methods; CPU cells carry no mark, and a table
    without a GPU cell has no such note."""
    root, metrics, pub = grid
    df = pd.read_csv(metrics, dtype={"labels": str})
    df["device"], df["device_name"] = "cpu", "AMD EPYC"
    cpu_tex = C.compare_table(C.compare(df, C.load_published(pub).entries), [])
    assert C.ON_GPU not in cpu_tex and "trained on a GPU" not in cpu_tex
    df.loc[df["method"] == "aae", ["device", "device_name"]] = ["cuda", "NVIDIA H200"]
    rows = {(r.ours.method, r.ours.labels): r for r in C.compare(df, C.load_published(pub).entries)}
    assert rows[("aae", 1000)].ours.gpus == ("NVIDIA H200",) and rows[("supervised", 100)].ours.gpus == ()
    tex = C.compare_table(list(rows.values()), [])
    assert tex.count(C.ON_GPU) == 2  # the aae cell and the note
    assert "aae on an NVIDIA H200" in tex and "every other cell on a CPU" in tex


def test_a_metrics_file_without_device_names_marks_only_its_cuda_cells(grid):
    """Older metrics.csv files may lack device_name: a cuda cell is then 'a GPU', a CPU cell nothing."""
    root, metrics, pub = grid
    df = pd.read_csv(metrics, dtype={"labels": str})
    df["device"] = ["cuda" if m == "aae" else "cpu" for m in df["method"]]
    got = {o.method: o.gpus for o in C.ours(df)}
    assert got == {"aae": ("a GPU",), "supervised": ()}


def test_a_preset_shows_another_presets_bf16_cost_from_config_precision_cost(sandbox, tmp_path):
    """The compare preset trains in fp32 because of the precision preset's measurement: config precision_cost
    names that preset's metrics.csv, and the workflow makes the bf16 cost table (which ms.tex includes) from
    it; a path that is not a file stops the workflow with what to do; without the key nothing makes it."""
    from conftest import REPO, snakemake

    src = REPO / "results/archive-precision/metrics.csv"
    if not src.exists():
        pytest.skip("results/archive-precision/metrics.csv is not in this checkout")
    metrics = tmp_path / "precision-metrics.csv"
    metrics.write_bytes(src.read_bytes())
    target = "paper/generated/tab_precision.tex"
    made = snakemake(sandbox, target, "--configfile", "presets/compare.yaml", "--config",
                     f"precision_cost={metrics}")
    tex = (sandbox / target).read_text()
    assert r"\texttt{sgan-fm} & 1000 & 3" in tex and "within" in tex
    assert "precision_tex" in made.stdout + made.stderr
    bad = snakemake(sandbox, target, "-n", "--configfile", "presets/compare.yaml", "--config",
                    f"precision_cost={tmp_path / 'nope.csv'}", check=False)
    said = bad.stdout + bad.stderr
    assert bad.returncode != 0 and "config precision_cost" in said and "is not a file" in said
    (sandbox / target).unlink()
    none = snakemake(sandbox, target, "-n", "--configfile", "presets/compare.yaml", "--config",
                     "precision_cost=null", check=False)
    assert none.returncode != 0 and "precision_tex" not in none.stdout + none.stderr


def test_the_conclusion_names_a_gain_only_where_the_adjusted_test_shows_one():
    """Each method against the same network on its labels alone: a clear gain is named a gain, with its interval
    and Holm's p; a noisy difference whose interval includes 0 is 'no difference the runs can show'; the pair
    targets a method used are said; the abstract's sentence counts the gains."""
    def cell(method, accs, task="mnist10", labels="100", **extra):
        return [{"task": task, "method": method, "labels": labels, "seed": s, "stage": "train",
                 "test_accuracy": a / 100, "steps": 1000, **extra} for s, a in enumerate(accs)]
    df = pd.DataFrame(cell("aae", [90.0, 91.0, 90.5, 90.8, 90.2]) + cell("supervised", [75.0, 76.0, 75.5, 75.8, 75.2])
                      + cell("siamese", [80.0, 70.0, 85.0, 60.0, 75.0], labels_used_pair_targets=55000)
                      + cell("siamese-scratch", [75.0, 74.0, 76.0, 73.0, 77.0]))
    text, sentence = C.conclusion(df)
    assert r"\texttt{aae} against \texttt{supervised} at 100 labels gains $+15.0$ points" in text
    assert "Holm's $p=" in text and "5 seeds" in text
    assert r"\texttt{siamese} against \texttt{siamese-scratch} at 100 labels: no difference the runs can show" in text
    assert "with 55,000 pair targets, labels too" in text
    assert sentence.startswith("Against the same network trained on its labels alone, 1 of 2 method-and-budget")
    assert r"\texttt{aae} gains 15.0 points at 100 labels" in sentence


def test_our_interval_is_cut_at_100_percent():
    df = pd.DataFrame({"task": "mnist10", "method": "aae", "labels": "100", "seed": [0, 1, 2], "stage": "train",
                       "test_accuracy": [0.9707, 0.9701, 0.9355]})
    (o,) = C.ours(df)
    assert o.hi == 100.0 and o.lo == pytest.approx(95.88 - 5.02, abs=0.02)
