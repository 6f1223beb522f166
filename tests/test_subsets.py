"""Any subset of the study builds its PDF: figures, sections and sentences of methods the grid lacks
are left out of the document, with no placeholder (issue 11, part 1; issue 21, item 1)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from conftest import Background, make_sandbox
from fewlabels.report import texlog

TINY = {"epochs": 1, "steps_per_epoch": 3}


def write_config(sandbox, name: str, grid: list[dict], methods: dict) -> str:
    path = sandbox / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"preset": name, "seeds": [0], "data": {"source": "pypi", "pool_limit": 300},
                                    "grid": grid, "methods": methods}))
    return str(path)


def pdf_text(pdf) -> str:
    # one line per paragraph is not guaranteed: join the words so phrases survive line breaks
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return re.sub(r"\s+", " ", text)


def figures_made(sandbox) -> set[str]:
    return {p.stem for p in (sandbox / "paper/generated").glob("fig_*.pdf")}


needs_latex = pytest.mark.skipif(not (shutil.which("latexmk") and shutil.which("pdftotext")),
                                 reason="needs latexmk and pdftotext")


# The two subsets built to the PDF, each in its own sandbox. Both runs start together (module
# fixture) and overlap: each spends much of its time on one core (its chain of jobs is mostly one
# job long), and on a 2-core machine the pair takes little more than the longer of the two.
BUILDS = {
    "two-methods": ([{"task": "mnist10", "labels": [50], "methods": ["supervised", "aae"]}],
                    {"supervised": {**TINY, "hidden": [32, 32]}, "aae": {**TINY, "hidden": [32, 32]}}),
    "one-method": ([{"task": "digits59", "labels": [20], "methods": ["scratch"]}], {"scratch": TINY}),
}


@pytest.fixture(scope="module")
def builds(tmp_path_factory, mnist_path):
    runs = {}
    for name, (grid, methods) in BUILDS.items():
        workdir = make_sandbox(tmp_path_factory.mktemp(name))
        runs[name] = Background(workdir, "--configfile", write_config(workdir, name, grid, methods))
    yield runs
    for run in runs.values():
        run.stop()


def built(builds, name):
    """The sandbox of a finished build (the test fails with snakemake's output if it failed)."""
    builds[name].wait()
    return builds[name].workdir


@needs_latex
def test_supervised_and_aae_at_one_budget_build_the_paper(builds):
    sandbox = built(builds, "two-methods")
    # only the figures whose runs exist were drawn
    assert figures_made(sandbox) == {"fig_accuracy", "fig_aae_latent", "fig_aae_style", "fig_aae_recon"}
    text = pdf_text(sandbox / "paper/ms.pdf")
    assert "not run" not in text and "??" not in text
    # the methods that ran are described, the others are not in the document at all
    assert "(supervised)." in text and "(aae)." in text
    for absent in ("(sgan).", "(transfer, scratch).", "Siamese auxiliary task", "Transfer from digits 0"):
        assert absent not in text, absent
    assert "same code: fingerprint" in text  # the provenance appendix names one code version
    assert texlog.undefined_numbers((sandbox / "paper/ms.log").read_text()) == []


@needs_latex
def test_a_single_method_on_digits59_builds_the_paper(builds):
    sandbox = built(builds, "one-method")
    assert figures_made(sandbox) == {"fig_transfer"}  # no mnist10 run: not even the accuracy figure
    text = pdf_text(sandbox / "paper/ms.pdf")
    assert "not run" not in text and "??" not in text
    assert "(transfer, scratch)." in text  # scratch ran
    for method in ("supervised", "aae", "sgan", "sgan-fm"):
        assert f"({method})." not in text, method
    assert "Figure 1: Transfer from digits 0" in text  # the only figure is the first
    assert texlog.undefined_numbers((sandbox / "paper/ms.log").read_text()) == []


def test_the_wanted_figures_follow_the_grid(sandbox):
    """Dry runs: each subset asks for exactly the figures its runs can draw, and a grid of
    transfer alone needs its first stage but no scratch run."""
    cases = {
        "gans": ([{"task": "mnist10", "labels": [100], "methods": ["sgan-fm"]}],
                 {"fig_accuracy", "fig_gan_samples", "fig_gan_curves"}),
        "transfer": ([{"task": "digits59", "labels": [50], "methods": ["transfer"]}], {"fig_transfer"}),
        "siamese": ([{"task": "mnist10", "labels": [100], "methods": ["siamese"]}],
                    {"fig_accuracy", "fig_siamese", "fig_siamese_embedding"}),
    }
    # the three dry runs at once, each in its own sandbox (two snakemakes in one directory would
    # contend for its .snakemake/)
    runs = {}
    for name, (grid, _) in cases.items():
        workdir = make_sandbox(sandbox / name)
        runs[name] = Background(workdir, "-n", "--forceall", "--configfile", write_config(workdir, name, grid, {}),
                                timeout=300)
    try:
        for name, (grid, want) in cases.items():
            out = runs[name].wait().stdout
            asked = set(re.findall(r"paper/generated/(fig_\w+)\.pdf", out))
            assert asked == want, (name, asked)
            assert ("rule pretrain:" in out) == (name in ("transfer", "siamese")), name
    finally:
        for run in runs.values():
            run.stop()
