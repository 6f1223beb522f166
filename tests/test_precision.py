"""``precision: fp32 | bf16 | auto`` (fewlabels.precision, issue 25 item 1): the setting's checks, what
``auto`` resolves to, that a bf16 run multiplies in bf16 while its weights and optimiser state stay fp32
and it back-propagates outside autocast, that the resolved value is in metrics.json, metrics.csv and the
checkpoint's fingerprint, that stacked runs refuse it, and that fp32 is the computation it was."""

from __future__ import annotations

import contextlib
import json

import pytest
import torch

from fewlabels import precision as P
from fewlabels.data import make_split
from fewlabels.methods import get
from fewlabels.methods.base import HParamError, resolve_hparams
from fewlabels.report import aggregate
from fewlabels.training import trainer as T
from fewlabels.training.build import deterministic
from fewlabels.training.group import run_group

POOL = 300
TINY = {"epochs": 3, "steps_per_epoch": 10, "batch_size": 50, "hidden": [64, 32], "dropout": 0.2, "init_std": 0.05}
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def split(tmp_path_factory, mnist_path):
    path = tmp_path_factory.mktemp("precision") / "split.npz"
    make_split(mnist_path, path, "mnist10", 100, 0)
    return path


def kw(mnist_path, split, tmp_path, **hp):
    return dict(method="supervised", task="mnist10", labels=100, seed=0, mnist=mnist_path, split=split,
                out=tmp_path / "out", hparams={**TINY, **hp}, device="cpu", pool_limit=POOL)


def files(out):
    m = json.loads((out / "metrics.json").read_text())
    return m, (out / "history.csv").read_text(), torch.load(out / "model.pt", weights_only=False)["modules"]


def strip_timing(history: str) -> list[list[str]]:
    rows = [line.split(",") for line in history.splitlines()]
    drop = rows[0].index("train_s")
    return [r[:drop] + r[drop + 1:] for r in rows]


# ---------------------------------------------------------------------------------------------- the setting

@pytest.mark.parametrize("bad", ["fp16", "BF16", "float32", ""])
def test_a_bad_value_is_a_clear_error(bad):
    with pytest.raises(HParamError, match=r"precision must be one of \['fp32', 'bf16', 'auto'\]"):
        resolve_hparams(get("aae"), {"precision": bad})
    with pytest.raises(HParamError, match="precision"):
        resolve_hparams(get("supervised"), {"precision": 16})  # a number, not a name
    with pytest.raises(ValueError, match="precision must be one of"):
        P.resolve(bad, CPU)


def test_every_method_takes_it_and_defaults_to_fp32():
    from fewlabels.methods import METHODS, PRETRAIN

    for name in [*METHODS, *PRETRAIN]:
        assert resolve_hparams(get(name), None)["precision"] == "fp32", name
        assert resolve_hparams(get(name), {"precision": "auto"})["precision"] == "auto", name


def test_cpu_flags_are_read_from_cpuinfo():
    text = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile\n\n" \
           "processor\t: 1\nflags\t\t: fpu\n"
    assert P.parse_flags(text) == {"fpu", "avx2", "avx512f", "avx512_bf16", "amx_tile"}
    assert P.parse_flags("processor : 0\nFeatures : fp asimd bf16\n") == {"fp", "asimd", "bf16"}
    assert P.parse_flags("no flags here") == frozenset()


@pytest.mark.parametrize("flags,expected", [
    ({"avx2", "avx512f", "avx512_bf16"}, "bf16"),      # AVX-512 BF16 (the AMD EPYC of the issue)
    ({"avx2", "amx_tile", "amx_bf16"}, "bf16"),        # AMX (Sapphire Rapids)
    ({"avx2", "fma"}, "fp32"),                         # AVX2 only: bf16 is emulated, slower
    (set(), "fp32"),                                   # no /proc/cpuinfo (macOS, Windows)
])
def test_auto_on_the_cpu_follows_its_bf16_flags(monkeypatch, flags, expected):
    monkeypatch.setattr(P, "cpu_flags", lambda: frozenset(flags))
    assert P.resolve("auto", CPU) == expected
    assert P.resolve("fp32", CPU) == "fp32" and P.resolve("bf16", CPU) == "bf16"  # explicit: as asked


@pytest.mark.parametrize("native,expected", [(True, "bf16"), (False, "fp32")])
def test_auto_on_cuda_asks_torch(monkeypatch, native, expected):
    asked = {}

    def supported(including_emulation=True):
        asked["emulation"] = including_emulation
        return native

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", supported)
    monkeypatch.setattr(P, "cpu_flags", lambda: frozenset({"avx512_bf16"}))  # the host CPU does not decide
    assert P.resolve("auto", torch.device("cuda")) == expected
    assert asked["emulation"] is False  # emulated bf16 is not native


