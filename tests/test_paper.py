"""The paper fits its preset (issue 21): no placeholder for what the preset did not run, no box
wider than the text, and the LaTeX log parser the check and these tests share."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from fewlabels.report import texlog

LOG = r"""(./generated/tab_results.tex
Overfull \hbox (121.19278pt too wide) in paragraph at lines 1--23
 [][] 
 []
) [4] (./generated/tab_paired.tex)
Underfull \hbox (badness 10000) in paragraph at lines 15--15
Overfull \hbox (5.4829pt too wide) in paragraph at lines 15--15
[]\OT1/cmr/m/n/8 ageron/handson-
Overfull \vbox (260.29506pt too high) has occurred while \output is active []
fewlabels warning: number mnist10/supervised/1000/m
ean undefined.
"""


def test_texlog_reads_overfull_boxes_and_undefined_numbers():
    boxes = texlog.overfull_boxes(LOG)
    assert [(b.kind, round(b.pt, 1)) for b in boxes] == [("hbox", 121.2), ("hbox", 5.5), ("vbox", 260.3)]
    assert boxes[0].where == "in paragraph at lines 1--23"
    assert boxes[1].context.startswith("[]\\OT1/cmr/m/n/8 ageron")
    assert [b.pt for b in texlog.too_large(LOG, 10)] == [pytest.approx(121.19278), pytest.approx(260.29506)]
    # TeX wraps log lines at 79 characters: the key is joined again
    assert texlog.undefined_numbers(LOG) == ["mnist10/supervised/1000/mean"]
    assert texlog.overfull_boxes("no boxes here\n") == [] and texlog.undefined_numbers("") == []


def test_texlog_check_fails_on_a_wide_box(tmp_path, capsys):
    log = tmp_path / "ms.log"
    log.write_text(LOG)
    with pytest.raises(SystemExit) as e:
        texlog.main([str(log), "--max-pt", "10"])
    assert "2 overfull box(es) over 10 pt, 1 undefined number(s)" in str(e.value)
    log.write_text("Overfull \\hbox (5.4829pt too wide) in paragraph at lines 15--15\n[]x\n")
    texlog.main([str(log), "--max-pt", "10"])  # no exit: within the limit
    assert "overfull hbox 5.5 pt" in capsys.readouterr().out


def pdf_text(pdf) -> str:
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return re.sub(r"\s+", " ", text)


@pytest.mark.skipif(not shutil.which("pdftotext"), reason="needs pdftotext")
def test_smoke_paper_has_no_placeholder_and_fits_the_page(smoke_run):
    """The smoke preset's PDF (the suite's end-to-end build): only what it ran, nothing that reads
    "not run", no undefined number, and no box more than 10 pt wider (or taller) than the page."""
    text = pdf_text(smoke_run / "paper/ms.pdf")
    assert "not run" not in text
    assert "??" not in text
    abstract = text.split("Abstract", 1)[1].split("1 Question", 1)[0]
    assert re.search(r"reaches \d+\.\d %", abstract), abstract  # the headline numbers (summary.py)
    log = (smoke_run / "paper/ms.log").read_text(errors="replace")
    assert texlog.undefined_numbers(log) == []
    assert texlog.too_large(log, 10.0) == []


REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def archive_inputs(name):
    import pandas as pd
    import yaml

    from fewlabels.report import fidelity
    df = pd.read_csv(REPO / "results" / name / "metrics.csv", dtype={"labels": str})
    claims = yaml.safe_load((REPO / "paper/claims.yaml").read_text())["claims"]
    return df, claims, fidelity.load(REPO / "paper/original_code.yaml")


def test_the_seeds_abstract_states_the_findings():
    """Issue 21, item 3: the seeds archive's abstract says which claims held, which did not and which
    were withheld, with at least three measured numbers and the largest quirk, as the scorecard has them."""
    from fewlabels.report import summary
    from fewlabels.report.claims import scorecard
    df, claims, originals = archive_inputs("archive-seeds")
    abstract, table = summary.write(df, claims, "seeds", originals)
    fs = summary.findings(claims, df, "seeds", originals)
    counts = {o: sum(f.outcome == o for f in fs) for o in (summary.HELD, summary.NOT_HELD, summary.WITHHELD)}
    # (since the re-runs under read_data_sets' split no port differs, so none is withheld: the count says 0)
    assert counts[summary.HELD] and counts[summary.NOT_HELD]
    assert (f"{counts[summary.HELD]} held, {counts[summary.NOT_HELD]} did not" in abstract
            and f"{counts[summary.WITHHELD]} had" in abstract)
    assert len(re.findall(r"\d+\.\d\\,\\%", abstract)) >= 3  # measured results, not words
    # every number stated is the scorecard's mean, and the withheld ones are the scorecard's withheld
    verdicts = {v.claim: v for v in scorecard(claims, df, "seeds") if v.stats is not None and v.stats.n}
    for f in fs:
        assert f"{f.ours:.1f}" in abstract and verdicts[f.claim].stats.mean == pytest.approx(f.ours)
    biggest = summary.quirk_effects(claims, df)[0]
    assert f"\\texttt{{{biggest.quirk.replace('_', chr(92) + '_')}}}" in abstract and f"{biggest.effect:+.1f}" in abstract
    assert r"\label{tab:summary}" in table and r"\toprule" in table and table.count(r" \\") >= len(fs) + 1


def test_a_preset_without_claims_gets_its_headline_numbers():
    from fewlabels.report import summary
    df, claims, originals = archive_inputs("archive")
    assert summary.findings(claims, df, "quick", originals) == []  # quick's runs test no claim's protocol
    abstract, table = summary.write(df, claims, "quick", originals)
    best = df[(df["task"] == "mnist10") & (df["labels"] == "1000") & (df["stage"] == "train")]
    # the best among methods that used no labels beyond the budget (siamese's pair stage did)
    within = best[best["labels_used"] <= 1000]
    top = (100 * within.groupby("method")["test_accuracy"].mean()).sort_values().index[-1]
    assert f"\\texttt{{{top}}}, reaches" in abstract and "supervised" in abstract
    assert "\\texttt{siamese}, reaches" not in abstract
    assert "headline numbers" in table
    # a higher method that used more labels is named with its number and why it is not counted
    siam = 100 * best[best["method"] == "siamese"]["test_accuracy"].mean()
    assert siam > 100 * within[within["method"] == top]["test_accuracy"].mean()
    assert f"\\texttt{{siamese}} reaches {siam:.1f}" in abstract and "is not counted" in abstract
    # only a paired difference whose interval excludes 0 (and that survives Holm's adjustment) is headlined
    for lo, hi in re.findall(r"\(\$([+-][\d.]+)\$ to \$([+-][\d.]+)\$", abstract):
        assert float(lo) > 0 or float(hi) < 0


def test_tables_speak_of_sources_and_keep_intervals_in_range():
    from fewlabels.report import tables
    assert tables.source_words("seed 004 (004_e9283f98c02d3284.txt:78)") == "source 004, line 78"
    assert tables.source_words("seed 003 (003_e52dbb3e96ae8bc0.txt:726-731, 1164)") == "source 003, lines 726--731, 1164"
    assert tables.source_words("Makhzani et al. 2015, Table 2") == "Makhzani et al. 2015, Table 2"
    assert "[0.0, 100.0]" in tables.cell(60.0, 30.0, 2) and "[59.8, 60.2]" in tables.cell(60.0, 0.2, 5)
    assert tables.device_words("cpu (x86_64, 1 threads)") == "one thread of an x86-64 CPU"
    assert tables.device_words("NVIDIA H200") == "NVIDIA H200"
    df, claims, originals = archive_inputs("archive-seeds")
    from fewlabels.report.claims import scorecard
    text = tables.scorecard_table(scorecard(claims, df, "seeds"))
    assert ".txt" not in text and "source 004" in text
    assert all(v.stats is None or v.stats.n for v in tables.scored(scorecard(claims, df, "seeds")))


def test_the_appendix_prints_each_variants_values():
    import yaml

    from fewlabels.report import hparams
    cfg = yaml.safe_load((REPO / "results/archive-seeds/config.yaml").read_text())
    variants = hparams.variant_rows(cfg)
    aae = next(v for v in variants if v["variant"] == "aae-004-published")
    assert aae["method"] == "aae" and aae["hparams"]["epochs"] == cfg["variants"]["aae-004-published"]["hparams"]["epochs"]
    tex = hparams.latex(hparams.grid_methods(cfg), hparams.preset_overrides(cfg, hparams.grid_methods(cfg)), variants)
    row = next(line for line in tex.splitlines() if line.startswith(r"\texttt{aae-004-published}"))
    assert r"\texttt{epochs} = \texttt{50}" in row and r"\texttt{steps\_per\_epoch} = \texttt{200}" in row
    assert "->" not in tex and '"' not in re.sub(r"\\texttt\{[^}]*\}", "", tex)  # a " only in typewriter type


def test_prose_states_no_verdict_of_its_own():
    """Issue 28, item 1: a sentence of ms.tex about a claim's outcome reads it from the scorecard's
    macros (\\fl{claim/<id>/verdict}, \\fl{fid/<claim>/status}); typed outcome words outside the rule
    paragraphs would go stale when the runs change."""
    tex = (REPO / "paper/ms.tex").read_text()
    prose = tex.split(r"\section{What made each source's number}", 1)[1].split(r"\bibliographystyle", 1)[0]
    prose = re.sub(r"\\fl\{[^}]*\}", "", prose)
    for words in ("reproduced", "port matches", "no detectable difference", "in line with", "not cross",
                  "keeps the gain", "cost the most", "changes nothing", "barely"):
        assert words not in prose, words
    # every claim id that ms.tex asks a verdict of is a claim
    ids = {c["id"] for c in __import__("yaml").safe_load((REPO / "paper/claims.yaml").read_text())["claims"]}
    asked = set(re.findall(r"\\fl\{claim/([^/}]+)/verdict\}", tex))
    assert asked and asked <= ids


def test_the_effect_and_outcome_macros_are_the_runs():
    """\\fl{eff/<claim>/<quirk>} is the quirk off alone minus as published (means, points), and each
    judged claim has its outcome; the sources' own spread names its claim in words."""
    from fewlabels.report import ablation, fidelity, tables
    from fewlabels.report.claims import scorecard
    df, claims, originals = archive_inputs("archive-seeds")
    effects = "\n".join(tables.effect_macros(df, claims))
    for r in ablation.rows(df, claims):
        for name, v in r["alone"]:
            if len(v) and len(r["published"]) and not name.startswith("training quirks"):
                want = f"{v.mean() - r['published'].mean():+.2f}"
                assert f"fl@eff/{r['claim']['id']}/{name}\\endcsname{{{want}}}" in effects
    assert "training quirks" not in effects
    verdicts = scorecard(claims, df, "seeds")
    tex = tables.macros(df, verdicts, "seeds")
    judged = [v for v in verdicts if v.outcome]
    assert judged and all(f"fl@claim/{v.id}/outcome\\endcsname{{{v.outcome}}}" in tex for v in judged)
    fid = fidelity.fidelity(claims, df.assign(preset="seeds"), originals)
    spread = "\n".join(tables.spread_macros(fid, claims))
    widest = max((f for f in fid if f.original.sd is not None), key=lambda f: f.original.sd)
    assert f"{{{widest.original.sd:.1f}}}" in spread and widest.claim not in spread.split("claim\\endcsname")[1]
    assert tables.source_words("source 002 (002_0e661fa08b2a740e.txt:289-292)") == "source 002, lines 289--292"


