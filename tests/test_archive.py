"""Reproducing without retraining: `snakemake archive` makes results/archive from a finished
run, and `--configfile results/archive/config.yaml` (archive: true) rebuilds the figures,
tables and PDF from it with no training job."""

from __future__ import annotations

import re
import shutil
import sys

import pandas as pd
import pytest
import torch
import yaml

from conftest import snakemake
from fewlabels import archive

TRAINING = {"train", "pretrain", "aggregate", "benchmarks"}


def executed(output: str) -> set[str]:
    """Rule names of the jobs a snakemake run or dry run lists."""
    return set(re.findall(r"^(?:local)?rule (\w+):", output, re.M))


# ---- the module, on small files ---------------------------------------------------------

@pytest.fixture
def results(tmp_path):
    r = tmp_path / "results"
    (r / "runs/mnist10/m/n10/seed0").mkdir(parents=True)
    (r / "metrics.csv").write_text("task,method\nmnist10,m\n")
    torch.save({"modules": {"net": {"w": torch.randn(3, 3), "steps": torch.tensor(7)}}},
               r / "runs/mnist10/m/n10/seed0/model.pt")
    return r


def test_create_and_restore_round_trip(results, tmp_path):
    files = [results / "metrics.csv", results / "runs/mnist10/m/n10/seed0/model.pt"]
    arc = results / "archive"
    archive.create(files, arc, {"seeds": [0], "grid": []})
    assert (arc / "config.yaml").exists() and yaml.safe_load((arc / "config.yaml").read_text())["archive"] is True
    assert set(archive.manifest(arc)) == {"metrics.csv", "runs/mnist10/m/n10/seed0/model.pt"}
    archive.restore(arc, "metrics.csv", tmp_path / "back.csv")
    assert (tmp_path / "back.csv").read_text() == (results / "metrics.csv").read_text()
    # checkpoints are kept in half precision; integer tensors unchanged; loading casts back
    archive.restore(arc, "runs/mnist10/m/n10/seed0/model.pt", tmp_path / "model.pt")
    got = torch.load(tmp_path / "model.pt", weights_only=False)["modules"]["net"]
    orig = torch.load(files[1], weights_only=False)["modules"]["net"]
    assert got["w"].dtype == torch.float16 and torch.allclose(got["w"].float(), orig["w"], atol=1e-2)
    assert torch.equal(got["steps"], orig["steps"])
    net = torch.nn.Linear(3, 3, bias=False)
    net.load_state_dict({"weight": got["w"]})
    assert net.weight.dtype == torch.float32


def test_each_preset_keeps_its_own_archive(results, tmp_path):
    """The seeds preset archives into results/archive-seeds beside the quick one: the archive's
    config.yaml names its folder, so archive mode reads it back from there."""
    arc = results / "archive-seeds"
    archive.create([results / "metrics.csv"], arc, {"seeds": [0], "grid": [], "archive_dir": "ignored"})
    made = yaml.safe_load((arc / "config.yaml").read_text())
    assert made["archive_dir"] == arc.as_posix() and made["archive"] is True
    assert f"--configfile {arc.as_posix()}/config.yaml" in (arc / "config.yaml").read_text()
    archive.check_config({"seeds": [0], "grid": []}, arc)  # the grid it was made with: accepted
    assert not (results / "archive").exists()


