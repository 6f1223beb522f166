"""MNIST verification, IDX/pickle decoding and the label-budget splits."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import sys

import numpy as np
import pytest

from fewlabels import data as D


@pytest.fixture(scope="module")
def mnist(mnist_path):
    return D.load_mnist(mnist_path)


@pytest.fixture(scope="module")
def pool(mnist):
    y = mnist["y_train"]
    val = D.validation_indices(y)
    return y, val, D.pool_indices(y, val)


def test_pinned_mnist_has_known_class_counts(mnist):
    assert tuple(np.bincount(mnist["y_train"])) == D.TRAIN_CLASS_COUNTS
    assert tuple(np.bincount(mnist["y_test"])) == D.TEST_CLASS_COUNTS
    assert mnist["x_train"].dtype == np.uint8 and mnist["x_train"].max() == 255


def test_validation_is_fixed_balanced_and_outside_the_pool(pool):
    y, val, p = pool
    assert len(val) == D.VALIDATION_SIZE and len(p) == 55000
    assert np.all(np.bincount(y[val]) == D.VALIDATION_SIZE // 10)
    assert not np.intersect1d(val, p).size
    np.testing.assert_array_equal(val, D.validation_indices(y))  # seed-independent


@pytest.mark.parametrize("task,labels", [("mnist10", 100), ("mnist10", 1000), ("digits59", 500), ("digits04", 50)])
def test_split_is_balanced_and_inside_the_task_pool(pool, task, labels):
    y, val, p = pool
    lab = D.labeled_indices(y, p, task, labels, seed=3)
    classes = D.TASKS[task][0]
    assert len(lab) == labels == len(np.unique(lab))
    counts = {c: int((y[lab] == c).sum()) for c in classes}
    assert set(counts.values()) == {labels // len(classes)}
    assert np.isin(lab, p).all() and not np.isin(lab, val).any()


def test_split_depends_only_on_the_seed(pool):
    y, _, p = pool
    a = D.labeled_indices(y, p, "mnist10", 100, seed=0)
    np.testing.assert_array_equal(a, D.labeled_indices(y, p, "mnist10", 100, seed=0))
    assert not np.array_equal(a, D.labeled_indices(y, p, "mnist10", 100, seed=1))


@pytest.mark.parametrize("labels,match", [(105, "multiple of the 10 classes"), (0, "positive"),
                                          (50000, "only")])
def test_bad_budgets_are_errors(pool, labels, match):
    y, _, p = pool
    with pytest.raises(ValueError, match=match):
        D.labeled_indices(y, p, "mnist10", labels, seed=0)


def test_split_file_and_task_tensors(tmp_path, mnist_path):
    out = tmp_path / "s.npz"
    D.make_split(mnist_path, out, "digits59", 50, seed=2)
    t = D.load_task(mnist_path, out, "cpu")
    # digits 5-9 are shifted to 0-4 everywhere, and only those digits remain
    for y in (t.y_lab, t.y_pool, t.y_val, t.y_test):
        assert set(y.unique().tolist()) == set(range(5))
    assert t.n_classes == 5 and len(t.y_test) == sum(D.TEST_CLASS_COUNTS[5:])
    assert t.x_lab.shape == (50, 784) and 0.0 <= float(t.x_lab.min()) and float(t.x_lab.max()) <= 1.0
    limited = D.load_task(mnist_path, out, "cpu", pool_limit=300)
    assert 300 <= len(limited.x_pool) <= 350  # the labeled images stay in the unlabeled pool


def test_seed_label_draws(pool):
    """The seeds' own ways of choosing labeled images: unbalanced random draws (000, 001) and
    the first images in file order (002); the protocol's balanced subset is returned unchanged."""
    y, _, p = pool
    task_pool = p[D.task_mask(y[p], "digits59")]
    bal = D.labeled_indices(y, p, "digits59", 500, seed=4)
    np.testing.assert_array_equal(D.label_subset(bal, task_pool, "balanced", 4), bal)
    first = D.label_subset(bal, task_pool, "first", 4)
    np.testing.assert_array_equal(first, np.sort(task_pool)[:500])
    rnd = D.label_subset(bal, task_pool, "random", 4)
    assert len(rnd) == len(np.unique(rnd)) == 500 and np.isin(rnd, task_pool).all()
    np.testing.assert_array_equal(rnd, D.label_subset(bal, task_pool, "random", 4))  # seeded
    assert not np.array_equal(rnd, D.label_subset(bal, task_pool, "random", 5))
    assert len(set(np.bincount(y[rnd])[5:])) > 1  # classes are not balanced any more
    with pytest.raises(ValueError, match="label_draw"):
        D.label_subset(bal, task_pool, "stratified", 4)


