"""Many runs in one process (fewlabels.methods.stacked): N stacked runs equal N single runs.

Exact where it can be: initial weights, the generators' states (so every run drew the same minibatch
indices and dropout masks as alone), Adam's arithmetic. Within a float tolerance where the stacked
forward and backward (``vmap``-batched matrix products) sum in another order than one run's.

Why the tolerances are what they are. The losses of the first K steps differ by rounding only
(~2e-7 relative), so they are compared at 1e-5 relative. The weights are not: Adam moves each
weight by lr * m / (sqrt(v) + eps), and for an element whose gradient is itself a near-cancellation
(first-layer weights of pixels that are non-zero in one or two images of a batch), a rounding-level
change of the gradient changes that ratio by a visible fraction, up to lr / eps times the
gradient's absolute error. So a weight difference is bounded by a fraction of the displacement
K * lr, not by a relative epsilon. Measured (``bash scripts/tolerance_spread.sh``, this test under
``ATEN_CPU_CAPABILITY`` default / avx2 / avx512 and 1 / 2 threads, Intel Xeon with AVX-512, torch
2.13): the largest weight difference after K = 8 steps at lr 1e-3 was 1.1e-6 (default, one thread;
AVX2 and AVX-512 one thread 5.2e-7), i.e. 1.4e-4 of K * lr. ``WEIGHTS`` allows 2e-5 (1/400 of K * lr,
18x the largest seen); a wrong minibatch or dropout mask moves weights by ~lr per step and fails it,
and the losses, the generator states and the step counts are still compared tightly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import pytest

from fewlabels import data as D
from fewlabels.methods.base import adam
from fewlabels.methods.supervised import Supervised
from fewlabels.methods.stacked.classifiers import StackedRuns
from fewlabels.training.build import deterministic
from fewlabels.training.build import build_run
from fewlabels.training.trainer import accuracy, run

pytestmark = pytest.mark.numerical

CPU = torch.device("cpu")
SEEDS = (0, 1, 2)
K = 8  # steps
POOL = 200
TINY = {"epochs": 1, "steps_per_epoch": K, "batch_size": 32, "hidden": [64, 32], "dropout": 0.3, "init_std": 0.05}
CLOSE = {"rtol": 1e-5, "atol": 1e-7}   # losses, accuracies, anything summed only once
WEIGHTS = {"rtol": 1e-5, "atol": 2e-5}  # weights and Adam moments after K steps (module docstring)


@pytest.fixture(autouse=True)
def as_the_trainer_trains():
    """Runs built here with ``build_run`` train as ``run`` and ``run_group`` train them: on the CPU with
    deterministic algorithms (``build.deterministic``), switched off again after each test."""
    with deterministic(CPU):
        yield


@pytest.fixture(scope="module")
def splits(mnist10_splits):
    return mnist10_splits


@pytest.fixture(scope="module")
def tasks(splits, mnist_path):
    """Each seed's tensors, read once (every method here uses the default label draw)."""
    return {s: D.load_task(mnist_path, splits[s], CPU, POOL) for s in SEEDS}


def runs(method, hp, tasks, seeds=SEEDS):
    return [build_run(method, hp, s, None, None, CPU, POOL, data=tasks[s]) for s in seeds]


def single(method, hp, tasks, seeds=SEEDS, steps=K):
    """Each seed alone, the one-run way: its initial weights, losses, and what it ended with."""
    out = []
    for s in seeds:  # built and trained one after the other: the global RNG is the run's dropout RNG
        m, _ = build_run(method, hp, s, None, None, CPU, POOL, data=tasks[s])
        init = {k: v.clone() for k, v in m.net.state_dict().items()}
        losses = torch.stack([m.train_step()["ce"] for _ in range(steps)])
        out.append({"m": m, "init": init, "losses": losses, "rng": torch.get_rng_state()})
    return out