def test_published_numbers_in_prose_come_from_the_claims_file():
    """The papers' numbers the text quotes (Makhzani's 98.40, Salimans' 99.07) are \\fl{claim/<id>/expected}
    macros written from paper/claims.yaml, not digits typed into ms.tex."""
    from fewlabels.report import tables
    from fewlabels.report.claims import scorecard
    tex = (REPO / "paper/ms.tex").read_text()
    claims = __import__("yaml").safe_load((REPO / "paper/claims.yaml").read_text())["claims"]
    refs = {c["id"]: c["expect"] for c in claims if "reference" in c["expect"]}
    for cid in ("aae1000paper", "fmgan100"):
        assert f"\\fl{{claim/{cid}/expected}}" in tex
        assert f"{refs[cid]['reference']:.2f}" not in tex
    df, claims, _ = archive_inputs("archive-seeds")
    macros = tables.macros(df, scorecard(claims, df, "seeds"), "seeds")
    e = refs["aae1000paper"]
    assert f"fl@claim/aae1000paper/expected\\endcsname{{{e['reference']:.2f} $\\pm$ {e['std']:.2f}}}" in macros


def test_only_a_short_schedule_preset_calls_its_numbers_a_build_check():
    """The quick archive's abstract says its schedules are short and how many seeds it has; the same runs
    under the compare preset's name do not (its schedules train until validation stops improving)."""
    from fewlabels.report import summary
    df, claims, originals = archive_inputs("archive")
    quick, _ = summary.write(df, claims, "quick", originals)
    seeds = df[df["stage"] == "train"]["seed"].nunique()
    assert f"short schedules (a few per cent of each published one) and {seeds} seeds" in quick
    compare, _ = summary.write(df, claims, "compare", originals)
    assert "short schedules" not in compare and "reaches" in compare


def test_a_leftover_piece_of_another_preset_stays_out_of_the_build(tmp_path):
    """ms.tex includes the compare section wherever generated/macros_compare.tex exists; a quick build after
    a compare build must not pick up the file that build left: the staged copy leaves out what this
    preset does not make and keeps everything else."""
    from fewlabels.report import paper
    src = tmp_path / "paper"
    (src / "generated").mkdir(parents=True)
    (src / "ms.tex").write_text("x")
    (src / "refs.bib").write_text("@misc{a}")
    for name in ("macros.tex", "macros_compare.tex", "tab_compare.tex", "fig_accuracy.pdf"):
        (src / "generated" / name).write_text(name)
    staged = paper.stage(src / "ms.tex", tmp_path / "build", exclude=["macros_compare.tex", "tab_compare.tex"])
    assert staged.read_text() == "x" and (staged.parent / "refs.bib").exists()
    assert sorted(p.name for p in (staged.parent / "generated").iterdir()) == ["fig_accuracy.pdf", "macros.tex"]
    assert (src / "generated" / "macros_compare.tex").exists()  # the checkout's files are left as they are
