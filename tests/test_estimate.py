"""The time estimate scripts/reproduce.sh prints before a run (issue 11, part 5)."""

from __future__ import annotations

import pytest

from fewlabels.report import estimate as E

TABLE = {"supervised": 100.0, "transfer-source": 10.0, "transfer": 1.0, "sgan": 500.0}


def small(**extra):
    cfg = {"preset": "tiny", "seeds": [0, 1], "data": {},
           "grid": [{"task": "mnist10", "labels": [100], "methods": ["supervised"]}],
           "methods": {"supervised": {"epochs": 2, "steps_per_epoch": 10}}}
    return {**cfg, **extra}


def test_estimate_sums_steps_times_ms_per_step_over_runs():
    est = E.estimate(small(), TABLE, jobs=2)
    assert (est["jobs"], est["runs"], est["first_stages"]) == (2, 2, 0)
    per_run = 2 * 10 * 0.100 + E.JOB_OVERHEAD_S
    assert est["cpu_s"] == pytest.approx(2 * per_run)
    assert est["wall_s"] == pytest.approx(per_run)  # two jobs at a time
    assert est["unknown"] == []


def test_evaluations_count_once_per_epoch_and_at_the_end(tmp_path):
    # the eval_ms column of benchmark.py's table: one evaluation per epoch, FINAL_EVALS after the last
    table = tmp_path / "bench.tsv"
    table.write_text("# comment\nmethod\tms_per_step\tsamples_per_s\teval_ms\nsupervised\t100\t1000\t400\n")
    assert E.load_eval_table(table) == {"supervised": 400.0}
    est = E.estimate(small(), E.load_table(table), jobs=1, eval_ms=E.load_eval_table(table))
    per_run = 2 * 10 * 0.100 + (2 + E.FINAL_EVALS) * 0.400 + E.JOB_OVERHEAD_S
    assert est["cpu_s"] == pytest.approx(2 * per_run)
    old = tmp_path / "old.tsv"  # a table without the column: training steps only, as before
    old.write_text("method\tms_per_step\tsamples_per_s\nsupervised\t100\t1000\n")
    assert E.load_eval_table(old) == {}