def assert_same_runs(alone, st: StackedRuns, losses: torch.Tensor):
    """``st`` (unstacked) holds what each single run holds: weights, Adam state, generator states."""
    st.unstack()
    for i, a in enumerate(alone):
        torch.testing.assert_close(losses[:, i], a["losses"], **CLOSE)
        b = st.methods[i]
        for (name, p), q in zip(a["m"].net.named_parameters(), b.net.parameters()):
            torch.testing.assert_close(q, p, **WEIGHTS, msg=lambda s: f"run {i} {name}: {s}")
        for x, y in zip(a["m"].net.buffers(), b.net.buffers()):
            torch.testing.assert_close(y, x, **WEIGHTS)
        sa, sb = a["m"].opt.state_dict()["state"], b.opt.state_dict()["state"]
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.equal(sa[k]["step"], sb[k]["step"])
            torch.testing.assert_close(sb[k]["exp_avg"], sa[k]["exp_avg"], **CLOSE)
            torch.testing.assert_close(sb[k]["exp_avg_sq"], sa[k]["exp_avg_sq"], rtol=1e-5, atol=1e-12)
        # same minibatch indices and the same number of dropout draws, exactly
        assert torch.equal(b.gen.get_state(), a["m"].gen.get_state())
        assert torch.equal(st.noise[i].get_state(), a["rng"])


def test_fused_adam_over_stacked_parameters_is_n_independent_adams():
    """Adam is elementwise with one step count per tensor: summing the runs' losses and stepping one
    (fused) Adam over the stacked tensors gives each run the update of its own Adam, bit for bit."""
    torch.manual_seed(0)
    shapes = [(37, 13), (37,)]
    start = [[torch.randn(s) for s in shapes] for _ in range(3)]
    alone = [[p.clone().requires_grad_() for p in ps] for ps in start]
    stacked = [torch.stack([ps[j] for ps in start]).requires_grad_() for j in range(len(shapes))]
    opts = [adam(ps, lr=1e-3, betas=(0.5, 0.999)) for ps in alone]
    opt = adam(stacked, lr=1e-3, betas=(0.5, 0.999))
    for _ in range(5):
        grads = [[torch.randn(s) * 10.0 ** torch.randint(-8, 2, ()).item() for s in shapes] for _ in start]
        for o, ps, gs in zip(opts, alone, grads):
            for p, g in zip(ps, gs):
                p.grad = g.clone()
            o.step()
        for j, p in enumerate(stacked):
            p.grad = torch.stack([gs[j] for gs in grads])
        opt.step()
    assert all(torch.equal(stacked[j][i], alone[i][j]) for i in range(3) for j in range(len(shapes)))


def test_dropout_mask_from_a_generator_is_f_dropouts_on_cpu():
    """What StackedRuns draws for a dropout layer: F.dropout's own mask on the CPU, and the same draw."""
    x = torch.randn(50, 128)
    torch.manual_seed(5)
    g = torch.Generator()
    g.set_state(torch.get_rng_state())
    dropped = F.dropout(x, 0.3, training=True)
    mask = torch.empty_like(x).bernoulli_(0.7, generator=g).div_(0.7)
    assert torch.equal(dropped, x * mask)
    assert torch.equal(torch.get_rng_state(), g.get_state())


def test_stacked_supervised_runs_equal_single_runs(tasks):
    alone = single("supervised", TINY, tasks)
    st = StackedRuns(runs("supervised", TINY, tasks))
    for i, a in enumerate(alone):  # the initial weights of each seed, exactly
        for name, v in a["init"].items():
            assert torch.equal(st.params[name][i], v), (i, name)
    losses = torch.stack([st.train_step()["ce"] for _ in range(K)])
    assert losses.shape == (K, len(SEEDS))
    assert_same_runs(alone, st, losses)
    # evaluation: per-run counts equal to the trainer's accuracy(), dropout off ...
    for split in ("val", "test"):
        got = st.correct(split)
        want = [int(accuracy(a["m"].net, getattr(a["m"].data, f"x_{split}"), getattr(a["m"].data, f"y_{split}")))
                for a in alone]
        assert got.tolist() == want
    # ... and on (the dropout_at_test quirk): masks from each run's generator in the trainer's order
    for a, b in zip(alone, st.methods):
        a["m"].hp["dropout_at_test"] = b.hp["dropout_at_test"] = True
    got = st.correct("val", batch=700)
    for i, a in enumerate(alone):
        torch.set_rng_state(a["rng"])
        m = a["m"]
        assert int(accuracy(m.net, m.data.x_val, m.data.y_val, batch=700, context=m.eval_context)) == got[i]
        assert torch.equal(torch.get_rng_state(), st.noise[i].get_state())