def test_unlabeled_rest_excludes_the_labeled_images(tmp_path, mnist_path):
    out = tmp_path / "s.npz"
    D.make_split(mnist_path, out, "mnist10", 100, seed=1)
    whole = D.load_task(mnist_path, out, "cpu", label_draw="random")
    rest = D.load_task(mnist_path, out, "cpu", label_draw="random", unlabeled="rest")
    assert len(whole.x_pool) == 55000 and len(rest.x_pool) == 55000 - 100
    # no labeled image is left among the unlabeled ones
    lab = {bytes(r) for r in (rest.x_lab * 255).round().byte().numpy()}
    assert not lab & {bytes(r) for r in (rest.x_pool * 255).round().byte().numpy()}
    assert lab & {bytes(r) for r in (whole.x_pool * 255).round().byte().numpy()} == lab


def test_labels_from_the_test_set_leave_a_clean_test_set(tmp_path, mnist_path):
    """Seed 004's code trains on 1,000 test images; such a run is tested on the other 9,000."""
    out = tmp_path / "s.npz"
    D.make_split(mnist_path, out, "mnist10", 1000, seed=2)
    t = D.load_task(mnist_path, out, "cpu", label_draw="test")
    assert len(t.x_lab) == 1000 and len(t.x_test) == 9000 and len(t.x_pool) == 55000
    lab = {bytes(r) for r in (t.x_lab * 255).round().byte().numpy()}
    assert not lab & {bytes(r) for r in (t.x_test * 255).round().byte().numpy()}
    mnist = D.load_mnist(mnist_path)
    assert lab <= {bytes(r) for r in mnist["x_test"].reshape(10000, -1)}


def test_truncated_file_fails_clearly(tmp_path, mnist_path):
    bad = tmp_path / "mnist.npz"
    bad.write_bytes(mnist_path.read_bytes()[: 1 << 20])
    with pytest.raises(D.DataError, match="(?s)corrupt or truncated.*delete it"):
        D.load_mnist(bad)


def test_altered_pixels_fail_the_hash(tmp_path, mnist):
    arrays = {k: v.copy() for k, v in mnist.items()}
    arrays["x_test"][0, 0, 0] ^= 1
    bad = tmp_path / "mnist.npz"
    D.save_npz(bad, **arrays)
    with pytest.raises(D.DataError, match="does not match the pinned"):
        D.load_mnist(bad)


def test_missing_file_says_how_to_get_it(tmp_path):
    with pytest.raises(D.DataError, match="snakemake resources/mnist.npz"):
        D.load_mnist(tmp_path / "nope.npz")


def _write_idx(path, arr):
    header = struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_idx_files_decode_to_the_pinned_arrays(tmp_path, mnist):
    names = {"train-images-idx3-ubyte.gz": "x_train", "train-labels-idx1-ubyte.gz": "y_train",
             "t10k-images-idx3-ubyte.gz": "x_test", "t10k-labels-idx1-ubyte.gz": "y_test"}
    for name, key in names.items():
        _write_idx(tmp_path / name, mnist[key])
    arrays = D.from_idx(tmp_path, check_md5=False)
    D.verify(arrays)  # same bytes, same hash
    # our re-encoded files are not the published ones, so the checksum check refuses them
    with pytest.raises(D.DataError, match="does not match the published"):
        D.from_idx(tmp_path)
    # a truncated IDX body is named as such
    raw = gzip.decompress((tmp_path / "t10k-labels-idx1-ubyte.gz").read_bytes())
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb", compresslevel=1) as f:
        f.write(raw[:-10])
    with pytest.raises(D.DataError, match="expected 10000 bytes"):
        D.from_idx(tmp_path, check_md5=False)