def test_outside_autocast_switches_it_off_only_where_it_is_on():
    with P.outside_autocast("cpu"):
        assert not torch.is_autocast_enabled("cpu")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with P.outside_autocast("cpu"):
            assert not torch.is_autocast_enabled("cpu")
        assert torch.is_autocast_enabled("cpu")
    assert isinstance(P.autocast("fp32", CPU), contextlib.nullcontext)


# -------------------------------------------------------------------------------------------------- a bf16 run

class Watch:
    """What the supervised net's layers and optimiser saw during a run: each Linear layer's output dtype
    and whether autocast was on, split by train/eval; the autocast state and dtypes at each optimiser step."""

    def __init__(self, m):
        self.seen = {"train": set(), "eval": set()}
        self.step_autocast, self.grad_dtypes = set(), set()
        for layer in m.net.modules():
            if isinstance(layer, torch.nn.Linear):
                layer.register_forward_hook(self.hook)
        real = m.opt.step

        def step(*a, **k):
            self.step_autocast.add(torch.is_autocast_enabled("cpu"))
            self.grad_dtypes |= {p.grad.dtype for p in m.net.parameters() if p.grad is not None}
            return real(*a, **k)

        m.opt.step = step

    def hook(self, module, inputs, output):
        self.seen["train" if module.training else "eval"].add((output.dtype, torch.is_autocast_enabled("cpu")))


def trained(kwargs, tmp_path):
    """A Run of ``kwargs`` trained and finished, with a Watch on it."""
    with deterministic(CPU):
        r = T.Run(**kwargs, log=lambda s: None)
        watch = Watch(r.m)
        r.resume()
        T.train_alone(r)
        metrics = r.finish()
    return r, watch, metrics


def test_a_bf16_run_multiplies_in_bf16_and_keeps_fp32_weights_and_state(mnist_path, split, tmp_path):
    r, watch, m = trained(kw(mnist_path, split, tmp_path, precision="bf16"), tmp_path)
    # every layer's product came out of autocast in bf16, in training and in evaluation
    assert watch.seen["train"] == {(torch.bfloat16, True)}
    assert watch.seen["eval"] == {(torch.bfloat16, True)}
    # the optimiser steps outside autocast, on fp32 gradients, and what it keeps is fp32
    assert watch.step_autocast == {False} and watch.grad_dtypes == {torch.float32}
    assert {p.dtype for p in r.m.net.parameters()} == {torch.float32}
    state = [t for s in r.m.opt.state.values() for t in s.values() if torch.is_tensor(t) and t.is_floating_point()]
    assert state and {t.dtype for t in state} == {torch.float32}
    assert {t.dtype for t in files(tmp_path / "out")[2]["net"].values()} == {torch.float32}
    # the run learned: bf16 is a working configuration, not a broken one
    assert m["results"]["test_accuracy"] > 0.3
    assert m["env"]["precision"] == "bf16" and m["hparams"]["precision"] == "bf16"
    assert r.fingerprint["precision"] == "bf16"


def test_fp32_enters_no_autocast_and_equals_a_run_without_the_key(mnist_path, split, tmp_path, monkeypatch):
    """An fp32 run never builds an autocast context (so it is the computation it was before the setting),
    and its files equal those of a run whose configuration does not name precision at all."""
    def refuse(*a, **k):
        raise AssertionError("an fp32 run entered autocast")

    monkeypatch.setattr(torch, "autocast", refuse)
    monkeypatch.setattr(torch.amp, "autocast", refuse)
    without = kw(mnist_path, split, tmp_path / "a")
    r, watch, m_without = trained(without, tmp_path)
    assert watch.seen["train"] == {(torch.float32, False)} and watch.seen["eval"] == {(torch.float32, False)}
    assert watch.step_autocast == {False}
    with_key = kw(mnist_path, split, tmp_path / "b", precision="fp32")
    _, _, m_with = trained(with_key, tmp_path)
    a, b = files(tmp_path / "a" / "out"), files(tmp_path / "b" / "out")
    assert a[0]["results"] == b[0]["results"] and strip_timing(a[1]) == strip_timing(b[1])
    for k, t in a[2]["net"].items():
        assert torch.equal(t, b[2]["net"][k]), k
    assert m_without["env"]["precision"] == m_with["env"]["precision"] == "fp32"


def test_bf16_differs_from_fp32(mnist_path, split, tmp_path):
    """The setting changes the arithmetic (a switch that did nothing would pass the tests above it)."""
    _, _, m16 = trained(kw(mnist_path, split, tmp_path / "a", precision="bf16"), tmp_path)
    _, _, m32 = trained(kw(mnist_path, split, tmp_path / "b", precision="fp32"), tmp_path)
    h16 = strip_timing(files(tmp_path / "a" / "out")[1])
    h32 = strip_timing(files(tmp_path / "b" / "out")[1])
    assert h16[0] == h32[0] and h16[1:] != h32[1:]


