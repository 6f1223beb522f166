"""The pictures of the verdicts (fewlabels.report.figures.verdicts, issue 21 item 2), drawn from the
archived metrics: what each forest-plot group and paired row holds, and that the CLI writes the files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from fewlabels.report import ablation
from fewlabels.report.claims import Stats, paired, select
from fewlabels.report.figures import __main__ as figures_cli
from fewlabels.report.figures import verdicts as V

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "results" / "archive-seeds" / "metrics.csv"
QUICK = REPO / "results" / "archive" / "metrics.csv"
CLAIMS = REPO / "paper" / "claims.yaml"
ORIGINALS = REPO / "paper" / "original_code.yaml"


def _claims():
    return yaml.safe_load(CLAIMS.read_text())["claims"]


def _df(path):
    if not path.exists():
        pytest.skip(f"no {path.relative_to(REPO)}")
    return pd.read_csv(path, dtype={"labels": str})


def test_forest_groups_match_the_ablation_rows():
    df = _df(SEEDS)
    from fewlabels.report import fidelity

    groups = V.claim_groups(df, _claims(), fidelity.load(ORIGINALS))
    by_id = {g["claim"]["id"]: g for g in groups}
    # every seed claim with a stated number or band, none of the `beats` ones (those are paired rows)
    expected = [r["claim"]["id"] for r in ablation.rows(df, _claims()) if "beats" not in r["claim"]["expect"]]
    assert list(by_id) == expected
    for r in ablation.rows(df, _claims()):
        g = by_id.get(r["claim"]["id"])
        if g is None:
            continue
        pub = next(x for x in g["rows"] if x["kind"] == "published")
        assert pub["values"] == pytest.approx(r["published"].tolist())
        s = Stats.of(r["published"].tolist())
        assert (pub["stats"].lo, pub["stats"].hi) == pytest.approx((s.lo, s.hi))
        assert sum(x["kind"] == "quirk" for x in g["rows"]) == sum(len(v) > 0 for _, v in r["alone"])
    # the seed's own code appears where paper/original_code.yaml measured the claim
    assert any(x["kind"] == "original" for x in by_id["transfer500"]["rows"])
    assert not any(x["kind"] == "original" for x in by_id["linear-all"]["rows"])


def test_paired_rows_are_claims_paired():
    df = _df(SEEDS)
    rows = V.paired_rows(df, _claims())
    first = rows[0]
    assert first["label"].startswith("transfer − scratch") and first["kind"] == "published"
    ref = paired(select(df, "digits59", "transfer-002-published", "500"),
                 select(df, "digits59", "scratch-002-published", "500"))
    assert (first["stats"].mean, first["stats"].lo, first["stats"].hi) == pytest.approx((ref.mean, ref.lo, ref.hi))
    assert first["stated"] == pytest.approx(85 - 72)  # the two numbers seed 002 states
    aae = next(r for r in rows if r["label"].startswith("AAE") and r["kind"] == "published")
    assert aae["metric"] == "val_accuracy"
    # variants absent from the preset are skipped (the seeds archive has no Geron runs)
    assert not any(r["label"].startswith("Géron") for r in rows) or \
        (df["method"] == "siamese-geron-scratch").any()


def test_preset_without_seed_variants_draws_the_registered_methods():
    df = _df(QUICK)
    from fewlabels.report import fidelity

    groups = V.claim_groups(df, _claims(), fidelity.load(ORIGINALS))
    kinds = {x["kind"] for g in groups for x in g["rows"]}
    assert "base" in kinds and "published" not in kinds
    assert all(x["label"].startswith("registered method") for g in groups for x in g["rows"] if x["kind"] == "base")
    # runs of another protocol get no verdict, in the figure as in the scorecard
    assert all(x["outcome"] is None for g in groups for x in g["rows"] if x["kind"] == "base")
    assert {r["kind"] for r in V.paired_rows(df, _claims())} == {"base"}


def test_cli_writes_pdf_and_png(tmp_path):
    if not SEEDS.exists():
        pytest.skip("no seeds archive")
    out = tmp_path / "fig_forest.pdf"
    figures_cli.main(["forest", "--metrics", str(SEEDS), "--claims", str(CLAIMS), "--originals", str(ORIGINALS),
                      "--out", str(out)])
    assert out.stat().st_size > 10_000 and out.with_suffix(".png").stat().st_size > 10_000


def _drawn(monkeypatch, metrics):
    """The forest figure's matplotlib Figure (save intercepted) for a metrics file."""
    got = {}
    monkeypatch.setattr(V, "save", lambda fig, out: got.setdefault("fig", fig))
    V.fig_forest(metrics, CLAIMS, ORIGINALS, Path("unused.pdf"))
    return got["fig"]