def test_first_stages_once_per_seed_and_a_null_steps_per_epoch_is_one_pass():
    cfg = small(grid=[{"task": "digits59", "labels": [50, 500], "methods": ["transfer"]}],
                methods={"transfer": {"epochs": 1, "steps_per_epoch": 5}},
                pretrain={"transfer-source": {"epochs": 2}})
    est = E.estimate(cfg, TABLE, jobs=1)
    assert (est["runs"], est["first_stages"]) == (4, 2)
    # transfer-source: every digit 0-4 image of the pool per epoch, batches of 100
    source = 2 * (E.POOL_SIZES["digits04"] // 100) * 0.010 + E.JOB_OVERHEAD_S
    assert est["by_method"]["transfer-source"] == pytest.approx(2 * source)
    assert est["by_method"]["transfer"] == pytest.approx(4 * (5 * 0.001 + E.JOB_OVERHEAD_S))


def test_unknown_methods_get_the_slowest_rate_and_are_named():
    cfg = small(grid=[{"task": "mnist10", "labels": [100], "methods": ["aae"]}],
                methods={"aae": {"epochs": 1, "steps_per_epoch": 4}}, seeds=[0])
    est = E.estimate(cfg, TABLE, jobs=1)
    assert est["unknown"] == ["aae"]
    assert est["cpu_s"] == pytest.approx(4 * 0.5 + E.JOB_OVERHEAD_S)
    text = E.report(est, "tiny", cuda=False)
    assert "aae" in text and "conservative" in text and "WARNING" not in text


def test_paper_preset_without_cuda_warns_and_points_elsewhere():
    cfg = E.load_config([])  # config.yaml: the paper preset
    est = E.estimate(cfg, E.load_table(), jobs=2)
    assert est["runs"] >= 25 and est["wall_s"] > 86400  # days on a 2-core CPU
    text = E.report(est, cfg["preset"], cuda=False)
    assert "WARNING" in text and "quick" in text and "seeds" in text and "archive" in text
    assert "WARNING" not in E.report(est, cfg["preset"], cuda=True)


def test_presets_merge_over_config_yaml_like_snakemake(tmp_path):
    over = tmp_path / "p.yaml"
    over.write_text("preset: p\nmethods:\n  supervised:\n    epochs: 1\n")
    cfg = E.load_config([over])
    assert cfg["preset"] == "p" and cfg["methods"]["supervised"]["epochs"] == 1
    assert cfg["methods"]["supervised"]["steps_per_epoch"] == E.load_config([])["methods"]["supervised"]["steps_per_epoch"]


def test_group_runs_pay_one_start_up_per_group_and_wait_for_the_longest_job():
    cfg = small(group_runs=True, grid=[{"task": "mnist10", "labels": [100], "methods": ["supervised"]},
                                       {"task": "mnist10", "labels": [100], "methods": ["sgan"], "seeds": [0]}],
                methods={"supervised": {"epochs": 2, "steps_per_epoch": 10}, "sgan": {"epochs": 1, "steps_per_epoch": 2}})
    est = E.estimate(cfg, TABLE, jobs=4)
    assert est["jobs"] == 2  # supervised: one group of two seeds; sgan (its own seeds): one job per run
    group = 2 * (2 * 10 * 0.100) + E.JOB_OVERHEAD_S
    sgan = 2 * 0.500 + E.JOB_OVERHEAD_S
    assert est["cpu_s"] == pytest.approx(group + sgan)
    assert est["wall_s"] == pytest.approx(group)  # four jobs at a time, but the group's runs go in turn
    ungrouped = E.estimate({**cfg, "group_runs": False}, TABLE, jobs=4)
    assert ungrouped["jobs"] == 3 and ungrouped["cpu_s"] == pytest.approx(group + sgan + E.JOB_OVERHEAD_S)


def test_bf16_runs_take_the_bf16_rows(tmp_path, monkeypatch):
    """benchmark.py's table has a row per method and precision; a run that trains in bf16 here (asked for,
    or auto on a CPU with bf16 instructions) is estimated from the bf16 row, the rest from fp32's."""
    from fewlabels import precision as P

    table = tmp_path / "bench.tsv"
    table.write_text("# comment\nmethod\tprecision\tms_per_step\tsamples_per_s\teval_ms\tspeedup\n"
                     "supervised\tfp32\t100\t1000\t400\t1.00\nsupervised\tbf16\t40\t2500\t100\t2.50\n")
    assert E.load_table(table) == {"supervised": 100.0} and E.load_table(table, "bf16") == {"supervised": 40.0}
    assert E.load_eval_table(table, "bf16") == {"supervised": 100.0}
    bf16 = (E.load_table(table, "bf16"), E.load_eval_table(table, "bf16"))

    def per_run(ms, ev):
        return 2 * 10 * ms / 1000 + (2 + E.FINAL_EVALS) * ev / 1000 + E.JOB_OVERHEAD_S

    for precision, flags, ms, ev in (("fp32", {"avx512_bf16"}, 100, 400), ("bf16", set(), 40, 100),
                                     ("auto", {"amx_bf16"}, 40, 100), ("auto", {"avx2"}, 100, 400)):
        monkeypatch.setattr(P, "cpu_flags", lambda: frozenset(flags))
        cfg = small(methods={"supervised": {"epochs": 2, "steps_per_epoch": 10, "precision": precision}})
        est = E.estimate(cfg, E.load_table(table), jobs=1, eval_ms=E.load_eval_table(table), bf16=bf16)
        assert est["cpu_s"] == pytest.approx(2 * per_run(ms, ev)), (precision, flags)
    # the committed table (benchmark.py's) still reads, in both precisions
    assert E.load_table()["aae"] > 0 and set(E.load_table(precision="bf16")) <= set(E.load_table())


def test_the_gpu_estimate_groups_seeds_and_says_what_is_measured_and_what_extrapolated():
    """One GPU: each cell's seeds in one job; a method with a measured GPU rate uses it, another its CPU step
    time times the largest measured GPU/CPU ratio (never below the floor); evaluations at the GPU's rate; the
    jobs' total over the measured sharing gain, and never less than the longest job."""
    cfg = small(grid=[{"task": "mnist10", "labels": [100], "methods": ["supervised", "sgan"]}],
                methods={"supervised": {"epochs": 2, "steps_per_epoch": 10},
                         "sgan": {"epochs": 2, "steps_per_epoch": 1000}})
    gpu = {"sgan": {"ms": 5.0, "eval_ms": 50.0, "where": "made up"}}
    est = E.gpu_estimate(cfg, gpu, TABLE)
    assert est["jobs"] == 2 and est["measured"] == ["sgan"] and est["extrapolated"] == ["supervised"]
    assert est["ratio"] == pytest.approx(5.0 / 500.0) and est["ratio_from"] == "sgan"
    evals = 2 * (2 + E.FINAL_EVALS) * 0.050  # two runs a job
    sgan = 2 * 2000 * 0.005 + evals + E.GPU_JOB_OVERHEAD_S
    sup = 2 * 20 * max(E.GPU_FLOOR_MS, 100.0 * 0.01) / 1000 + evals + E.GPU_JOB_OVERHEAD_S
    assert est["alone_s"] == pytest.approx(sgan + sup)
    assert est["wall_s"] == pytest.approx(max((sgan + sup) / E.GPU_SHARING, sgan))
    text = E.gpu_report(est, "tiny")
    assert "measured on an H200" in text and "sgan" in text and "extrapolated" in text and "supervised" in text
    with pytest.raises(ValueError, match="nothing to extrapolate"):
        E.gpu_estimate(cfg, {"other": {"ms": 1.0, "eval_ms": 1.0, "where": "x"}}, TABLE)


def test_the_project_gpu_table_reads_and_the_cli_prints_a_gpu_estimate(capsys):
    table = E.load_gpu_table()
    assert {"sgan", "sgan-fm"} <= set(table) and all(v["ms"] > 0 for v in table.values())
    E.main(["--gpu", "--cuda", "no"])
    out = capsys.readouterr().out
    assert "preset paper on one GPU:" in out and "measured on an H200" in out and "extrapolated" in out