# ---------------------------------------------------------------------------- recorded, fingerprinted, refused

def test_the_resolved_precision_is_in_the_fingerprint_a_resume_under_another_restarts(
        mnist_path, split, tmp_path, monkeypatch):
    """``auto`` on a machine with native bf16, checkpointed, then resumed where auto resolves to fp32: the
    hyperparameters are the same ("auto"), the arithmetic is not, so the run starts again."""
    from fewlabels.methods.supervised import Supervised

    args = kw(mnist_path, split, tmp_path, precision="auto")
    ckpt = tmp_path / "ck.pt"
    monkeypatch.setattr(P, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    real, calls = Supervised.train_step, {"n": 0}

    def dies_in_epoch_2(self):
        calls["n"] += 1
        if calls["n"] > TINY["steps_per_epoch"]:
            raise RuntimeError("killed")
        return real(self)

    monkeypatch.setattr(Supervised, "train_step", dies_in_epoch_2)
    with pytest.raises(RuntimeError, match="killed"):
        T.run(**args, checkpoint=ckpt, log=lambda s: None)
    monkeypatch.setattr(Supervised, "train_step", real)
    assert torch.load(ckpt, weights_only=False)["fingerprint"]["precision"] == "bf16"

    monkeypatch.setattr(P, "cpu_flags", lambda: frozenset({"avx2"}))
    logs = []
    m = T.run(**args, checkpoint=ckpt, log=logs.append)
    [why] = [line for line in logs if line.startswith("ignoring checkpoint")]
    assert 'precision was "bf16", is "fp32"' in why and "hparams" not in why
    assert sum(line.startswith("epoch ") for line in logs) == TINY["epochs"]  # all trained again
    assert m["env"]["precision"] == "fp32" and m["hparams"]["precision"] == "auto"
    row = aggregate.collect([tmp_path / "out" / "metrics.json"]).iloc[0]
    assert row["precision"] == "fp32"


def test_a_bf16_run_resumes_to_the_numbers_of_an_uninterrupted_one(mnist_path, split, tmp_path, monkeypatch):
    from fewlabels.methods.supervised import Supervised

    T.run(**kw(mnist_path, split, tmp_path / "ref", precision="bf16"), log=lambda s: None)
    args = kw(mnist_path, split, tmp_path / "resumed", precision="bf16")
    ckpt = tmp_path / "ck.pt"
    real, calls = Supervised.train_step, {"n": 0}

    def dies_in_epoch_3(self):
        calls["n"] += 1
        if calls["n"] > 2 * TINY["steps_per_epoch"]:
            raise RuntimeError("killed")
        return real(self)

    monkeypatch.setattr(Supervised, "train_step", dies_in_epoch_3)
    with pytest.raises(RuntimeError, match="killed"):
        T.run(**args, checkpoint=ckpt, log=lambda s: None)
    monkeypatch.setattr(Supervised, "train_step", real)
    logs = []
    T.run(**args, checkpoint=ckpt, log=logs.append)
    assert any(line.startswith("resuming") for line in logs)
    a, b = files(tmp_path / "ref" / "out"), files(tmp_path / "resumed" / "out")
    assert a[0]["results"] == b[0]["results"] and strip_timing(a[1]) == strip_timing(b[1])


def test_metrics_csv_reads_precision_and_older_runs_as_fp32(tmp_path):
    base = {"run": {"method": "supervised", "task": "mnist10", "labels": 100, "seed": 0},
            "results": {"test_accuracy": 0.9}, "timing": {}, "data": {"n_test": 10000, "split_sha256": "x"},
            "env": {"device": "cpu", "device_name": "cpu", "torch": "2.13"}}
    old, new = tmp_path / "old" / "metrics.json", tmp_path / "new" / "metrics.json"
    for path, env in ((old, {}), (new, {"precision": "bf16"})):
        path.parent.mkdir()
        path.write_text(json.dumps({**base, "env": {**base["env"], **env}}))
    df = aggregate.collect([old, new])
    assert list(df["precision"]) == ["fp32", "bf16"]  # before the setting every run was fp32
    assert list(df.columns).index("precision") == list(df.columns).index("device") + 1


def test_stacked_runs_refuse_bf16_and_say_how_to_fix_it(mnist_path, split, tmp_path):
    specs = [dict(kw(mnist_path, split, tmp_path / f"s{s}", precision="bf16"), seed=s) for s in (0, 1)]
    with pytest.raises(ValueError, match=r"precision 'bf16' trains in bf16 .*set precision: fp32 .*--stack off"):
        run_group(specs, stack="on", log=lambda s: None)
    assert not (tmp_path / "s0" / "out").exists()