@pytest.mark.parametrize("archive", [SEEDS, QUICK])
def test_forest_prints_at_the_text_width_with_fonts_of_7_pt_and_labels_in_words(archive, monkeypatch, tmp_path):
    import re

    import matplotlib.text

    _df(archive)
    out = tmp_path / "f.pdf"
    V.fig_forest(archive, CLAIMS, ORIGINALS, out)
    # paper/ms.tex: A4 with 2.2 cm margins, the figure at \linewidth = 16.6 cm = 470.6 pt; a PDF no
    # wider is not shrunk, so its fonts print at their own size
    width = float(re.search(rb"MediaBox \[ *[\d.]+ +[\d.]+ +([\d.]+)", out.read_bytes()).group(1))
    assert 400 < width <= 16.6 / 2.54 * 72
    fig = _drawn(monkeypatch, archive)
    texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]
    assert texts and min(t.get_fontsize() for t in texts) >= 7
    # no code names: no variant suffixes, no underscores
    words = " ".join(t.get_text() for t in texts)
    assert "_" not in words and "-published" not in words and "baseline1000" not in words
    # the legend names the star only where a star is drawn (a source's stated difference)
    stars = [line for ax in fig.axes for line in ax.get_lines() if line.get_marker() == "*"]
    assert ("star: the difference of the numbers the source states" in words) == bool(stars)


def test_forest_shows_each_rows_outcome_and_the_scorecards_verdict():
    from fewlabels.report import fidelity
    from fewlabels.report.claims import judge, scorecard

    df = _df(SEEDS)
    groups = V.claim_groups(df, _claims(), fidelity.load(ORIGINALS))
    verdicts = {v.id: v for v in scorecard(_claims(), df.assign(preset="seeds"), "seeds")}
    for g in groups:
        pub = next(x for x in g["rows"] if x["kind"] == "published")
        assert pub["outcome"] == verdicts[g["claim"]["id"]].outcome
        for x in g["rows"]:
            if x["stats"].lo is not None:
                assert x["outcome"] == judge(g["claim"]["expect"], x["stats"]).outcome
    # a withheld verdict says so in the panel's title
    g = dict(groups[0])
    assert V._verdict(g, {g["claim"]["id"]: fidelity.DIFFERS}).startswith("withheld (port differs")
    assert V._verdict(g, {}) == verdicts[g["claim"]["id"]].verdict
    for r in V.paired_rows(df, _claims()):
        s = r["stats"]
        want = "reproduced" if s.lo > 0 else "not reproduced" if s.hi < 0 else "inconclusive"
        assert r["outcome"] == want and r["mixed"] == s.mixed  # the dagger: sides on different code or CPUs


def test_claim_titles_are_words():
    c = {"claim": "Basic NN classifier, 1000 labels: about 87 %", "source": "seed 004 (x.txt:78)"}
    assert V.claim_title(c) == "Basic NN classifier, 1,000 labels (source 004)"
    assert V.claim_title({"claim": "Transfer 0--4 to 5--9, 500 labels: x", "source": "Makhzani"}) == \
        "Transfer 0–4 to 5–9, 500 labels"
    assert V._quirk_label("d_unshared_weights") == "unshared discriminators off"
    assert V._quirk_label("some_new_quirk") == "some new quirk off"


def test_nothing_to_draw_is_a_note_not_a_failure(tmp_path):
    df = pd.DataFrame({"preset": ["x"], "task": ["mnist10"], "method": ["supervised"], "labels": ["20"],
                       "seed": [0], "stage": ["train"], "test_accuracy": [0.5], "val_accuracy": [0.5]})
    metrics = tmp_path / "metrics.csv"
    df.to_csv(metrics, index=False)
    V.fig_forest(metrics, CLAIMS, ORIGINALS, tmp_path / "f.pdf")
    assert (tmp_path / "f.png").exists()


def _seed_doc(name):
    for root in (REPO / "shared" / "seeds", REPO.parent / "shared" / "seeds"):
        if (root / name).exists():
            return (root / name).read_text().splitlines()
    pytest.skip("the seeds' documents (shared/seeds/) are not here")