@pytest.mark.parametrize("method,hp", [
    ("linear", {"epochs": 1, "steps_per_epoch": K, "batch_size": 20}),
    ("conv", {"epochs": 1, "steps_per_epoch": K, "batch_size": 20, "filters": [4, 8], "dense": 16, "init_std": 0.1}),
])
def test_stacked_seed003_classifiers_equal_single_runs(tasks, method, hp):
    seeds = SEEDS[:2]
    alone = single(method, hp, tasks, seeds)
    st = StackedRuns(runs(method, hp, tasks, seeds))
    for i, a in enumerate(alone):
        for name, v in a["init"].items():
            assert torch.equal(st.params[name][i], v), (i, name)
    assert_same_runs(alone, st, torch.stack([st.train_step()["ce"] for _ in range(K)]))


def test_run_zero_is_what_the_trainer_makes(tmp_path, splits, tasks, mnist_path):
    """build_run seeds and builds in train.run's order: the stacked seed-0 run ends where train.run ends."""
    metrics = run(method="supervised", task="mnist10", labels=100, seed=0, mnist=mnist_path, split=splits[0],
                  out=tmp_path / "run", hparams=TINY, pool_limit=POOL, log=lambda s: None)
    st = StackedRuns(runs("supervised", TINY, tasks, SEEDS[:2]))
    for _ in range(K):
        st.train_step()
    st.unstack()
    saved = torch.load(tmp_path / "run" / "model.pt", weights_only=False)["modules"]["net"]
    for name, v in st.methods[0].net.state_dict().items():
        torch.testing.assert_close(v, saved[name], **WEIGHTS)
    assert int(st.correct("val")[0]) / len(st.methods[0].data.y_val) == metrics["results"]["val_accuracy"]


def test_resuming_from_unstacked_state_continues_exactly(tasks):
    """Each run's state_dict() after unstack() is a single-run checkpoint: loading it into fresh runs and
    stacking again continues as if nothing had stopped (bit for bit: the same stacked arithmetic)."""
    seeds = SEEDS[:2]
    st = StackedRuns(runs("supervised", TINY, tasks, seeds))
    for _ in range(3):
        st.train_step()
    st.unstack()
    saved = [(m.state_dict(), m.gen.get_state(), g.get_state()) for m, g in zip(st.methods, st.noise)]
    saved = [(torch.load(_roundtrip(s), weights_only=False), gs, ns) for s, gs, ns in saved]
    later = [st.train_step()["ce"] for _ in range(3)]
    fresh = runs("supervised", TINY, tasks, seeds)
    for (m, g), (state, gs, ns) in zip(fresh, saved):
        m.load_state_dict(state)
        m.gen.set_state(gs)
        g.set_state(ns)
    st2 = StackedRuns(fresh)
    for want in later:
        assert torch.equal(st2.train_step()["ce"], want)
    for a, b in zip(st.params.values(), st2.params.values()):
        assert torch.equal(a, b)


def _roundtrip(obj):
    import io
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return buf


class BNSupervised(Supervised):
    """The supervised MLP with batch norm after each hidden layer: what a batch-norm method needs.
    Its hidden layers have no bias: a bias under batch norm has a zero gradient, made of rounding noise
    that Adam scales up to steps of size lr, so no two summation orders agree on it (not even roughly)."""

    def __init__(self, hp, data, device, gen, pretrained=None):
        super().__init__(hp, data, device, gen, pretrained)
        (h1, h2), p = hp["hidden"], hp["dropout"]
        self.net = nn.Sequential(nn.Linear(data.x_lab.shape[1], h1, bias=False), nn.BatchNorm1d(h1), nn.ReLU(),
                                 nn.Dropout(p), nn.Linear(h1, h2, bias=False), nn.BatchNorm1d(h2), nn.ReLU(),
                                 nn.Dropout(p), nn.Linear(h2, data.n_classes)).to(device)
        self.opt = adam(self.net.parameters(), lr=hp["lr"])


def test_batch_norm_keeps_per_run_statistics(tasks):
    seeds = SEEDS[:2]
    alone = single(BNSupervised, TINY, tasks, seeds, steps=4)
    st = StackedRuns(runs(BNSupervised, TINY, tasks, seeds))
    losses = torch.stack([st.train_step()["ce"] for _ in range(4)])
    assert_same_runs(alone, st, losses)  # running means, variances and counts included
    means = [m.net[1].running_mean for m in st.methods]
    assert not torch.equal(means[0], means[1]) and int(st.methods[0].net[1].num_batches_tracked) == 4
    want = [int(accuracy(a["m"].net, a["m"].data.x_val, a["m"].data.y_val)) for a in alone]
    assert st.correct("val").tolist() == want