def test_pickle_source_decodes_exactly(tmp_path, mnist):
    # a small pickle in the classic layout: (train, validation, test), float32 = pixel / 256
    n = 500
    x = mnist["x_train"][: 2 * n].reshape(-1, 784).astype(np.float32) / 256.0
    xt = mnist["x_test"][:n].reshape(-1, 784).astype(np.float32) / 256.0
    y, yt = mnist["y_train"][: 2 * n], mnist["y_test"][:n]
    pkl = tmp_path / "mnist.pkl.gz"
    with gzip.open(pkl, "wb", compresslevel=1) as f:
        pickle.dump(((x[:n], y[:n]), (x[n:], y[n:]), (xt, yt)), f)
    got = D.from_pickle(pkl)
    np.testing.assert_array_equal(got["x_train"], mnist["x_train"][: 2 * n])  # train + validation, in order
    np.testing.assert_array_equal(got["x_test"], mnist["x_test"][:n])
    np.testing.assert_array_equal(got["y_train"], y)
    with pytest.raises(D.DataError, match="shape"):
        D.verify(got)  # 1,000 images are not MNIST
    pkl.write_bytes(pkl.read_bytes()[:5000])
    with pytest.raises(D.DataError, match="not a readable MNIST pickle"):
        D.from_pickle(pkl)


def test_failed_acquire_leaves_nothing_behind(tmp_path):
    out = tmp_path / "res" / "mnist.npz"
    with pytest.raises(D.DataError, match="idx_dir"):
        D.acquire(out, source="idx", idx_dir=str(tmp_path / "empty"))
    assert not out.exists()
    assert not list(out.parent.glob("*")) if out.parent.exists() else True


def test_atomic_write_removes_its_temp_file_on_failure(tmp_path):
    dest = tmp_path / "f.txt"
    dest.write_text("the old, complete contents")
    seen = []

    def boom(tmp):
        tmp.write_text("half")
        seen.append((tmp, tmp.exists(), tmp.parent == dest.parent))
        raise RuntimeError("killed")
    with pytest.raises(RuntimeError, match="killed"):
        D.atomic_write(dest, boom)
    # the failure came after a temporary file existed next to the destination ...
    [(tmp, existed, beside)] = seen
    assert existed and beside and tmp != dest
    # ... and left the destination as it was and no temporary file behind
    assert dest.read_text() == "the old, complete contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def _rows(x) -> np.ndarray:
    """Task tensors back to the uint8 rows of the MNIST file."""
    return (x.numpy() * 255).round().astype(np.uint8)


def test_tf1_split_is_read_data_sets_and_first_500_is_the_notebooks(tmp_path, mnist_path, mnist):
    """Seed 002 reads MNIST with read_data_sets (validation = the first 5,000 training images, train =
    the other 55,000 in file order) and trains on ``mnist.train.labels > 4`` sliced ``[:500]``:
    images from training index 5,000 on, none of them among the protocol's labeled ones."""
    xtr, ytr = mnist["x_train"].reshape(60000, -1), mnist["y_train"]
    out = tmp_path / "s.npz"
    D.make_split(mnist_path, out, "digits59", 500, seed=0)
    t = D.load_task(mnist_path, out, "cpu", label_draw="first", data_split="tf1")
    notebook = 5000 + np.flatnonzero(ytr[5000:] > 4)[:500]
    assert np.array_equal(_rows(t.x_lab), xtr[notebook])
    assert np.array_equal(t.y_lab.numpy(), ytr[notebook] - 5)
    assert np.array_equal(_rows(t.x_val), xtr[:5000][ytr[:5000] > 4])
    assert np.array_equal(_rows(t.x_pool), xtr[5000:][ytr[5000:] > 4])
    # the protocol's "first 500" are other images (its pool starts at training image 0)
    p = D.load_task(mnist_path, out, "cpu", label_draw="first")
    assert not {bytes(r) for r in _rows(p.x_lab)} & {bytes(r) for r in xtr[notebook]}
    # label_offset: the first 500 from training index K, disjoint sets for K 5,000 apart
    k = D.load_task(mnist_path, out, "cpu", label_draw="first", data_split="tf1", label_offset=20000)
    assert np.array_equal(_rows(k.x_lab), xtr[20000 + np.flatnonzero(ytr[20000:] > 4)[:500]])
    with pytest.raises(ValueError, match="lower label_offset"):
        D.load_task(mnist_path, out, "cpu", label_draw="first", data_split="tf1", label_offset=59900)