@pytest.mark.parametrize("claim", ["source04", "transfer500", "scratch500", "sgan900", "baseline1000", "aae1000"])
def test_printed_points_are_what_the_cited_lines_say(claim):
    """Every number of PRINTED is on the line its citation names (file:first-last of shared/seeds)."""
    import re

    p = V.PRINTED[claim]
    seed, lines = p["cite"].split(":")
    first, _, last = lines.partition("-")
    files = {"001": "001_c1f65a8d6218390a.txt", "002": "002_0e661fa08b2a740e.txt", "004": "004_e9283f98c02d3284.txt"}
    text = _seed_doc(files[seed])[int(first) - 1:int(last or first)]
    if "x" not in p:
        assert f"{p['level']:g}%" in " ".join(text)
        return
    assert len(text) == len(p["x"]) == len(p["y"])
    for line, x, y in zip(text, p["x"], p["y"]):
        if seed == "002":
            m = re.fullmatch(r"Epoch (\d+), Test accuracy: ([0-9.]+)", line.strip())
            assert int(m.group(1)) + 1 == x  # "Epoch e" is printed after e + 1 passes
        else:
            m = re.fullmatch(r"(\d+) \. Training Acc [0-9.]+\tTest Acc ([0-9.]+)", line.strip())
            assert int(m.group(1)) == x
        assert 100 * float(m.group(2)) == pytest.approx(y)


def test_seed_curves_from_the_original_code_alone(tmp_path):
    """The seeds archive holds no history.csv: the figure shows the seeds' own code and prints."""
    V.fig_seed_curves(ORIGINALS, [], tmp_path / "c.pdf", root=REPO)
    assert (tmp_path / "c.png").stat().st_size > 10_000


def test_seed_curves_read_port_histories(tmp_path):
    """A run's history.csv (identity from the metrics.json beside it, or from its path) is drawn."""
    import json

    run = tmp_path / "results" / "runs" / "digits59" / "transfer-002-published" / "n500" / "seed0"
    run.mkdir(parents=True)
    pd.DataFrame({"epoch": [1, 2, 3], "step": [5, 10, 15], "test_accuracy": [0.5, 0.7, 0.8]}).to_csv(
        run / "history.csv", index=False)
    (run / "metrics.json").write_text(json.dumps({"run": {"method": "transfer-002-published", "labels": 500,
                                                          "seed": 0}}))
    stage = tmp_path / "results" / "pretrain" / "transfer-source-002-published" / "seed1"
    stage.mkdir(parents=True)
    pd.DataFrame({"epoch": [1], "step": [100], "test_accuracy": [0.97]}).to_csv(stage / "history.csv", index=False)
    h = V.load_port_histories([run / "history.csv", stage / "history.csv"])
    assert set(zip(h["method"], h["labels"], h["seed"])) == {("transfer-002-published", "500", 0),
                                                            ("transfer-source-002-published", "all", 1)}
    V.fig_seed_curves(ORIGINALS, [run / "history.csv", stage / "history.csv"], tmp_path / "c.pdf", root=REPO)
    assert (tmp_path / "c.png").exists()


def _pdf_font_sizes(pdf: Path) -> list[float]:
    """The font sizes (pt) of a matplotlib PDF's text, from its content streams' Tf operators."""
    import re
    import zlib

    sizes = []
    for m in re.finditer(rb"stream\r?\n(.*?)endstream", pdf.read_bytes(), re.S):
        try:
            sizes += [float(x) for x in re.findall(rb"/F\d+ ([\d.]+) Tf", zlib.decompress(m.group(1)))]
        except zlib.error:
            continue
    return sizes


def test_seed_curves_print_at_the_size_drawn(tmp_path):
    """Issue 28: ms.tex includes the figure at the text width, so its page must be no wider than the
    text (else it is shrunk and its 7-pt fonts print smaller), and its panels are named in words."""
    import re
    import subprocess

    import shutil
    if not shutil.which("pdfinfo"):
        pytest.skip("needs pdfinfo")
    V.fig_seed_curves(ORIGINALS, [], tmp_path / "c.pdf", root=REPO)
    info = subprocess.run(["pdfinfo", str(tmp_path / "c.pdf")], capture_output=True, text=True).stdout
    width = float(re.search(r"Page size:\s+([\d.]+)", info).group(1)) / 72
    text_width = 16.6 / 2.54  # A4 with 2.2 cm margins (ms.tex's geometry)
    assert 0.9 * text_width < width <= text_width
    sizes = _pdf_font_sizes(tmp_path / "c.pdf")
    assert sizes and min(sizes) * min(1.0, text_width / width) >= 7.0
    assert V.cite_words("002:283-292") == "source 002, lines 283–292" and V.cite_words("004:255") == "source 004, line 255"
    claims = {c["id"]: c for c in _claims()}
    title = V.panel_title("transfer500", claims)
    assert title.startswith("Transfer 0–4 to 5–9, 500 labels") and "(source 002, lines 283–292)" in title
    assert "transfer500" not in title and all(len(line) <= V.TITLE_CHARS for line in title.splitlines()[:-1])