def test_capture_falls_back_to_eager_on_cpu_with_the_same_numbers(tasks):
    from fewlabels.training.capture import capture_step
    lines = []
    a = StackedRuns(runs("supervised", TINY, tasks, SEEDS[:2]))
    step, taken = capture_step(a.train_step, CPU, log=lines.append)
    assert taken == 0 and step == a.train_step
    assert len(lines) == 1 and "eagerly" in lines[0]
    b = StackedRuns(runs("supervised", TINY, tasks, SEEDS[:2]))
    for _ in range(3):
        assert torch.equal(step()["ce"], b.train_step()["ce"])


# ----------------------------------------------------------------------------- CUDA (skipped without a GPU)

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
NODROP = {**TINY, "dropout": 0.0}  # CUDA's dropout is a fused kernel whose masks StackedRuns does not redraw


@pytest.fixture(scope="module")
def cuda_tasks(splits, mnist_path):
    return {s: D.load_task(mnist_path, splits[s], torch.device("cuda"), POOL) for s in SEEDS[:2]}


def cuda_runs(tasks, hp=NODROP):
    torch.use_deterministic_algorithms(False)  # as_the_trainer_trains switched it on for the CPU; cuBLAS refuses it
    return [build_run("supervised", hp, s, None, None, torch.device("cuda"), POOL, data=tasks[s]) for s in tasks]


@cuda
def test_cuda_stacked_runs_equal_single_runs_without_dropout(cuda_tasks):
    alone = []
    for m, _ in cuda_runs(cuda_tasks):  # built and trained one after the other, as single runs are
        alone.append(torch.stack([m.train_step()["ce"] for _ in range(K)]))
    st = StackedRuns(cuda_runs(cuda_tasks))
    losses = torch.stack([st.train_step()["ce"] for _ in range(K)])
    for i, want in enumerate(alone):
        torch.testing.assert_close(losses[:, i], want, rtol=1e-4, atol=1e-6)


@cuda
def test_cuda_capture_replays_the_eager_steps(cuda_tasks):
    from fewlabels.training.capture import capture_step
    eager = StackedRuns(cuda_runs(cuda_tasks, TINY), capturable=True)
    want = torch.stack([eager.train_step()["ce"].clone() for _ in range(K)])
    st = StackedRuns(cuda_runs(cuda_tasks, TINY), capturable=True)
    lines = []
    step, taken = capture_step(st.train_step, torch.device("cuda"), log=lines.append,
                               generators=[m.gen for m in st.methods] + st.noise)
    assert "captured" in lines[-1], lines
    got = torch.stack([step()["ce"].clone() for _ in range(K - taken)])
    torch.testing.assert_close(got, want[taken:], rtol=1e-4, atol=1e-6)


def test_a_learning_rate_schedule_reaches_a_capturable_stacked_optimiser(tasks):
    """A captured step reads its learning rate from device memory, so the stacked optimisers built for
    capture hold it as a tensor and ``resync`` changes it in place: an AAE group built capturable moves
    as one that is not (within float: the capturable kernel orders its arithmetic differently), across
    the runs' lr decay (here forced after the first step; a missed decay would differ by ~1e-3)."""
    from fewlabels.methods.stacked import make_stacked

    hp = {"batch_size": 20, "hidden": [32, 32], "z_dim": 4}
    params = []
    for capturable in (False, True):
        runs = [build_run("aae", hp, s, None, None, CPU, POOL, data=tasks[s]) for s in (0, 1)]
        st = make_stacked(runs, capturable=capturable)
        lr = st.opts["opt_ssl"].param_groups[0]["lr"]
        assert torch.is_tensor(lr) == capturable
        st.train_step()
        for m, _ in runs:  # what AAE.on_epoch_end does at a decay epoch
            for opt in m.optimizers().values():
                opt.param_groups[0]["lr"] *= 0.1
        st.resync()
        assert float(st.opts["opt_ssl"].param_groups[0]["lr"]) == pytest.approx(hp_lr(runs) * 0.1)
        st.train_step()
        params.append({k: v.detach().clone() for k, v in st.params["enc"].items()})
    for k, v in params[0].items():
        torch.testing.assert_close(params[1][k], v, rtol=0, atol=1e-6)


def hp_lr(runs) -> float:
    return runs[0][0].hp["lr_ssl"]
