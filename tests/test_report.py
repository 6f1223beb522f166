"""The Snakemake report (figures with their captions, the metrics and cost tables) and the
appendix table of wall time and peak memory built from the training jobs' benchmark files."""

from __future__ import annotations

import json
import re
import zipfile

import pandas as pd
import pytest

from conftest import REPO, snakemake
from fewlabels.report import benchmarks

BENCH_TSV = ("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
             "{s}\t0:00:{s:02.0f}\t{rss}\t900.0\t300.0\t320.0\t0.1\t0.0\t90.0\t{s}\n")


def fake_run(tmp_path, method, seed, device, s, rss):
    m = tmp_path / f"{method}-{seed}-{device}.json"
    m.write_text(json.dumps({"run": {"method": method, "task": "mnist10", "labels": 100, "seed": seed,
                                     "stage": "train"},
                             "env": {"device": device, "device_name": f"{device} box"},
                             "timing": {"train_s": s / 2, "samples_per_s": 1000.0}}))
    b = tmp_path / f"{method}-{seed}-{device}.tsv"
    b.write_text(BENCH_TSV.format(s=s, rss=rss))
    return m, b


def test_benchmark_table_has_cpu_and_gpu_rows(tmp_path):
    pairs = [fake_run(tmp_path, "supervised", 0, "cpu", 30.0, 400.0),
             fake_run(tmp_path, "supervised", 1, "cpu", 50.0, 500.0),
             fake_run(tmp_path, "supervised", 0, "cuda", 4.0, 1500.0),
             fake_run(tmp_path, "aae", 0, "cpu", 90.0, 600.0)]
    df = benchmarks.collect(pairs)
    s = benchmarks.summary(df)
    sup = s[s["method"] == "supervised"].set_index("device")
    assert list(s["method"]) == ["supervised", "supervised", "aae"]  # paper's method order
    assert sup.loc["cpu", "runs"] == 2 and sup.loc["cpu", "wall_mean"] == 40.0 and sup.loc["cpu", "wall_max"] == 50.0
    assert sup.loc["cpu", "rss_max"] == 500.0 and sup.loc["cuda", "rss_max"] == 1500.0
    tex = benchmarks.table(df)
    assert "supervised & CPU & 2 & 40.0 & 50.0 & 500" in tex
    assert "supervised & CUDA & 1 & 4.0 & 4.0 & 1500" in tex


def test_a_group_jobs_cost_is_shared_by_its_runs(tmp_path):
    """group_runs: three runs paired with one benchmark file get a third of its wall and CPU time each."""
    pairs = [fake_run(tmp_path, "supervised", s, "cuda", 60.0, 900.0) for s in range(3)]
    group = pairs[0][1]
    df = benchmarks.collect([(m, group) for m, _ in pairs] + [fake_run(tmp_path, "aae", 0, "cuda", 60.0, 900.0)])
    sup = df[df["method"] == "supervised"]
    assert list(sup["wall_s"]) == [20.0] * 3 and list(sup["cpu_time_s"]) == [20.0] * 3
    assert list(sup["runs_per_job"]) == [3] * 3 and list(sup["max_rss_mb"]) == [900.0] * 3
    assert df[df["method"] == "aae"]["wall_s"].item() == 60.0


def test_benchmark_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("x\ty\n1\t2\n")
    with pytest.raises(ValueError, match="not a Snakemake benchmark file"):
        benchmarks.read_benchmark(bad)
    with pytest.raises(SystemExit, match="pairs"):
        benchmarks.main(["collect", "--out", str(tmp_path / "o.csv"), str(bad)])


@pytest.mark.slow
def test_report_has_figures_captions_and_tables(smoke_run, tmp_path):
    out = tmp_path / "report.zip"
    snakemake(smoke_run, "--configfile", "presets/smoke.yaml", "--report", str(out))
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        html = z.read("report/report.html").decode()
        files = {n.rsplit("/", 1)[-1]: n for n in names}
        metrics_page = z.read(files["metrics.html"]).decode()
    # every figure of the paper is in the report, with the caption from workflow/report/
    figs = {p.name for p in (smoke_run / "paper/generated").glob("fig_*.pdf")}
    assert figs and figs <= set(files)
    for rst in ("fig_accuracy.rst", "metrics.rst", "benchmarks.rst"):
        caption = (REPO / "workflow/report" / rst).read_text()
        assert json.dumps(caption[:60])[1:-1] in html  # the report embeds captions as JSON strings
    # the metrics table: every run of results/metrics.csv, with its test accuracy
    metrics = pd.read_csv(smoke_run / "results/metrics.csv")
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", metrics_page, re.S)
    for _, r in metrics.iterrows():
        cells = [re.findall(r"<td>(.*?)</td>", row) for row in rows]
        want = [r["task"], r["method"], str(r["labels"]), str(r["seed"]), f"{100 * r['test_accuracy']:.2f}"]
        assert any(c[:5] == want for c in cells), want
    assert "benchmarks.html" in files
    # the appendix table is in the paper's inputs
    tex = (smoke_run / "paper/generated/tab_benchmarks.tex").read_text()
    assert "supervised & CPU" in tex


def test_the_aae_style_caption_says_from_a_measure_whether_the_class_code_matters():
    """Issue 28, item 6: the caption's statement comes from class_effect, not from a look at the grid."""
    import numpy as np

    from fewlabels.report.figures import aae

    rng = np.random.default_rng(0)
    styles = rng.random((1, 5, 28, 28))
    same_rows = np.repeat(styles, 4, axis=0)                          # y changes nothing
    assert aae.class_effect(same_rows) == pytest.approx(0.0)
    digits = rng.random((4, 1, 28, 28))
    assert aae.class_effect(np.repeat(digits, 5, axis=1) + 0.01 * styles) > 10  # y draws the digit
    none, some = aae.style_macros(0.05), aae.style_macros(0.8)
    assert "almost no effect" in none and "{0.05}" in none and "rows repeat" in none
    assert "visible effect" in some and "almost no" not in some
    assert f"{{{aae.CLASS_EFFECT_MIN:g}}}" in none  # the threshold the caption names
    with pytest.raises(ValueError, match="2 rows"):
        aae.class_effect(styles)


def test_the_cost_table_states_the_total_per_device():
    import pandas as pd

    from fewlabels.report import benchmarks as B
    df = pd.DataFrame({"stage": "train", "method": ["aae", "aae", "sgan"], "device": ["cpu", "cpu", "cuda"],
                       "wall_s": [3600.0, 1800.0, 720.0], "max_rss_mb": 100.0, "samples_per_s": 1.0})
    assert "In all: 1.5 CPU-hours over 2 runs; 0.2 GPU-hours over 1 runs" in B.table(df)


def test_accuracy_lines_join_budgets_only_where_three_show_a_trend():
    """Two budgets joined by straight lines draw a crossing nobody measured: markers alone then; from three
    budgets on, thin dotted lines join them."""
    import matplotlib
    matplotlib.use("Agg")
    import pandas as pd

    from fewlabels.report.figures.common import accuracy_vs_labels

    def styles(budgets):
        df = pd.DataFrame([{"method": m, "labels": b, "seed": s, "accuracy (%)": 80.0 + s + (b > 100) * 5}
                           for m in ("transfer", "scratch") for b in budgets for s in (0, 1)])
        ax = accuracy_vs_labels(df, ["transfer", "scratch"]).axes[0]
        return {line.get_linestyle() for line in ax.get_lines() if line.get_marker() not in (None, "", "None")}
    assert styles([50, 500]) == {"None"}
    assert styles([50, 100, 500]) == {":"}