def test_tf1_split_for_seed004_and_geron(tmp_path, mnist_path, mnist):
    """Seed 004: labels drawn from the test set, measured on the tf1 validation set (the first 5,000
    training images), unlabeled = the other 55,000. Geron's exercise: the classifier trains on the
    first 5,000 training images (label_draw 'head'), pairs come from the other 55,000."""
    xtr, ytr = mnist["x_train"].reshape(60000, -1), mnist["y_train"]
    out = tmp_path / "s.npz"
    D.make_split(mnist_path, out, "mnist10", 1000, seed=1)
    t = D.load_task(mnist_path, out, "cpu", label_draw="test", data_split="tf1")
    assert len(t.x_lab) == 1000 and len(t.x_test) == 9000
    assert np.array_equal(_rows(t.x_val), xtr[:5000]) and np.array_equal(_rows(t.x_pool), xtr[5000:])
    D.make_split(mnist_path, out, "mnist10", 5000, seed=1)
    g = D.load_task(mnist_path, out, "cpu", label_draw="head", data_split="tf1", unlabeled="rest")
    assert np.array_equal(_rows(g.x_lab), xtr[:5000]) and np.array_equal(g.y_lab.numpy(), ytr[:5000])
    assert np.array_equal(_rows(g.x_pool), xtr[5000:])
    # monitoring images: the protocol's validation images of the tf1 pool, none of them labeled
    val = D.validation_indices(ytr)
    assert np.array_equal(_rows(g.x_val), xtr[val[val >= 5000]])
    # a balanced draw under tf1 comes from the tf1 pool only
    b = D.load_task(mnist_path, out, "cpu", data_split="tf1")
    assert np.bincount(b.y_lab.numpy()).tolist() == [500] * 10
    assert not {bytes(r) for r in _rows(b.x_lab)} & {bytes(r) for r in xtr[:5000]}
    with pytest.raises(ValueError, match="needs data_split 'tf1'"):
        D.load_task(mnist_path, out, "cpu", label_draw="head")


def test_keras_split_and_train_test_split_are_seed001s_draw(tmp_path, mnist_path, mnist):
    """Seed 001 loads all 60,000 training images (keras.datasets.mnist, 001:13-14) and calls
    ``train_test_split(train_x, train_y, train_size=0.015, test_size=0.985)`` (001:43-45): 900 labeled
    images from all 60,000, unstratified, and the other 59,100 unlabeled. With the run's seed as
    ``random_state`` the port takes exactly sklearn's images."""
    from sklearn.model_selection import train_test_split

    xtr, ytr = mnist["x_train"].reshape(60000, -1), mnist["y_train"]
    out = tmp_path / "s.npz"
    for seed in (0, 3):
        D.make_split(mnist_path, out, "mnist10", 900, seed=seed)
        t = D.load_task(mnist_path, out, "cpu", label_draw="train_test_split", data_split="keras",
                        unlabeled="rest")
        sup, unsup = train_test_split(np.arange(60000), train_size=0.015, test_size=0.985, random_state=seed)
        assert len(sup) == 900 and len(unsup) == 59100
        assert np.array_equal(_rows(t.x_lab), xtr[np.sort(sup)])
        assert np.array_equal(t.y_lab.numpy(), ytr[np.sort(sup)])
        assert np.array_equal(_rows(t.x_pool), xtr[np.sort(unsup)])
    # the draw reaches the 5,000 images the protocol holds out, which the 55,000-image pool never does
    val = D.validation_indices(ytr)
    assert np.isin(np.sort(sup), val).any()
    # unbalanced classes, as an unstratified draw gives them
    assert len(set(np.bincount(ytr[sup], minlength=10))) > 1
    with pytest.raises(ValueError, match="data_split"):
        D.load_task(mnist_path, out, "cpu", data_split="keras2")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="names open files through /proc")
def test_atomic_write_flushes_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    """A checkpoint or metrics file is on the disk before the rename publishes it (a crash of the machine
    cannot leave a cut-short file under the real name), and the rename is flushed with its folder."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    dest = tmp_path / "ck" / "run.pt"
    D.atomic_write(dest, lambda tmp: tmp.write_bytes(b"a checkpoint"))
    [(a, flushed), (b, src, dst), (c, folder)] = events
    assert (a, b, c) == ("fsync", "replace", "fsync")
    assert flushed == src != dst == str(dest) and folder == str(dest.parent)
    assert dest.read_bytes() == b"a checkpoint"
