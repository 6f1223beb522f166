"""Plain ``nn.Module`` building blocks: no optimisers, loops or I/O in here."""

from __future__ import annotations

import torch
from torch import nn


def mlp(sizes, act=nn.ReLU, dropout: float = 0.0, batch_norm: bool = False, final_act: bool = False) -> nn.Sequential:
    """Dense layers ``sizes[0] -> ... -> sizes[-1]``; the last layer is linear unless ``final_act``."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        last = i == len(sizes) - 2
        if last and not final_act:
            break
        if batch_norm:
            layers.append(nn.BatchNorm1d(b))
        layers.append(act())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def init_normal_(module: nn.Module, std: float) -> nn.Module:
    """Weights ~ N(0, std^2), biases 0: the initialisation of the seed-004 TensorFlow code."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            nn.init.zeros_(m.bias)
    return module


class MLPClassifier(nn.Module):
    """784-1000-1000-10 with ReLU and dropout: the seed-004 "basic NN classifier"."""

    def __init__(self, n_in: int = 784, hidden=(1000, 1000), n_classes: int = 10, dropout: float = 0.75,
                 init_std: float | None = 0.01):
        super().__init__()
        self.net = mlp([n_in, *hidden, n_classes], act=nn.ReLU, dropout=dropout)
        if init_std is not None:
            init_normal_(self.net, init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# ----------------------------------------------------------------------------- adversarial autoencoder (aae)

class AAEEncoder(nn.Module):
    """q(y, z | x) of the semi-supervised AAE (Makhzani et al. 2015, Fig. 8): a shared
    784-1000-1000 ReLU trunk with two linear heads, class logits y and a Gaussian style code z.

    ``forward`` returns the class logits only, so the encoder is itself the classifier;
    ``encode`` returns both heads for training and figures.
    """

    def __init__(self, n_in: int = 784, hidden=(1000, 1000), n_classes: int = 10, z_dim: int = 10,
                 init_std: float | None = 0.01):
        super().__init__()
        self.trunk = mlp([n_in, *hidden], act=nn.ReLU, final_act=True)
        self.y_head = nn.Linear(hidden[-1], n_classes)
        self.z_head = nn.Linear(hidden[-1], z_dim)  # linear: z is matched to a Gaussian, not squashed
        if init_std is not None:
            init_normal_(self, init_std)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return self.y_head(h), self.z_head(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.y_head(self.trunk(x))


class AAEDecoder(nn.Module):
    """p(x | y, z): (softmax y ++ z) -> 1000-1000 ReLU -> 784 sigmoid (pixels in [0, 1])."""

    def __init__(self, n_classes: int = 10, z_dim: int = 10, hidden=(1000, 1000), n_out: int = 784,
                 init_std: float | None = 0.01):
        super().__init__()
        self.net = mlp([n_classes + z_dim, *hidden, n_out], act=nn.ReLU)
        if init_std is not None:
            init_normal_(self.net, init_std)

    def forward(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(torch.cat([y, z], dim=1)))


class AAEDiscriminator(nn.Module):
    """A code discriminator (D_cat on y or D_gauss on z): n_in -> 1000-1000 ReLU -> one logit."""

    def __init__(self, n_in: int, hidden=(1000, 1000), init_std: float | None = 0.01):
        super().__init__()
        self.net = mlp([n_in, *hidden, 1], act=nn.ReLU)
        if init_std is not None:
            init_normal_(self.net, init_std)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return self.net(code).squeeze(1)


# ----------------------------------------------------------------------------- transfer / siamese (seeds 002, 000)

# std of the untruncated normal over sqrt(1 / fan_in), per initialiser: TF's truncated draws divide by
# the std of a unit normal cut at +-2 so that the variance survives the truncation.
INITS = {
    # tf.contrib.layers.variance_scaling_initializer(): factor 2, its own correction 1.3 (seeds 000, 002)
    "he": (1.3 * 2.0) ** 0.5,
    # tf.variance_scaling_initializer(): scale 1, truncated normal / 0.87962566103423978 (TF 1.x core;
    # Geron's ``he_init`` in 11_deep_learning.ipynb, exercise 10)
    "variance_scaling": 1.0 / 0.87962566103423978,
}


def init_he_(module: nn.Module, init: str = "he") -> nn.Module:
    """TF's variance-scaling initialisers (``INITS``) on every Linear: a normal truncated at 2 std with
    std ``INITS[init] * sqrt(1 / fan_in)``; biases 0. ``"he"``: contrib's default, the ``he_init`` of
    seeds 000 and 002; ``"variance_scaling"``: TF core's default, the ``he_init`` of Geron's exercise."""
    if init not in INITS:
        raise ValueError(f"init must be one of {sorted(INITS)}, got {init!r}")
    for m in module.modules():
        if isinstance(m, nn.Linear):
            # "he" keeps the expression it always had, so the archived runs re-run bit for bit
            std = (1.3 * 2.0 / m.in_features) ** 0.5 if init == "he" else INITS[init] / m.in_features ** 0.5
            nn.init.trunc_normal_(m.weight, 0.0, std, -2 * std, 2 * std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


class ELUTower(nn.Module):
    """Dense layers, each Linear -> BatchNorm -> ELU -> Dropout, He-initialised (seeds 002 and 000),
    with dropout on the input too (both seeds: 002:99-100, 000:79).

    ``bn_momentum``/``bn_eps`` are torch's (TF decay d is momentum 1 - d; TF's eps is 1e-3);
    ``bn_scale=False`` and ``bias=False`` give ``tf.contrib.layers.batch_norm``'s default (no gamma)
    under a ``fully_connected`` layer that then has no bias (seed 000:84-88). ``batch_norm=False``:
    Linear -> ELU -> Dropout (Geron's ``dnn()``); ``init``: see ``init_he_``.

    ``blocks[i]`` is hidden layer i, so "freeze the bottom k layers" is ``freeze(k)``:
    their parameters stop needing gradients and their batch-norm layers stay in
    inference mode (running statistics fixed) even when the model is put in
    training mode, as a frozen Keras layer does. Their dropout stays active.
    """

    def __init__(self, n_in: int = 784, hidden=(100, 100, 100, 100, 100), dropout: float = 0.0,
                 input_dropout: float = 0.0, bn_momentum: float = 0.1, bn_eps: float = 1e-5,
                 bn_scale: bool = True, bias: bool = True, batch_norm: bool = True, init: str = "he"):
        super().__init__()
        sizes = [n_in, *hidden]

        def norm(b):
            if not batch_norm:
                return nn.Identity()
            if bn_scale:
                return nn.BatchNorm1d(b, eps=bn_eps, momentum=bn_momentum)
            bn = ShiftBatchNorm1d(b)
            bn.eps, bn.momentum = bn_eps, bn_momentum
            return bn

        self.drop_in = nn.Dropout(input_dropout) if input_dropout > 0 else nn.Identity()
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(a, b, bias=bias), norm(b), nn.ELU(), nn.Dropout(dropout))
            for a, b in zip(sizes[:-1], sizes[1:]))
        self.out_dim = sizes[-1]
        self.frozen = 0
        init_he_(self, init)

    def freeze(self, k: int) -> None:
        if not 0 <= k <= len(self.blocks):
            raise ValueError(f"cannot freeze {k} layers of a {len(self.blocks)}-layer tower")
        self.frozen = k
        for i, block in enumerate(self.blocks):
            for p in block.parameters():
                p.requires_grad_(i >= k)
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        for block in self.blocks[:self.frozen]:
            for m in block.modules():
                if isinstance(m, nn.BatchNorm1d):
                    m.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop_in(x)
        for block in self.blocks:
            x = block(x)
        return x


class TowerClassifier(nn.Module):
    """A tower with a linear softmax head on top (logits out)."""

    def __init__(self, tower: ELUTower, n_classes: int, head_init: str = "glorot"):
        super().__init__()
        self.tower = tower
        self.head = nn.Linear(tower.out_dim, n_classes)
        if head_init == "glorot":
            nn.init.xavier_uniform_(self.head.weight)  # TF1's default kernel initializer (glorot uniform)
            nn.init.zeros_(self.head.bias)
        else:
            init_he_(self.head, head_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.tower(x))


class SiameseNet(nn.Module):
    """Two inputs through the tower(s); the pair's features -> dense (ELU) -> one "same digit" logit.

    ``features="concat"``: [h1, h2], as Geron's exercise (ch. 11, ex. 10) concatenates the two
    towers' outputs; ``"absdiff"``: |h1 - h2| (Koch et al. 2015). ``tower_b``: None for one shared
    tower (a Siamese network), else the second input's own tower (the exercise's DNN B; ``tower`` is
    DNN A, the one a second stage reuses).
    """

    def __init__(self, tower: ELUTower, pair_hidden: int = 10, features: str = "concat",
                 tower_b: ELUTower | None = None, init: str = "he"):
        super().__init__()
        if features not in ("concat", "absdiff"):
            raise ValueError(f"pair features must be 'concat' or 'absdiff', got {features!r}")
        self.tower, self.features, self.tower_b = tower, features, tower_b
        n = tower.out_dim * (2 if features == "concat" else 1)
        self.head = mlp([n, pair_hidden, 1], act=nn.ELU) if pair_hidden else nn.Linear(n, 1)
        init_he_(self.head, init)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        if self.tower_b is None:
            h = self.tower(torch.cat([x1, x2]))  # one pass: both halves see the same batch-norm statistics
            h1, h2 = h.chunk(2)
        else:
            h1, h2 = self.tower(x1), self.tower_b(x2)
        f = torch.cat([h1, h2], 1) if self.features == "concat" else (h1 - h2).abs()
        return self.head(f).squeeze(1)


class NearestCentroid(nn.Module):
    """Classifies by the nearest class mean of an embedding (logits = minus squared distance).

    Used only to give the Siamese pair stage a class accuracy to report; the
    centroids are a buffer set from outside, not learned.
    """

    def __init__(self, embed: nn.Module, n_classes: int, dim: int):
        super().__init__()
        self.embed = embed
        self.register_buffer("centroids", torch.zeros(n_classes, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -torch.cdist(self.embed(x), self.centroids).pow(2)


# ----------------------------------------------------------------------------- semi-supervised GANs (sgan, sgan-fm)

class GaussianNoise(nn.Module):
    """Adds N(0, sigma^2) noise in training mode only (improved-gan's GaussianNoiseLayer)."""

    def __init__(self, sigma: float):
        super().__init__()
        self.sigma = sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.sigma > 0:
            return x + self.sigma * torch.randn_like(x)
        return x


class WNLinear(nn.Module):
    """Weight-normalised dense layer (Salimans & Kingma 2016): W = g * v / ||v|| per output unit.

    As in improved-gan's MNIST ``DenseLayer``: v ~ N(0, v_std^2) (Glorot uniform when v_std is
    None), g starts at 1 and is trained only when ``train_scale``; ``data_init`` sets g and b so
    that the pre-activations of a batch have zero mean and unit variance per unit.
    """

    def __init__(self, n_in: int, n_out: int, train_scale: bool = False, v_std: float | None = 0.1):
        super().__init__()
        self.v = nn.Parameter(torch.empty(n_out, n_in))
        if v_std is None:
            nn.init.xavier_uniform_(self.v)
        else:
            nn.init.normal_(self.v, 0.0, v_std)
        self.g = nn.Parameter(torch.ones(n_out), requires_grad=train_scale)
        self.b = nn.Parameter(torch.zeros(n_out))

    def weight(self) -> torch.Tensor:
        return self.v * (self.g / self.v.norm(dim=1)).unsqueeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight(), self.b)

    @torch.no_grad()
    def data_init(self, x: torch.Tensor) -> torch.Tensor:
        """Rescale g and b on batch ``x``; returns the (now standardised) pre-activations."""
        t = nn.functional.linear(x, self.weight())
        mean, std = t.mean(0), t.std(0, unbiased=False).clamp_min(1e-8)
        self.g.div_(std)
        self.b.copy_(-mean / std)
        return (t - mean) / std


class FMDiscriminator(nn.Module):
    """Discriminator/classifier of the MNIST feature-matching GAN (Salimans et al. 2016;
    improved-gan train_mnist_feature_matching.py): input noise sigma 0.3, weight-normalised
    1000-500-250-250-250 ReLU layers each followed by noise sigma 0.5, 10 logits (the fake
    class's logit is fixed at 0, so it has no unit)."""

    def __init__(self, n_in: int = 784, hidden=(1000, 500, 250, 250, 250), n_classes: int = 10,
                 input_noise: float = 0.3, hidden_noise: float = 0.5):
        super().__init__()
        sizes = [n_in, *hidden]
        self.input_noise = GaussianNoise(input_noise)
        self.hidden = nn.ModuleList(WNLinear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.noise = nn.ModuleList(GaussianNoise(hidden_noise) for _ in hidden)
        self.out = WNLinear(sizes[-1], n_classes, train_scale=True)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, the last hidden layer's ReLU output before its noise: the matched features)."""
        h = self.input_noise(x)
        for layer, noise in zip(self.hidden, self.noise):
            f = torch.relu(layer(h))
            h = noise(f)
        return self.out(h), f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[0]

    @torch.no_grad()
    def data_init(self, x: torch.Tensor) -> None:
        """Data-dependent initialisation, layer by layer on one batch (noise on, as published)."""
        h = self.input_noise(x)
        for layer, noise in zip(self.hidden, self.noise):
            h = noise(torch.relu(layer.data_init(h)))
        self.out.data_init(h)


class ShiftBatchNorm1d(nn.BatchNorm1d):
    """Batch norm with a learned shift but no scale (improved-gan's ``batch_norm(..., g=None)``)."""

    def __init__(self, n: int):
        super().__init__(n, affine=False)
        self.shift = nn.Parameter(torch.zeros(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + self.shift


class FMGenerator(nn.Module):
    """Generator of the MNIST feature-matching GAN: 100 uniform -> 500 -> 500 (softplus, batch
    norm) -> 784 sigmoid, the output layer weight-normalised with a trained scale."""

    def __init__(self, z_dim: int = 100, hidden=(500, 500), n_out: int = 784):
        super().__init__()
        layers: list[nn.Module] = []
        for a, b in zip([z_dim, *hidden[:-1]], hidden):
            layers += [nn.Linear(a, b, bias=False), ShiftBatchNorm1d(b), nn.Softplus()]
        self.body = nn.Sequential(*layers)
        self.out = WNLinear(hidden[-1], n_out, train_scale=True, v_std=None)
        self.z_dim = z_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.out(self.body(z)))


def _glorot_(module: nn.Module) -> nn.Module:
    """Keras/TF1 defaults: glorot-uniform kernels, zero biases (seed 001 sets no initialiser)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return module


def tf_batch_norm2d(c: int) -> nn.BatchNorm2d:
    """``tf.layers.batch_normalization`` defaults: momentum 0.99 (torch 0.01), eps 1e-3."""
    return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)


def tf_same_pad(k: int, s: int, n: int) -> nn.ZeroPad2d:
    """TF's 'same' padding of a k x k, stride-s conv on n x n: output ceil(n / s); the odd pixel of
    padding goes right/bottom (torch pads symmetrically, so pad explicitly)."""
    total = max((-(-n // s) - 1) * s + k - n, 0)
    return nn.ZeroPad2d((total // 2, total - total // 2, total // 2, total - total // 2))


class Seed001Generator(nn.Module):
    """Seed 001's generator (001_c1f65a8d6218390a.txt:70-96): z (100) as 1 x 1 x 100 -> ConvT 100 k2 s1
    (2 x 2) -> ConvT 64 k3 s2 (5 x 5) -> ConvT 32 k4 s2 (12 x 12) -> ConvT 1 k6 s2 (28 x 28), 'valid'
    padding, batch norm + ReLU after the first three, tanh output in [-1, 1]."""

    def __init__(self, z_dim: int = 100):
        super().__init__()
        self.z_dim = z_dim
        chans, kernels, strides = [z_dim, 100, 64, 32, 1], [2, 3, 4, 6], [1, 2, 2, 2]
        layers: list[nn.Module] = []
        for i, (k, st) in enumerate(zip(kernels, strides)):
            layers.append(nn.ConvTranspose2d(chans[i], chans[i + 1], k, stride=st))
            layers += [tf_batch_norm2d(chans[i + 1]), nn.ReLU()] if i < 3 else [nn.Tanh()]
        self.net = _glorot_(nn.Sequential(*layers))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(-1, self.z_dim, 1, 1))


class Seed001Discriminator(nn.Module):
    """Seed 001's discriminator (001:106-134): 'same'-padded strided convs 28 -> 14 -> 7 -> 4 -> 2
    (32 5x5 + dropout; 64 3x3 + BN; 128 2x2 + BN, then dropout; 128 2x2), leaky ReLU 0.2 after each,
    flatten (512) -> dense to K+1 logits (the last is "fake").

    ``bns``: the two batch-norm layers of another copy, to share them (see ``sgan``'s
    ``d_unshared_weights``). ``dropout`` 0 builds no dropout layer at all."""

    def __init__(self, n_classes: int = 10, dropout: float = 0.5, bns: tuple[nn.Module, nn.Module] | None = None):
        super().__init__()
        bn2, bn3 = bns if bns is not None else (tf_batch_norm2d(64), tf_batch_norm2d(128))

        def drop():
            return nn.Dropout(dropout) if dropout > 0 else nn.Identity()

        def act():
            return nn.LeakyReLU(0.2)

        self.body = nn.Sequential(
            tf_same_pad(5, 2, 28), nn.Conv2d(1, 32, 5, stride=2), drop(), act(),   # 14 x 14
            tf_same_pad(3, 2, 14), nn.Conv2d(32, 64, 3, stride=2), bn2, act(),     # 7 x 7
            tf_same_pad(2, 2, 7), nn.Conv2d(64, 128, 2, stride=2), bn3, act(), drop(),  # 4 x 4
            tf_same_pad(2, 2, 4), nn.Conv2d(128, 128, 2, stride=2), act(),         # 2 x 2
            nn.Flatten())
        self.out = nn.Linear(128 * 2 * 2, n_classes + 1)
        _glorot_(self)

    def batch_norms(self) -> tuple[nn.Module, nn.Module]:
        return self.body[6], self.body[10]

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(K+1 logits, the flattened last conv features) for images N x 1 x 28 x 28 in [-1, 1]."""
        f = self.body(x)
        return self.out(f), f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[0]


class KPlusOneClassifier(nn.Module):
    """The SGAN discriminator as a classifier of flat [0, 1] images: rescale to [-1, 1] and drop the
    fake logit (argmax over the K real classes), unless ``keep_fake`` (seed 001's evaluation takes
    the argmax over all K+1 outputs, so an image called fake counts as an error)."""

    def __init__(self, disc: nn.Module):
        super().__init__()
        self.disc = disc
        self.keep_fake = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.disc(x.view(-1, 1, 28, 28) * 2 - 1)
        return logits if self.keep_fake else logits[:, :-1]


# ----------------------------------------------------------------------------- seed 003: autoencoders, linear and conv classifiers
# Seed 003 (003_e52dbb3e96ae8bc0.txt) is a TensorFlow course chapter; its padding is TF's 'SAME'.

import math  # noqa: E402

import torch.nn.functional as F  # noqa: E402


def same_pads(n: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding of a size-``n`` input (before, after): out = ceil(n / s), extra pixel after."""
    total = max((math.ceil(n / s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


class TiedAE(nn.Module):
    """Fully connected autoencoder with tied weights (seed 003:211-264): x - mean -> 512 -> 256 -> 128 -> 64
    (ReLU, no biases), decoded by the transposed matrices of the same layers.

    One parameter per layer, used twice (``x @ W`` on the way in, ``h @ W.T`` on the way out).
    ``output_relu``: the seed puts a ReLU on the last decoder layer too (003:264), although its
    target, the mean-subtracted image, is negative wherever a pixel is darker than the mean.
    """

    def __init__(self, n_in: int = 784, sizes=(512, 256, 128, 64), init_std: float = 0.02,
                 output_relu: bool = False):
        super().__init__()
        dims = [n_in, *sizes]
        self.weights = nn.ParameterList([nn.Parameter(torch.randn(a, b) * init_std)
                                         for a, b in zip(dims[:-1], dims[1:])])
        self.register_buffer("mean", torch.zeros(n_in))  # set from the pool by the method
        self.output_relu, self.code_dim = output_relu, dims[-1]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        h = x - self.mean
        for w in self.weights:
            h = torch.relu(h @ w)
        return h

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """Mean-subtracted reconstruction (the seed's ``Y``)."""
        ws = list(self.weights)[::-1]
        for i, w in enumerate(ws):
            h = h @ w.t()
            if i < len(ws) - 1 or self.output_relu:
                h = torch.relu(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction in image space (mean added back)."""
        return self.decode(self.encode(x)) + self.mean


class ConvTiedAE(nn.Module):
    """Convolutional autoencoder (seed 003:375-464): three 4x4 stride-2 'SAME' convolutions of 16
    filters (28 -> 14 -> 7 -> 4, ReLU, no biases), decoded by transposed convolutions with the same
    filters; the code is the flattened 4x4x16 map. ``output_relu`` as in TiedAE (003:464)."""

    def __init__(self, filters=(16, 16, 16), ksize: int = 4, init_std: float = 0.02, output_relu: bool = False,
                 side: int = 28):
        super().__init__()
        chans = [1, *filters]
        self.weights = nn.ParameterList([nn.Parameter(torch.randn(co, ci, ksize, ksize) * init_std)
                                         for ci, co in zip(chans[:-1], chans[1:])])
        self.sides = [side]
        for _ in filters:
            self.sides.append(math.ceil(self.sides[-1] / 2))
        self.register_buffer("mean", torch.zeros(side * side))
        self.ksize, self.output_relu = ksize, output_relu
        self.code_dim = filters[-1] * self.sides[-1] ** 2

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        h = (x - self.mean).view(-1, 1, self.sides[0], self.sides[0])
        for w, n in zip(self.weights, self.sides):
            a, b = same_pads(n, self.ksize, 2)
            h = torch.relu(F.conv2d(F.pad(h, (a, b, a, b)), w, stride=2))
        return h.flatten(1)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """The adjoint of each padded convolution: transposed convolution, then crop the padding."""
        h = h.view(-1, self.weights[-1].shape[0], self.sides[-1], self.sides[-1])
        layers = list(zip(self.weights, self.sides))[::-1]
        for i, (w, n) in enumerate(layers):
            a, _ = same_pads(n, self.ksize, 2)
            h = F.conv_transpose2d(h, w, stride=2)[:, :, a:a + n, a:a + n]
            if i < len(layers) - 1 or self.output_relu:
                h = torch.relu(h)
        return h.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)) + self.mean


class VAE(nn.Module):
    """Fully connected variational autoencoder (Kingma & Welling 2013, cited at seed 003:1445; the chapter
    points to its course library for the model, 003:533-535): ReLU encoder to the mean and log-variance
    of a diagonal Gaussian posterior, ReLU decoder with a sigmoid (Bernoulli) output. ``encode`` is the
    posterior mean, the features a classifier reads."""

    def __init__(self, n_in: int = 784, hidden=(512, 256, 64), latent: int = 2):
        super().__init__()
        self.enc = mlp([n_in, *hidden], final_act=True)
        self.mu = nn.Linear(hidden[-1], latent)
        self.logvar = nn.Linear(hidden[-1], latent)
        self.dec = mlp([latent, *reversed(hidden), n_in])
        self.code_dim = latent

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.enc(x)
        return self.mu(h), self.logvar(h)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.posterior(x)[0]

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.dec(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction from the posterior mean (no sampling), in [0, 1]."""
        return torch.sigmoid(self.dec(self.encode(x)))


class EncoderClassifier(nn.Module):
    """A classifier head (dense ReLU layers, then the class logits) on an autoencoder's ``encode``."""

    def __init__(self, autoencoder: nn.Module, n_classes: int, hidden=(128,)):
        super().__init__()
        self.autoencoder = autoencoder
        self.head = mlp([autoencoder.code_dim, *hidden, n_classes])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.autoencoder.encode(x))


class SeedConvNet(nn.Module):
    """Seed 003's convolutional classifier (003:1218-1283): 5x5 convolutions of 32 then 64 filters,
    stride 2, 'SAME', with biases and ReLU (28 -> 14 -> 7), a dense layer of 128 (ReLU) and the
    class logits (the seed's softmax lives in the loss here). Conv weights ~ N(0, ``init_std``^2),
    biases 0 (003:1225, 1233: TF's default ``random_normal_initializer()`` has std 1)."""

    def __init__(self, n_classes: int = 10, filters=(32, 64), ksize: int = 5, dense: int = 128,
                 init_std: float = 1.0, side: int = 28):
        super().__init__()
        chans = [1, *filters]
        self.convs = nn.ModuleList([nn.Conv2d(ci, co, ksize, stride=2) for ci, co in zip(chans[:-1], chans[1:])])
        for c in self.convs:
            nn.init.normal_(c.weight, 0.0, init_std)
            nn.init.zeros_(c.bias)
        self.sides = [side]
        for _ in filters:
            self.sides.append(math.ceil(self.sides[-1] / 2))
        self.ksize, self.side = ksize, side
        self.fc = nn.Linear(filters[-1] * self.sides[-1] ** 2, dense)
        self.out = nn.Linear(dense, n_classes)
        for m in (self.fc, self.out):  # Glorot uniform: ours (the seed calls its library's linear(), 003:1277, not shown)
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = x.view(-1, 1, self.side, self.side)
        for conv, n in zip(self.convs, self.sides):
            a, b = same_pads(n, self.ksize, 2)
            h = torch.relu(conv(F.pad(h, (a, b, a, b))))
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.fc(self.features(x).flatten(1))))
