"""Stand-in for TF1's ``tensorflow.examples.tutorials.mnist.input_data``.

Written from the documented behaviour of TF 1.3-1.15's ``read_data_sets`` and
``DataSet`` (not copied from TensorFlow's source), reading the project's
verified ``resources/mnist.npz`` instead of downloading the idx files:

* ``read_data_sets(train_dir, one_hot=False, dtype=float32, reshape=True,
  validation_size=5000, seed=None)``: validation = the FIRST ``validation_size``
  training images, train = the rest in file order, test = the 10,000 test
  images; labels uint8 (one-hot: float64 rows), images flattened to 784 and,
  for float32, multiplied by 1/255.
* ``DataSet.__init__`` reseeds NumPy's global generator the way TF1 did: with
  the graph-level seed when one is set (``tf.set_random_seed``), else from the
  OS (``np.random.seed(None)``); with an explicit ``seed``, with that seed.
* ``DataSet.next_batch(batch_size, shuffle=True)``: the whole set is permuted
  (``np.random.shuffle`` of an index range) on the very first call; a batch that
  would run past the end takes the remaining examples of the epoch, permutes the
  set anew, and tops the batch up from the start of the new order.

``keras_load_data()`` stands in for ``tf.keras.datasets.mnist.load_data()``
(uint8 images (N, 28, 28) and uint8 labels, file order).

The npz path is ``NPZ_PATH`` (the harness sets it).
"""
import collections

import numpy as np

NPZ_PATH = None

_MAXINT32 = 2**31 - 1
Datasets = collections.namedtuple('Datasets', ['train', 'validation', 'test'])


def _load():
    if NPZ_PATH is None:
        raise RuntimeError('tf1_mnist.NPZ_PATH is not set')
    with np.load(NPZ_PATH) as d:
        return (d['x_train'], d['y_train'].astype(np.uint8),
                d['x_test'], d['y_test'].astype(np.uint8))


def keras_load_data():
    x_tr, y_tr, x_te, y_te = _load()
    return (x_tr, y_tr), (x_te, y_te)


def _graph_seed():
    try:
        import tensorflow.compat.v1 as tf
    except ImportError:  # pragma: no cover
        return None
    return tf.get_default_graph().seed


def _numpy_reseed(seed):
    """NumPy reseed as TF1's DataSet did via random_seed.get_seed(seed)."""
    graph_seed = _graph_seed()
    if seed is None:
        np.random.seed(None if graph_seed is None else graph_seed % _MAXINT32)
    else:
        np.random.seed(seed % _MAXINT32)


def _one_hot(labels, n_classes=10):
    out = np.zeros((labels.shape[0], n_classes))  # float64, as TF1
    out[np.arange(labels.shape[0]), labels] = 1
    return out


class DataSet(object):
    def __init__(self, images, labels, one_hot=False, dtype='float32',
                 reshape=True, seed=None):
        _numpy_reseed(seed)
        assert images.shape[0] == labels.shape[0]
        self._num_examples = images.shape[0]
        if reshape:
            images = images.reshape(images.shape[0], -1)
        if np.dtype(dtype) == np.float32:
            images = images.astype(np.float32)
            images = np.multiply(images, 1.0 / 255.0)
        self._images = images
        self._labels = _one_hot(labels) if one_hot else labels
        self._epochs_completed = 0
        self._index_in_epoch = 0

    @property
    def images(self):
        return self._images

    @property
    def labels(self):
        return self._labels

    @property
    def num_examples(self):
        return self._num_examples

    @property
    def epochs_completed(self):
        return self._epochs_completed

    def _permute(self):
        order = np.arange(self._num_examples)
        np.random.shuffle(order)
        self._images = self.images[order]
        self._labels = self.labels[order]

    def next_batch(self, batch_size, fake_data=False, shuffle=True):
        if fake_data:
            raise NotImplementedError('fake_data')
        start = self._index_in_epoch
        if shuffle and start == 0 and self._epochs_completed == 0:
            self._permute()
        if start + batch_size <= self._num_examples:
            self._index_in_epoch = start + batch_size
            return (self._images[start:self._index_in_epoch],
                    self._labels[start:self._index_in_epoch])
        # the epoch ends inside this batch
        self._epochs_completed += 1
        head_x = self._images[start:self._num_examples]
        head_y = self._labels[start:self._num_examples]
        if shuffle:
            self._permute()
        self._index_in_epoch = batch_size - (self._num_examples - start)
        tail_x = self._images[:self._index_in_epoch]
        tail_y = self._labels[:self._index_in_epoch]
        return (np.concatenate((head_x, tail_x), axis=0),
                np.concatenate((head_y, tail_y), axis=0))


def read_data_sets(train_dir=None, fake_data=False, one_hot=False,
                   dtype='float32', reshape=True, validation_size=5000,
                   seed=None, source_url=None):
    if fake_data:
        raise NotImplementedError('fake_data')
    x_tr, y_tr, x_te, y_te = _load()
    x_tr, x_te = x_tr[..., None], x_te[..., None]  # (N, 28, 28, 1) as TF1
    if not 0 <= validation_size <= len(x_tr):
        raise ValueError('validation_size out of range')
    opts = dict(one_hot=one_hot, dtype=dtype, reshape=reshape, seed=seed)
    train = DataSet(x_tr[validation_size:], y_tr[validation_size:], **opts)
    validation = DataSet(x_tr[:validation_size], y_tr[:validation_size], **opts)
    test = DataSet(x_te, y_te, **opts)
    return Datasets(train=train, validation=validation, test=test)