def test_restore_refuses_damaged_or_unknown_files(results, tmp_path):
    arc = results / "archive"
    archive.create([results / "metrics.csv"], arc, {})
    (arc / "metrics.csv").write_text("version https://git-lfs.github.com/spec/v1\n")
    with pytest.raises(archive.ArchiveError, match="damaged"):
        archive.restore(arc, "metrics.csv", tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()
    with pytest.raises(archive.ArchiveError, match="not in"):
        archive.restore(arc, "runs/other/model.pt", tmp_path / "y.pt")
    with pytest.raises(archive.ArchiveError, match="only files under results"):
        archive.create([tmp_path / "elsewhere.csv"], arc, {})


def test_archive_mode_needs_the_archives_grid(results):
    arc = results / "archive"
    with pytest.raises(archive.ArchiveError, match="no archive"):
        archive.check_config({"seeds": [0]}, arc)
    archive.create([results / "metrics.csv"], arc, {"seeds": [0, 1], "grid": [{"task": "mnist10"}]})
    archive.check_config({"seeds": [0, 1], "grid": [{"task": "mnist10"}]}, arc)
    with pytest.raises(archive.ArchiveError, match="'seeds'"):
        archive.check_config({"seeds": [0], "grid": [{"task": "mnist10"}]}, arc)


# ---- the workflow ------------------------------------------------------------------------

@pytest.mark.slow
def test_paper_from_the_archive_without_training(smoke_run, sandbox):
    made = snakemake(smoke_run, "archive", "--configfile", "presets/smoke.yaml")
    assert "archive" in executed(made.stdout + made.stderr)
    arc = smoke_run / "results" / "archive"
    listed = archive.manifest(arc)
    assert "metrics.csv" in listed and "benchmarks.csv" in listed
    # the checkpoints the figures read are archived, nothing is archived twice, and it is small
    assert any(p.endswith("/model.pt") for p in listed)
    assert sum(n for n, _ in listed.values()) < 60e6
    assert (arc / "metrics.csv").read_bytes() == (smoke_run / "results/metrics.csv").read_bytes()

    # a fresh checkout with only the archive: the run restores the archived files and builds the
    # paper from them, and no training job runs (one real run shows what a dry run would plan and
    # more: a separate `-n` first cost another snakemake start)
    shutil.copytree(arc, sandbox / "results" / "archive")
    run = snakemake(sandbox, "--configfile", "results/archive/config.yaml")
    ran = executed(run.stdout + run.stderr)
    assert "restore" in ran and "paper" in ran, ran
    assert not ran & TRAINING, ran
    assert not (sandbox / "logs" / "train").exists() and not (sandbox / "benchmarks").exists()
    assert (sandbox / "paper/ms.pdf").read_bytes()[:5] == b"%PDF-"
    for tab in ("tab_results.tex", "tab_scorecard.tex", "macros.tex", "tab_benchmarks.tex"):
        assert (sandbox / "paper/generated" / tab).read_text() == (smoke_run / "paper/generated" / tab).read_text()
    figs = {p.name for p in (smoke_run / "paper/generated").glob("fig_*.pdf")}
    assert figs and figs == {p.name for p in (sandbox / "paper/generated").glob("fig_*.pdf")}
    restored = pd.read_csv(sandbox / "results/metrics.csv")
    assert len(restored) == len(pd.read_csv(smoke_run / "results/metrics.csv"))


def test_archive_mode_with_another_grid_is_a_clear_error(smoke_run, sandbox):
    if not (smoke_run / "results/archive/config.yaml").exists():
        snakemake(smoke_run, "archive", "--configfile", "presets/smoke.yaml")
    # the smoke archive where the paper preset keeps its own: the bare command in archive mode asks for the
    # paper preset's grid, which that archive was not made with
    shutil.copytree(smoke_run / "results/archive", sandbox / "results/archive-paper")
    proc = snakemake(sandbox, "-n", "--config", "archive=true", check=False)
    assert proc.returncode != 0
    assert "--configfile results/archive-paper/config.yaml" in proc.stdout + proc.stderr


def test_archive_mode_leaves_out_a_figure_whose_checkpoint_the_archive_lacks(smoke_run, sandbox):
    """An archive merged cell by cell can lack a checkpoint a figure reads (the compare archive lacked
    aae's): the archive-mode build plans no job for that figure and says why, instead of failing in
    restore; the other figures and the paper stay planned."""
    if not (smoke_run / "results/archive/config.yaml").exists():
        snakemake(smoke_run, "archive", "--configfile", "presets/smoke.yaml")
    shutil.copytree(smoke_run / "results/archive", sandbox / "results/archive")
    aae = sorted((sandbox / "results/archive/runs/mnist10/aae").glob("n*/seed0/model.pt"))
    assert aae, "the smoke archive holds aae's checkpoint"
    aae[-1].unlink()
    run = snakemake(sandbox, "-n", "--configfile", "results/archive/config.yaml")
    out = run.stdout + run.stderr
    planned = executed(out)
    assert "fig_aae" not in planned and {"paper", "fig_accuracy"} <= planned, planned
    assert re.search(r"fig_aae_latent left out, results/archive does not hold \S*aae\S*model\.pt", out), out[-2000:]


def test_archive_update_merges_a_cell_with_what_a_whole_archive_holds_of_it(smoke_run, sandbox):
    """scripts/archive_update.sh on one re-run cell of an archive that lacked its checkpoint (one merged
    cell by cell): the cell's model.pt, which the AAE figures read, joins the archive with its
    history.csv, and a run trained in a group job (group_runs) takes its group's benchmark file."""
    import subprocess

    from conftest import REPO, snakemake_env

    (sandbox / "scripts").symlink_to(REPO / "scripts")
    for part in ("results/runs", "results/pretrain", "benchmarks"):
        shutil.copytree(smoke_run / part, sandbox / part)
    shutil.copy(smoke_run / "results/metrics.csv", sandbox / "results/metrics.csv")
    shutil.copy(smoke_run / "results/benchmarks.csv", sandbox / "results/benchmarks.csv")
    run = next((sandbox / "results/runs/mnist10/aae").glob("n*/seed0"))
    rel = run.relative_to(sandbox / "results")
    # an archive that holds the tables and this run's history, not its checkpoint
    arch = sandbox / "results/archive"
    archive.create([sandbox / "results/metrics.csv", sandbox / "results/benchmarks.csv", run / "history.csv"],
                   arch, {"preset": "smoke"})
    assert f"{rel}/model.pt" not in archive.manifest(arch)
    # as if the cell had run in a group job: only its group's benchmark file
    bench = sandbox / "benchmarks/train" / f"{rel.relative_to('runs')}.tsv"
    group = sandbox / "benchmarks/train_group" / f"{rel.parent.relative_to('runs')}.tsv"
    group.parent.mkdir(parents=True)
    bench.rename(group)
    env = {**snakemake_env(), "PYTHON": sys.executable}  # snakemake_env puts this interpreter's snakemake first
    proc = subprocess.run(["bash", "scripts/archive_update.sh", "presets/smoke.yaml", f"results/{rel}/metrics.json"],
                          cwd=sandbox, env=env, text=True, capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    listed = archive.manifest(arch)
    assert {f"{rel}/model.pt", f"{rel}/history.csv"} <= set(listed)
    bench_rows = pd.read_csv(arch / "benchmarks.csv")
    assert (bench_rows["method"] == "aae").sum() == 1 and bench_rows.loc[bench_rows["method"] == "aae", "runs_per_job"].item() == 1


def test_update_merges_re_runs_of_some_cells(tmp_path):
    """Re-running only the cells a change touches: their rows and files replace the archived ones, the
    rest stays, and the manifest says the archive now mixes versions of the code."""
    import pandas as pd

    from fewlabels import archive as A

    res = tmp_path / "results"
    (res / "runs/t/m/n10/seed0").mkdir(parents=True)
    key = {"stage": "train", "task": "t", "labels": "10"}
    pd.DataFrame([{**key, "method": "m", "seed": 0, "test_accuracy": 0.5, "code_sha256": "old"},
                  {**key, "method": "m", "seed": 1, "test_accuracy": 0.6, "code_sha256": "old"}]).to_csv(
        res / "metrics.csv", index=False)
    pd.DataFrame([{**key, "method": "m", "seed": s, "wall_s": 1.0} for s in (0, 1)]).to_csv(res / "benchmarks.csv", index=False)
    (res / "runs/t/m/n10/seed0/history.csv").write_text("old\n")
    arch = tmp_path / "archive"
    A.create([res / "metrics.csv", res / "benchmarks.csv", res / "runs/t/m/n10/seed0/history.csv"], arch, {"grid": 1})
    new = tmp_path / "new" / "results"
    (new / "runs/t/m/n10/seed0").mkdir(parents=True)
    pd.DataFrame([{**key, "method": "m", "seed": 0, "test_accuracy": 0.9, "code_sha256": "new"},
                  {**key, "method": "m2", "seed": 0, "test_accuracy": 0.7, "code_sha256": "new"}]).to_csv(
        new / "metrics.csv", index=False)
    pd.DataFrame([{**key, "method": "m", "seed": 0, "wall_s": 2.0}]).to_csv(new / "benchmarks.csv", index=False)
    (new / "runs/t/m/n10/seed0/history.csv").write_text("new\n")
    A.update(arch, new / "metrics.csv", new / "benchmarks.csv", [new / "runs/t/m/n10/seed0/history.csv"], {"grid": 2})
    got = pd.read_csv(arch / "metrics.csv").sort_values(["method", "seed"])
    assert list(zip(got["method"], got["seed"], got["test_accuracy"])) == [("m", 0, 0.9), ("m", 1, 0.6), ("m2", 0, 0.7)]
    assert sorted(pd.read_csv(arch / "benchmarks.csv")["wall_s"]) == [1.0, 2.0]
    assert (arch / "runs/t/m/n10/seed0/history.csv").read_text() == "new\n"
    assert "MIXES 2 versions" in (arch / "MANIFEST.tsv").read_text()
    assert "grid: 2" in (arch / "config.yaml").read_text()
    bad = tmp_path / "bad.csv"
    pd.DataFrame([{"method": "m"}]).to_csv(bad, index=False)
    with pytest.raises(A.ArchiveError, match="run columns"):
        A.update(arch, bad, new / "benchmarks.csv", [], {"grid": 2})
