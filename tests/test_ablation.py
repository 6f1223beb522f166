"""The ablation and test-selection tables of the seeds preset, on small synthetic metrics tables."""

from __future__ import annotations

import pandas as pd
import pytest

from fewlabels.report import ablation as A


def rows(method, accs, **cols):
    """One metrics.csv row per seed 0, 1, ... (accuracies in %); extra columns as lists in %."""
    out = []
    for i, a in enumerate(accs):
        r = dict(task="mnist10", method=method, labels="900", seed=i, test_accuracy=a / 100, val_accuracy=a / 100,
                 split_sha256=f"s{i}")
        r.update({k: v[i] / 100 for k, v in cols.items()})
        out.append(r)
    return pd.DataFrame(out)


CLAIM = {"id": "sgan900", "claim": "SGAN: 88--90 %", "source": "seed 001 (x:1)", "protocol": {"preset": "seeds"},
         "run": {"task": "mnist10", "method": "sgan-001-published", "labels": 900}, "expect": {"range": [88, 90]}}


def test_training_quirks_come_from_variants_and_eval_quirks_from_the_same_model():
    df = pd.concat([
        rows("sgan-001-published", [80, 82], eval_bn_init_stats_test_accuracy=[90, 92],
             eval_all_on_test_accuracy=[80, 82], best_test_accuracy=[85, 86], test_at_best_val=[81, 83]),
        rows("sgan-001-no-d-unshared", [70, 72]),
        rows("sgan-001-corrected", [95, 96], eval_all_on_test_accuracy=[93, 94]),
        rows("supervised", [50, 50]),  # not part of the claim
    ])
    [r] = A.rows(df, [CLAIM, {**CLAIM, "id": "other", "run": {**CLAIM["run"], "method": "supervised"}}])
    assert [q for q, _ in r["alone"]][:2] == ["d-unshared", "bn_init_stats"]  # all_on/all_off are not quirks
    assert r["alone"][0][1].tolist() == [70, 72] and r["alone"][1][1].tolist() == [90, 92]
    assert r["published"].mean() == pytest.approx(81) and r["corrected"].mean() == pytest.approx(95.5)
    # every training quirk off at once: the corrected model with the test-time quirks on
    assert r["alone"][2][0].startswith("training quirks") and r["alone"][2][1].tolist() == [93, 94]
    assert r["selection"]["best test epoch"].mean() == pytest.approx(85.5)
    tex = A.ablation_table([r])
    assert "81.00 $\\pm$ 1.41 (2)" in tex and "95.50" in tex and "88--90" in tex
    assert "\\csname fl@abl/sgan900/d-unshared\\endcsname{71.00}" in A.macros([r])


def test_beats_claims_are_paired_differences_per_seed():
    claim = {"id": "siamese", "claim": "beats", "source": "seed 000 (x:1)", "protocol": {"preset": "seeds"},
             "run": {"task": "mnist10", "method": "siamese-000-published", "labels": 900},
             "expect": {"beats": "siamese-scratch-000-published"}}
    df = pd.concat([rows("siamese-000-published", [90, 91]), rows("siamese-scratch-000-published", [80, 85]),
                    rows("siamese-000-corrected", [92, 93]), rows("siamese-scratch-000-corrected", [90, 90])])
    [r] = A.rows(df, [claim])
    assert r["published"].tolist() == [10, 6] and r["corrected"].tolist() == [2, 3]


def test_no_seed_protocol_runs_say_so():
    assert "seeds" in A.ablation_table([]) and A.rows(rows("supervised", [1]), [CLAIM])[0]["published"].empty


def test_paired_cells_say_which_code_and_cpu_each_side_ran():
    claim = {"id": "siamese", "claim": "beats", "source": "seed 000 (x:1)", "protocol": {"preset": "seeds"},
             "run": {"task": "mnist10", "method": "siamese-000-published", "labels": 900},
             "expect": {"beats": "siamese-scratch-000-published"}}
    df = pd.concat([rows("siamese-000-published", [90, 91]).assign(code_git="a" * 40, cpu_capability="AVX2"),
                    rows("siamese-scratch-000-published", [80, 85]).assign(code_git="a" * 40, cpu_capability="AVX2"),
                    rows("siamese-000-corrected", [92, 93]).assign(code_git="a" * 40, cpu_capability="AVX2"),
                    rows("siamese-scratch-000-corrected", [90, 90]).assign(code_git="b" * 40, cpu_capability="AVX512")])
    [r] = A.rows(df, [claim])
    assert r["versions"]["published"] == ("code aaaaaaa, CPU AVX2 (both sides)", False)
    assert r["versions"]["corrected"][1] and "aaaaaaa vs bbbbbbb" in r["versions"]["corrected"][0]
    tex = A.ablation_table([r])
    assert "code aaaaaaa, CPU AVX2 (both sides)" in tex and "\\textbf{code aaaaaaa vs bbbbbbb" in tex
    # a claim that is not paired has no such note
    plain = rows("sgan-001-published", [80, 82]).assign(code_git="a" * 40, cpu_capability="AVX2")
    [r] = A.rows(plain, [CLAIM])
    assert r["versions"] == {} and "code aaaaaaa" not in A.ablation_table([r])


def test_siamese_steps_name_code_and_cpu_and_flag_a_mixed_pair():
    five = dict(labels="5000")
    df = pd.concat([rows("siamese-geron-frozen", [96, 96.5, 96.2]).assign(code_git="a" * 40, cpu_capability="AVX2", **five),
                    rows("siamese-geron-scratch", [94, 94.5, 94.6]).assign(code_git="b" * 40, cpu_capability="AVX2", **five)])
    [r] = A.siamese_steps(df)
    assert r["diff"].mixed
    assert "\\textbf{code aaaaaaa vs bbbbbbb, CPU AVX2: the two sides differ}" in A.siamese_steps_table([r])
